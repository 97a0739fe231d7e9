# Copyright (c) mmitpn contributors. All rights reserved.
"""Fidelity of the backbone's token reduction on the CPU demos.

Two questions, on the detection and segmentation demos (HiViT-demo
backbone and iTPN pyramid from ``make demo-photos``, 128 px shapes):

(a) **Training-free migration.** Every checkpoint fine-tuned with global
    attention is tested as it is and again with token migration switched on
    at test time (keep ratios, from a given main block): the same weights
    and images, so each difference is paired per checkpoint. Keep ratio 1.0
    keeps every token and must change nothing: a check of the switch itself.
(b) **Fine-tuned reduction.** The same pretraining checkpoint fine-tuned
    with global attention, ViTDet windows and windows with gathering tokens,
    one run per seed (the downstream seed; pretraining is shared): the
    validation curve of every run, the final metrics, and the paired
    difference against global attention over seeds with a t-based 95 %
    interval.

Each run is a ``tools/train.py`` or ``tools/test.py`` subprocess with its own
work dir; a run whose results are already in ``fidelity.json`` is not run
again, so an interrupted study resumes per run.
"""
import glob
import json
import os
import os.path as osp
import subprocess
import sys
import time
from typing import Dict, List, Optional

import numpy as np
from mmengine.config import Config

from mmitpn.utils import write_atomically
from mmitpn.utils.statistics import format_difference, paired_difference
from .plan import REPO

TASKS = {
    'seg':
    dict(
        config='configs/seg/demo/hivit-demo_skimage-pre_upernet_1xb8-1k_'
        'shapes-seg-128px.py',
        metrics=('mIoU', ),
        scale=1,  # mmseg's IoUMetric reports percent
        data_root='data/shapes_seg'),
    'det':
    dict(
        config='configs/det/demo/hivit-demo_skimage-pre_mask-rcnn_1xb4-6e_'
        'shapes-coco-128px.py',
        metrics=('coco/bbox_mAP', 'coco/segm_mAP'),
        scale=100,
        data_root='data/shapes_coco'),
}
# The demo backbone has 4 main blocks on an 8x8 unit grid (128 px): windows
# of 4x4 units, global attention in the last block as ViTDet's pattern (the
# last block of every quarter of the depth at full size), or windows
# everywhere with the 8 gathering tokens of the full-size setting.
VARIANTS = {
    'global': {},
    'windows': dict(window_size=4, global_blocks=(3, )),
    'gathering': dict(window_size=4, gathering_tokens=8),
}


class FidelityStudy:
    """The runs and their results, kept in ``fidelity.json``; the report
    in ``fidelity.md``."""

    def __init__(self, args):
        self.args = args
        self.path = osp.join(args.work_dir, 'fidelity.json')
        self.results = {'train': {}, 'test': {}}
        if osp.exists(self.path):
            with open(self.path) as f:
                self.results = json.load(f)
        os.makedirs(args.work_dir, exist_ok=True)

    def save(self) -> None:
        write_atomically(json.dumps(self.results, indent=1), self.path)
        write_atomically(
            report(self), osp.join(self.args.work_dir, 'fidelity.md'))

    def common_options(self, task: str) -> List[str]:
        args = self.args
        options = []
        if args.data_root:
            for split in ('train', 'val', 'test'):
                options.append(
                    f'{split}_dataloader.dataset.data_root={args.data_root}')
            if task == 'det':
                for split in ('val', 'test'):
                    options.append(f'{split}_evaluator.ann_file='
                                   f'{args.data_root}/annotations/'
                                   'instances_val.json')
        if args.no_pretrained:
            options += [
                'model.backbone.init_cfg=None', 'model.neck.init_cfg=None'
            ]
        return options

    def schedule_options(self, task: str, cfg: Config) -> List[str]:
        args = self.args
        if task == 'seg':
            iters = args.max_iters or cfg.train_cfg.max_iters
            options = [
                f'train_cfg.max_iters={iters}',
                f'train_cfg.val_interval={min(args.val_interval, iters)}',
                f'default_hooks.checkpoint.interval={iters}'
            ]
            if args.max_iters:
                # The shipped warm-up and decay, squeezed into the schedule.
                options += [
                    f'param_scheduler.0.end={max(iters // 10, 1)}',
                    f'param_scheduler.1.begin={max(iters // 10, 1)}',
                    f'param_scheduler.1.end={iters}'
                ]
            return options
        epochs = args.max_iters or cfg.train_cfg.max_epochs
        options = [
            f'train_cfg.max_epochs={epochs}', 'train_cfg.val_interval=1',
            f'default_hooks.checkpoint.interval={epochs}'
        ]
        if args.max_iters:
            options += [
                f'param_scheduler.1.end={epochs}',
                f'param_scheduler.1.milestones=[{max(epochs - 1, 1)}]'
            ]
        return options

    def final_checkpoint(self, task: str, cfg: Config, work_dir: str) -> str:
        if task == 'seg':
            name = f'iter_{self.args.max_iters or cfg.train_cfg.max_iters}'
        else:
            name = f'epoch_{self.args.max_iters or cfg.train_cfg.max_epochs}'
        return osp.join(work_dir, f'{name}.pth')

    def train(self, task: str, variant: str, seed: int) -> None:
        key = f'{task}/{variant}/seed{seed}'
        if key in self.results['train']:
            return
        cfg = Config.fromfile(osp.join(REPO, TASKS[task]['config']))
        work_dir = osp.join(self.args.work_dir, task, f'{variant}_seed{seed}')
        options = self.common_options(task) + self.schedule_options(
            task, cfg) + [f'randomness.seed={seed}']
        options += [
            f'model.backbone.{name}={value!r}'.replace(' ', '')
            for name, value in VARIANTS[variant].items()
        ]
        start = time.time()
        command = [
            osp.join(REPO, 'tools', 'train.py'), TASKS[task]['config'],
            '--work-dir', work_dir, '--cfg-options', *options
        ]
        if osp.exists(osp.join(work_dir, 'last_checkpoint')):
            command.append('--resume')
        run(command, osp.join(work_dir, 'train_stdout.log'))
        checkpoint = self.final_checkpoint(task, cfg, work_dir)
        if not osp.exists(checkpoint):
            raise RuntimeError(f'{key}: training ended without {checkpoint}; '
                               f'see {work_dir}/train_stdout.log')
        self.results['train'][key] = dict(
            checkpoint=checkpoint,
            wall_s=time.time() - start,
            curve=read_curve(work_dir, TASKS[task]['metrics']))
        self.save()

    def test(self, task: str, seed: int, keep_ratio: Optional[float]) -> None:
        name = 'none' if keep_ratio is None else f'keep{keep_ratio:g}'
        key = f'{task}/global/seed{seed}/{name}'
        if key in self.results['test']:
            return
        trained = self.results['train'][f'{task}/global/seed{seed}']
        work_dir = osp.join(self.args.work_dir, task, f'test_seed{seed}', name)
        options = self.common_options(task)
        if keep_ratio is not None:
            options += [
                'model.backbone.token_migration.start_block='
                f'{self.args.start_block}',
                f'model.backbone.token_migration.keep_ratio={keep_ratio}'
            ]
        start = time.time()
        command = [
            osp.join(REPO, 'tools', 'test.py'), TASKS[task]['config'],
            trained['checkpoint'], '--work-dir', work_dir
        ]
        if options:
            command += ['--cfg-options', *options]
        run(command, osp.join(work_dir, 'test_stdout.log'))
        self.results['test'][key] = dict(
            wall_s=time.time() - start,
            metrics=read_test_metrics(work_dir, TASKS[task]['metrics']))
        self.save()


def run(command: List[str], log: str) -> None:
    os.makedirs(osp.dirname(log), exist_ok=True)
    with open(log, 'w') as f:
        result = subprocess.run([sys.executable, *command],
                                cwd=REPO,
                                stdout=f,
                                stderr=subprocess.STDOUT)
    if result.returncode != 0:
        with open(log) as f:
            tail = f.read()[-3000:]
        raise RuntimeError(f'{" ".join(command[:2])} failed (log: {log}):\n'
                           f'{tail}')


def read_curve(work_dir: str, metrics) -> Dict[str, Dict[str, float]]:
    """Validation metrics per step, from every run's ``scalars.json``."""
    curve: Dict[str, Dict[str, float]] = {m: {} for m in metrics}
    for path in sorted(
            glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))):
        with open(path) as f:
            for line in f:
                entry = json.loads(line)
                for metric in metrics:
                    if metric in entry:
                        curve[metric][str(entry['step'])] = entry[metric]
    return curve


def read_test_metrics(work_dir: str, metrics) -> Dict[str, float]:
    paths = sorted(glob.glob(osp.join(work_dir, '*', '*.json')))
    if not paths:
        raise RuntimeError(f'no test metrics under {work_dir}')
    with open(paths[-1]) as f:
        entry = json.loads(f.read().strip().splitlines()[-1])
    return {metric: entry[metric] for metric in metrics}


def final_value(curve: Dict[str, float]) -> float:
    return curve[max(curve, key=int)]


def report(study: FidelityStudy) -> str:
    """The Markdown tables of the results."""
    args = study.args
    train, test = study.results['train'], study.results['test']
    lines = [
        '# Token-reduction fidelity on the demos', '',
        'Values in points (mIoU and COCO mAP in percent). Differences: '
        'mean over seeds of the paired difference [t-based 95 % interval] '
        '(n = seeds).', ''
    ]
    for task in args.tasks:
        spec = TASKS[task]
        scale = spec['scale']
        for metric in spec['metrics']:
            lines += [
                f'## {task}: training-free migration, {metric}', '',
                f'Checkpoints fine-tuned with global attention, tested '
                f'without and with token migration from main block '
                f'{args.start_block}.', '', '| keep ratio | ' +
                ' | '.join(f'seed {s}'
                           for s in args.seeds) + ' | vs no migration |',
                '|---|' + '---|' * (len(args.seeds) + 1)
            ]
            baseline = {
                s:
                scale * test[f'{task}/global/seed{s}/none']['metrics'][metric]
                for s in args.seeds if f'{task}/global/seed{s}/none' in test
            }
            for keep in [None, *args.keep_ratios]:
                name = 'none' if keep is None else f'keep{keep:g}'
                values = {
                    s: scale * test[key]['metrics'][metric]
                    for s in args.seeds
                    for key in [f'{task}/global/seed{s}/{name}'] if key in test
                }
                cells = [
                    f'{values[s]:.2f}' if s in values else '-'
                    for s in args.seeds
                ]
                diff = '-' if keep is None else format_difference(
                    paired_difference(values, baseline))
                lines.append(
                    f'| {"none" if keep is None else f"{keep:g}"} | ' +
                    ' | '.join(cells) + f' | {diff} |')
            lines += [
                '', f'## {task}: fine-tuned reduction, {metric}', '',
                '| variant | ' + ' | '.join(f'seed {s}' for s in args.seeds) +
                ' | mean ± sd | vs global | wall (min/run) |',
                '|---|' + '---|' * (len(args.seeds) + 3)
            ]
            finals = {}
            for variant in args.variants:
                runs = {
                    s: train[key]
                    for s in args.seeds
                    for key in [f'{task}/{variant}/seed{s}'] if key in train
                }
                finals[variant] = {
                    s: scale * final_value(r['curve'][metric])
                    for s, r in runs.items()
                }
            for variant, values in finals.items():
                cells = [
                    f'{values[s]:.2f}' if s in values else '-'
                    for s in args.seeds
                ]
                spread = (f'{np.mean(list(values.values())):.2f} ± '
                          f'{np.std(list(values.values()), ddof=1):.2f}'
                          if len(values) > 1 else '-')
                diff = '-' if variant == 'global' else format_difference(
                    paired_difference(values, finals.get('global', {})))
                walls = [
                    train[f'{task}/{variant}/seed{s}']['wall_s'] / 60
                    for s in values
                ]
                wall = f'{np.mean(walls):.1f}' if walls else '-'
                lines.append(f'| {variant} | ' + ' | '.join(cells) +
                             f' | {spread} | {diff} | {wall} |')
            lines += curve_table(study, task, metric, scale)
    return '\n'.join(lines) + '\n'


def curve_table(study: FidelityStudy, task: str, metric: str,
                scale: float) -> List[str]:
    """Mean validation curve over seeds per variant."""
    train = study.results['train']
    curves = {}
    for variant in study.args.variants:
        runs = [
            train[key]['curve'][metric] for s in study.args.seeds
            for key in [f'{task}/{variant}/seed{s}'] if key in train
        ]
        if runs:
            curves[variant] = runs
    if not curves:
        return []
    steps = sorted(
        {int(k)
         for runs in curves.values()
         for c in runs
         for k in c})
    lines = [
        '', f'Validation curve ({metric}, mean over seeds; '
        f'{"iteration" if task == "seg" else "epoch"} per row):', '',
        '| step | ' + ' | '.join(curves) + ' |', '|---|' + '---|' * len(curves)
    ]
    for step in steps:
        cells = []
        for runs in curves.values():
            values = [c[str(step)] for c in runs if str(step) in c]
            cells.append(f'{scale * np.mean(values):.2f}' if values else '-')
        lines.append(f'| {step} | ' + ' | '.join(cells) + ' |')
    return lines + ['']
