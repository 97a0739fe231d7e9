# Copyright (c) mmitpn contributors. All rights reserved.
"""Evaluate a checkpoint with a config's test loop and metrics.

Examples:
    python tools/test.py CONFIG CHECKPOINT
    tools/dist_test.sh CONFIG CHECKPOINT 8 --out results.pkl
"""
import argparse
import json
import os
import os.path as osp

from mmengine.config import Config, DictAction
from mmengine.model import is_model_wrapper
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from mmitpn.utils import (adapt_cfg_to_device, check_data_files,
                          init_distributed, require_weights)
from mmitpn.utils.cli import add_debug_argument, run_tool

# Visualisation hooks, set to draw every test sample: mmdet's (draw,
# test_out_dir), mmseg's (draw, interval; the visualizer's save_dir, as
# mmseg's own test tool does) and mmpretrain's (enable, out_dir, interval).
DET_HOOK, SEG_HOOK = 'DetVisualizationHook', 'SegVisualizationHook'


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='test config file path')
    parser.add_argument(
        'checkpoint', help='checkpoint file (read as tensors only)')
    parser.add_argument('--work-dir', help='the dir to save logs and metrics')
    parser.add_argument(
        '--out', help='dump the predictions to this pickle file')
    parser.add_argument(
        '--show-dir', help='save drawn predictions into this folder')
    parser.add_argument(
        '--amp',
        action='store_true',
        help='run the test loop under autocast (fp16 on a GPU, bf16 on the '
        'CPU)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config entries, e.g. test_dataloader.batch_size=1')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument(
        '--allow-missing',
        action='store_true',
        help='evaluate even if the checkpoint lacks tensors of the model '
        '(they keep their random initialisation)')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    add_debug_argument(parser)
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def enable_visualization(cfg: Config, show_dir: str) -> None:
    hook = cfg.get('default_hooks', {}).get('visualization')
    if hook is None:
        raise ValueError('--show-dir needs default_hooks.visualization in '
                         'the config; it has none.')
    # The task bases name their visualizer 'visualizer'; mmengine hands back
    # an instance of that name if one exists in the process (with its old
    # save_dir), so the runner names this one after the experiment instead.
    if cfg.get('visualizer') is not None:
        cfg.visualizer.pop('name', None)
    kind = hook['type'].split('.')[-1]
    if kind == DET_HOOK:
        hook.update(draw=True, test_out_dir=show_dir)
    elif kind == SEG_HOOK:
        hook.update(draw=True, interval=1)
        cfg.visualizer['save_dir'] = show_dir
    else:
        hook.update(enable=True, out_dir=show_dir, interval=1)


def merge_args(cfg: Config, args: argparse.Namespace) -> Config:
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    cfg.load_from = args.checkpoint
    if args.show_dir is not None:
        enable_visualization(cfg, args.show_dir)
    if args.out is not None:
        if not args.out.endswith(('.pkl', '.pickle')):
            raise ValueError(f'--out must be a .pkl file, got {args.out}.')
        evaluator = cfg.test_evaluator
        if isinstance(evaluator, dict):
            evaluator = [evaluator]
        cfg.test_evaluator = list(evaluator) + [
            dict(type='DumpResults', out_file_path=args.out)
        ]
    if args.amp:
        cfg.test_cfg = dict(cfg.get('test_cfg') or {}, fp16=True)
    return adapt_cfg_to_device(cfg)


def main():
    args = parse_args()
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(
            f'Checkpoint file not found: {args.checkpoint}')
    cfg = merge_args(Config.fromfile(args.config), args)
    stages = ('test', )
    check_data_files(cfg, stages)
    init_distributed(cfg.launcher, cfg.get('env_cfg', {}).get('dist_cfg'))
    try:
        runner = RUNNERS.build(cfg) if 'runner_type' in cfg else \
            Runner.from_cfg(cfg)
        model = runner.model.module if is_model_wrapper(runner.model) else \
            runner.model
        require_weights(model, args.checkpoint, args.allow_missing)
        runner.test()
    except json.JSONDecodeError:
        check_data_files(cfg, stages, parse_json=True)  # names the file
        raise


if __name__ == '__main__':
    run_tool(main)
