# Copyright (c) mmitpn contributors. All rights reserved.
"""Measure what one run of each kind of the plan ``decide`` costs on this
machine: a few iterations of each generated config and one probe run,
timed. These are measurements for the budget, not runs of the plan: nothing
goes into its record.

Prints, per run kind, the median wall and CPU seconds per training
iteration (mmengine's logged ``time``; the process's CPU time over its
iterations), the evaluation time, and the projected minutes of one full
run, with the machine (``lscpu``), the threads and the load average.

Example (from the repository root)::

    OMP_NUM_THREADS=1 nice -n 19 python -m \\
        projects.itpn_study.tools.cost_pilot --work-dir work_dirs/decide_cost
"""
import argparse
import json
import os.path as osp
from typing import List, Optional

from mmitpn.utils.cli import add_debug_argument, run_tool
from projects.itpn_study.study.costs import budget_table, measure_costs
from projects.itpn_study.tools.itpn_study import parse_args as plan_args


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--work-dir', default='work_dirs/decide_cost')
    parser.add_argument(
        '--iters',
        type=int,
        default=40,
        help='training iterations timed per run kind')
    parser.add_argument(
        '--fashion-mnist-root',
        help='folder with the Fashion-MNIST IDX files (default: Debian\'s)')
    parser.add_argument(
        '--out',
        help='JSON file of the measurements (default: costs.json in the '
        'work dir); the kinds it holds are not measured again')
    add_debug_argument(parser)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    plan = plan_args(['--plan', 'decide', '--work-dir', args.work_dir] +
                     (['--fashion-mnist-root', args.
                       fashion_mnist_root] if args.fashion_mnist_root else []))
    out = args.out or osp.join(args.work_dir, 'costs.json')
    costs = measure_costs(plan, args.iters, out)
    print(json.dumps(costs, indent=1))
    print('\n'.join(budget_table(costs)))


if __name__ == '__main__':
    run_tool(main)
