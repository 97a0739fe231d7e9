# Copyright (c) mmitpn contributors. All rights reserved.
"""Fidelity of the backbone's token reduction on the CPU demos: token
migration switched on at test time, and windows or gathering tokens
fine-tuned, against global attention over seeds
(:mod:`projects.itpn_study.study.token_reduction`). Results in
``<work-dir>/fidelity.json``, tables in ``<work-dir>/fidelity.md``, rewritten
after every run.

Example (from the repository root)::

    make demo-photos   # the pretraining checkpoint both demos start from
    python tools/dataset_converters/make_shapes_seg.py data/shapes_seg
    python tools/dataset_converters/make_shapes_coco.py data/shapes_coco
    python -m projects.itpn_study.tools.token_reduction_fidelity --tasks seg
"""
import argparse

from mmitpn.utils.cli import add_debug_argument, run_tool
from projects.itpn_study.study.token_reduction import (TASKS, VARIANTS,
                                                       FidelityStudy, report)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        '--tasks', nargs='+', choices=list(TASKS), default=['seg', 'det'])
    parser.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2])
    parser.add_argument(
        '--variants',
        nargs='+',
        choices=list(VARIANTS),
        default=list(VARIANTS))
    parser.add_argument(
        '--keep-ratios', nargs='+', type=float, default=[1.0, 0.75, 0.5])
    parser.add_argument(
        '--start-block',
        type=int,
        default=1,
        help='first main block that runs on kept tokens')
    parser.add_argument('--work-dir', default='work_dirs/fidelity')
    parser.add_argument(
        '--val-interval',
        type=int,
        default=100,
        help='iterations between validations (segmentation;'
        ' detection validates every epoch): the curves')
    parser.add_argument(
        '--data-root',
        help='generated data of the task '
        '(default: the demo config\'s)')
    parser.add_argument(
        '--max-iters',
        type=int,
        help='shorten the schedule (segmentation iterations '
        'or detection epochs; the test of this tool)')
    parser.add_argument(
        '--no-pretrained',
        action='store_true',
        help='start from random weights (the test)')
    parser.add_argument('--report-only', action='store_true')
    add_debug_argument(parser)
    return parser.parse_args()


def main():
    args = parse_args()
    study = FidelityStudy(args)
    if not args.report_only:
        for task in args.tasks:
            for seed in args.seeds:
                for variant in args.variants:
                    study.train(task, variant, seed)
                    if variant == 'global':
                        for keep in [None, *args.keep_ratios]:
                            study.test(task, seed, keep)
    study.save()
    print(report(study))


if __name__ == '__main__':
    run_tool(main)
