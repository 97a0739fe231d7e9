# Copyright (c) mmitpn contributors. All rights reserved.
"""The GPU check: full-size mixed-precision training steps of every path a
cluster runs, one row each, within a time limit, written as they finish.

The rows (:func:`gpu_checks`), in this order so that a time limit still
leaves the most informative numbers, bf16 before fp16:

1. the pretraining benchmark: mmitpn against mmpretrain 1.2.0's iTPN on the
   mmpretrain-compatible config (same network, same batch);
2. pretraining steps of the pixel, pixel + MFM and CLIP-B configs of iTPN-B
   (the CLIP teacher of random weights: :func:`~.pretrain.random_clip_teacher`)
   and the pixel config of Fast-iTPN-B;
3. one ImageNet-1K fine-tuning step of iTPN-B at 224 (mixup / cutmix);
4. one Mask R-CNN step at 1344x800 of iTPN-B and Fast-iTPN-B and one UperNet
   step at 512x512 of iTPN-B (short: no compiling), skipped with the reason
   without mmcv's compiled ops (mmdet and mmseg import ``mmcv.ops``);
5. the pretraining steps of 1. and 2. again, compiled as mmengine's
   ``compile=True`` compiles them (:data:`COMPILE_OPTIONS`), the compile time
   apart from the step time (compiling takes the longest, so these come
   last within the dtype).
"""
import datetime
import gc
import importlib.util
import json
import math
import os.path as osp
import platform
import sys
import time
import traceback
from dataclasses import dataclass, replace
from functools import partial
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.config import Config
from mmengine.utils.dl_utils import mmcv_full_available

from mmitpn.utils import adapt_cfg_to_device, write_atomically
from . import downstream
from .pretrain import pretraining_step, random_clip_teacher
from .utils import (describe_machine, matmul_flops, peak_memory_mb,
                    reset_peak_memory, synchronize, time_steps)

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
# A dry run compiles this small model (``make demo``'s) instead, with
# dynamo's capture and AOTAutograd but no code generation (which is the
# device's own: Triton on a GPU): compiling a full-size pretraining step
# takes minutes on a CPU, generating the demo model's C++ kernels too.
DRY_RUN_COMPILED = {
    'pixel hivit-demo':
    'demo/itpn-pixel_hivit-demo_1xb128-coslr-3e_objects-64px.py'
}
DRY_RUN_COMPILE_OPTIONS = dict(backend='aot_eager')
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
# mmengine's ``compile=True`` (``Runner(compile=True)``, ``cfg.compile =
# True``): ``torch.compile`` of the training step with its default options
# (the inductor backend).
COMPILE_OPTIONS: dict = {}
DRY_RUN_SIZES = dict(det=(128, 192), seg=(128, 128), cls=(224, 224))
# The profiler's names of the scaled-dot-product attention kernels.
ATTENTION_KERNELS = {
    'aten::_scaled_dot_product_flash_attention': 'flash',
    'aten::_scaled_dot_product_flash_attention_for_cpu': 'flash (CPU)',
    'aten::_scaled_dot_product_efficient_attention': 'memory-efficient',
    'aten::_scaled_dot_product_cudnn_attention': 'cuDNN',
    'aten::_scaled_dot_product_attention_math': 'math',
}
COLUMNS = ('check', 'dtype', 'mode', 'batch', 'img/s', 'step (s)',
           'compile (s)', 'TFLOP/step', 'MFU', 'peak memory (GB)', 'attention',
           'note')

# (model, step function, images per step)
Built = Tuple[torch.nn.Module, Callable[[], None], int]


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
    """A check that runs wherever the GPU check runs."""


@dataclass
class Check:
    """One row: ``build()`` returns (model, step function, images per
    step); ``missing()`` the reason it cannot run here, or ``None``;
    ``compiled``: the step is timed compiled (:func:`compile_step`, with
    ``compile_options``, default :data:`COMPILE_OPTIONS`)."""
    name: str
    dtype: str
    build: Callable[[], Built]
    missing: Callable[[], Optional[str]] = no_reason
    compiled: bool = False
    compile_options: Optional[dict] = None

    @property
    def mode(self) -> str:
        if not self.compiled:
            return 'eager'
        backend = (self.compile_options or {}).get('backend')
        return f'compiled ({backend})' if backend else 'compiled'


def compile_step(step: Callable, options: Optional[dict] = None) -> Callable:
    """``step`` compiled as mmengine 0.10.7 compiles a model's ``train_step``
    for ``Runner(compile=options or True)``: ``torch.compile(step,
    **options)`` (default: :data:`COMPILE_OPTIONS`), lazily (the first call
    traces the step and generates its code).

    A pretraining step of this check (forward, backward and optimizer
    update of a ready-made batch) is what ``train_step`` runs after the data
    preprocessor.
    """
    return torch.compile(step,
                         **(COMPILE_OPTIONS if options is None else options))


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
    """``AmpOptimWrapper`` in ``dtype`` (fp32 for a dry run without a GPU,
    where ``AmpOptimWrapper`` refuses to build)."""
    wrapper = dict(optim_wrapper)
    for key in ('loss_scale', 'dtype', 'device_type'):
        wrapper.pop(key, None)
    if dry_run and not torch.cuda.is_available():
        wrapper['type'] = 'OptimWrapper'
        return wrapper
    wrapper.update(type='AmpOptimWrapper', loss_scale='dynamic', dtype=dtype)
    return wrapper


def pretrain_check(config: str, dtype: str, folder: str, dry_run: bool,
                   run: str) -> Built:
    """A pretraining step at the config's per-GPU batch (2 in a dry run)."""
    cfg = adapt_cfg_to_device(Config.fromfile(config))
    if 'teacher' in cfg.model:
        random_clip_teacher(cfg, folder)
    batch = 2 if dry_run else cfg.train_dataloader.batch_size
    model, step = pretraining_step(
        cfg, run, batch, partial(amp_wrapper, dtype=dtype, dry_run=dry_run))
    return model, step, batch


def downstream_check(name: str, config_dir: str, dtype: str,
                     dry_run: bool) -> Built:
    """A training step of a downstream case at its config's per-GPU batch
    (2 in a dry run, at :data:`DRY_RUN_SIZES`)."""
    case = downstream.CASES[name]
    task = case['task']
    cfg = downstream.load_case_config(case, config_dir, tiny=False)
    batch = 2 if dry_run else cfg.train_dataloader.batch_size
    size = DRY_RUN_SIZES[task] if dry_run else downstream.SIZES[task]
    model, step, _ = downstream.case_steps(
        task, cfg, size, batch,
        partial(amp_wrapper, dtype=dtype, dry_run=dry_run))
    return model, step, batch


def gpu_checks(config_dir: str,
               folder: str,
               dtypes: Sequence[str],
               dry_run: bool,
               compiled: bool = True) -> List[Check]:
    """Every row, the most informative first (see the module docstring).

    Args:
        config_dir: mmitpn's ``configs/`` folder.
        folder: Where the random CLIP teacher is saved.
        dtypes: Keys of :data:`DTYPES`, in the order to run.
        dry_run: Build at full size, step on a batch of 2; one dtype only
            (fp32 without a GPU); compile only :data:`DRY_RUN_COMPILED`,
            with :data:`DRY_RUN_COMPILE_OPTIONS`.
        compiled: Add the compiled pretraining rows.
    """
    rows = []
    if dry_run:
        dtypes = list(dtypes)[:1] if torch.cuda.is_available() else ['fp32']
    pretrain = partial(osp.join, config_dir, 'pretrain')
    for dtype in dtypes:
        pretraining = []
        for run in ('mmitpn', 'mmpretrain'):
            pretraining.append(
                Check(
                    BENCHMARK.format(run), dtype,
                    partial(pretrain_check, pretrain(MMPRETRAIN_COMPATIBLE),
                            dtype, folder, dry_run, run)))
        for name, config in PRETRAIN_CONFIGS.items():
            pretraining.append(
                Check(
                    f'pretrain {name}',
                    dtype,
                    partial(pretrain_check, pretrain(config), dtype, folder,
                            dry_run, 'mmitpn'),
                    missing=partial(missing_module, 'open_clip',
                                    'open_clip_torch')
                    if 'clip' in name else no_reason))
        rows += pretraining
        rows.append(
            Check(
                f'{FINETUNE_CASE} (IN-1K, 224)', dtype,
                partial(downstream_check, FINETUNE_CASE, config_dir, dtype,
                        dry_run)))
        for name in DOWNSTREAM_CASES:
            package = 'mmdet' if 'mask' in name else 'mmsegmentation'
            module = package.replace('mentation', '')
            rows.append(
                Check(
                    f'{name} ({"1344x800" if "mask" in name else "512"})',
                    dtype,
                    partial(downstream_check, name, config_dir, dtype,
                            dry_run),
                    missing=partial(missing_mmcv_ops, module, package)))
        if compiled and dry_run:
            rows += [
                Check(
                    f'pretrain {name}',
                    dtype,
                    partial(pretrain_check, pretrain(config), dtype, folder,
                            dry_run, 'mmitpn'),
                    compiled=True,
                    compile_options=DRY_RUN_COMPILE_OPTIONS)
                for name, config in DRY_RUN_COMPILED.items()
            ]
        elif compiled:
            rows += [replace(check, compiled=True) for check in pretraining]
    return rows


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


def measure(step: Callable[[], None],
            batch: int,
            iters: int,
            warmup: int,
            deadline: Deadline,
            flop_step: Optional[Callable[[], None]] = None) -> dict:
    """Time ``step``: one FLOP-counted step (of ``flop_step``, the same
    computation uncompiled, when given) and ``warmup`` untimed steps (their
    total wall time kept), then up to ``iters`` timed ones (fewer, at least
    one, past the deadline)."""
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as counter:
        (flop_step or step)()
    synchronize()
    start = time.perf_counter()
    warmup_steps = 0
    for _ in range(warmup):
        if deadline.expired():
            break
        step()
        warmup_steps += 1
    synchronize()
    warmup_s = time.perf_counter() - start
    reset_peak_memory()
    times = time_steps(step, iters, stop=deadline.expired)
    seconds = sum(times) / len(times)
    return dict(
        img_per_s=batch / seconds,
        step_s=seconds,
        timed_steps=len(times),
        warmup_steps=warmup_steps,
        warmup_s=warmup_s,
        tflop_per_step=counter.get_total_flops() / 1e12,
        peak_gb=peak_memory_mb() / 1024 if torch.cuda.is_available() else None)


def first_call_seconds(step: Callable[[], None]) -> float:
    """Wall time of one call of ``step``: for a compiled step its first,
    which traces the step and generates and compiles its code."""
    synchronize()
    start = time.perf_counter()
    step()
    synchronize()
    return time.perf_counter() - start


def tensor_core_peaks(dtype: str) -> dict:
    """The GPU's dense peak for ``dtype`` in TFLOP/s: nominal (vendor sheet,
    ``None`` for an unknown GPU) and measured (8192^3 matrix products)."""
    name = torch.cuda.get_device_name()
    nominal = next(
        (value for key, value in NOMINAL_PEAKS.items() if key in name), None)
    measured = matmul_flops(DTYPES[dtype], size=8192, iters=20) / 1e12
    return dict(nominal=nominal, measured=measured)


def machine_info(peaks: dict, **settings) -> dict:
    """The versions, the device and the run's ``settings`` for the report.
    """
    import mmcv
    import mmengine
    import mmpretrain
    info = dict(
        started_utc=datetime.datetime.now(
            datetime.timezone.utc).strftime('%Y-%m-%d %H:%M:%S'),
        device=describe_machine(),
        python=platform.python_version(),
        torch=torch.__version__,
        mmcv=mmcv.__version__,
        mmcv_compiled_ops=mmcv_full_available(),
        mmengine=mmengine.__version__,
        mmpretrain=mmpretrain.__version__,
        **settings,
        peaks_tflops=peaks)
    if torch.cuda.is_available():
        info.update(
            cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version())
    return info


class Report:
    """The rows so far, printed as Markdown and (with ``out_dir``) written
    to ``gpu_check.json`` and ``gpu_check.md`` after every row; each file
    is replaced whole, so a run killed from outside leaves complete files.
    """

    def __init__(self, info: dict, out_dir: Optional[str]):
        self.info = info
        self.rows: List[dict] = []
        self.out_dir = out_dir
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
        cells = [
            row['check'], row['dtype'],
            row.get('mode', 'eager'),
            str(row.get('batch') or '')
        ]
        cells += [
            number('img_per_s', '.1f'),
            number('step_s', '.3f'),
            number('compile_s', '.1f'),
            number('tflop_per_step', '.2f'),
            '' if mfu is None else f'{100 * mfu:.1f} %',
            number('peak_gb', '.1f')
        ]
        cells += [row.get('attention', ''), row.get('note', '')]
        return '| ' + ' | '.join(c.replace('|', '/') for c in cells) + ' |'

    def comparisons(self) -> List[str]:
        """mmitpn / mmpretrain on the same network, per dtype and mode
        measured; then each compiled step against its eager one."""
        rates = {
            (row['check'], row['dtype'], row.get('mode', 'eager')):
            row.get('img_per_s')
            for row in self.rows
        }
        lines = []
        for dtype in DTYPES:
            for mode in ('eager', 'compiled'):
                ours = rates.get((BENCHMARK.format('mmitpn'), dtype, mode))
                peer = rates.get((BENCHMARK.format('mmpretrain'), dtype, mode))
                if ours and peer:
                    shown = '' if mode == 'eager' else ', compiled'
                    lines.append(f'mmitpn / mmpretrain ({dtype}{shown}, same '
                                 f'network and batch): {ours / peer:.2f}x '
                                 'images/s')
        for (check, dtype, mode), rate in rates.items():
            eager = rates.get((check, dtype, 'eager'))
            if mode == 'compiled' and rate and eager:
                lines.append(f'compiled / eager ({check}, {dtype}): '
                             f'{rate / eager:.2f}x images/s')
        return lines

    def write(self) -> None:
        if not self.out_dir:
            return
        elapsed = time.monotonic() - self.info['_start']
        self.info['elapsed_s'] = round(elapsed, 1)
        info = {k: v for k, v in self.info.items() if not k.startswith('_')}
        data = dict(info=info, rows=self.rows, comparisons=self.comparisons())
        write_atomically(
            json.dumps(data, indent=1) + '\n',
            osp.join(self.out_dir, 'gpu_check.json'))
        lines = [f'# GPU check, {info["started_utc"]} UTC', '']
        lines += [f'- {key}: {value}' for key, value in info.items()]
        lines += ['', '| ' + ' | '.join(COLUMNS) + ' |']
        lines += ['|' + '---|' * len(COLUMNS)]
        lines += [self.markdown_row(row) for row in self.rows]
        lines += [''] + self.comparisons()
        write_atomically('\n'.join(lines) + '\n',
                         osp.join(self.out_dir, 'gpu_check.md'))


def run_check(check: Check, iters: int, warmup: int, dry_run: bool,
              deadline: Deadline, peaks: dict) -> dict:
    """One row's result (raises what the check raises)."""
    row = dict(check=check.name, dtype=check.dtype, mode=check.mode)
    model: Optional[torch.nn.Module] = None
    step = eager_step = None
    first_call_s = 0.0
    try:
        model, step, batch = check.build()
        row['batch'] = batch
        if check.compiled:
            eager_step = step
            step = compile_step(step, check.compile_options)
            first_call_s = first_call_seconds(step)
        if dry_run:
            compiled = ''
            if check.compiled:
                # The second step recompiles (the first created the
                # optimizer's state): the profiled step is the third.
                row['compile_s'] = first_call_s + first_call_seconds(step)
                compiled = f'compiled in {row["compile_s"]:.1f} s (two ' \
                    'steps), '
            row['attention'], seconds = attention_kernels(step)
            params = sum(p.numel() for p in model.parameters()) / 1e6
            row.update(
                status='built',
                note=f'built ({params:.1f} M parameters), {compiled}one step '
                f'in {seconds:.1f} s')
            return row
        row.update(
            measure(
                step, batch, iters, warmup, deadline, flop_step=eager_step))
        if check.compiled:
            # Compiling (and recompiling, e.g. once the optimizer has state)
            # beyond the time of the steps themselves.
            untimed_steps = 1 + row['warmup_steps']
            row['compile_s'] = first_call_s + row['warmup_s'] - \
                untimed_steps * row['step_s']
        row['attention'], _ = attention_kernels(step)
        peak = peaks[check.dtype]['nominal'] or peaks[check.dtype]['measured']
        row.update(
            status='ok',
            mfu=row['tflop_per_step'] / row['step_s'] / peak,
            note='' if row['timed_steps'] == iters else
            f'{row["timed_steps"]} of {iters} timed steps (time limit)')
        return row
    finally:
        model = step = eager_step = None
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def run_checks(checks: List[Check],
               report: Report,
               deadline: Deadline,
               peaks: dict,
               iters: int = 10,
               warmup: int = 3,
               dry_run: bool = False,
               min_check_time: float = 20.0) -> int:
    """Run, skip or leave out each check in order, adding its row to
    ``report``; the number that failed. No check starts with less than
    ``min_check_time`` seconds left."""
    failures = 0
    for check in checks:
        row = dict(check=check.name, dtype=check.dtype, mode=check.mode)
        reason = check.missing()
        if reason:
            report.add(dict(row, status='skipped', note=reason))
            continue
        if deadline.left() < min_check_time:
            report.add(
                dict(
                    row,
                    status='not run',
                    note=f'time limit: {max(deadline.left(), 0):.0f} s of '
                    f'{deadline.seconds:g} s left'))
            continue
        try:
            report.add(
                run_check(check, iters, warmup, dry_run, deadline, peaks))
        except Exception:  # one broken path must not hide the others
            failures += 1
            last = traceback.format_exc().strip().splitlines()[-1]
            report.add(dict(row, status='failed', note=f'failed: {last}'))
            traceback.print_exc(file=sys.stderr)
    return failures
