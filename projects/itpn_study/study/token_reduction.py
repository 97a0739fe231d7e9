# Copyright (c) mmitpn contributors. All rights reserved.
"""Fidelity of the backbone's token reduction on the CPU demos: the runs and
their record.

The same pretraining checkpoint (``make demo-photos``) is fine-tuned on the
segmentation and detection demos with global attention and with each
token-reduction variant (:data:`~.token_reduction_design.VARIANTS`), one
run per downstream seed, in the registered order
(:func:`~.token_reduction_design.run_order`); every global-attention
checkpoint is also tested with token migration switched on at test time.
Each run is a ``tools/train.py`` (and ``tools/test.py``) subprocess with its
own work dir, which resumes from its last checkpoint when interrupted; a run
whose result is in the record is not made again.

The record (``records/token_reduction_fidelity.json``) holds one entry per
finished run, keyed ``task/variant/seed`` (``prepare/<name>/0`` for the
generated data and the pretraining checkpoint): its UTC start and end, wall
and CPU time, the machine (``lscpu``, threads, niceness) and load, the
digests of what it started from, its validation curves and final metrics in
points, and what the checkpoint loader reported.
"""
import glob
import hashlib
import json
import os
import os.path as osp
import re
import resource
import shutil
import subprocess
import sys
import time
from typing import Dict, List, Optional

from mmitpn.utils import write_atomically
from .plan import REPO
from .record import load_record, machine, save_record, utc_now
from .token_reduction_design import (MIGRATION_KEEP_RATIOS,
                                     MIGRATION_START_BLOCK, PRETRAIN,
                                     REFERENCE, TASKS, VARIANTS, Task)


def option_items(prefix: str, settings: dict) -> List[str]:
    """``--cfg-options`` items setting every key of ``settings`` (nested
    dicts as dotted keys) under ``prefix``."""
    items = []
    for name, value in settings.items():
        if isinstance(value, dict):
            items += option_items(f'{prefix}.{name}', value)
        else:
            items.append(f'{prefix}.{name}={value!r}'.replace(' ', '').replace(
                "'", ''))
    return items


def sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def tree_digest(root: str) -> str:
    """SHA-256 over the relative paths and contents of every file below
    ``root``, in sorted order."""
    digest = hashlib.sha256()
    for folder, dirs, files in sorted(os.walk(root)):
        dirs.sort()
        for name in sorted(files):
            path = osp.join(folder, name)
            digest.update(osp.relpath(path, root).encode())
            digest.update(bytes.fromhex(sha256(path)))
    return digest.hexdigest()


def load_average() -> List[float]:
    return [round(value, 2) for value in os.getloadavg()]


def run(command: List[str], log: str) -> dict:
    """Run ``python command`` in the repository root, its output appended to
    ``log``; returns the attempt: UTC start and end, wall and CPU seconds
    (user + system of the subprocess and its children), load averages
    before and after. Raises with the log's tail when it fails."""
    os.makedirs(osp.dirname(log), exist_ok=True)
    attempt = dict(utc_start=utc_now(), load_start=load_average())
    start, before = time.time(), resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(log, 'a') as f:
        result = subprocess.run([sys.executable, *command],
                                cwd=REPO,
                                stdout=f,
                                stderr=subprocess.STDOUT)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    attempt.update(
        utc_end=utc_now(),
        load_end=load_average(),
        wall_s=round(time.time() - start, 1),
        cpu_s=round(
            after.ru_utime - before.ru_utime + after.ru_stime -
            before.ru_stime, 1))
    if result.returncode != 0:
        with open(log) as f:
            tail = f.read()[-3000:]
        raise RuntimeError(f'{" ".join(command[:2])} failed with exit code '
                           f'{result.returncode} (log: {log}):\n{tail}')
    return attempt


def read_scalars(work_dir: str, names) -> Dict[str, Dict[int, float]]:
    """Every logged value of ``names`` by step, from the ``scalars.json``
    of every (resumed) run in ``work_dir``; a later run's value wins."""
    values: Dict[str, Dict[int, float]] = {name: {} for name in names}
    for path in sorted(
            glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))):
        with open(path) as f:
            for line in f:
                entry = json.loads(line)
                for name in names:
                    if name in entry:
                        values[name][int(entry['step'])] = entry[name]
    return values


def read_test_metrics(work_dir: str, metrics) -> Dict[str, float]:
    """The metrics of the last ``tools/test.py`` run in ``work_dir``."""
    paths = sorted(glob.glob(osp.join(work_dir, '*', '*.json')))
    if not paths:
        raise RuntimeError(f'no test metrics under {work_dir}')
    with open(paths[-1]) as f:
        entry = json.loads(f.read().strip().splitlines()[-1])
    return {metric: entry[metric] for metric in metrics}


LOADED = re.compile(r'load (\S+) in model from: (\S+)')
MISMATCH = re.compile(
    r'(missing keys|unexpected key) in source state_dict: (.*)')


def load_report(log: str) -> dict:
    """What mmengine's checkpoint loader said in a training log: the
    prefixes it loaded and from where, the missing and unexpected keys."""
    report = dict(loaded={}, missing=[], unexpected=[])
    with open(log) as f:
        for line in f:
            found = LOADED.search(line)
            if found:
                report['loaded'][found.group(1)] = found.group(2)
            found = MISMATCH.search(line)
            if found:
                kind = 'missing' if found.group(1) == 'missing keys' else \
                    'unexpected'
                for key in found.group(2).split(', '):
                    if key.strip() and key.strip() not in report[kind]:
                        report[kind].append(key.strip())
    return report


class FidelityStudy:
    """The study's runs and its record.

    Args:
        args (argparse.Namespace): The tool's options (``work_dir``,
            ``record``, ``data_root``, ``max_iters``, ``no_pretrained``).
    """

    def __init__(self, args) -> None:
        self.args = args
        self.record_path = args.record
        self.record = load_record(self.record_path)
        os.makedirs(args.work_dir, exist_ok=True)

    def save(self, key: str) -> None:
        save_record(self.record_path, self.record, [key],
                    osp.join(self.args.work_dir, 'record.lock'))

    # Inputs ---------------------------------------------------------------

    def data_root(self, task: Task) -> str:
        return self.args.data_root or task.data_root

    def prepare(self, tasks) -> None:
        """Generate the data of ``tasks`` and make the pretraining
        checkpoint (``make demo-photos``'s data and training) where they are
        missing, each timed and recorded with its digest."""
        for name in tasks:
            task = TASKS[name]
            root = osp.join(REPO, self.data_root(task))
            # Generated into a side folder and renamed when complete: an
            # interrupted generation never passes for the data.
            self._make(
                f'prepare/{name}-data/0',
                root, [[task.converter, f'{root}.partial']],
                tree_digest,
                staged=f'{root}.partial')
        if not self.args.no_pretrained:
            self._make('prepare/demo-photos/0',
                       osp.join(REPO, PRETRAIN['checkpoint']),
                       [[PRETRAIN['converter'], PRETRAIN['data_root']],
                        [
                            'tools/train.py', PRETRAIN['config'], '--work-dir',
                            PRETRAIN['work_dir']
                        ]], sha256)

    def _make(self,
              key: str,
              target: str,
              commands: List[List[str]],
              digest,
              staged: Optional[str] = None) -> None:
        """Run ``commands`` when ``target`` is missing (they write ``staged``
        if given, renamed to ``target`` once they end); record the making
        (every time it is made, e.g. again in a later working period, with
        the digest it gave) or, for a target found, its digest."""
        entry = self.record.get(key, dict(made=[]))
        if osp.exists(target):
            value = digest(target)
            if entry.get('digest') == value:
                return
            entry.update(digest=value, found=utc_now())
        else:
            log = osp.join(self.args.work_dir, 'prepare',
                           key.split('/')[1] + '.log')
            if staged and osp.exists(staged):
                shutil.rmtree(staged)
            steps = [run(command, log) for command in commands]
            if staged:
                os.replace(staged, target)
            value = digest(target)
            entry['made'].append(
                dict(
                    utc_start=steps[0]['utc_start'],
                    utc_end=steps[-1]['utc_end'],
                    wall_s=round(sum(s['wall_s'] for s in steps), 1),
                    cpu_s=round(sum(s['cpu_s'] for s in steps), 1),
                    steps=steps,
                    digest=value,
                    machine=machine()))
            entry['digest'] = value
        made = entry['made'][-1] if entry['made'] else None
        entry['headline'] = (
            f'digest {value[:12]}' +
            (f', made in {made["wall_s"]:.0f} s wall, {made["cpu_s"]:.0f} s '
             'CPU' if made and made['digest'] == value else ', found'))
        self.record[key] = entry
        self.save(key)

    def inputs(self, task: Task) -> dict:
        """Digests of what a run of ``task`` starts from."""
        inputs = dict(
            data=self.record[f'prepare/{task.name}-data/0']['digest'])
        if not self.args.no_pretrained:
            inputs['checkpoint'] = self.record['prepare/demo-photos/0'][
                'digest']
        return inputs

    # Runs -------------------------------------------------------------------

    def length(self, task: Task) -> int:
        return self.args.max_iters or task.length

    def common_options(self, task: Task) -> List[str]:
        root = self.data_root(task)
        options = []
        if self.args.data_root:
            options += [
                f'{split}_dataloader.dataset.data_root={root}'
                for split in ('train', 'val', 'test')
            ]
            if task.name == 'det':
                options += [
                    f'{split}_evaluator.ann_file={root}/annotations/'
                    'instances_val.json' for split in ('val', 'test')
                ]
        if self.args.no_pretrained:
            options += [
                'model.backbone.init_cfg=None', 'model.neck.init_cfg=None'
            ]
        return options

    def schedule_options(self, task: Task) -> List[str]:
        """The registered schedule: segmentation the demo's warm-up (10 %)
        and linear decay in ``length`` iterations, a checkpoint at every
        validation; detection the demo's 6 epochs (decay after the
        second-to-last), a checkpoint after every epoch."""
        length = self.length(task)
        if task.name == 'seg':
            warmup = max(length // 10, 1)
            return [
                f'train_cfg.max_iters={length}',
                f'train_cfg.val_interval={min(task.val_interval, length)}',
                'default_hooks.checkpoint.interval='
                f'{min(task.val_interval, length)}',
                f'param_scheduler.0.end={warmup}',
                f'param_scheduler.1.begin={warmup}',
                f'param_scheduler.1.end={length}'
            ]
        return [
            f'train_cfg.max_epochs={length}',
            f'train_cfg.val_interval={task.val_interval}',
            'default_hooks.checkpoint.interval=1',
            'default_hooks.checkpoint.max_keep_ckpts=1',
            f'param_scheduler.1.end={length}',
            f'param_scheduler.1.milestones=[{max(length - 1, 1)}]'
        ]

    def final_checkpoint(self, task: Task, work_dir: str) -> str:
        name = 'iter' if task.unit == 'iteration' else 'epoch'
        return osp.join(work_dir, f'{name}_{self.length(task)}.pth')

    def train(self, name: str, variant: str, seed: int) -> None:
        """Make one run (resuming its work dir) unless it is recorded."""
        key = f'{name}/{variant}/{seed}'
        if key in self.record:
            return
        task = TASKS[name]
        work_dir = osp.join(self.args.work_dir, name, f'{variant}_seed{seed}')
        options = self.common_options(task) + self.schedule_options(task) + [
            f'randomness.seed={seed}'
        ] + option_items('model.backbone', VARIANTS[variant])
        attempts_path = osp.join(work_dir, 'attempts.json')
        # An attempt without an end was interrupted (its times are lost).
        attempts = json.load(
            open(attempts_path)) if osp.exists(attempts_path) else []
        checkpoint = self.final_checkpoint(task, work_dir)
        log = osp.join(work_dir, 'train_stdout.log')
        if not osp.exists(checkpoint):
            resume = ['--resume'] if osp.exists(
                osp.join(work_dir, 'last_checkpoint')) else []
            command = [
                'tools/train.py', task.config, '--work-dir', work_dir, *resume,
                '--cfg-options', *options
            ]
            os.makedirs(work_dir, exist_ok=True)
            write_atomically(
                json.dumps(attempts + [dict(utc_start=utc_now())]),
                attempts_path)
            attempts.append(run(command, log))
            write_atomically(json.dumps(attempts), attempts_path)
        if not osp.exists(checkpoint):
            raise RuntimeError(f'{key}: training ended without {checkpoint}; '
                               f'see {log}')
        scalars = read_scalars(work_dir, task.metrics + ('loss', ))
        curves = {
            metric: [[step, round(task.scale * value, 4)]
                     for step, value in sorted(scalars[metric].items())]
            for metric in task.metrics
        }
        final = {}
        for metric, curve in curves.items():
            if not curve or curve[-1][0] != self.length(task):
                raise RuntimeError(
                    f'{key}: no {metric} at the last {task.unit} '
                    f'({self.length(task)}) in {work_dir}')
            final[metric] = curve[-1][1]
        entry = dict(
            task=name,
            variant=variant,
            seed=seed,
            backbone=VARIANTS[variant],
            cfg_options=options,
            utc_start=attempts[0]['utc_start'] if attempts else None,
            utc_end=utc_now(),
            wall_s=round(sum(a.get('wall_s', 0) for a in attempts), 1),
            cpu_s=round(sum(a.get('cpu_s', 0) for a in attempts), 1),
            attempts=attempts,
            machine=machine(),
            inputs=self.inputs(task),
            load=load_report(log),
            curves=curves,
            loss=[[step, round(value, 4)]
                  for step, value in sorted(scalars['loss'].items())],
            final=final,
            headline=f'{task.metric_name} {final[task.primary]:.2f} at '
            f'{task.unit} {self.length(task)}')
        if variant == REFERENCE:
            entry['migration'] = self.test_migration(task, checkpoint,
                                                     work_dir)
        self.record[key] = entry
        self.save(key)

    def test_migration(self, task: Task, checkpoint: str,
                       work_dir: str) -> Dict[str, dict]:
        """Metrics (points) of ``checkpoint`` tested as trained and with
        token migration from :data:`MIGRATION_START_BLOCK` at every keep
        ratio, each with its attempt's times."""
        results = {}
        for keep in (None, *MIGRATION_KEEP_RATIOS):
            name = 'none' if keep is None else f'keep{keep:g}'
            test_dir = osp.join(work_dir, 'test', name)
            options = self.common_options(task)
            if keep is not None:
                options += option_items(
                    'model.backbone',
                    dict(
                        token_reduction=dict(
                            type='migration',
                            start_block=MIGRATION_START_BLOCK,
                            keep_ratio=keep)))
            command = [
                'tools/test.py', task.config, checkpoint, '--work-dir',
                test_dir
            ]
            if options:
                command += ['--cfg-options', *options]
            attempt = run(command, osp.join(test_dir, 'test_stdout.log'))
            metrics = read_test_metrics(test_dir, task.metrics)
            results[name] = dict(
                metrics={
                    metric: round(task.scale * value, 4)
                    for metric, value in metrics.items()
                },
                **attempt)
        return results
