# Copyright (c) mmitpn contributors. All rights reserved.
"""Inference time and MACs of the token-reduction settings of the iTPN-B and
Fast-iTPN-B Mask R-CNN at 1344x800: backbone + pyramid (``--part
pyramid``) or the whole detector (``--part detector``, the RoI head keeping
its 100 best boxes per image whatever their score, so that the heads' work
is the same for every setting), full size, random weights, fp32.

Every setting of a family is built first (the shipped det config with the
setting's backbone overrides, no weights loaded), then timed in rounds: one
untimed inference per setting, then ``--rounds`` rounds in which every
setting runs once, in turn, so that a change of load on a shared machine
touches all settings alike. Each run is timed as the CPU time of this
process (one thread: the time it computed, whatever else shares the core)
and as wall time. Reported: the median CPU and wall times, the median over
rounds of the CPU time divided by global attention's in the same round,
and the MACs of backbone + pyramid (``torch.utils.flop_counter`` on
the meta device, where attention runs through a kernel it counts; the CPU's
fused attention kernel is not counted).

Run pinned to one core with one thread, e.g. on this project's CPU machine::

    taskset -c 1 env OMP_NUM_THREADS=1 .venv/bin/python \\
        .dev_scripts/benchmark_token_reduction.py --rounds 3 \\
        --json work_dirs/token_reduction_speed.json
"""
import argparse
import json
import os.path as osp
import statistics
import time

import torch
from mmengine.registry import MODELS, DefaultScope

from mmitpn.benchmarks import downstream as bench
from mmitpn.benchmarks.utils import describe_machine
from mmitpn.utils import count_macs

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
WINDOWS = dict(window_size=14, global_blocks=(5, 11, 17, 23))


def reduction(kind: str, start_block: int = 6, keep_ratio: float = 0.5):
    return dict(
        token_reduction=dict(
            type=kind, start_block=start_block, keep_ratio=keep_ratio))


SETTINGS = {
    'global attention': {},
    'windows + 4 global blocks':
    WINDOWS,
    'windows + 8 gathering tokens':
    dict(window_size=14, gathering_tokens=8),
    'migration 0.5 from block 6':
    reduction('migration'),
    'windows + 8 gathering + migration 0.5 from block 6':
    dict(window_size=14, gathering_tokens=8, **reduction('migration')),
    'windows + 4 global + window migration 0.5 from block 6':
    dict(WINDOWS, **reduction('window_migration')),
    'windows + 8 gathering + window migration 0.5 from block 6':
    dict(window_size=14, gathering_tokens=8, **reduction('window_migration')),
    'windows + 8 gathering + window migration 0.5 from block 2':
    dict(
        window_size=14,
        gathering_tokens=8,
        **reduction('window_migration', start_block=2)),
}
FAMILIES = {
    'itpn-base':
    'det/itpn-base_pixel-1600e-pre_mask-rcnn_32xb2-amp-1x_coco.py',
    'fast-itpn-base':
    'det/fast-itpn-base_clip-l-1600e-pre_mask-rcnn_32xb2-amp-1x_coco.py',
}
SIZE = (800, 1344)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        '--families', nargs='+', default=list(FAMILIES), choices=FAMILIES)
    parser.add_argument(
        '--settings', nargs='+', default=list(SETTINGS), choices=SETTINGS)
    parser.add_argument(
        '--part', choices=('pyramid', 'detector'), default='pyramid')
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--json', help='write the results here too')
    return parser.parse_args()


def load_config(family: str, setting: str):
    case = dict(
            task='det', config=FAMILIES[family], backbone=SETTINGS[setting])
    return bench.load_case_config(case, osp.join(REPO, 'configs'), tiny=False)


def pyramid_macs(family: str, setting: str) -> int:
    """MACs of backbone + pyramid, counted on the meta device."""
    cfg = load_config(family, setting)
    # The counter's module tracker needs autograd on (parameters are
    # leaves that require grad).
    with DefaultScope.overwrite_default_scope(cfg.default_scope), \
            torch.device('meta'), torch.enable_grad():
        model = MODELS.build(cfg.model)
        images = torch.empty(1, 3, *SIZE)
        return count_macs(lambda: model.neck(model.backbone(images)))


def build(family: str, setting: str, part: str):
    """The timed call of one setting: ``() -> None``."""
    cfg = load_config(family, setting)
    if part == 'detector':
        # Every box kept until the 100 per image: the heads of every
        # setting do the same work (with random weights, how many boxes
        # pass a score threshold depends on the features).
        cfg.model.test_cfg.rcnn.score_thr = 0.
    torch.manual_seed(0)
    model = bench.build_case_model(cfg).eval()
    torch.manual_seed(0)
    if part == 'pyramid':
        images = torch.randn(1, 3, *SIZE)

        def run():
            model.neck(model.backbone(images))
    else:
        data = model.data_preprocessor(bench.det_inputs(SIZE, 1), False)

        def run():
            model(**data, mode='predict')

    return run


@torch.no_grad()
def main():
    args = parse_args()
    print(f'machine: {describe_machine()}; part: {args.part}; {args.rounds} '
          'interleaved rounds after one untimed run; fp32')
    results = []
    for family in args.families:
        macs = {s: pyramid_macs(family, s) for s in args.settings}
        runs = {s: build(family, s, args.part) for s in args.settings}
        cpu = {s: [] for s in args.settings}
        wall = {s: [] for s in args.settings}
        for run in runs.values():
            run()
        for _ in range(args.rounds):
            for setting, run in runs.items():
                start_cpu, start = time.process_time(), time.perf_counter()
                run()
                cpu[setting].append(time.process_time() - start_cpu)
                wall[setting].append(time.perf_counter() - start)
        reference = cpu[args.settings[0]]
        print(f'\n{family} ({args.part}, 1344x800); CPU-time ratios '
              f'against {args.settings[0]} in the same round')
        print('| setting | GMACs | CPU time (s) | wall time (s) | speed-up |')
        print('|---|---|---|---|---|')
        for setting in args.settings:
            speedup = statistics.median(
                r / t for r, t in zip(reference, cpu[setting]))
            results.append(
                dict(
                    family=family,
                    setting=setting,
                    part=args.part,
                    gmacs=macs[setting] / 1e9,
                    cpu_s=cpu[setting],
                    wall_s=wall[setting],
                    speedup=speedup))
            print(
                f'| {setting} | {macs[setting] / 1e9:.1f} | '
                f'{statistics.median(cpu[setting]):.2f} | '
                f'{statistics.median(wall[setting]):.2f} | '
                f'{speedup:.2f}x |',
                flush=True)
        del runs
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(
                dict(machine=describe_machine(), results=results), f, indent=1)


if __name__ == '__main__':
    main()
