# Copyright (c) mmitpn contributors. All rights reserved.
"""Benchmark one main-stage block of HiViT / Fast-iTPN at detection size.

At 1344x800 the main stage holds 84x50 = 4,200 units and its blocks are
most of a detector's cost. This script times one block of the full-width
architecture (forward + backward, and forward alone) on random tokens for
each attention path: global attention through the fused kernel or the
explicit ``(N, N)`` product, ViTDet windows, windows with gathering tokens,
and global attention on the tokens token migration keeps (its one-off
matching is timed on its own). Variants are measured interleaved, several
rounds, in the process's threads (``OMP_NUM_THREADS``); the median and the
fastest round are reported (on a shared machine the fastest round is the one
least disturbed by other work); the bytes a block keeps for backward
(``saved_tensors_hooks``) are counted exactly and stand in for activation
memory.

A backbone's cost follows from its blocks (e.g. ViTDet windows: 20
windowed + 4 global blocks); that sum is an estimate, not a measurement of
the whole detector (``benchmark_downstream.py`` measures those).

Example::

    python tools/benchmarks/benchmark_attention.py --rounds 3
    python tools/benchmarks/benchmark_attention.py --tiny  # the test
"""
import argparse
import statistics
from typing import Callable, Dict, List, Tuple

import torch
from torch.autograd.graph import saved_tensors_hooks

from mmitpn.benchmarks import describe_machine, time_steps
from mmitpn.models import FastiTPN, HiViT
from mmitpn.models.utils.token_migration import keep_tokens, start_migration
from mmitpn.utils.cli import add_debug_argument, run_tool

GRID = (50, 84)  # 800x1344
TINY_GRID = (6, 10)
FAMILIES = {'fast-itpn-base': FastiTPN, 'itpn-base': HiViT}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        '--archs', nargs='+', default=list(FAMILIES), choices=list(FAMILIES))
    parser.add_argument(
        '--rounds',
        type=int,
        default=3,
        help='interleaved rounds; the median is reported')
    parser.add_argument('--window-size', type=int, default=14)
    parser.add_argument('--gathering-tokens', type=int, default=8)
    parser.add_argument(
        '--keep-ratios', nargs='+', type=float, default=[0.75, 0.5])
    parser.add_argument(
        '--tiny',
        action='store_true',
        help='a 64-d model on a 6x10 grid (seconds)')
    add_debug_argument(parser)
    return parser.parse_args()


def build_block(family, arch, fused: bool, window: int, tiny: bool):
    if tiny:
        arch = dict(
            embed_dims=64, stem_mlp_blocks=(1, 1), depth=1, num_heads=2)
    else:
        arch = dict(family.arch_zoo[arch], depth=1)
    model = family(arch, window_size=window or None, fused_attention=fused)
    return model.blocks[model.main_start], model.embed_dims


def variants(args, family, arch) -> Dict[str, Tuple[Callable, Callable]]:
    """name -> (forward+backward, forward) closures on random tokens."""
    grid = TINY_GRID if args.tiny else GRID
    num_tokens = grid[0] * grid[1]
    window = min(args.window_size, min(grid)) if args.tiny else \
        args.window_size
    out = {}

    def make(name, fused, window_size, tokens=num_tokens, gathering=0):
        block, dims = build_block(family, arch, fused, window_size, args.tiny)
        x = torch.randn(1, tokens, dims, requires_grad=True)
        gather = torch.randn(1, gathering, dims) if gathering else None

        def forward():
            if gather is not None:
                return block.forward_gathered(x, gather, grid, None,
                                              window_size or None)[0]
            grid_of_run = grid if tokens == num_tokens else (tokens, 1)
            return block(x, grid_of_run, None, window_size or None)

        def train():
            forward().sum().backward()

        out[name] = (train, torch.no_grad()(forward))

    make('global, fused', True, 0)
    make('global, unfused', False, 0)
    make(f'windows {window}, fused', True, window)
    make(f'windows {window}, unfused', False, window)
    make(
        f'windows {window} + {args.gathering_tokens} gathering tokens',
        True,
        window,
        gathering=args.gathering_tokens)
    for ratio in args.keep_ratios:
        make(
            f'global on migration-kept tokens (keep {ratio:g})',
            True,
            0,
            tokens=round(ratio * num_tokens))
    dims = build_block(family, arch, True, 0, args.tiny)[1]
    tokens = torch.randn(1, num_tokens, dims)
    for ratio in args.keep_ratios:
        out[f'migration matching + gather (keep {ratio:g}, once)'] = (
            None,
            lambda r=ratio: keep_tokens(tokens, start_migration(tokens, r)))
    return out


def saved_bytes(train: Callable) -> int:
    total = 0

    def pack(tensor):
        nonlocal total
        total += tensor.numel() * tensor.element_size()
        return tensor

    with saved_tensors_hooks(pack, lambda tensor: tensor):
        train()
    return total


def main():
    args = parse_args()
    torch.manual_seed(0)
    print(f'machine: {describe_machine()}; fp32; one block, batch 1, '
          f'{"x".join(map(str, TINY_GRID if args.tiny else GRID))} units; '
          f'median of {args.rounds} interleaved rounds')
    print('| arch | attention | train step (ms), median / fastest | '
          'inference (ms), median / fastest | saved for backward (MB) |')
    print('|---|---|---|---|---|')
    for arch in args.archs:
        cases = variants(args, FAMILIES[arch], arch)
        times: Dict[str, List[Tuple[float, float]]] = {k: [] for k in cases}
        for name, (train, infer) in cases.items():  # warm-up
            if train is not None:
                train()
            infer()
        for _ in range(args.rounds):
            for name, (train, infer) in cases.items():
                step = time_steps(train, 1)[0] if train else float('nan')
                times[name].append((step, time_steps(infer, 1)[0]))
        for name, (train, _) in cases.items():
            steps = [t for t, _ in times[name]]
            infers = [i for _, i in times[name]]
            infer = (f'{1e3 * statistics.median(infers):.1f} / '
                     f'{1e3 * min(infers):.1f}')
            if train is None:
                print(f'| {arch} | {name} | - | {infer} | - |', flush=True)
                continue
            memory = saved_bytes(train) / 2**20
            print(
                f'| {arch} | {name} | {1e3 * statistics.median(steps):.1f} / '
                f'{1e3 * min(steps):.1f} | {infer} | {memory:.0f} |',
                flush=True)


if __name__ == '__main__':
    run_tool(main)
