# Copyright (c) mmitpn contributors. All rights reserved.
"""One-shot GPU check: full-size mixed-precision steps of every path a
cluster runs, in one table, within a total time limit.

Checks, each at the config's full size and per-GPU batch, with mmengine's
``AmpOptimWrapper``, in this order (bf16 before fp16, so that a time limit
still leaves the most informative numbers):

1. the pretraining benchmark: mmitpn against mmpretrain 1.2.0's iTPN on the
   mmpretrain-compatible config (same network, same batch);
2. pretraining steps of the pixel, pixel + MFM and CLIP-B configs of
   iTPN-B (the CLIP teacher is an OpenAI ViT-B/16 of random weights built
   offline: same cost, nothing downloaded) and the pixel config of
   Fast-iTPN-B;
3. one ImageNet-1K fine-tuning step of iTPN-B at 224 (mixup / cutmix);
4. after both dtypes of those: one Mask R-CNN step at 1344x800 of the
   shipped iTPN-B and Fast-iTPN-B configs and one UperNet step at 512x512
   of iTPN-B's. These need mmcv's compiled ops (mmdet and mmseg import
   ``mmcv.ops`` at import time); with ``mmcv-lite`` (no ``mmcv._ext``) or
   without mmdet / mmseg they are skipped with the reason.

Each row: images per second, step time, FLOPs per step (PyTorch's FLOP
counter), model FLOP utilisation against the GPU's dense bf16/fp16 tensor-
core peak (nominal for known GPUs, else the measured matrix-product peak;
the measured one is recorded too), peak allocated memory, and the
attention kernels the step ran (read from the PyTorch profiler: flash,
memory-efficient, cuDNN or math scaled-dot-product attention).

``--time-limit`` bounds the whole run: no check starts with less than
``--min-check-time`` left, a running check stops timing at the limit (after
one timed step), and the rest are listed as not run. ``--out-dir`` gets
``gpu_check.json`` and ``gpu_check.md``, rewritten after every row, so a run
killed from outside still leaves what it measured.

``--dry-run`` (any machine, the test on CPU) builds every model and
optimizer at full size and runs one profiled step of each on a batch of 2
(detection at 192x128, segmentation at 128x128), in fp32 without a GPU:
every code path of the GPU run is exercised before device time is spent.

Example::

    python tools/analysis_tools/gpu_check.py --time-limit 360 \
        --out-dir $OUT                                 # the GPU machine
    python tools/analysis_tools/gpu_check.py --dry-run # CPU
"""
import argparse
import datetime
import gc
import importlib.util
import json
import math
import os
import os.path as osp
import platform
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from functools import partial
from typing import Callable, Dict, List, Optional, Tuple

import torch
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from mmengine.utils.dl_utils import mmcv_full_available

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
FINETUNE_CASE = 'finetune itpn-base'
DOWNSTREAM_CASES = ('mask-rcnn itpn-base', 'mask-rcnn fast-itpn-base',
                    'upernet itpn-base')
MMPRETRAIN_COMPATIBLE = ('itpn-pixel_mmpretrain-base-dec6_64xb64-amp-coslr-'
                         '400e_in1k.py')
BENCHMARK = 'pretrain benchmark {} (mmpretrain-base)'
# Dense tensor-core peaks (TFLOP/s, no sparsity) from the vendor sheets.
NOMINAL_PEAKS = {
    'H100 80GB HBM3': 989.4,
    'H100 PCIe': 756.0,
    'H200': 989.4,
    'A100': 312.0,
}
DTYPES = {'bf16': torch.bfloat16, 'fp16': torch.float16}
DRY_RUN_SIZES = dict(det=(128, 192), seg=(128, 128), cls=(224, 224))
# The profiler's names of the scaled-dot-product attention kernels.
ATTENTION_KERNELS = {
    'aten::_scaled_dot_product_flash_attention': 'flash',
    'aten::_scaled_dot_product_flash_attention_for_cpu': 'flash (CPU)',
    'aten::_scaled_dot_product_efficient_attention': 'memory-efficient',
    'aten::_scaled_dot_product_cudnn_attention': 'cuDNN',
    'aten::_scaled_dot_product_attention_math': 'math',
}
COLUMNS = ('check', 'dtype', 'batch', 'img/s', 'step (s)', 'TFLOP/step', 'MFU',
           'peak memory (GB)', 'attention', 'note')


def parse_args(argv: Optional[List[str]] = None):
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
    args = parser.parse_args(argv)
    for name in ('iters', 'warmup'):
        if getattr(args, name) < (1 if name == 'iters' else 0):
            raise ValueError(f'--{name} {getattr(args, name)}: give at least '
                             f'{1 if name == "iters" else 0}.')
    if args.time_limit is not None and args.time_limit < 0:
        raise ValueError(f'--time-limit {args.time_limit}: give seconds >= 0.')
    return args


def device() -> torch.device:
    return torch.device('cuda' if torch.cuda.is_available() else 'cpu')


def synchronize() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


class Deadline:
    """The run's time limit (``None``: none), on a monotonic clock."""

    def __init__(self, seconds: Optional[float]):
        self.seconds = seconds
        self.start = time.monotonic()

    def left(self) -> float:
        if self.seconds is None:
            return math.inf
        return self.seconds - (time.monotonic() - self.start)

    def expired(self) -> bool:
        return self.left() <= 0


def no_reason() -> None:
    """A check that runs wherever gpu_check runs."""


@dataclass
class Check:
    """One row: ``build()`` returns (model, step function, images per
    step); ``missing()`` the reason it cannot run here, or ``None``."""
    name: str
    dtype: str
    build: Callable[[], Tuple[torch.nn.Module, Callable[[], None], int]]
    missing: Callable[[], Optional[str]] = no_reason


def missing_module(module: str, package: str) -> Optional[str]:
    if importlib.util.find_spec(module) is None:
        return f'skipped: {package} is not installed'
    return None


def missing_mmcv_ops(module: str, package: str) -> Optional[str]:
    """Why a detection or segmentation check cannot run, or ``None``."""
    reason = missing_module(module, package)
    if reason is None and not mmcv_full_available():
        reason = (f'skipped: mmcv has no compiled ops (mmcv-lite, no '
                  f'mmcv._ext); {package} imports mmcv.ops at import time')
    return reason


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

    from mmitpn.models.target_generators import build_vision_tower
    config = open_clip.get_model_config(model_name)
    tower = build_vision_tower(
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
    """(model, step function, images per step)."""
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
    """(model, step function, images per step) of a downstream case at its
    config's per-GPU batch (2 in a dry run)."""
    case = downstream.CASES[name]
    cfg = downstream.load_case_config(case, tiny=False)
    model = downstream.build_case_model(cfg).train()
    with DefaultScope.overwrite_default_scope(
            cfg.get('default_scope', 'mmitpn')):
        optim_wrapper = build_optim_wrapper(
            model, amp_wrapper(cfg.optim_wrapper, dtype, dry_run))
    batch = 2 if dry_run else cfg.train_dataloader.batch_size
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


def attention_kernels(step: Callable[[], None]) -> Tuple[str, float]:
    """Run ``step`` once under the profiler: (the scaled-dot-product
    attention kernels it called, with counts; its wall time in seconds)."""
    from torch.profiler import ProfilerActivity, profile
    start = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
        synchronize()
    seconds = time.perf_counter() - start
    counts: Dict[str, int] = {}
    for event in prof.key_averages():
        label = ATTENTION_KERNELS.get(event.key)
        if label:
            counts[label] = counts.get(label, 0) + event.count
    if not counts:
        return 'no scaled_dot_product_attention call', seconds
    return ', '.join(f'{label} x{n}'
                     for label, n in sorted(counts.items())), seconds


def measure(step: Callable, batch: int, iters: int, warmup: int,
            deadline: Deadline) -> dict:
    """Time ``step``: one FLOP-counted and ``warmup`` untimed steps, then
    up to ``iters`` timed ones (fewer, at least one, past the deadline)."""
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as counter:
        step()
    for _ in range(warmup):
        if deadline.expired():
            break
        step()
    synchronize()
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    timed = 0
    start = time.perf_counter()
    while timed < iters and (timed == 0 or not deadline.expired()):
        step()
        timed += 1
    synchronize()
    seconds = (time.perf_counter() - start) / timed
    peak = torch.cuda.max_memory_allocated() / 2**30 \
        if torch.cuda.is_available() else None
    return dict(
        img_per_s=batch / seconds,
        step_s=seconds,
        timed_steps=timed,
        tflop_per_step=counter.get_total_flops() / 1e12,
        peak_gb=peak)


def tensor_core_peaks(dtype: str) -> dict:
    """The GPU's dense peak for ``dtype`` in TFLOP/s: nominal (vendor sheet,
    ``None`` for an unknown GPU) and measured (8192^3 matrix products)."""
    name = torch.cuda.get_device_name()
    nominal = next(
        (value for key, value in NOMINAL_PEAKS.items() if key in name), None)
    size = 8192
    a = torch.randn(size, size, device='cuda', dtype=DTYPES[dtype])
    for _ in range(3):
        a @ a
    synchronize()
    start = time.perf_counter()
    for _ in range(20):
        a @ a
    synchronize()
    measured = 2 * size**3 * 20 / (time.perf_counter() - start) / 1e12
    return dict(nominal=nominal, measured=measured)


def checks(args, folder: str) -> List[Check]:
    """Every row, the most informative first (see the module docstring)."""
    rows = []
    # A dry run builds the same models for every dtype: once is enough (in
    # fp32 without a GPU, where AmpOptimWrapper cannot run).
    dtypes = args.dtypes
    if args.dry_run:
        dtypes = args.dtypes[:1] if torch.cuda.is_available() else ['fp32']
    for dtype in dtypes:
        for which in ('mmitpn', 'mmpretrain'):
            rows.append(
                Check(
                    BENCHMARK.format(which),
                    dtype,
                    lambda w=which, d=dtype: pretraining_step(
                        MMPRETRAIN_COMPATIBLE, d, folder, args.dry_run, w)))
        for name, config in PRETRAIN_CONFIGS.items():
            rows.append(
                Check(
                    f'pretrain {name}',
                    dtype,
                    lambda c=config, d=dtype: pretraining_step(
                        c, d, folder, args.dry_run),
                    missing=partial(missing_module, 'open_clip',
                                    'open_clip_torch')
                    if 'clip' in name else no_reason))
        rows.append(
            Check(
                f'{FINETUNE_CASE} (IN-1K, 224)',
                dtype,
                lambda d=dtype: downstream_step(FINETUNE_CASE, d, args.dry_run)
            ))
    for dtype in dtypes:
        for name in DOWNSTREAM_CASES:
            package = 'mmdet' if 'mask' in name else 'mmsegmentation'
            module = package.replace('mentation', '')
            rows.append(
                Check(
                    f'{name} ({"1344x800" if "mask" in name else "512"})',
                    dtype,
                    lambda n=name, d=dtype: downstream_step(
                        n, d, args.dry_run),
                    missing=partial(missing_mmcv_ops, module, package)))
    return rows


def machine_info(args, peaks: dict) -> dict:
    import mmcv
    import mmengine
    import mmpretrain
    info = dict(
        started_utc=datetime.datetime.now(
            datetime.timezone.utc).strftime('%Y-%m-%d %H:%M:%S'),
        python=platform.python_version(),
        torch=torch.__version__,
        mmcv=mmcv.__version__,
        mmcv_compiled_ops=mmcv_full_available(),
        mmengine=mmengine.__version__,
        mmpretrain=mmpretrain.__version__,
        dry_run=args.dry_run,
        iters=args.iters,
        warmup=args.warmup,
        time_limit_s=args.time_limit,
        peaks_tflops=peaks)
    if torch.cuda.is_available():
        info.update(
            device=torch.cuda.get_device_name(),
            cuda=torch.version.cuda,
            cudnn=torch.backends.cudnn.version())
    else:
        from mmitpn.utils import describe_cpu
        info['device'] = (f'{platform.machine()} CPU ({describe_cpu()}), '
                          f'{torch.get_num_threads()} threads')
    return info


class Report:
    """The rows so far, printed as Markdown and (with ``out_dir``) written
    to ``gpu_check.json`` and ``gpu_check.md`` after every row."""

    def __init__(self, info: dict, out_dir: Optional[str]):
        self.info = info
        self.rows: List[dict] = []
        self.out_dir = out_dir
        if out_dir:
            os.makedirs(out_dir, exist_ok=True)
        print('| ' + ' | '.join(COLUMNS) + ' |')
        print('|' + '---|' * len(COLUMNS), flush=True)

    def add(self, row: dict) -> None:
        self.rows.append(row)
        print(self.markdown_row(row), flush=True)
        self.write()

    @staticmethod
    def markdown_row(row: dict) -> str:

        def number(key, fmt):
            value = row.get(key)
            return '' if value is None else format(value, fmt)

        mfu = row.get('mfu')
        cells = [row['check'], row['dtype'], str(row.get('batch') or '')]
        cells += [
            number('img_per_s', '.1f'),
            number('step_s', '.3f'),
            number('tflop_per_step', '.2f'),
            '' if mfu is None else f'{100 * mfu:.1f} %',
            number('peak_gb', '.1f')
        ]
        cells += [row.get('attention', ''), row.get('note', '')]
        return '| ' + ' | '.join(c.replace('|', '/') for c in cells) + ' |'

    def comparisons(self) -> List[str]:
        """mmitpn / mmpretrain on the same network, per dtype measured."""
        lines = []
        for dtype in DTYPES:
            rates = {
                row['check']: row.get('img_per_s')
                for row in self.rows if row['dtype'] == dtype
            }
            ours = rates.get(BENCHMARK.format('mmitpn'))
            peer = rates.get(BENCHMARK.format('mmpretrain'))
            if ours and peer:
                lines.append(f'mmitpn / mmpretrain ({dtype}, same network '
                             f'and batch): {ours / peer:.2f}x images/s')
        return lines

    def write(self) -> None:
        if not self.out_dir:
            return
        elapsed = time.monotonic() - self.info['_start']
        self.info['elapsed_s'] = round(elapsed, 1)
        info = {k: v for k, v in self.info.items() if not k.startswith('_')}
        data = dict(info=info, rows=self.rows, comparisons=self.comparisons())
        self._replace('gpu_check.json', json.dumps(data, indent=1) + '\n')
        lines = [f'# GPU check, {info["started_utc"]} UTC', '']
        lines += [f'- {key}: {value}' for key, value in info.items()]
        lines += ['', '| ' + ' | '.join(COLUMNS) + ' |']
        lines += ['|' + '---|' * len(COLUMNS)]
        lines += [self.markdown_row(row) for row in self.rows]
        lines += [''] + self.comparisons()
        self._replace('gpu_check.md', '\n'.join(lines) + '\n')

    def _replace(self, name: str, text: str) -> None:
        path = osp.join(self.out_dir, name)
        with open(path + '.tmp', 'w') as file:
            file.write(text)
        os.replace(path + '.tmp', path)


def run_check(check: Check, args, deadline: Deadline, peaks: dict) -> dict:
    """One row's result (raises what the check raises)."""
    row = dict(check=check.name, dtype=check.dtype)
    model: Optional[torch.nn.Module] = None
    step = None
    try:
        model, step, batch = check.build()
        row['batch'] = batch
        if args.dry_run:
            row['attention'], seconds = attention_kernels(step)
            params = sum(p.numel() for p in model.parameters()) / 1e6
            row.update(
                status='built',
                note=f'built ({params:.1f} M parameters), one step in '
                f'{seconds:.1f} s')
            return row
        row.update(measure(step, batch, args.iters, args.warmup, deadline))
        row['attention'], _ = attention_kernels(step)
        peak = peaks[check.dtype]['nominal'] or peaks[check.dtype]['measured']
        row.update(
            status='ok',
            mfu=row['tflop_per_step'] / row['step_s'] / peak,
            note='' if row['timed_steps'] == args.iters else
            f'{row["timed_steps"]} of {args.iters} timed steps (time limit)')
        return row
    finally:
        model = step = None
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def run_checks(rows: List[Check], args, deadline: Deadline, peaks: dict,
               report: Report) -> int:
    """Run, skip or leave out each check in order; the number failed."""
    failures = 0
    for check in rows:
        row = dict(check=check.name, dtype=check.dtype)
        reason = check.missing()
        if reason:
            report.add(dict(row, status='skipped', note=reason))
            continue
        if deadline.left() < args.min_check_time:
            report.add(
                dict(
                    row,
                    status='not run',
                    note=f'time limit: {max(deadline.left(), 0):.0f} s of '
                    f'{args.time_limit:g} s left'))
            continue
        try:
            report.add(run_check(check, args, deadline, peaks))
        except Exception:  # one broken path must not hide the others
            failures += 1
            last = traceback.format_exc().strip().splitlines()[-1]
            report.add(dict(row, status='failed', note=f'failed: {last}'))
            traceback.print_exc(file=sys.stderr)
    return failures


def main(argv: Optional[List[str]] = None):
    args = parse_args(argv)
    deadline = Deadline(args.time_limit)
    import mmitpn  # noqa: F401
    MessageHub.get_current_instance().update_info('max_iters', 1000)
    if not args.dry_run and not torch.cuda.is_available():
        raise SystemExit('No CUDA device: run on the GPU machine, or pass '
                         '--dry-run to build everything on this one.')
    peaks = {}
    if not args.dry_run:
        for dtype in args.dtypes:
            peaks[dtype] = tensor_core_peaks(dtype)
    info = machine_info(args, peaks)
    info['_start'] = deadline.start
    print('; '.join(f'{k}: {v}' for k, v in info.items()
                    if not k.startswith('_')))
    report = Report(info, args.out_dir)
    with tempfile.TemporaryDirectory(prefix='gpu_check_') as folder:
        failures = run_checks(
            checks(args, folder), args, deadline, peaks, report)
    for line in report.comparisons():
        print(line)
    info['finished'] = True
    report.write()
    if failures:
        raise SystemExit(f'{failures} check(s) failed.')


if __name__ == '__main__':
    run_tool(main)
