# Copyright (c) mmitpn contributors. All rights reserved.
"""iTPN's ablations at small scale on CPU, over several seeds.

One small HiViT (128-d, 1 + 1 MLP blocks, 4 attention blocks, 64 px, 4x4
units) is pretrained on Fashion-MNIST training images with each objective
(``none``: random initialisation; ``mae``: MAE-style, no pyramid;
``itpn-pixel``; ``itpn-pixel-mfm``, mmitpn's reading of MFM; ``mfm-*``: MFM
settings the paper leaves open), then probed (converged linear probes of
frozen backbone and pyramid features), fine-tuned on Fashion-MNIST, and
transferred to segmentation and detection from (a) the iTPN backbone and its
pretrained pyramid, (b) the same backbone with a fresh pyramid, (c) the
MAE-style backbone, (d) no pretraining.

Plans (``--plan``): ``study``, the 3-epoch ablations; ``prereg``, the
pre-registered study (7 epochs on all 60,000 images, probes after epochs 1,
3 and 7, the MFM continuation arms, UperNet on composited garments from
(a), (b) and (d), gates and deciding statistics); ``rerun``, the 3-epoch
probes re-run with the fixed probe (report only: its L-BFGS probe is gone).

Every training run goes through ``tools/train.py`` with a generated config
kept in its work directory. A run whose result is recorded is not repeated,
so an interrupted plan resumes where it stopped; the report (tables and
figures) is rewritten from the record after every run.

Examples (from the repository root)::

    python -m projects.itpn_study.tools.itpn_study --seeds 0 1 2
    python -m projects.itpn_study.tools.itpn_study --plan prereg
    python -m projects.itpn_study.tools.itpn_study --plan prereg --report-only
"""
import argparse
from typing import List, Optional

from mmitpn.utils.cli import add_debug_argument, run_tool
from projects.itpn_study.study.decide import DecideStudy
from projects.itpn_study.study.decide_report import DecideReport
from projects.itpn_study.study.order import run_decide, run_prereg, run_study
from projects.itpn_study.study.plan import (FULL, MFM_VARIANTS, OBJECTIVES,
                                            PLANS, STAGES, budgets, resolve)
from projects.itpn_study.study.report import Report
from projects.itpn_study.study.runs import Study


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        '--plan',
        choices=tuple(PLANS),
        default='study',
        help="'study': the 3-epoch ablations; 'prereg': the pre-registered "
        "study; 'rerun': the re-run of the 3-epoch probes (report only)")
    parser.add_argument('--work-dir', help="default: the plan's")
    parser.add_argument(
        '--out', help="Markdown report (default: the plan's page in docs/)")
    parser.add_argument(
        '--fig-dir', help="where figures go (default: the plan's folder)")
    parser.add_argument(
        '--record',
        help="JSON file collecting every run's result (default: the plan's "
        'record in records/, or in the work dir with --quick)')
    parser.add_argument(
        '--seeds',
        type=int,
        nargs='+',
        help="pretraining seeds (default: the plan's; 0 1 2 for study and "
        'prereg)')
    parser.add_argument(
        '--objectives', nargs='+', choices=OBJECTIVES, default=OBJECTIVES)
    parser.add_argument(
        '--mfm-variants',
        nargs='*',
        choices=tuple(MFM_VARIANTS),
        default=[],
        help='extra MFM settings to pretrain and probe')
    parser.add_argument('--stages', nargs='+', choices=STAGES, default=STAGES)
    parser.add_argument(
        '--quick',
        action='store_true',
        help='tiny budgets (a few minutes; the smoke test)')
    parser.add_argument('--mask-ratio', type=float, default=0.75)
    parser.add_argument(
        '--report-only',
        action='store_true',
        help='rebuild the tables and figures from the record; run nothing')
    parser.add_argument(
        '--fashion-mnist-root',
        help='folder with the Fashion-MNIST IDX files (default: the '
        'Debian package\'s /usr/share/datasets/fashion-mnist)')
    for key in FULL:
        parser.add_argument(f'--{key.replace("_", "-")}', type=int)
    parser.add_argument('--continue-from', type=int)
    parser.add_argument(
        '--held-out-images',
        type=int,
        help='training images after the pretraining ones kept out of '
        "pretraining for the probes' test (plan decide)")
    parser.add_argument(
        '--probe-max-iter',
        type=int,
        help='Newton iteration limit of one logistic fit (default 1000)')
    add_debug_argument(parser)
    args = parser.parse_args(argv)
    resolve(args)
    return args


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    plan = PLANS[args.plan]
    if not (plan.runnable or args.report_only):
        raise ValueError(
            f'--plan {plan.name} can only rebuild its report (add '
            '--report-only): its probes were solved by '
            f'{plan.logistic_solver}, which mmitpn no longer ships.')
    study = DecideStudy(args) if plan.decide else Study(args)
    study.log(f'study: plan {plan.name}, seeds {args.seeds}, stages '
              f'{args.stages}, budgets '
              f'{ {k: getattr(args, k) for k in budgets(plan, args.quick)} }')
    report = (DecideReport if plan.decide else Report)(args, study)
    if args.report_only:
        report.write()
    elif plan.prereg:
        run_prereg(args, study, report)
        study.log('pre-registered plan finished')
    elif plan.decide:
        run_decide(args, study, report)
        study.log('plan decide: every run it calls for is recorded')
    else:
        run_study(args, study, report)
        study.log('study finished')


if __name__ == '__main__':
    run_tool(main)
