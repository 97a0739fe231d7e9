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
pools); ratios are against mmpretrain in the same invocation, and the
machine's matrix-product peak is measured by the script.

Example (mmpretrain-compatible settings)::

    python tools/analysis_tools/benchmark_pretrain.py --amp \
        configs/pretrain/itpn-pixel_mmpretrain-base-dec6_64xb64-amp-\
coslr-400e_in1k.py
"""
import argparse
import json
import os.path as osp
import platform
import resource
import statistics
import subprocess
import sys

import torch
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from torch.utils import benchmark

from mmitpn.registry import MODELS
from mmitpn.utils import adapt_cfg_to_device, cpu_has_native_bf16, describe_cpu
from mmitpn.utils.cli import add_debug_argument, run_tool

RUNS = ('mmitpn', 'mmitpn-mmpretrain-optim', 'mmitpn-full', 'mmpretrain')


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


def device() -> torch.device:
    return torch.device('cuda' if torch.cuda.is_available() else 'cpu')


def matmul_peak(dtype: torch.dtype, size: int = 2048, repeat: int = 10):
    """Measured matrix-product throughput in GFLOP/s."""
    a = torch.randn(size, size, device=device(), dtype=dtype)
    b = torch.randn(size, size, device=device(), dtype=dtype)
    for _ in range(2):
        a @ b
    timer = benchmark.Timer(stmt='a @ b', globals=dict(a=a, b=b))
    return 2 * size**3 / timer.timeit(repeat).mean / 1e9


def mmpretrain_model_cfg(model_cfg: Config) -> dict:
    """mmpretrain's iTPN with the architecture of an mmitpn pixel config."""
    from mmitpn.models import HiViT
    backbone = model_cfg.backbone
    arch = HiViT._parse_arch(backbone.arch)
    stem = arch['stem_mlp_blocks']
    if stem[0] % 2 or stem[1] % 2:
        raise ValueError(f'mmpretrain cannot express {stem} stem MLP blocks '
                         '(it doubles its depths); use an even arch such as '
                         'mmpretrain-base.')
    img_size = backbone.get('img_size', 224)
    head = model_cfg.head
    return dict(
        type='iTPN',
        backbone=dict(
            type='iTPNHiViT',
            arch=dict(
                embed_dims=arch['embed_dims'],
                depths=[stem[0] // 2, stem[1] // 2, arch['depth']],
                num_heads=arch['num_heads']),
            img_size=img_size,
            reconstruction_type='pixel',
            mask_ratio=model_cfg.get('mask_ratio', 0.75)),
        neck=dict(
            type='iTPNPretrainDecoder',
            num_patches=(img_size // 16)**2,
            embed_dim=arch['embed_dims'],
            fpn_dim=model_cfg.neck.get('fpn_dim', 256),
            fpn_depth=model_cfg.neck.get('fpn_depth', 2),
            decoder_embed_dim=head.get('decoder_embed_dims', 512),
            decoder_depth=head.get('decoder_depth', 8),
            decoder_num_heads=head.get('decoder_num_heads', 16),
            reconstruction_type='pixel'),
        head=dict(
            type='MAEPretrainHead',
            norm_pix=True,
            patch_size=16,
            loss=dict(type='PixelReconstructionLoss', criterion='L2')))


def mmpretrain_optim_wrapper(cfg: Config) -> dict:
    """mmpretrain's iTPN optimizer settings (its configs' paramwise rules,
    one parameter group per tensor, the default AdamW implementation)."""
    wrapper = {
        key: value
        for key, value in cfg.optim_wrapper.items()
        if key not in ('constructor', 'optimizer', 'paramwise_cfg')
    }
    optimizer = dict(cfg.optim_wrapper.optimizer)
    optimizer.pop('fused', None)
    wrapper.update(
        optimizer=optimizer,
        paramwise_cfg=dict(
            custom_keys={
                'norm': dict(decay_mult=0.0),
                'bias': dict(decay_mult=0.0),
                'pos_embed': dict(decay_mult=0.),
                'mask_token': dict(decay_mult=0.),
            }))
    return wrapper


def build(cfg: Config, which: str):
    if which == 'mmpretrain':
        import mmpretrain.models  # noqa: F401
        from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS
        with DefaultScope.overwrite_default_scope('mmpretrain'):
            model = MMPRETRAIN_MODELS.build(mmpretrain_model_cfg(cfg.model))
        return model, lambda images: model.loss(images, None)
    with DefaultScope.overwrite_default_scope('mmitpn'):
        model = MODELS.build(cfg.model)
    if which in ('mmitpn', 'mmitpn-mmpretrain-optim'):
        return model, model.loss
    return model, lambda images: full_encoding_loss(model, images)


def full_encoding_loss(model, images):
    """The pixel objective with every unit encoded (nothing dropped)."""
    grid = model.backbone.grid_of(images.shape[2], images.shape[3])
    num_units = grid[0] * grid[1]
    all_units = torch.arange(num_units, device=images.device)
    all_units = all_units.expand(images.shape[0], -1)
    _, _, mask = model.random_masking(images.shape[0], grid, images.device)
    levels = model.neck(model.backbone(images, all_units))
    return dict(loss_pixel=model.head.loss(levels, images, mask, all_units))


def measure(args) -> dict:
    """One measurement, in this (worker) process."""
    cfg = Config.fromfile(args.config)
    cfg.launcher = 'none'
    cfg = adapt_cfg_to_device(cfg, amp=args.worker_amp)
    torch.manual_seed(0)
    model, loss_fn = build(cfg, args.worker)
    model.to(device()).train()
    MessageHub.get_current_instance().update_info('max_iters', 1000)
    wrapper_cfg = mmpretrain_optim_wrapper(cfg) \
        if args.worker in ('mmpretrain', 'mmitpn-mmpretrain-optim') \
        else cfg.optim_wrapper
    with DefaultScope.overwrite_default_scope('mmitpn'):
        optim_wrapper = build_optim_wrapper(model, wrapper_cfg)
    size = cfg.model.backbone.get('img_size', 224)
    images = torch.randn(args.batch_size, 3, size, size, device=device())

    def step():
        with optim_wrapper.optim_context(model):
            losses = loss_fn(images)
        loss = sum(v for k, v in losses.items() if 'loss' in k)
        optim_wrapper.update_params(loss)

    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as counter:
        step()
    for _ in range(args.warmup):
        step()
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    # One timed step at a time (each changes the weights): Timer
    # synchronises the GPU around it.
    timer = benchmark.Timer(stmt='step()', globals=dict(step=step))
    step_times = [timer.timeit(1).median for _ in range(args.iters)]
    if torch.cuda.is_available():
        peak_mb = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return dict(
        step_times=step_times,
        gflop_per_img=counter.get_total_flops() / args.batch_size / 1e9,
        peak_mb=peak_mb)


def run_worker(args, which: str, amp: bool) -> dict:
    command = [
        sys.executable, __file__, args.config, '--worker', which,
        '--batch-size',
        str(args.batch_size), '--iters',
        str(args.iters), '--warmup',
        str(args.warmup)
    ]
    if amp:
        command.append('--worker-amp')
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f'{which} failed:\n{result.stderr[-3000:]}')
    return json.loads(result.stdout.strip().splitlines()[-1])


def main():
    args = parse_args()
    if not osp.isfile(args.config):
        raise FileNotFoundError(f'Config file not found: {args.config}')
    if args.worker:
        print(json.dumps(measure(args)))
        return
    torch.manual_seed(0)
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
    peaks = {'fp32': matmul_peak(torch.float32)}
    if args.amp:
        low = torch.bfloat16
        peaks['amp'] = matmul_peak(low)
    name = torch.cuda.get_device_name() if torch.cuda.is_available() \
        else f'{platform.processor() or platform.machine()} CPU ' \
        f'({describe_cpu()}), {torch.get_num_threads()} threads'
    print(f'machine: {name}; matmul peak fp32 {peaks["fp32"]:.0f} GFLOP/s' +
          (f', bf16 {peaks["amp"]:.0f} GFLOP/s' if args.amp else ''))
    print(f'config: {args.config}; batch {args.batch_size}; median of '
          f'{args.iters} timed steps (after {args.warmup}) x {args.repeat} '
          'runs')
    print(f'{"run":30s} {"img/s":>8s} {"step ms":>9s} {"GFLOP/img":>10s} '
          f'{"% peak":>7s} {"peak MB":>9s}')
    results = {}
    for precision in (['fp32', 'amp'] if args.amp else ['fp32']):
        measured = {which: [] for which in args.runs}
        for _ in range(args.repeat):
            for which in args.runs:
                measured[which].append(
                    run_worker(args, which, precision == 'amp'))
        for which, runs in measured.items():
            seconds = statistics.median(t for run in runs
                                        for t in run['step_times'])
            result = dict(
                img_per_s=args.batch_size / seconds,
                step_ms=seconds * 1e3,
                gflop_per_img=runs[0]['gflop_per_img'],
                peak_mb=max(run['peak_mb'] for run in runs))
            results[(which, precision)] = result
            achieved = result['gflop_per_img'] * result['img_per_s']
            print(
                f'{which + " " + precision:30s} '
                f'{result["img_per_s"]:8.2f} {result["step_ms"]:9.0f} '
                f'{result["gflop_per_img"]:10.1f} '
                f'{100 * achieved / peaks[precision]:6.1f}% '
                f'{result["peak_mb"]:9.0f}',
                flush=True)
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
    for (which, precision), result in results.items():
        if reference is not None and which == 'mmitpn':
            print(f'throughput mmitpn {precision} / mmpretrain fp32: '
                  f'{result["img_per_s"] / reference["img_per_s"]:.2f}x')
        amp_reference = results.get(('mmpretrain', precision))
        if which == 'mmitpn' and precision == 'amp' and amp_reference:
            print('throughput mmitpn amp / mmpretrain amp: '
                  f'{result["img_per_s"] / amp_reference["img_per_s"]:.2f}x')
        full = results.get(('mmitpn-full', precision))
        if which == 'mmitpn' and full is not None:
            print(f'step time masked / full encoding ({precision}): '
                  f'{full["img_per_s"] / result["img_per_s"]:.2f}x')


if __name__ == '__main__':
    run_tool(main)
