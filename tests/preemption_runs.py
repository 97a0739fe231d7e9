# Copyright (c) mmitpn contributors. All rights reserved.
"""Train several configs one after the other in one process (or one per
rank under torchrun), for the preemption tests: imports and process start
are paid once per phase instead of once per config.

    python tests/preemption_runs.py PHASES ROOT CONFIG... [--stops JSON]

PHASES, comma-separated, run for each config in turn: ``reference`` trains
it to the end in ``ROOT/<config>/reference``; ``stopped`` trains it in
``ROOT/<config>/stopped`` with the signals of ``--stops`` (config name ->
list of ``SignalAtIterationHook`` arguments) until its PreemptionHook stops
it, and carries on; ``resumed`` (in another process) resumes the ``stopped``
work dir to the end. Each rank writes what became of each config to
``ROOT/<phase>_rank<r>.json``.
"""
import argparse
import json
import os
import os.path as osp

import distributed_probe  # noqa: F401 (registers RecordSamplesHook)
import fault_injection  # noqa: F401 (registers SignalAtIterationHook)
from mmengine.config import Config
from mmengine.dist import get_rank
from mmengine.runner import Runner

from mmitpn.engine import TrainingPreempted
from mmitpn.utils import adapt_cfg_to_device, init_distributed


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('phases')
    parser.add_argument('root')
    parser.add_argument('configs', nargs='+')
    parser.add_argument('--stops', default='{}')
    args = parser.parse_args()
    signals = json.loads(args.stops)
    launcher = 'pytorch' if 'WORLD_SIZE' in os.environ else 'none'
    phases = args.phases.split(',')
    outcomes = {phase: {} for phase in phases}
    for path in args.configs:
        name = osp.splitext(osp.basename(path))[0]
        for phase in phases:
            outcomes[phase][name] = train(path, name, phase, args.root,
                                          signals.get(name, []), launcher)
    for phase in phases:
        with open(osp.join(args.root, f'{phase}_rank{get_rank()}.json'),
                  'w') as f:
            json.dump(outcomes[phase], f)


def train(path, name, phase, root, signals, launcher):
    """Train one config in one phase; returns how it ended."""
    cfg = Config.fromfile(path)
    cfg.launcher = launcher
    cfg.work_dir = osp.join(root, name,
                            'reference' if phase == 'reference' else 'stopped')
    cfg.experiment_name = f'{name}_{phase}'
    cfg.resume = phase == 'resumed'
    if phase == 'stopped':
        cfg.custom_hooks += [
            dict(type='SignalAtIterationHook', **signal) for signal in signals
        ]
    cfg = adapt_cfg_to_device(cfg)
    init_distributed(launcher)
    runner = Runner.from_cfg(cfg)
    try:
        runner.train()
        return dict(finished=True, iter=runner.iter)
    except TrainingPreempted as stop:
        return dict(finished=False, iter=runner.iter, exit_code=stop.code)


if __name__ == '__main__':
    main()
