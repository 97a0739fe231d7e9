# Copyright (c) mmitpn contributors. All rights reserved.
"""Train a model from a config with MMEngine's Runner.

Examples:
    python tools/train.py configs/pretrain/<config>.py
    tools/dist_train.sh configs/pretrain/<config>.py 8 --amp
"""
import argparse
import json
import os
import os.path as osp

from mmengine.config import Config, DictAction
from mmengine.logging import print_log
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from mmitpn.apis import fill_pretrained
from mmitpn.engine import resume_if_restarted
from mmitpn.utils import (adapt_cfg_to_device, check_data_files,
                          init_distributed)
from mmitpn.utils.cli import add_debug_argument, run_tool


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from the given checkpoint, or, without a path (or with '
        '"auto"), from the latest checkpoint of the work dir if there is '
        'one. A job that Slurm requeued or torchrun restarted resumes from '
        'its work dir by itself')
    parser.add_argument(
        '--pretrained',
        metavar='FILE',
        help='start from this checkpoint (mmitpn layout: trained or '
        'converted): its backbone, and its pyramid where it holds one')
    parser.add_argument(
        '--pretrained-neck',
        metavar='FILE',
        help='load the pyramid (the neck) from this checkpoint instead')
    parser.add_argument(
        '--amp',
        action='store_true',
        help='mixed precision: AmpOptimWrapper on a GPU, bf16 autocast on '
        'the CPU')
    scale = parser.add_mutually_exclusive_group()
    scale.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale the learning rate with the actual total batch size '
        '(shipped recipes do so already: auto_scale_lr.enable=True)')
    scale.add_argument(
        '--no-auto-scale-lr',
        action='store_true',
        help="train with the config's lr whatever the total batch size")
    parser.add_argument(
        '--tensorboard',
        action='store_true',
        help='also write TensorBoard event files (scalars, images) next to '
        'the JSON logs, <work_dir>/<timestamp>/vis_data/')
    parser.add_argument(
        '--no-validate',
        action='store_true',
        help='skip validation during training')
    parser.add_argument(
        '--no-pin-memory',
        action='store_true',
        help='disable pin_memory in the data loaders')
    parser.add_argument(
        '--no-persistent-workers',
        action='store_true',
        help='disable persistent_workers in the data loaders')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config entries, e.g. train_dataloader.batch_size=8 '
        '(lists as key="[a,b]", no spaces)')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    # torch.distributed.launch passes --local_rank, torchrun --local-rank
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    add_debug_argument(parser)
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def add_tensorboard(cfg: Config) -> None:
    """Add mmengine's TensorBoard backend to the config's visualizer."""
    visualizer = cfg.get('visualizer') or dict(type='Visualizer')
    backends = list(
        visualizer.get('vis_backends') or [dict(type='LocalVisBackend')])
    if not any(b['type'].endswith('TensorboardVisBackend') for b in backends):
        backends.append(dict(type='TensorboardVisBackend'))
    visualizer['vis_backends'] = backends
    cfg.visualizer = visualizer


def merge_args(cfg: Config, args: argparse.Namespace) -> Config:
    """Fold the command line into the config."""
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    fill_pretrained(cfg, args.pretrained, args.pretrained_neck)
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume
    if args.auto_scale_lr or args.no_auto_scale_lr:
        if cfg.get('auto_scale_lr') is None:
            raise ValueError(f'{args.config} has no auto_scale_lr (the batch '
                             'size its lr is meant for); add '
                             'auto_scale_lr = dict(base_batch_size=N).')
        cfg.auto_scale_lr.enable = bool(args.auto_scale_lr)
    if args.tensorboard:
        add_tensorboard(cfg)
    if args.no_validate:
        cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        if cfg.get(loader) is None:
            continue
        if args.no_pin_memory:
            cfg[loader]['pin_memory'] = False
        if args.no_persistent_workers:
            cfg[loader]['persistent_workers'] = False
    return adapt_cfg_to_device(cfg, amp=args.amp)


def main():
    args = parse_args()
    cfg = merge_args(Config.fromfile(args.config), args)
    restarted = resume_if_restarted(cfg)
    if restarted:
        print_log(restarted, logger='current')
    stages = ('train', 'val')
    check_data_files(cfg, stages)
    init_distributed(cfg.launcher, cfg.get('env_cfg', {}).get('dist_cfg'))
    try:
        runner = RUNNERS.build(cfg) if 'runner_type' in cfg else \
            Runner.from_cfg(cfg)
        runner.train()
    except json.JSONDecodeError:
        check_data_files(cfg, stages, parse_json=True)  # names the file
        raise


if __name__ == '__main__':
    run_tool(main)
