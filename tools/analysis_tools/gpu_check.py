# Copyright (c) mmitpn contributors. All rights reserved.
"""One-shot GPU check: full-size mixed-precision steps of every path a
cluster runs, in one table (under 8 minutes on one H100).

Checks, each at the config's full size and per-GPU batch, with mmengine's
``AmpOptimWrapper`` in fp16 and in bf16:

- pretraining steps of the pixel, pixel + MFM and CLIP-B configs of
  iTPN-B (the CLIP teacher is an OpenAI ViT-B/16 of random weights built
  offline: same cost, nothing downloaded) and the pixel config of
  Fast-iTPN-B;
- the pretraining benchmark: mmitpn against mmpretrain 1.2.0's iTPN on
  the mmpretrain-compatible config (same network), same batch;
- one Mask R-CNN step at 1344x800 (batch 2) of the shipped iTPN-B and
  Fast-iTPN-B configs and one UperNet step at 512x512 (batch 2) of
  iTPN-B's.

Each row: images per second, peak allocated memory, FLOPs per step
(PyTorch's FLOP counter) and model FLOP utilisation against the GPU's dense
fp16/bf16 tensor-core peak (nominal for known GPUs, else the measured
matrix-product peak, which is printed too).

``--dry-run`` (any machine, the test on CPU) builds every model and
optimizer at full size and runs one step of each on a batch of 2
(detection at 192x128, segmentation at 128x128), in fp32 without a GPU:
every code path of the GPU run is exercised before device time is spent.

Example::

    python tools/analysis_tools/gpu_check.py            # on the GPU machine
    python tools/analysis_tools/gpu_check.py --dry-run  # CPU
"""
import argparse
import gc
import os.path as osp
import sys
import tempfile
import time
import traceback
from typing import Callable, List, Optional, Tuple

import torch
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope

from mmitpn.utils.cli import add_debug_argument, run_tool

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
import benchmark_downstream as downstream  # noqa: E402
import benchmark_pretrain as pretrain_bench  # noqa: E402

REPO = downstream.REPO
PRETRAIN = osp.join(REPO, 'configs', 'pretrain')
PRETRAIN_CONFIGS = {
    'pixel itpn-base':
    'itpn-pixel_itpn-base_64xb64-amp-coslr-1600e_in1k.py',
    'pixel+mfm itpn-base':
    'itpn-pixel-mfm_itpn-base_64xb64-amp-coslr-400e_in1k.py',
    'clip-b itpn-base':
    'itpn-clip-b_itpn-base_64xb32-amp-coslr-300e_in1k.py',
    'pixel fast-itpn-base':
    'fast-itpn-pixel_fast-itpn-base_64xb64-amp-coslr-1600e_in1k.py',
}
DOWNSTREAM_CASES = ('mask-rcnn itpn-base', 'mask-rcnn fast-itpn-base',
                    'upernet itpn-base')
MMPRETRAIN_COMPATIBLE = ('itpn-pixel_mmpretrain-base-dec6_64xb64-amp-coslr-'
                         '400e_in1k.py')
# Dense tensor-core peaks (TFLOP/s, no sparsity) from the vendor sheets.
NOMINAL_PEAKS = {
    'H100 80GB HBM3': 989.4,
    'H100 PCIe': 756.0,
    'H200': 989.4,
    'A100': 312.0,
}
DTYPES = {'fp16': torch.float16, 'bf16': torch.bfloat16}
DRY_RUN_SIZES = dict(det=(128, 192), seg=(128, 128))


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
    add_debug_argument(parser)
    return parser.parse_args()


def device() -> torch.device:
    return torch.device('cuda' if torch.cuda.is_available() else 'cpu')


def amp_wrapper(optim_wrapper: dict, dtype: str, dry_run: bool) -> dict:
    wrapper = dict(optim_wrapper)
    for key in ('loss_scale', 'dtype', 'device_type'):
        wrapper.pop(key, None)
    if dry_run and not torch.cuda.is_available():
        # AmpOptimWrapper refuses to build without a GPU.
        wrapper['type'] = 'OptimWrapper'
        return wrapper
    wrapper.update(type='AmpOptimWrapper', loss_scale='dynamic', dtype=dtype)
    return wrapper


def random_clip_teacher(folder: str, model_name: str) -> str:
    """An OpenAI-architecture CLIP image tower with random weights."""
    import open_clip
    from open_clip.model import _build_vision_tower
    config = open_clip.get_model_config(model_name)
    tower = _build_vision_tower(
        config['embed_dim'],
        config['vision_cfg'],
        quick_gelu=config.get('quick_gelu', False))
    path = osp.join(folder, f'{model_name}-random.pth')
    torch.save({f'visual.{k}': v for k, v in tower.state_dict().items()}, path)
    return path


def masks_for(grid: Tuple[int, int], batch: int, masked: int = 75) -> list:
    from mmpretrain.structures import DataSample
    samples = []
    for _ in range(batch):
        mask = torch.zeros(grid, dtype=torch.bool)
        mask.view(-1)[torch.randperm(grid[0] * grid[1])[:masked]] = True
        sample = DataSample()
        sample.set_field(mask, 'mask')
        samples.append(sample)
    return samples


def pretraining_step(config: str,
                     dtype: str,
                     folder: str,
                     dry_run: bool,
                     which: str = 'mmitpn'):
    """(model, optim wrapper, step function, images per step)."""
    from mmitpn.utils import adapt_cfg_to_device
    cfg = adapt_cfg_to_device(Config.fromfile(osp.join(PRETRAIN, config)))
    if 'teacher' in cfg.model:
        cfg.model.teacher.ckpt = random_clip_teacher(
            folder, cfg.model.teacher.model_name)
    model, loss_fn = pretrain_bench.build(cfg, which)
    model.to(device()).train()
    wrapper_cfg = pretrain_bench.mmpretrain_optim_wrapper(cfg) \
        if which == 'mmpretrain' else cfg.optim_wrapper
    with DefaultScope.overwrite_default_scope('mmitpn'):
        optim_wrapper = build_optim_wrapper(
            model, amp_wrapper(wrapper_cfg, dtype, dry_run))
    batch = 2 if dry_run else cfg.train_dataloader.batch_size
    size = cfg.model.backbone.get('img_size', 224)
    images = torch.randn(batch, 3, size, size, device=device())
    if 'teacher' in cfg.model:
        grid = (size // 16, size // 16)
        views = [images, torch.rand_like(images)]
        samples = masks_for(grid, batch)

        def loss_fn(_):
            return model.loss(views, samples)

    def step():
        with optim_wrapper.optim_context(model):
            losses = loss_fn(images)
        optim_wrapper.update_params(
            sum(v for k, v in losses.items() if 'loss' in k))

    return model, step, batch


def downstream_step(name: str, dtype: str, dry_run: bool):
    case = downstream.CASES[name]
    cfg = downstream.load_case_config(case, tiny=False)
    scope = cfg.get('default_scope', 'mmitpn')
    with DefaultScope.overwrite_default_scope(scope):
        from mmengine.registry import MODELS
        model = MODELS.build(cfg.model).to(device()).train()
        optim_wrapper = build_optim_wrapper(
            model, amp_wrapper(cfg.optim_wrapper, dtype, dry_run))
    batch = 2
    size = case['size']
    if dry_run:
        size = DRY_RUN_SIZES[case['task']]
        if case['task'] == 'seg':
            model.data_preprocessor.size = size
    make_inputs = downstream.INPUTS[case['task']]

    def step():
        data = make_inputs(model, size, batch, True)
        with optim_wrapper.optim_context(model):
            losses = model(**data, mode='loss')
        loss, _ = model.parse_losses(losses)
        optim_wrapper.update_params(loss)

    return model, step, batch


def synchronize() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def measure(step: Callable, batch: int, iters: int, warmup: int) -> dict:
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as counter:
        step()
    for _ in range(warmup):
        step()
    synchronize()
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(iters):
        step()
    synchronize()
    seconds = (time.perf_counter() - start) / iters
    peak = torch.cuda.max_memory_allocated() / 2**30 \
        if torch.cuda.is_available() else float('nan')
    return dict(
        img_per_s=batch / seconds,
        step_s=seconds,
        tflop_per_step=counter.get_total_flops() / 1e12,
        peak_gb=peak)


def tensor_core_peak(dtype: str) -> Tuple[float, str]:
    """(TFLOP/s, where it comes from) for the GPU at hand."""
    name = torch.cuda.get_device_name()
    for key, value in NOMINAL_PEAKS.items():
        if key in name:
            return value, f'nominal {key}'
    size = 8192
    a = torch.randn(size, size, device='cuda', dtype=DTYPES[dtype])
    for _ in range(3):
        a @ a
    synchronize()
    start = time.perf_counter()
    for _ in range(20):
        a @ a
    synchronize()
    return (2 * size**3 * 20 / (time.perf_counter() - start) / 1e12,
            'measured matmul')


def checks(args) -> List[Tuple[str, str, Callable]]:
    """(row name, dtype, builder returning (model, step, batch))."""
    rows = []
    folder = tempfile.mkdtemp(prefix='gpu_check_')
    # A dry run builds the same models for every dtype: once is enough.
    for dtype in args.dtypes[:1] if args.dry_run else args.dtypes:
        for name, config in PRETRAIN_CONFIGS.items():
            rows.append((f'pretrain {name}', dtype, lambda c=config, d=dtype:
                         pretraining_step(c, d, folder, args.dry_run)))
        for which in ('mmitpn', 'mmpretrain'):
            rows.append(
                (f'pretrain benchmark {which} (mmpretrain-base)', dtype,
                 lambda w=which, d=dtype: pretraining_step(
                     MMPRETRAIN_COMPATIBLE, d, folder, args.dry_run, which=w)))
        for name in DOWNSTREAM_CASES:
            rows.append(
                (f'{name} ({"1344x800" if "mask" in name else "512"})', dtype,
                 lambda n=name, d=dtype: downstream_step(n, d, args.dry_run)))
    return rows


def main():
    args = parse_args()
    import mmitpn  # noqa: F401
    MessageHub.get_current_instance().update_info('max_iters', 1000)
    if not args.dry_run and not torch.cuda.is_available():
        raise SystemExit('No CUDA device: run on the GPU machine, or pass '
                         '--dry-run to build everything on this one.')
    peaks = {}
    if not args.dry_run:
        print(f'GPU: {torch.cuda.get_device_name()}; torch {torch.__version__}'
              f'; {args.iters} timed steps after {args.warmup}')
        for dtype in args.dtypes:
            peaks[dtype] = tensor_core_peak(dtype)
            print(f'{dtype} peak: {peaks[dtype][0]:.0f} TFLOP/s '
                  f'({peaks[dtype][1]})')
    print('| check | dtype | batch | img/s | step (s) | TFLOP/step | MFU | '
          'peak memory (GB) |')
    print('|---|---|---|---|---|---|---|---|')
    failures = 0
    for name, dtype, build in checks(args):
        model: Optional[torch.nn.Module] = None
        step = None
        try:
            model, step, batch = build()
            if args.dry_run:
                start = time.perf_counter()
                step()
                params = sum(p.numel() for p in model.parameters()) / 1e6
                print(
                    f'| {name} | {dtype} | {batch} | built ({params:.1f} M '
                    'parameters), one step in '
                    f'{time.perf_counter() - start:.1f} s | | | | |',
                    flush=True)
                continue
            result = measure(step, batch, args.iters, args.warmup)
            mfu = result['tflop_per_step'] / result['step_s'] / \
                peaks[dtype][0]
            print(
                f'| {name} | {dtype} | {batch} | '
                f'{result["img_per_s"]:.1f} | {result["step_s"]:.3f} | '
                f'{result["tflop_per_step"]:.2f} | {100 * mfu:.1f} % | '
                f'{result["peak_gb"]:.1f} |',
                flush=True)
        except Exception:  # one broken path must not hide the others
            failures += 1
            print(
                f'| {name} | {dtype} | failed: '
                f'{traceback.format_exc().strip().splitlines()[-1]} |',
                flush=True)
            traceback.print_exc(file=sys.stderr)
        finally:
            model = step = None
            gc.collect()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
    if failures:
        raise SystemExit(f'{failures} check(s) failed.')


if __name__ == '__main__':
    run_tool(main)
