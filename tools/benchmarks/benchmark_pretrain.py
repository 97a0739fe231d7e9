# Copyright (c) mmitpn contributors. All rights reserved.
"""Benchmark a full pretraining step (forward, backward, optimizer).

For an iTPN pixel config (HiViT or Fast-iTPN backbone) it measures images
per second, peak memory and FLOPs per image of a training step on random
images, for:

- ``mmitpn``: the config as is (fp32, or ``--amp``: bf16 autocast on the
  CPU, AmpOptimWrapper-style autocast on a GPU);
- ``mmitpn-full``: the same network encoding all units (no dropping), the
  cost a pretraining without MAE-style dropping would pay;
- ``mmpretrain``: mmpretrain 1.2.0's iTPN with the same architecture, when
  mmpretrain can express it (HiViT with even stem depths; it has no
  Fast-iTPN, so that run is skipped with a message), with the optimizer
  settings of mmpretrain's iTPN configs, in fp32 and with ``--amp``;
- ``mmitpn-mmpretrain-optim``: mmitpn's network with mmpretrain's optimizer
  settings, so that ``mmitpn-mmpretrain-optim / mmpretrain`` is the model
  alone and ``mmitpn / mmitpn-mmpretrain-optim`` what the shipped optimizer
  settings (fused AdamW, two parameter groups) add.

``--amp`` on a CPU without native bf16 (AVX512-BF16 or AMX) is skipped with
a message: PyTorch's fallback GEMM makes bf16 steps far slower than fp32
there, which would measure the fallback, not the model.

Every measurement runs in its own process (clean peak memory and thread
pools) with the process's threads (``OMP_NUM_THREADS``); ratios are against
mmpretrain in the same invocation, and the machine's matrix-product peak
is measured by the script.

Example (mmpretrain-compatible settings)::

    python tools/benchmarks/benchmark_pretrain.py --amp \
        configs/pretrain/itpn-pixel_mmpretrain-base-dec6_64xb64-amp-\
coslr-400e_in1k.py
"""
import argparse
import json
import os.path as osp
import statistics

import torch
from mmengine.config import Config
from torch.utils.flop_counter import FlopCounterMode

from mmitpn.benchmarks import (describe_machine, matmul_flops, peak_memory_mb,
                               reset_peak_memory, run_worker, time_steps)
from mmitpn.benchmarks.pretrain import RUNS, pretraining_step
from mmitpn.utils import adapt_cfg_to_device, cpu_has_native_bf16, describe_cpu
from mmitpn.utils.cli import add_debug_argument, run_tool


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='iTPN pixel pretraining config')
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--iters', type=int, default=8, help='timed steps')
    parser.add_argument(
        '--repeat',
        type=int,
        default=1,
        help='measure every run this many times, interleaved (the median '
        'step time over all repeats is reported)')
    parser.add_argument('--warmup', type=int, default=2, help='untimed steps')
    parser.add_argument(
        '--amp', action='store_true', help='also measure mixed precision')
    parser.add_argument(
        '--runs',
        nargs='+',
        choices=RUNS,
        default=list(RUNS),
        help='what to measure')
    parser.add_argument('--worker', help=argparse.SUPPRESS)
    parser.add_argument(
        '--worker-amp', action='store_true', help=argparse.SUPPRESS)
    add_debug_argument(parser)
    return parser.parse_args()


def measure(args) -> dict:
    """One measurement, in this (worker) process."""
    cfg = Config.fromfile(args.config)
    cfg.launcher = 'none'
    cfg = adapt_cfg_to_device(cfg, amp=args.worker_amp)
    _, step = pretraining_step(cfg, args.worker, args.batch_size)
    with FlopCounterMode(display=False) as counter:
        step()
    reset_peak_memory()
    return dict(
        step_times=time_steps(step, args.iters, args.warmup),
        gflop_per_img=counter.get_total_flops() / args.batch_size / 1e9,
        peak_mb=peak_memory_mb())


def worker_argv(args, run: str, amp: bool) -> list:
    argv = [
        args.config, '--worker', run, '--batch-size',
        str(args.batch_size), '--iters',
        str(args.iters), '--warmup',
        str(args.warmup)
    ]
    return argv + ['--worker-amp'] if amp else argv


def print_ratios(results: dict) -> None:
    """The model alone, the optimizer settings and full encoding, each
    against its reference in this invocation."""
    for precision in ('fp32', 'amp'):
        same = results.get(('mmitpn-mmpretrain-optim', precision))
        peer = results.get(('mmpretrain', precision))
        shipped = results.get(('mmitpn', precision))
        if same and peer:
            print(f'model only ({precision}, both with mmpretrain\'s '
                  'optimizer settings): mmitpn / mmpretrain '
                  f'{same["img_per_s"] / peer["img_per_s"]:.2f}x')
        if same and shipped:
            print(f'optimizer settings ({precision}): shipped / mmpretrain\'s '
                  f'on mmitpn {shipped["img_per_s"] / same["img_per_s"]:.2f}x')
    reference = results.get(('mmpretrain', 'fp32'))
    for (run, precision), result in results.items():
        if run != 'mmitpn':
            continue
        if reference is not None:
            print(f'throughput mmitpn {precision} / mmpretrain fp32: '
                  f'{result["img_per_s"] / reference["img_per_s"]:.2f}x')
        amp_reference = results.get(('mmpretrain', precision))
        if precision == 'amp' and amp_reference:
            print('throughput mmitpn amp / mmpretrain amp: '
                  f'{result["img_per_s"] / amp_reference["img_per_s"]:.2f}x')
        full = results.get(('mmitpn-full', precision))
        if full is not None:
            print(f'step time masked / full encoding ({precision}): '
                  f'{full["img_per_s"] / result["img_per_s"]:.2f}x')


def main():
    args = parse_args()
    if not osp.isfile(args.config):
        raise FileNotFoundError(f'Config file not found: {args.config}')
    if args.worker:
        print(json.dumps(measure(args)))
        return
    backbone_type = Config.fromfile(args.config).model.backbone.type
    if 'mmpretrain' in args.runs and \
            backbone_type.split('.')[-1] != 'HiViT':
        print(f'mmpretrain skipped: mmpretrain has no {backbone_type} '
              '(its iTPN is HiViT only).')
        args.runs = [run for run in args.runs if run != 'mmpretrain']
    if args.amp and not torch.cuda.is_available() and \
            not cpu_has_native_bf16():
        print(f'--amp skipped: this CPU ({describe_cpu()}) has no native '
              'bf16; bf16 autocast would time PyTorch\'s fallback GEMM (a '
              'step over 100x slower than fp32), not the model.')
        args.amp = False
    precisions = ['fp32', 'amp'] if args.amp else ['fp32']
    dtypes = dict(fp32=torch.float32, amp=torch.bfloat16)
    peaks = {p: matmul_flops(dtypes[p]) / 1e9 for p in precisions}
    print(f'machine: {describe_machine()}; matmul peak fp32 '
          f'{peaks["fp32"]:.0f} GFLOP/s' +
          (f', bf16 {peaks["amp"]:.0f} GFLOP/s' if args.amp else ''))
    print(f'config: {args.config}; batch {args.batch_size}; median of '
          f'{args.iters} timed steps (after {args.warmup}) x {args.repeat} '
          'runs')
    print(f'{"run":30s} {"img/s":>8s} {"step ms":>9s} {"GFLOP/img":>10s} '
          f'{"% peak":>7s} {"peak MB":>9s}')
    results = {}
    for precision in precisions:
        measured = {run: [] for run in args.runs}
        for _ in range(args.repeat):
            for run in args.runs:
                measured[run].append(
                    run_worker(__file__,
                               worker_argv(args, run, precision == 'amp'),
                               run))
        for run, runs in measured.items():
            seconds = statistics.median(t for one in runs
                                        for t in one['step_times'])
            result = dict(
                img_per_s=args.batch_size / seconds,
                step_ms=seconds * 1e3,
                gflop_per_img=runs[0]['gflop_per_img'],
                peak_mb=max(one['peak_mb'] for one in runs))
            results[(run, precision)] = result
            achieved = result['gflop_per_img'] * result['img_per_s']
            print(
                f'{run + " " + precision:30s} '
                f'{result["img_per_s"]:8.2f} {result["step_ms"]:9.0f} '
                f'{result["gflop_per_img"]:10.1f} '
                f'{100 * achieved / peaks[precision]:6.1f}% '
                f'{result["peak_mb"]:9.0f}',
                flush=True)
    print_ratios(results)


if __name__ == '__main__':
    run_tool(main)
