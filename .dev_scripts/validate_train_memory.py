# Copyright (c) mmitpn contributors. All rights reserved.
"""Check the training-memory count against what a training step really
allocates, on the CPU in fp32.

For one config (full architecture, random weights, the given batch and
input size), each in its own process:

- ``measured``: the resident memory before one training step (forward,
  backward, AdamW; model built, one inference run so that the allocator and
  the libraries are set up) and the process's peak during it; the increase
  is what the step added: activations, gradients, AdamW's two states and
  whatever the step needs transiently.
- ``counted``: ``mmitpn.benchmarks.train_memory`` on the same config with
  the whole forward on the CPU (``count_whole``) and split (backbone and
  neck on the meta device, ``count_features`` + ``count_heads``): saved
  activations, plus gradients and AdamW states (8 bytes per trainable
  parameter), no margin.

Both with and without ``with_cp``. Run it pinned to one core::

    taskset -c 0 env OMP_NUM_THREADS=1 .venv/bin/python \\
        .dev_scripts/validate_train_memory.py CONFIG --batch 2 --shape 256 256
"""
import argparse
import json
import os.path as osp
import resource

import torch
from mmengine.logging import MMLogger
from mmengine.optim import build_optim_wrapper

from mmitpn.benchmarks import run_worker
from mmitpn.benchmarks.downstream import build_case_model
from mmitpn.benchmarks.train_memory import (GIB, combine, count_features,
                                            count_heads, count_whole,
                                            load_train_config, random_batch)

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--shape', type=int, nargs=2, default=[256, 256])
    parser.add_argument('--worker', choices=('measured', 'counted'))
    parser.add_argument('--with-cp', choices=('True', 'False'))
    return parser.parse_args()


def resident_bytes() -> int:
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def measure(cfg, batch, size) -> dict:
    """Resident memory before a training step and the peak during it."""
    torch.manual_seed(0)
    model = build_case_model(cfg)
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    data = random_batch(cfg, model, batch, size)
    with torch.no_grad():
        # Allocator and libraries set up, as before any step but the first.
        model.eval()
        model(**data, mode='predict')
    model.train()
    before = resident_bytes()
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    losses = model(**data, mode='loss')
    loss, _ = model.parse_losses(losses)
    optim_wrapper.update_params(loss)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return dict(
        before=before,
        peak_before=peak_before,
        peak=peak,
        increase=peak - before)


def count(cfg, batch, size) -> dict:
    whole = count_whole(cfg, batch, size, amp=False)
    features = count_features(cfg, batch, size, amp=False)
    split = combine(features.activations,
                    count_heads(cfg, features.shapes, batch, size, False))
    states = 4 * 3 * whole.trainable  # gradients + AdamW's two states
    return dict(
        whole=whole.activations.total,
        split=split.total,
        by_part={
            k: v / GIB
            for k, v in whole.activations.by_part.items()
        },
        grads_and_states=states,
        counted_whole=whole.activations.total + states,
        counted_split=split.total + states)


def main():
    args = parse_args()
    MMLogger.get_instance('validate_train_memory', log_level='WARNING')
    if args.worker:
        cfg, _ = load_train_config(
            args.config, {'model.backbone.with_cp': args.with_cp == 'True'})
        size = tuple(args.shape)
        work = measure if args.worker == 'measured' else count
        print(json.dumps(work(cfg, args.batch, size)))
        return
    print(f'{args.config}: {args.batch} x {args.shape[0]}x{args.shape[1]}, '
          'fp32, AdamW; GB')
    print('| with_cp | measured increase | counted (whole on CPU) | counted '
          '(split) | counted / measured | saved activations (whole, split) '
          '|')
    print('|---|---|---|---|---|---|')
    for with_cp in ('False', 'True'):
        argv = [
            args.config, '--batch',
            str(args.batch), '--shape', *map(str, args.shape), '--with-cp',
            with_cp
        ]
        measured = run_worker(__file__, argv + ['--worker', 'measured'],
                              'measurement')
        counted = run_worker(__file__, argv + ['--worker', 'counted'], 'count')
        print(
            f'| {with_cp} | {measured["increase"] / GIB:.2f} | '
            f'{counted["counted_whole"] / GIB:.2f} | '
            f'{counted["counted_split"] / GIB:.2f} | '
            f'{counted["counted_whole"] / measured["increase"]:.2f} | '
            f'{counted["whole"] / GIB:.2f}, {counted["split"] / GIB:.2f} |',
            flush=True)
        if measured['peak_before'] > measured['before'] + \
                0.5 * measured['increase']:
            peak = measured['peak_before'] / GIB
            print(f'  (the process peaked at {peak:.2f} GB before the step: '
                  'the increase is a lower bound)')


if __name__ == '__main__':
    main()
