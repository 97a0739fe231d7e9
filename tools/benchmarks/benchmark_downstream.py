# Copyright (c) mmitpn contributors. All rights reserved.
"""Benchmark full-size downstream training steps and inference.

For each case (a shipped mmitpn config, or a peer of the same size from
mmdet / mmseg / mmpretrain's own configs) one worker process builds the
model at full size (no pretrained weights are loaded), runs ``--warmup``
untimed and ``--iters`` timed training steps (forward, backward and the
config's own optimizer) on random inputs of the recipe's largest training
size, then as many inferences (``--inference-only``: those alone), and
reports the median step time (wall time, and the CPU time of the process,
which on a shared machine does not count the time others held the core),
the process's peak resident memory (CPU) or peak allocated memory (GPU), and
the GMACs of one image through backbone and neck (and the whole
segmentor's forward; a two-stage detector's RoI heads on the RoIs a
training step samples), counted on the meta device. Every case runs in its
own process, so peaks are not shared.

Cases (``--cases``, default ``base``; ``mmitpn.benchmarks.downstream``
lists them):

- Mask R-CNN and Cascade Mask R-CNN at 1344x800 (the largest multi-scale
  training size, padded to 32) for iTPN-B, against Swin-B in mmdet's own
  Mask R-CNN / Cascade Mask R-CNN configs (mmdet ships Swin-T/S Mask R-CNN
  configs: its Swin-S config with Swin-B's backbone);
- the iTPN-B detector with ViTDet-style windows (14 units, global
  attention in blocks 5, 11, 17, 23), the documented cheaper option;
- the Fast-iTPN-B detector as shipped, with windows as iTPN-B's, and
  both with ``fused_attention=False`` (the ``(N, N)`` product the fused
  kernel avoids);
- ``speed``: the token-reduction options of the backbone (ViTDet windows,
  windows with gathering tokens, token migration at keep 0.75 and 0.5 from
  block 6, and migration or window migration with gathering) on the
  iTPN-B and Fast-iTPN-B Mask R-CNN at 1344x800 and UperNet at 512x512,
  next to the global-attention model as shipped and Swin-B; ratios against
  both;
- ``with_cp``: global attention and the recommended setting (windows, 8
  gathering tokens and window migration at keep 0.5 from block 6) of the
  same models, each with and without activation checkpointing
  (``with_cp``), and the Swin-B peers: what dropping the recomputation
  gains, apart from what the model gains; and Swin-B's Mask R-CNN with
  iTPN's RoI heads (a box head of 4 convolutions and a fully connected
  layer instead of mmdet's 2 fully connected layers), which tells the
  backbones apart from the recipes' heads;
- the CLIP-B detector as shipped (no relative position bias, as the
  official detector) and with global relative position bias tables
  (``rel_pos_type='bias_table'``);
- UperNet at 512x512 for iTPN-B against mmseg's Swin-B UperNet;
- ImageNet fine-tuning at 224 (the config's mixup/cutmix included) for
  iTPN-B against mmpretrain's ViT-B MAE fine-tuning config;
- ``large``: the same for iTPN-L against Swin-L / ViT-L where they exist;
- ``dino``: DINO 5-scale at 1344x800 for iTPN-B and Fast-iTPN-B against
  mmdet's DINO-5scale Swin-L config with Swin-B's backbone (window 12, as
  Swin-L's), and Mask2Former at 512x512 for iTPN-B and Fast-iTPN-B against
  mmseg's Swin-S Mask2Former (mmseg's Swin-B one is at 640x640).

Example::

    python tools/benchmarks/benchmark_downstream.py --cases base
    python tools/benchmarks/benchmark_downstream.py --cases speed \
        --warmup 0 --iters 1 --json speed.json --resume
    taskset -c 1 env OMP_NUM_THREADS=1 python \
        tools/benchmarks/benchmark_downstream.py --cases with_cp \
        --warmup 1 --iters 1 --json with_cp.json --resume
    python tools/benchmarks/benchmark_downstream.py --tiny   # seconds
"""
import argparse
import json
import os.path as osp
from typing import List

from mmitpn.benchmarks import describe_machine, run_worker
from mmitpn.benchmarks.downstream import (GROUPS, ROW_HEADER, format_ratios,
                                          format_row, measure_case,
                                          select_cases)
from mmitpn.utils import write_atomically
from mmitpn.utils.cli import add_debug_argument, run_tool

CONFIGS = osp.join(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'configs')


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        '--cases',
        nargs='+',
        default=['base'],
        help=f'case names or groups {GROUPS}; "all" for every case')
    parser.add_argument(
        '--batch-size',
        type=int,
        help='images per step; default per task: detection 1, '
        'segmentation 2 (its recipe per device; batch norm in the decode '
        'head needs 2), fine-tuning 8')
    parser.add_argument('--iters', type=int, default=2, help='timed steps')
    parser.add_argument('--warmup', type=int, default=1, help='untimed steps')
    parser.add_argument(
        '--tiny',
        action='store_true',
        help='tiny architectures and 64 px inputs (the test)')
    parser.add_argument(
        '--json',
        help='also write the results here, after every case (a long run '
        'that stops keeps what it measured)')
    parser.add_argument(
        '--resume',
        action='store_true',
        help='skip the cases already in --json (measured with the same '
        '--iters, --warmup, --batch-size, --tiny and --inference-only)')
    parser.add_argument(
        '--inference-only',
        action='store_true',
        help='time the inferences only (no training step; the training '
        'columns read "-")')
    parser.add_argument('--worker', help=argparse.SUPPRESS)
    add_debug_argument(parser)
    args = parser.parse_args()
    if args.resume and not args.json:
        parser.error('--resume needs --json (the file to resume).')
    return args


def settings(args) -> dict:
    # inference_only only where set: results written before the option
    # existed resume as they were.
    return dict(
        iters=args.iters,
        warmup=args.warmup,
        batch_size=args.batch_size,
        tiny=args.tiny,
        **(dict(inference_only=True) if args.inference_only else {}))


def load_finished(path: str, args) -> List[dict]:
    """The results of an earlier run with the same settings, to resume."""
    if not osp.exists(path):
        return []
    with open(path) as f:
        saved = json.load(f)
    if saved.get('settings') != settings(args):
        raise ValueError(f'{path} was measured with {saved.get("settings")}, '
                         f'not {settings(args)}: pass the same --iters, '
                         '--warmup, --batch-size, --tiny and '
                         '--inference-only, or another '
                         '--json.')
    return saved['results']


def worker_argv(name: str, args) -> List[str]:
    argv = [
        '--worker', name, '--iters',
        str(args.iters), '--warmup',
        str(args.warmup)
    ]
    if args.batch_size:
        argv += ['--batch-size', str(args.batch_size)]
    if args.inference_only:
        argv += ['--inference-only']
    return argv + ['--tiny'] if args.tiny else argv


def main():
    args = parse_args()
    if args.worker:
        print(
            json.dumps(
                measure_case(args.worker, CONFIGS, args.iters, args.warmup,
                             args.batch_size, args.tiny,
                             not args.inference_only)))
        return
    names = select_cases(args.cases)
    results = load_finished(args.json, args) if args.resume else []
    print(f'machine: {describe_machine()}; median of {args.iters} timed '
          f'steps after {args.warmup}; fp32')
    print(ROW_HEADER)
    print('|---' * ROW_HEADER.count(' | ') + '|---|')
    for result in results:
        print(format_row(result))
    finished = {r['case'] for r in results}
    for name in names:
        if name in finished:
            continue
        results.append(run_worker(__file__, worker_argv(name, args), name))
        print(format_row(results[-1]), flush=True)
        if args.json:
            write_atomically(
                json.dumps(
                    dict(
                        machine=describe_machine(),
                        settings=settings(args),
                        results=results),
                    indent=1), args.json)
    for line in format_ratios(results):
        print(line)


if __name__ == '__main__':
    run_tool(main)
