# Copyright (c) mmitpn contributors. All rights reserved.
"""One-shot GPU check: full-size mixed-precision steps of every path a
cluster runs, in one table, within a total time limit.

Checks (``mmitpn.benchmarks.gpu_check`` lists them), each at the config's
full size and per-GPU batch, with mmengine's ``AmpOptimWrapper``, bf16
before fp16: the pretraining benchmark against mmpretrain 1.2.0's iTPN on
the mmpretrain-compatible config; the pixel, pixel + MFM and CLIP-B
pretraining configs of iTPN-B and the pixel config of Fast-iTPN-B; one
ImageNet-1K fine-tuning step of iTPN-B; one Mask R-CNN step of iTPN-B and
Fast-iTPN-B and one UperNet step of iTPN-B (skipped, with the reason,
without mmcv's compiled ops); then the pretraining steps again compiled as
mmengine's ``compile=True`` compiles a training step (``torch.compile``,
default options; ``--no-compile`` leaves them out).

Each row: eager or compiled, images per second, step time, a compiled
row's compile time (what its untimed steps took beyond as many timed ones),
FLOPs per step (PyTorch's FLOP counter), model FLOP utilisation against the
GPU's dense bf16/fp16 tensor-core peak (nominal for known GPUs, else the
measured matrix-product peak; the measured one is recorded too), peak
allocated memory, and the attention kernels the step ran (read from the
PyTorch profiler: flash, memory-efficient, cuDNN or math scaled-dot-product
attention).

``--time-limit`` bounds the whole run: no check starts with less than
``--min-check-time`` left, a running check stops timing at the limit (after
one timed step), and the rest are listed as not run. ``--out-dir`` gets
``gpu_check.json`` and ``gpu_check.md``, rewritten after every row, so a run
killed from outside still leaves what it measured.

``--dry-run`` (any machine, the test on CPU) builds every model and
optimizer at full size and runs one profiled step of each on a batch of 2
(detection at 192x128, segmentation at 128x128), in fp32 without a GPU,
and compiles one small pretraining step (``make demo``'s model) with
dynamo's capture and AOTAutograd but no code generation: every code path of
the GPU run is exercised before device time is spent.

Example::

    python tools/benchmarks/gpu_check.py --time-limit 360 --out-dir results
    python tools/benchmarks/gpu_check.py --dry-run   # any machine
"""
import argparse
import os.path as osp
import tempfile

import torch

from mmitpn.benchmarks.gpu_check import (DTYPES, Deadline, Report, gpu_checks,
                                         machine_info, run_checks,
                                         tensor_core_peaks)
from mmitpn.utils.cli import add_debug_argument, run_tool

CONFIGS = osp.join(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'configs')


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        '--dry-run',
        action='store_true',
        help='build everything at full size, one small step each')
    parser.add_argument('--iters', type=int, default=10, help='timed steps')
    parser.add_argument('--warmup', type=int, default=3, help='untimed steps')
    parser.add_argument(
        '--dtypes', nargs='+', choices=tuple(DTYPES), default=list(DTYPES))
    parser.add_argument(
        '--no-compile',
        action='store_true',
        help='leave out the compiled pretraining rows')
    parser.add_argument(
        '--time-limit',
        type=float,
        help='seconds for the whole run (default: none)')
    parser.add_argument(
        '--min-check-time',
        type=float,
        default=20.0,
        help='no check starts with fewer seconds than this left')
    parser.add_argument(
        '--out-dir',
        help='write gpu_check.json and gpu_check.md here (after every row)')
    add_debug_argument(parser)
    args = parser.parse_args()
    if args.iters < 1:
        parser.error(f'--iters {args.iters}: give at least 1.')
    if args.warmup < 0:
        parser.error(f'--warmup {args.warmup}: give at least 0.')
    if args.time_limit is not None and args.time_limit < 0:
        parser.error(f'--time-limit {args.time_limit:g}: give seconds >= 0.')
    return args


def main():
    args = parse_args()
    deadline = Deadline(args.time_limit)
    if not args.dry_run and not torch.cuda.is_available():
        raise SystemExit('No CUDA device: run on a GPU machine, or pass '
                         '--dry-run to build everything on this one.')
    peaks = {} if args.dry_run else {
        dtype: tensor_core_peaks(dtype)
        for dtype in args.dtypes
    }
    info = machine_info(
        peaks,
        dry_run=args.dry_run,
        iters=args.iters,
        warmup=args.warmup,
        compiled_rows=not args.no_compile,
        time_limit_s=args.time_limit)
    print('; '.join(f'{k}: {v}' for k, v in info.items()))
    info['_start'] = deadline.start
    report = Report(info, args.out_dir)
    with tempfile.TemporaryDirectory(prefix='gpu_check_') as folder:
        failures = run_checks(
            gpu_checks(CONFIGS, folder, args.dtypes, args.dry_run,
                       not args.no_compile), report, deadline, peaks,
            args.iters, args.warmup, args.dry_run, args.min_check_time)
    for line in report.comparisons():
        print(line)
    info['finished'] = True
    report.write()
    if failures:
        raise SystemExit(f'{failures} check(s) failed.')


if __name__ == '__main__':
    run_tool(main)
