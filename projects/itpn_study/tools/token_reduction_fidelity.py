# Copyright (c) mmitpn contributors. All rights reserved.
"""Fidelity of the backbone's token reduction on the CPU demos: global
attention, windows, gathering tokens, window migration and the recommended
setting fine-tuned over seeds, and token migration switched on at test time
(:mod:`projects.itpn_study.study.token_reduction`; the registered design in
:mod:`projects.itpn_study.study.token_reduction_design`).

Runs in the registered order what the record lacks (generating the data and
the ``make demo-photos`` checkpoint first where they are missing), saving
the record and rewriting the report after every run. In the background, with
the record committed after every run:
``projects/itpn_study/tools/run_fidelity.sh``.

Example (from the repository root)::

    python -m projects.itpn_study.tools.token_reduction_fidelity
    python -m projects.itpn_study.tools.token_reduction_fidelity --report-only
"""
import argparse
import os.path as osp

from mmitpn.utils import write_atomically
from mmitpn.utils.cli import add_debug_argument, run_tool
from projects.itpn_study.study import token_reduction_design as design
from projects.itpn_study.study.record import load_record
from projects.itpn_study.study.token_reduction import FidelityStudy
from projects.itpn_study.study.token_reduction_report import report


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        '--tasks',
        nargs='+',
        choices=list(design.TASKS),
        default=list(design.TASKS))
    parser.add_argument(
        '--seeds', nargs='+', type=int, default=list(design.SEEDS))
    parser.add_argument(
        '--variants',
        nargs='+',
        choices=list(design.VARIANTS),
        default=list(design.VARIANTS))
    parser.add_argument('--work-dir', default=design.WORK_DIR)
    parser.add_argument(
        '--record',
        default=design.RECORD,
        help='the record (default: the project\'s)')
    parser.add_argument(
        '--out',
        help='the report (default: the project\'s page with the project\'s '
        'record, else report.md in the work dir)')
    parser.add_argument(
        '--data-root',
        help='generated data of the task (default: the demo config\'s)')
    parser.add_argument(
        '--max-iters',
        type=int,
        help='shorten the schedule (segmentation iterations or detection '
        'epochs; the tests of this tool, not the registered study)')
    parser.add_argument(
        '--no-pretrained',
        action='store_true',
        help='start from random weights (the tests)')
    parser.add_argument('--report-only', action='store_true')
    add_debug_argument(parser)
    args = parser.parse_args()
    if args.out is None:
        project = osp.abspath(args.record) == design.RECORD
        args.out = design.REPORT_PAGE if project else osp.join(
            args.work_dir, 'report.md')
    return args


def write_report(args) -> str:
    text = report(
        load_record(args.record), args.tasks, args.seeds, args.variants)
    write_atomically(text, args.out)
    return text


def main():
    args = parse_args()
    if not args.report_only:
        study = FidelityStudy(args)
        order = design.run_order(args.tasks, args.seeds, args.variants)
        study.prepare(sorted({task for task, _, _ in order}))
        for task, variant, seed in order:
            study.train(task, variant, seed)
            write_report(args)
    print(write_report(args))


if __name__ == '__main__':
    run_tool(main)
