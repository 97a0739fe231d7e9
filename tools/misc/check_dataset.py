# Copyright (c) mmitpn contributors. All rights reserved.
"""Check a config's datasets before a long run: the folders and annotation
files exist, the datasets build, their samples are counted and the first
few go through the full pipeline; one line per stage, exit status 1 if a
stage has a problem.

Example:
    python tools/misc/check_dataset.py \
        configs/cls/itpn-base_pixel-1600e-pre_32xb32-amp-coslr-100e_in1k.py
"""
import argparse
import sys

from mmengine.config import Config, DictAction

from mmitpn.utils import check_dataset
from mmitpn.utils.cli import add_debug_argument, run_tool
from mmitpn.utils.setup_env import ALL_STAGES


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='config file path')
    parser.add_argument(
        '--stages',
        nargs='+',
        choices=ALL_STAGES,
        default=list(ALL_STAGES),
        help='data loaders to check')
    parser.add_argument(
        '--num-samples',
        type=int,
        default=2,
        help='samples to run through each pipeline')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config entries, e.g. '
        'train_dataloader.dataset.data_root=/datasets/imagenet')
    add_debug_argument(parser)
    return parser.parse_args()


def main():
    args = parse_args()
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    checks = check_dataset(cfg, args.stages, args.num_samples)
    for check in checks:
        print(check.line())
    if not all(check.ok for check in checks):
        sys.exit(1)


if __name__ == '__main__':
    run_tool(main)
