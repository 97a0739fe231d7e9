# Copyright (c) mmitpn contributors. All rights reserved.
"""Estimate the GPU memory of a config's training step, on the CPU.

Builds the config's model at full size with random weights (nothing is
downloaded), runs one training forward on random inputs of the recipe's
size and per-GPU batch, and counts what it keeps for backward
(``mmitpn.benchmarks.train_memory``): the tensors autograd saves, each
storage once, attention as a fused GPU kernel keeps it, and under mixed
precision (the config's ``AmpOptimWrapper``, or ``--amp``) every tensor at
the size CUDA's fp16 autocast gives it. Backbone and neck are counted on
the meta device (seconds, whatever their size), the heads on the CPU with
stand-in features of the same shapes (``--whole-on-cpu`` runs the whole
forward there instead: minutes for a full-size detector). To that it adds
fp32 parameters, gradients and the optimizer's states, and ``--margin`` of
the sum (default 20 %, an assumption: the caching allocator's
fragmentation, cuBLAS / cuDNN workspaces and backward's activation
gradients are not counted), and says whether the step fits ``--gpu-gb``
with ``--headroom`` left free.

Examples::

    python tools/analysis_tools/estimate_train_memory.py \\
        configs/det/itpn-base_pixel-1600e-pre_mask-rcnn_32xb2-amp-1x_coco.py
    python tools/analysis_tools/estimate_train_memory.py CONFIG --batch 4 \\
        --cfg-options model.backbone.with_cp=False --json memory.json
"""
import argparse
import json

from mmengine.config import DictAction
from mmengine.logging import MMLogger

import mmitpn  # noqa: F401  (registers the mmitpn:: config prefix)
from mmitpn.benchmarks.downstream import SIZES
from mmitpn.benchmarks.train_memory import (GIB, TASKS, estimate_config,
                                            load_train_config)
from mmitpn.utils import write_atomically
from mmitpn.utils.cli import add_debug_argument, image_shape, run_tool


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='config file')
    parser.add_argument(
        '--batch',
        type=int,
        help='images per GPU (default: the train dataloader\'s batch size)')
    parser.add_argument(
        '--shape',
        type=int,
        nargs='+',
        help='input height and width (default: detection 800 1344, the '
        'largest training size padded; segmentation the crop size; '
        'classification 224)')
    parser.add_argument(
        '--amp',
        action=argparse.BooleanOptionalAction,
        help='count under fp16 mixed precision (default: when the config '
        'trains with AmpOptimWrapper)')
    parser.add_argument(
        '--margin',
        type=float,
        default=0.2,
        help='added to the counted sum, for what is not counted (default '
        '0.2)')
    parser.add_argument(
        '--gpu-gb',
        type=float,
        default=80.,
        help='GPU memory to compare with, in GB (default 80)')
    parser.add_argument(
        '--headroom',
        type=float,
        default=0.25,
        help='share of the GPU to leave free for the step to "fit" '
        '(default 0.25)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config keys, e.g. model.backbone.with_cp=False')
    parser.add_argument(
        '--whole-on-cpu',
        action='store_true',
        help='run the whole forward on the CPU (default: backbone and neck '
        'on the meta device, in seconds, the heads on the CPU)')
    parser.add_argument('--json', help='also write the estimate here')
    add_debug_argument(parser)
    return parser.parse_args()


def main():
    args = parse_args()
    # Quiet: the weights' initialisation report and the note that the CPU
    # would train in fp32 (the count replays the config's precision).
    MMLogger.get_instance('estimate_train_memory', log_level='ERROR')
    cfg, amp = load_train_config(args.config, args.cfg_options)
    if args.amp is not None:
        amp = args.amp
    task = TASKS[cfg.default_scope]
    batch = args.batch or cfg.train_dataloader.batch_size
    if args.shape:
        size = image_shape(args.shape)
    elif task == 'seg' and cfg.get('crop_size'):
        size = tuple(cfg.crop_size)
    else:
        size = SIZES[task]
    estimate = estimate_config(cfg, batch, size, amp, args.margin,
                               not args.whole_on_cpu)
    activations = estimate.activations
    limit = args.gpu_gb * (1 - args.headroom)
    fits = estimate.total / GIB <= limit
    optimizer = cfg.optim_wrapper.optimizer.type.split('.')[-1]
    print(f'config: {args.config}')
    print(f'input: {batch} x 3x{size[0]}x{size[1]}, '
          f'{"fp16 mixed precision" if amp else "fp32"}, {optimizer}')
    print(f'saved for backward: {activations.saved / GIB:.2f} GB (' +
          ', '.join(f'{part} {nbytes / GIB:.2f}'
                    for part, nbytes in activations.by_part.items()) + ')')
    print(f'held (the batch, module caches): '
          f'{activations.held / GIB:.2f} GB')
    print(f'parameters {estimate.params_bytes / GIB:.2f} GB, gradients '
          f'{estimate.grads_bytes / GIB:.2f} GB, {optimizer} states '
          f'{estimate.states_bytes / GIB:.2f} GB ({estimate.params / 1e6:.1f}'
          f' M parameters, {estimate.trainable / 1e6:.1f} M trainable)')
    print(f'estimate: {estimate.total / GIB:.2f} GB with a '
          f'{args.margin:.0%} margin; '
          f'{"fits" if fits else "does not fit"} {args.gpu_gb:g} GB with '
          f'{args.headroom:.0%} left free (limit {limit:.1f} GB)')
    if args.json:
        write_atomically(
            json.dumps(
                dict(
                    config=args.config,
                    cfg_options=args.cfg_options,
                    batch=batch,
                    size=list(size),
                    amp=amp,
                    optimizer=optimizer,
                    saved_bytes=activations.saved,
                    held_bytes=activations.held,
                    saved_bytes_by_part=activations.by_part,
                    params=estimate.params,
                    trainable=estimate.trainable,
                    margin=args.margin,
                    estimate_gb=estimate.total / GIB,
                    fits=fits),
                indent=1), args.json)


if __name__ == '__main__':
    run_tool(main)
