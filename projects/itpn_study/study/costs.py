# Copyright (c) mmitpn contributors. All rights reserved.
"""What one run of each kind of the plan ``decide`` costs on this machine,
measured on a few iterations of its generated configs (and one full probe
run) in a scratch work dir; nothing is recorded in the plan's record."""
import copy
import json
import math
import os
import os.path as osp
import statistics
import time
from typing import List

import numpy as np

from .configs import continuation_config
from .decide import DecideStudy
from .design import DENSE
from .probes import load_held_out_probe_data
from .record import machine
from .runs import read_scalars, train_run


def iteration_times(work_dir: str) -> List[float]:
    """mmengine's logged seconds per training iteration (each the mean of
    its logging window), from the run's ``scalars.json``."""
    return [r['time'] for r in read_scalars(work_dir) if 'loss' in r]


def timed_training(cfg, work_dir: str, log) -> dict:
    """Train ``cfg`` and time it: wall and CPU seconds of the process, the
    median logged seconds per iteration, and the seconds spent outside the
    iterations (start-up, checkpoints, evaluations)."""
    before = os.times()
    start = time.perf_counter()
    train_run(cfg, work_dir, log)
    wall = time.perf_counter() - start
    cpu = _children_cpu(before)
    per_iter = statistics.median(iteration_times(work_dir))
    iters = max(r['step'] for r in read_scalars(work_dir) if 'loss' in r)
    return dict(
        wall_s=wall,
        cpu_s=cpu,
        iters=iters,
        s_per_iter=per_iter,
        outside_iters_s=wall - iters * per_iter)


def _children_cpu(before) -> float:
    after = os.times()
    return (after.children_user - before.children_user +
            after.children_system - before.children_system)


def _own_cpu(before) -> float:
    after = os.times()
    return after.user - before.user + after.system - before.system


def measure_costs(args, iters: int, out: str) -> dict:
    """Time each run kind of the plan ``decide`` for ``iters`` training
    iterations (pretraining of both objectives, both MFM arms, a dense run
    with one evaluation) and one probe run of the random initialisation
    and of each objective on the full probe data; project each kind's full
    run from it. Each kind's measurement is saved in ``out`` as it is
    made, and a kind found there is not measured again."""
    args = copy.copy(args)
    args.record = osp.join(args.work_dir, 'cost_record.json')
    study = DecideStudy(args)
    costs = {}
    if osp.isfile(out):
        with open(out) as f:
            costs = json.load(f)
    costs.setdefault('machine', machine())
    costs.setdefault('load_avg_start', os.getloadavg())
    short = copy.copy(args)
    short.pretrain_images, short.pretrain_epochs = 128 * iters, 2
    short.continue_from = 1
    full_epoch = math.ceil(args.pretrain_images / 128)
    arm_epochs = args.pretrain_epochs - args.continue_from

    def measured(kind: str, measure) -> None:
        if kind not in costs:
            costs[kind] = measure()
            with open(out, 'w') as f:
                json.dump(costs, f, indent=1)

    def pretraining(objective):
        cfg = study.pretrain_config(objective, 0)
        cfg.merge_from_dict(
            dict(train_dataloader=dict(dataset=dict(indices=128 * iters))))
        cfg.train_cfg.max_epochs = 1
        work_dir = osp.join(args.work_dir, 'pretrain', objective, 'seed0')
        timing = timed_training(cfg, work_dir, study.log)
        timing['full_run_min'] = (
            timing['outside_iters_s'] +
            full_epoch * args.pretrain_epochs * timing['s_per_iter']) / 60
        # The short run's checkpoint stands in for the full run's in the
        # dense run and the probes below.
        last = osp.join(work_dir, f'epoch_{args.pretrain_epochs}.pth')
        if not osp.lexists(last):
            os.symlink('epoch_1.pth', last)
        return timing

    def arm(name):
        cfg = continuation_config(name, study.checkpoint('itpn-pixel', 0),
                                  short, 0)
        timing = timed_training(cfg, osp.join(args.work_dir, 'continue', name),
                                study.log)
        timing['full_run_min'] = (timing['outside_iters_s'] + full_epoch *
                                  arm_epochs * timing['s_per_iter']) / 60
        return timing

    def dense():
        study.dense = dict(DENSE, iters=iters, points=1, last=1)
        before, begin = os.times(), time.perf_counter()
        result = study.dense_run('a', 0, 200, 'shipped')
        work_dir = osp.join(args.work_dir, 'seg', 'a.ds200', 'seed0')
        per_iter = statistics.median(iteration_times(work_dir))
        wall = time.perf_counter() - begin
        evaluation = _evaluation_s(work_dir)
        return dict(
            wall_s=wall,
            cpu_s=_children_cpu(before),
            iters=iters,
            s_per_iter=per_iter,
            outside_iters_s=wall - iters * per_iter,
            evaluation_s=evaluation,
            full_run_min=(wall - iters * per_iter + DENSE['iters'] * per_iter +
                          (DENSE['points'] - 1) * evaluation) / 60,
            mIoU=result['curves']['mIoU'])

    for objective in ('itpn-pixel', 'mae'):
        measured(f'pretrain {objective}', lambda: pretraining(objective))
    for name in ('cont-pixel', 'cont-mfm'):
        measured(f'continue {name}', lambda: arm(name))
    measured('dense a', dense)
    data = []

    def probe(objective):
        if not data:
            begin = time.perf_counter()
            data.extend(load_held_out_probe_data(args))
            costs['probe data'] = dict(
                wall_s=time.perf_counter() - begin,
                train=len(data[0][1]),
                test=len(data[1][1]))
        before, begin = os.times(), time.perf_counter()
        study.probe(objective, 0, data)
        wall = time.perf_counter() - begin
        return dict(
            wall_s=wall, cpu_s=_own_cpu(before), full_run_min=wall / 60)

    for objective in ('none', 'itpn-pixel', 'mae'):
        measured(f'probe {objective}', lambda: probe(objective))
    costs['load_avg_end'] = os.getloadavg()
    with open(out, 'w') as f:
        json.dump(costs, f, indent=1)
    return costs


def _evaluation_s(work_dir: str) -> float:
    """Seconds of one evaluation of a dense run, from mmengine's log of its
    validation loop (the mean seconds per batch times the batches)."""
    with open(osp.join(work_dir, 'stdout.log')) as f:
        lines = [line for line in f if 'Iter(val)' in line and 'time:' in line]
    times = [float(line.split('time:')[1].split()[0]) for line in lines]
    batches = math.ceil(DENSE['val'] / 8)
    return statistics.median(times) * batches if times else float('nan')


# Runs of each measured kind the plan makes: (kind, in units 0-5 and one
# pilot rung, per extension unit). The MFM arms' probes are probes of an
# iTPN model; the pilot's runs are dense runs.
RUN_COUNTS = (
    ('pretrain itpn-pixel', 6, 1),
    ('pretrain mae', 6, 1),
    ('continue cont-pixel', 4, 0),
    ('continue cont-mfm', 4, 0),
    ('probe none', 6, 0),
    ('probe itpn-pixel', 6 + 2 * 4, 1),
    ('probe mae', 6, 1),
    ('dense a', 6 * 4 + 4, 4),
)


def mean_cost(costs: dict, kind: str) -> dict:
    """The mean of every measurement of ``kind``: ``costs[kind]`` and
    earlier ones kept as ``costs['<kind> (1)']``, ``(2)``, ..."""
    found = [
        value for key, value in costs.items()
        if key == kind or key.startswith(f'{kind} (')
    ]
    return {
        field: float(np.mean([m[field] for m in found]))
        for field in ('wall_s', 'cpu_s', 'full_run_min', 's_per_iter')
        if all(field in m for m in found)
    }


def budget_table(costs: dict) -> list:
    """The projected process-hours of the plan from measured costs (the
    mean of a kind's measurements): per run kind the measured wall seconds
    per training iteration, the share of
    a core the process had (its CPU time over its wall time), the minutes
    of one full run at the measured load and with a core to itself (its
    CPU time), and the runs the plan makes; then the totals of units 0-5
    with one pilot rung, and what each further pilot rung and each
    extension unit adds."""
    lines = [
        '| run kind | seconds per training iteration | share of a core | '
        'minutes per full run, at the measured load / with a core to itself '
        '| runs (units 0-5, one pilot rung) | process-hours, at the measured '
        'load / with a core to itself | runs per extension unit |',
        '|---|---|---|---|---|---|---|'
    ]
    wall = cpu = extension_wall = extension_cpu = 0.
    for kind, runs, per_extension in RUN_COUNTS:
        cost = mean_cost(costs, kind)
        share = cost['cpu_s'] / cost['wall_s']
        minutes = cost['full_run_min']
        per_iter = f'{cost["s_per_iter"]:.2f}' if 's_per_iter' in cost \
            else '-'
        wall += runs * minutes / 60
        cpu += runs * minutes * share / 60
        extension_wall += per_extension * minutes / 60
        extension_cpu += per_extension * minutes * share / 60
        lines.append(f'| {kind} | {per_iter} | {share:.2f} | {minutes:.1f} / '
                     f'{minutes * share:.1f} | {runs} | '
                     f'{runs * minutes / 60:.2f} / '
                     f'{runs * minutes * share / 60:.2f} | {per_extension} |')
    dense = mean_cost(costs, 'dense a')
    rung = 4 * dense['full_run_min'] / 60
    rung_cpu = rung * dense['cpu_s'] / dense['wall_s']
    lines += [
        f'| **all** | | | | | **{wall:.1f} / {cpu:.1f}** | '
        f'{extension_wall:.1f} / {extension_cpu:.1f} h per extension unit |',
        '', f'Each further pilot rung adds {rung:.1f} / {rung_cpu:.1f} '
        'process-hours; the largest plan (three rungs, two extension units) '
        f'{wall + 2 * rung + 2 * extension_wall:.1f} / '
        f'{cpu + 2 * rung_cpu + 2 * extension_cpu:.1f}.'
    ]
    return lines
