# Copyright (c) mmitpn contributors. All rights reserved.
"""The study's runs: training subprocesses, their logs, and ``Study``, which
makes each run once and keeps its result in the record."""
import copy
import fcntl
import glob
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import time
from typing import Dict, List, Optional

from mmengine.config import Config

from . import probes
from .configs import (continuation_config, det_config, finetune_config,
                      garments_seg_config, pretrain_config, seg_config)
from .garments import make_garments_seg
from .plan import (CONTINUATION_START, CONTINUATIONS, DENSE_PILOT_SEED,
                   DENSE_SEED_OFFSET, REPO, TRANSFER_INITS, dense_lengths)
from .record import (Record, load_record, machine, save_record, utc_now,
                     work_dir_results)
from .verdicts import dense_length, late_gain

# Stages whose runs are made again when their work dir is gone: later
# stages need their checkpoints.
TRAINING_STAGES = ('pretrain', 'continue', 'regenerate')


def read_scalars(work_dir: str) -> List[dict]:
    """The records of the run's mmengine ``scalars.json`` files, oldest
    first: a resumed run's later file replaces the earlier one's records
    from its first step on."""
    records: List[dict] = []
    for path in sorted(
            glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))):
        with open(path) as f:
            part = [json.loads(line) for line in f if line.strip()]
        if part:
            records = [r for r in records if r['step'] < part[0]['step']]
        records += part
    return records


def curve(records: List[dict], key: str) -> List[list]:
    """``[step, value]`` of every logged ``key``."""
    return [[r['step'], r[key]] for r in records if key in r]


def loss_curves(records: List[dict]) -> Dict[str, List[list]]:
    """The curve of every logged loss."""
    keys = sorted({k for r in records for k in r if k.startswith('loss')})
    return {key: curve(records, key) for key in keys}


def last_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint an interrupted run of ``work_dir`` resumes from (the
    one mmengine's ``last_checkpoint`` file names), if it still exists."""
    pointer = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(pointer):
        return None
    with open(pointer) as f:
        path = f.read().strip()
    return path if osp.isfile(path) else None


def train_run(cfg: Config, work_dir: str, log) -> float:
    """Train a generated config with tools/train.py; returns the wall
    seconds of all its sessions.

    A run interrupted after a checkpoint with its optimiser state (the
    pre-registered plan saves one every epoch) resumes from it, with the
    config it started with; every session's wall time is kept in
    ``sessions.json`` of the work dir and logged. The configs' runtime
    re-seeds every iteration from the seed and the iteration
    (``IterationSeedHook``) and loads data in the training process, so a
    resumed run draws the masks and crops an uninterrupted one would.
    """
    os.makedirs(work_dir, exist_ok=True)
    config = osp.join(work_dir, 'config.py')
    sessions_file = osp.join(work_dir, 'sessions.json')
    sessions = []
    if osp.isfile(sessions_file):
        with open(sessions_file) as f:
            sessions = json.load(f)
    resume = last_checkpoint(work_dir)
    command = [
        sys.executable,
        osp.join(REPO, 'tools', 'train.py'), config, '--work-dir', work_dir
    ]
    if resume is not None:
        command += ['--resume', resume]
        log(f'  resuming {work_dir} from {osp.basename(resume)}')
    else:
        cfg.dump(config)
        sessions = []
    started, start = utc_now(), time.perf_counter()
    with open(osp.join(work_dir, 'stdout.log'), 'a') as out:
        result = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - start
    sessions.append(
        dict(
            started_utc=started,
            wall_s=seconds,
            resumed_from=None if resume is None else osp.basename(resume),
            rc=result.returncode))
    with open(sessions_file, 'w') as f:
        json.dump(sessions, f, indent=1)
    if result.returncode != 0:
        with open(osp.join(work_dir, 'stdout.log')) as f:
            tail = f.read()[-3000:]
        raise RuntimeError(f'{config} failed (rc {result.returncode}):\n'
                           f'{tail}')
    total = sum(s['wall_s'] for s in sessions)
    log(f'  trained {work_dir} in {seconds / 60:.1f} min ({len(sessions)} '
        f'session(s), {total / 60:.1f} min in all)')
    return total


def curve_agreement(original: Dict[str, List[list]],
                    again: Dict[str, List[list]]) -> Dict[str, dict]:
    """How two runs' loss curves agree, per loss: logged steps in common,
    the first step whose values differ and the largest difference."""
    agreement = {}
    for key, values in original.items():
        other = dict(again.get(key, []))
        common = [(step, value) for step, value in values if step in other]
        differ = [step for step, value in common if other[step] != value]
        agreement[key] = dict(
            steps=len(common),
            first_difference=differ[0] if differ else None,
            max_abs_diff=max(
                (abs(other[step] - value) for step, value in common),
                default=None))
    return agreement


class Study:
    """Resumable runs.

    Each run writes ``result.json`` in its work dir and into the record
    (``--record``). A run found in either is not repeated, except training
    runs when their work dir is gone (later stages need their checkpoints);
    the report is built from the record.
    """

    def __init__(self, args) -> None:
        self.args = args
        self.root = args.work_dir
        os.makedirs(self.root, exist_ok=True)
        self.log_file = open(osp.join(self.root, 'study.log'), 'a')
        self.record: Record = load_record(args.record)
        # Keys this process ran (or found in its work dir): they win over
        # the file's when the record is merged on saving.
        self.written: set = set()
        found = {
            key: result
            for key, result in work_dir_results(self.root).items()
            if key not in self.record
        }
        if found:
            # Runs made by another invocation with its own record.
            self.record.update(found)
            self.written.update(found)
            self.save_record()

    def save_record(self) -> None:
        save_record(self.args.record, self.record, self.written,
                    osp.join(self.root, 'record.lock'))

    def log(self, message: str) -> None:
        line = f'[{time.strftime("%H:%M:%S")}] {message}'
        print(line, flush=True)
        self.log_file.write(line + '\n')
        self.log_file.flush()

    def run(self, stage: str, name: str, seed: int, fn) -> dict:
        """The result of run ``stage/name/seed``: recorded, or made now by
        ``fn(work_dir)`` and recorded with its wall time."""
        work_dir = osp.join(self.root, stage, name, f'seed{seed}')
        path = osp.join(work_dir, 'result.json')
        key = f'{stage}/{name}/{seed}'
        if osp.isfile(path) and key not in self.record:
            # Written by another process sharing the work dir.
            with open(path) as f:
                self.record[key] = json.load(f)
        if osp.isfile(path) or (key in self.record
                                and stage not in TRAINING_STAGES):
            return self.record[key]
        self.log(f'{stage} {name} seed {seed}')
        started, load = utc_now(), os.getloadavg()[0]
        start = time.perf_counter()
        result = fn(work_dir)
        result.update(
            stage=stage,
            name=name,
            seed=seed,
            wall_s=time.perf_counter() - start,
            started_utc=started,
            ended_utc=utc_now(),
            machine=machine(),
            load_avg=[load, os.getloadavg()[0]])
        os.makedirs(work_dir, exist_ok=True)
        with open(path, 'w') as f:
            json.dump(result, f, indent=1)
        previous = self.record.get(key)
        if previous is not None and 'losses' in previous:
            before = previous['losses']['loss_pixel'][-1][1]
            after = result['losses']['loss_pixel'][-1][1]
            self.log(f'  re-run of a recorded run: final loss_pixel '
                     f'{after:.4f}, recorded {before:.4f}')
        self.record[key] = result
        self.written.add(key)
        self.save_record()
        self.log(f'  done in {result["wall_s"] / 60:.1f} min')
        return result

    def results(self, stage: str) -> List[dict]:
        return [
            result for key, result in sorted(self.record.items())
            if result['stage'] == stage
        ]

    # ------------------------------------------------------------ stages

    def checkpoint(self,
                   objective: str,
                   seed: int,
                   epoch: Optional[int] = None) -> Optional[str]:
        """The pretraining (or continuation) checkpoint of a run after
        ``epoch`` epochs (default: its last)."""
        if objective == 'none':
            return None
        stage = 'continue' if objective in CONTINUATIONS else 'pretrain'
        if epoch is None:
            epoch = self.args.pretrain_epochs
            if stage == 'continue':
                epoch -= self.args.continue_from
        path = osp.join(self.root, stage, objective, f'seed{seed}',
                        f'epoch_{epoch}.pth')
        if not osp.isfile(path):
            raise FileNotFoundError(
                f'{path} is missing: run the {stage} stage for '
                f'{objective!r} seed {seed} first.')
        return path

    def pretrain_config(self, objective: str, seed: int) -> Config:
        """The generated config of pretraining run ``objective`` seed
        ``seed``."""
        return pretrain_config(objective, self.args, seed)

    def pretrain(self, objective: str, seed: int) -> dict:

        def fn(work_dir):
            seconds = train_run(
                self.pretrain_config(objective, seed), work_dir, self.log)
            return dict(
                train_s=seconds, losses=loss_curves(read_scalars(work_dir)))

        return self.run('pretrain', objective, seed, fn)

    def continuation(self, arm: str, seed: int) -> dict:

        def fn(work_dir):
            start = self.checkpoint(CONTINUATION_START, seed,
                                    self.args.continue_from)
            seconds = train_run(
                continuation_config(arm, start, self.args, seed), work_dir,
                self.log)
            return dict(
                train_s=seconds,
                losses=loss_curves(read_scalars(work_dir)),
                start=start)

        return self.run('continue', arm, seed, fn)

    def regenerate(self, objective: str, seed: int, epochs: int) -> dict:
        """Train a recorded pretraining run again, to ``epochs`` epochs,
        because its checkpoints are gone and runs not yet recorded need
        them: the same generated config, seed and schedule, stopped after
        that epoch, in the run's own work dir.

        The record keeps the original run; this one is recorded as
        ``regenerate/<objective>@<epochs>/<seed>`` with its own loss curves
        and how they agree with the original's (:func:`curve_agreement`).
        """
        train_dir = osp.join(self.root, 'pretrain', objective, f'seed{seed}')
        original = self.record[f'pretrain/{objective}/{seed}']['losses']

        def fn(work_dir):
            cfg = self.pretrain_config(objective, seed)
            cfg.train_cfg.max_epochs = epochs
            seconds = train_run(cfg, train_dir, self.log)
            losses = loss_curves(read_scalars(train_dir))
            agreement = curve_agreement(original, losses)
            self.log(f'  agreement with the recorded run: {agreement}')
            return dict(
                epochs=epochs,
                train_s=seconds,
                losses=losses,
                agreement=agreement)

        return self.run('regenerate', f'{objective}@{epochs}', seed, fn)

    def probe(self,
              objective: str,
              seed: int,
              data,
              epoch: Optional[int] = None) -> dict:
        """Probes of a run's checkpoint (:func:`probes.probe_checkpoint`)."""
        return probes.probe_checkpoint(self, objective, seed, data, epoch)

    def raw_pixel_probe(self, seed: int, data) -> dict:
        return probes.probe_raw_pixels(self, seed, data)

    def finetune(self, objective: str, seed: int) -> dict:

        def fn(work_dir):
            cfg = finetune_config(
                self.checkpoint(objective, seed), self.args, seed)
            seconds = train_run(cfg, work_dir, self.log)
            return dict(
                train_s=seconds,
                top1=curve(read_scalars(work_dir), 'accuracy/top1'))

        return self.run('finetune', objective, seed, fn)

    def transfer(self, task: str, init: str, seed: int) -> dict:
        """A downstream run of the integral-transfer ablation from
        initialisation ``init`` of pretraining seed ``seed``.

        The study trains on the generated shapes sets with the pretraining
        seed; the pre-registered plan segments the garments set with
        downstream seed ``DENSE_SEED_OFFSET + seed``, so that downstream
        variance is not tied to the pretraining seed's.
        """
        objective, with_pyramid = TRANSFER_INITS[init]
        if self.args.plan == 'prereg':
            data_root = osp.join(self.root, 'data', 'garments_seg')
            self.make_garments(data_root)
            build, run_seed = garments_seg_config, DENSE_SEED_OFFSET + seed
            args = copy.copy(self.args)
            args.seg_iters = dense_length(self.record, self.args)
            if args.seg_iters is None:
                raise RuntimeError(
                    'the dense transfer\'s length is not decided: no pilot '
                    f'run (Study.dense_pilot) of {dense_lengths(args)} '
                    'iterations has converged yet.')
        else:
            data_root = osp.join(self.root, 'data', f'shapes_{task}')
            self.make_shapes(task, data_root)
            build, run_seed, args = (seg_config if task == 'seg' else
                                     det_config), seed, self.args
        keys = ('mIoU', ) if task == 'seg' else ('coco/bbox_mAP',
                                                 'coco/segm_mAP')

        def fn(work_dir):
            cfg = build(
                self.checkpoint(objective, seed), with_pyramid, data_root,
                args, run_seed)
            seconds = train_run(cfg, work_dir, self.log)
            records = read_scalars(work_dir)
            return dict(
                train_s=seconds,
                iters=args.seg_iters if task == 'seg' else None,
                downstream_seed=run_seed,
                curves={key: curve(records, key)
                        for key in keys})

        return self.run(task, init.split(':')[0], seed, fn)

    def dense_pilot(self, iters: int) -> dict:
        """A pilot run of the pre-registered dense transfer: no
        pretraining (d), ``iters`` iterations, on canvases of its own
        (converter seed ``DENSE_PILOT_SEED``; the study's validation
        canvases are never seen) with downstream seed
        ``DENSE_PILOT_SEED``. It fixes the study's length only."""
        data_root = osp.join(self.root, 'data', 'garments_seg_pilot')
        self.make_garments(data_root, DENSE_PILOT_SEED)

        def fn(work_dir):
            args = copy.copy(self.args)
            args.seg_iters = iters
            cfg = garments_seg_config(None, False, data_root, args,
                                      DENSE_PILOT_SEED)
            seconds = train_run(cfg, work_dir, self.log)
            points = curve(read_scalars(work_dir), 'mIoU')
            self.log(f'  pilot of {iters} iterations: last 20 % adds '
                     f'{late_gain(points, iters):+.2f} mIoU')
            return dict(train_s=seconds, iters=iters, curves=dict(mIoU=points))

        # One process per seed may get here at once: one trains, the others
        # wait for its result.
        with open(osp.join(self.root, 'pilot.lock'), 'w') as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            return self.run('pilot', f'd@{iters}', DENSE_PILOT_SEED, fn)

    # -------------------------------------------------------------- data

    def _make_once(self, data_root: str, make) -> None:
        """Build a downstream set with ``make(folder)`` unless it exists:
        in a per-process folder moved into place once (processes sharing
        the work dir may both get here)."""
        if osp.isdir(data_root):
            return
        partial = f'{data_root}.{os.getpid()}.partial'
        shutil.rmtree(partial, ignore_errors=True)
        make(partial)
        try:
            os.replace(partial, data_root)
        except OSError:
            if not osp.isdir(data_root):
                raise
            shutil.rmtree(partial)  # another process finished first

    def _counts(self) -> dict:
        """A few images with ``--quick``, the generators' defaults else."""
        return dict(train=32, val=16) if self.args.quick else {}

    def make_garments(self, data_root: str, seed: int = 0) -> None:
        """The garments set (:func:`make_garments_seg`, converter seed
        ``seed``)."""
        options = dict(self._counts(), seed=seed)
        if self.args.fashion_mnist_root:
            options['fashion_mnist_root'] = self.args.fashion_mnist_root
        self._make_once(data_root,
                        lambda out: make_garments_seg(out, **options))

    def make_shapes(self, task: str, data_root: str) -> None:
        """A shapes set of the product's converters (``make_shapes_seg.py``
        or ``make_shapes_coco.py``)."""
        script = 'make_shapes_seg.py' if task == 'seg' else \
            'make_shapes_coco.py'
        counts = [f'--{k}={v}' for k, v in self._counts().items()]

        def make(out):
            subprocess.run([
                sys.executable,
                osp.join(REPO, 'tools', 'dataset_converters', script), out,
                *counts
            ],
                           check=True,
                           stdout=subprocess.DEVNULL)

        self._make_once(data_root, make)
