# Copyright (c) mmitpn contributors. All rights reserved.
"""Benchmark full-size downstream training steps and inference.

For each case (a shipped mmitpn config, or a peer of the same size from
mmdet / mmseg / mmpretrain's own configs) one worker process builds the
model at full size (no pretrained weights are loaded), runs ``--warmup``
untimed and ``--iters`` timed training steps (forward, backward and the
config's own optimizer) on random inputs of the recipe's largest training
size, then as many inferences, and reports the median step time
and the process's peak resident memory (CPU) or peak allocated memory
(GPU). Every case runs in its own process, so peaks are not shared.

Cases (``--cases``, default ``base``):

- Mask R-CNN and Cascade Mask R-CNN at 1344x800 (the largest multi-scale
  training size, padded to 32) for iTPN-B, against Swin-B in mmdet's own
  Mask R-CNN / Cascade Mask R-CNN configs (mmdet ships Swin-T/S Mask R-CNN
  configs: its Swin-S config with Swin-B's backbone);
- the iTPN-B detector with ViTDet-style windows (14 units, global
  attention in blocks 5, 11, 17, 23), the documented cheaper option;
- the Fast-iTPN-B detector as shipped, with windows as iTPN-B's, and
  both with ``fused_attention=False`` (the ``(N, N)`` product the fused
  kernel avoids; what Fast-iTPN ran before the shared template);
- ``speed``: the token-reduction options of the backbone (ViTDet windows,
  windows with gathering tokens, token migration at keep 0.75 and 0.5 from
  block 6, and migration or window migration with gathering) on the
  iTPN-B and Fast-iTPN-B Mask R-CNN at 1344x800 and UperNet at 512x512,
  next to the global-attention model as shipped and Swin-B; ratios against
  both;
- the CLIP-B detector as shipped (no relative position bias, as the
  official detector) and with the global relative position bias tables it
  had before (``rel_pos_type='bias_table'``);
- UperNet at 512x512 for iTPN-B against mmseg's Swin-B UperNet;
- ImageNet fine-tuning at 224 (the config's mixup/cutmix included) for
  iTPN-B against mmpretrain's ViT-B MAE fine-tuning config;
- ``large``: the same for iTPN-L against Swin-L / ViT-L where they exist;
- ``dino``: DINO 5-scale at 1344x800 for iTPN-B and Fast-iTPN-B against
  mmdet's DINO-5scale Swin-L config with Swin-B's backbone (window 12, as
  Swin-L's), and Mask2Former at 512x512 for iTPN-B and Fast-iTPN-B against
  mmseg's Swin-S Mask2Former (mmseg's Swin-B one is at 640x640).

Example::

    python tools/analysis_tools/benchmark_downstream.py --cases base
    python tools/analysis_tools/benchmark_downstream.py --cases speed \
        --warmup 0 --iters 1 --json speed.json --resume
    python tools/analysis_tools/benchmark_downstream.py --tiny   # seconds
"""
import argparse
import json
import os
import os.path as osp
import platform
import resource
import statistics
import subprocess
import sys
import time
from typing import Dict, List, Tuple

import torch
from mmengine.config import Config
from mmengine.hub import get_config
from mmengine.logging import MessageHub
from mmengine.optim import build_optim_wrapper
from mmengine.registry import MODELS, DefaultScope

from mmitpn.utils.cli import add_debug_argument, run_tool

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _config(path: str) -> str:
    return osp.join(REPO, 'configs', path)


SWIN_B = dict(embed_dims=128, depths=[2, 2, 18, 2], num_heads=[4, 8, 16, 32])
SWIN_B_CHANNELS = [128, 256, 512, 1024]
DET_SIZE = (800, 1344)
WINDOWS = dict(window_size=14, global_blocks=(5, 11, 17, 23))
FAST_DET = _config(
    'det/fast-itpn-base_clip-l-1600e-pre_mask-rcnn_32xb2-amp-1x_coco.py')
CASES: Dict[str, dict] = {
    'mask-rcnn itpn-base':
    dict(
        task='det',
        group='base',
        config=_config(
            'det/itpn-base_pixel-1600e-pre_mask-rcnn_32xb2-amp-1x_coco.py'),
        size=DET_SIZE),
    'mask-rcnn swin-b (mmdet)':
    dict(
        task='det',
        group='base',
        config='mmdet::swin/mask-rcnn_swin-s-p4-w7_fpn_amp-ms-crop-3x_coco.py',
        swin=SWIN_B,
        neck_channels=SWIN_B_CHANNELS,
        size=DET_SIZE),
    'mask-rcnn itpn-base, windows 14 + 4 global blocks':
    dict(
        task='det',
        group='base',
        config=_config(
            'det/itpn-base_pixel-1600e-pre_mask-rcnn_32xb2-amp-1x_coco.py'),
        backbone=WINDOWS,
        size=DET_SIZE),
    'mask-rcnn fast-itpn-base':
    dict(task='det', group='base', config=FAST_DET, size=DET_SIZE),
    'mask-rcnn fast-itpn-base, unfused attention':
    dict(
        task='det',
        group='base',
        config=FAST_DET,
        backbone=dict(fused_attention=False),
        size=DET_SIZE),
    'mask-rcnn fast-itpn-base, windows 14 + 4 global blocks':
    dict(
        task='det',
        group='base',
        config=FAST_DET,
        backbone=WINDOWS,
        size=DET_SIZE),
    'mask-rcnn fast-itpn-base, windows 14 + 4 global blocks, unfused '
    'attention':
    dict(
        task='det',
        group='base',
        config=FAST_DET,
        backbone=dict(WINDOWS, fused_attention=False),
        size=DET_SIZE),
    'mask-rcnn itpn-base clip':
    dict(
        task='det',
        group='base',
        config=_config(
            'det/itpn-base_clip-b-800e-pre_mask-rcnn_32xb2-amp-1x_coco.py'),
        size=DET_SIZE),
    'mask-rcnn itpn-base clip, global rel-pos bias':
    dict(
        task='det',
        group='base',
        config=_config(
            'det/itpn-base_clip-b-800e-pre_mask-rcnn_32xb2-amp-1x_coco.py'),
        backbone=dict(rel_pos_type='bias_table'),
        size=DET_SIZE),
    'cascade itpn-base':
    dict(
        task='det',
        group='base',
        config=_config('det/itpn-base_pixel-1600e-pre_cascade-mask-rcnn_'
                       '32xb2-amp-3x_coco.py'),
        size=DET_SIZE),
    'cascade swin-b (mmdet)':
    dict(
        task='det',
        group='base',
        config='mmdet::cascade_rcnn/cascade-mask-rcnn_r50_fpn_ms-3x_coco.py',
        swin=SWIN_B,
        neck_channels=SWIN_B_CHANNELS,
        size=DET_SIZE),
    'upernet itpn-base':
    dict(
        task='seg',
        group='base',
        config=_config('seg/itpn-base_pixel-1600e-pre_upernet_8xb2-amp-160k_'
                       'ade20k-512x512.py'),
        size=(512, 512)),
    'upernet swin-b (mmseg)':
    dict(
        task='seg',
        group='base',
        config='mmseg::swin/swin-base-patch4-window7-in1k-pre_upernet_'
        '8xb2-160k_ade20k-512x512.py',
        size=(512, 512)),
    'finetune itpn-base':
    dict(
        task='cls',
        group='base',
        config=_config(
            'cls/itpn-base_pixel-1600e-pre_32xb32-amp-coslr-100e_in1k.py'),
        size=(224, 224)),
    'finetune vit-b (mmpretrain)':
    dict(
        task='cls',
        group='base',
        config='mmpretrain::mae/benchmarks/vit-base-p16_8xb128-coslr-100e_'
        'in1k.py',
        size=(224, 224)),
    'upernet itpn-large':
    dict(
        task='seg',
        group='large',
        config=_config('seg/itpn-large_pixel-1600e-pre_upernet_8xb2-amp-160k_'
                       'ade20k-512x512.py'),
        size=(512, 512)),
    'upernet swin-l (mmseg)':
    dict(
        task='seg',
        group='large',
        config='mmseg::swin/swin-large-patch4-window7-in22k-pre_upernet_'
        '8xb2-160k_ade20k-512x512.py',
        size=(512, 512)),
    'finetune itpn-large':
    dict(
        task='cls',
        group='large',
        config=_config(
            'cls/itpn-large_pixel-1600e-pre_32xb32-amp-coslr-50e_in1k.py'),
        size=(224, 224)),
    'finetune vit-l (mmpretrain)':
    dict(
        task='cls',
        group='large',
        config='mmpretrain::mae/benchmarks/vit-large-p16_8xb128-coslr-50e_'
        'in1k.py',
        size=(224, 224)),
    'mask-rcnn itpn-large':
    dict(
        task='det',
        group='large',
        config=_config(
            'det/itpn-large_pixel-1600e-pre_mask-rcnn_32xb2-amp-1x_coco.py'),
        size=DET_SIZE),
    'dino itpn-base':
    dict(
        task='det',
        group='dino',
        config=_config(
            'det/itpn-base_pixel-1600e-pre_dino-5scale_8xb2-12e_coco.py'),
        size=DET_SIZE),
    'dino fast-itpn-base':
    dict(
        task='det',
        group='dino',
        config=_config(
            'det/fast-itpn-base_clip-l-1600e-pre_dino-5scale_8xb2-12e_coco.py'
        ),
        size=DET_SIZE),
    'dino swin-b (mmdet)':
    dict(
        task='det',
        group='dino',
        config='mmdet::dino/dino-5scale_swin-l_8xb2-12e_coco.py',
        swin=SWIN_B,
        neck_channels=SWIN_B_CHANNELS,
        size=DET_SIZE),
    'mask2former itpn-base':
    dict(
        task='seg',
        group='dino',
        config=_config('seg/itpn-base_pixel-1600e-pre_mask2former_8xb2-160k_'
                       'ade20k-512x512.py'),
        size=(512, 512)),
    'mask2former fast-itpn-base':
    dict(
        task='seg',
        group='dino',
        config=_config('seg/fast-itpn-base_clip-l-1600e-pre_mask2former_'
                       '8xb2-160k_ade20k-512x512.py'),
        size=(512, 512)),
    'mask2former swin-s (mmseg)':
    dict(
        task='seg',
        group='dino',
        config='mmseg::mask2former/mask2former_swin-s_8xb2-160k_ade20k-'
        '512x512.py',
        size=(512, 512)),
}


def _migration(keep_ratio: float, kind: str = 'migration') -> dict:
    return dict(
        token_reduction=dict(type=kind, start_block=6, keep_ratio=keep_ratio))


# The token-reduction options of the backbone template, each applied to the
# shipped iTPN-B and Fast-iTPN-B detector and segmentor. Windows are 14 units
# at 1344x800 (ViTDet's size; 4x6 windows of the padded 56x84 grid) and 16
# at 512x512 (2x2 windows of the 32x32 grid: 14 would pad it to 42x42).
SPEED_VARIANTS = {
    'global attention':
    lambda window: {},
    'windows + 4 global blocks':
    lambda window: dict(window_size=window, global_blocks=(5, 11, 17, 23)),
    'windows + 8 gathering tokens':
    lambda window: dict(window_size=window, gathering_tokens=8),
    'migration keep 0.75 from block 6':
    lambda window: _migration(0.75),
    'migration keep 0.5 from block 6':
    lambda window: _migration(0.5),
    'windows + 8 gathering tokens + migration keep 0.5':
    lambda window: dict(
        window_size=window, gathering_tokens=8, **_migration(0.5)),
    'windows + 8 gathering tokens + window migration keep 0.5':
    lambda window: dict(
        window_size=window,
        gathering_tokens=8,
        **_migration(0.5, 'window_migration')),
}
SPEED_TASKS = {
    'mask-rcnn':
    dict(
        task='det',
        size=DET_SIZE,
        window=14,
        peer='mask-rcnn swin-b (mmdet)',
        configs={
            'itpn-base':
            _config('det/itpn-base_pixel-1600e-pre_mask-rcnn_32xb2-amp-1x_'
                    'coco.py'),
            'fast-itpn-base':
            FAST_DET
        }),
    'upernet':
    dict(
        task='seg',
        size=(512, 512),
        window=16,
        peer='upernet swin-b (mmseg)',
        configs={
            'itpn-base':
            _config('seg/itpn-base_pixel-1600e-pre_upernet_8xb2-amp-160k_'
                    'ade20k-512x512.py'),
            'fast-itpn-base':
            _config('seg/fast-itpn-base_clip-l-1600e-pre_upernet_8xb2-amp-'
                    '160k_ade20k-512x512.py')
        }),
}


def speed_case_name(task: str, family: str, variant: str) -> str:
    return f'{task} {family}, {variant}'


for _task, _spec in SPEED_TASKS.items():
    CASES[_spec['peer']]['group'] = ('base', 'speed')
    for _family, _path in _spec['configs'].items():
        for _variant, _backbone in SPEED_VARIANTS.items():
            CASES[speed_case_name(_task, _family, _variant)] = dict(
                task=_spec['task'],
                group='speed',
                config=_path,
                backbone=_backbone(_spec['window']),
                size=_spec['size'])
GROUPS = ('base', 'large', 'speed', 'dino')
TINY_HIVIT = dict(embed_dims=64, stem_mlp_blocks=(1, 1), depth=2, num_heads=4)
TINY_SWIN = dict(embed_dims=32, depths=[1, 1, 1, 1], num_heads=[1, 2, 4, 8])
TINY_SIZES = dict(det=(64, 96), seg=(64, 64), cls=(64, 64))
BATCH_SIZES = dict(det=1, seg=2, cls=8)


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
        '--iters, --warmup, --batch-size and --tiny)')
    parser.add_argument('--worker', help=argparse.SUPPRESS)
    add_debug_argument(parser)
    return parser.parse_args()


def groups(case: dict) -> Tuple[str, ...]:
    group = case['group']
    return (group, ) if isinstance(group, str) else group


def select_cases(names: List[str]) -> List[str]:
    selected = []
    for name in names:
        if name == 'all':
            selected += list(CASES)
        elif name in GROUPS:
            selected += [k for k, v in CASES.items() if name in groups(v)]
        elif name in CASES:
            selected.append(name)
        else:
            raise SystemExit(f'Unknown case {name!r}; cases: {list(CASES)}, '
                             f'groups: {GROUPS}, or "all".')
    return list(dict.fromkeys(selected))


def device() -> torch.device:
    return torch.device('cuda' if torch.cuda.is_available() else 'cpu')


def _strip_pretrained(node) -> None:
    """No checkpoint is loaded: drop Pretrained init_cfgs and pretrained."""
    if isinstance(node, dict):
        init_cfg = node.get('init_cfg')
        if isinstance(init_cfg, dict) and init_cfg.get('type') == 'Pretrained':
            node['init_cfg'] = None
        if 'pretrained' in node:
            node['pretrained'] = None
        for value in node.values():
            _strip_pretrained(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            _strip_pretrained(value)


def load_case_config(case: dict, tiny: bool) -> Config:
    """The case's config with its overrides, without pretrained weights."""
    from mmitpn.utils import adapt_cfg_to_device
    path = case['config']
    cfg = get_config(path) if '::' in path else Config.fromfile(path)
    cfg.launcher = 'none'
    model = cfg.model
    if cfg.get('data_preprocessor') is not None:
        # What the Runner does with a top-level data_preprocessor.
        model.setdefault('data_preprocessor', cfg.data_preprocessor)
    _strip_pretrained(model)
    backbone = model.backbone
    if case.get('swin'):
        backbone.update(case['swin'])
        model.neck.in_channels = case['neck_channels']
        if backbone.type != 'SwinTransformer':
            backbone.clear()
            backbone.update(
                type='SwinTransformer',
                window_size=7,
                mlp_ratio=4,
                qkv_bias=True,
                drop_path_rate=0.3,
                patch_norm=True,
                out_indices=(0, 1, 2, 3),
                with_cp=False,
                convert_weights=True,
                **case['swin'])
    backbone.update(case.get('backbone', {}))
    if tiny:
        shrink(cfg, case)
    return adapt_cfg_to_device(cfg)


def build_case_model(cfg: Config) -> torch.nn.Module:
    """Build the case's model on :func:`device` and initialise it as the
    Runner does (``init_weights``; no checkpoint, :func:`load_case_config`
    removed them): some library modules, e.g. DINO's ``level_embed``, are
    created uninitialised and hold whatever the memory held until then."""
    with DefaultScope.overwrite_default_scope(
            cfg.get('default_scope', 'mmitpn')):
        model = MODELS.build(cfg.model)
        model.init_weights()
    return model.to(device())


def shrink(cfg: Config, case: dict) -> None:
    """Tiny widths and depths, keeping every module type."""
    model = cfg.model
    backbone = model.backbone
    task = case['task']
    if backbone.type.split('.')[-1] in ('HiViT', 'FastiTPN'):
        backbone.update(arch=TINY_HIVIT, img_size=TINY_SIZES[task][0])
        if backbone.get('window_size'):
            backbone.update(
                window_size=2,
                global_blocks=(1, ) if backbone.get('global_blocks') else ())
        for key in ('token_reduction', 'token_migration'):
            if backbone.get(key):
                backbone[key].update(start_block=1)
        if model.get('neck') and 'iTPNPyramid' in model.neck.type:
            model.neck.update(embed_dims=64)
        if task == 'seg':
            levels = [model.neck.fpn_dim + c for c in (16, 32, 64)]
            model.decode_head.in_channels = levels + levels[-1:]
            if model.get('auxiliary_head'):
                model.auxiliary_head.in_channels = levels[-1]
        if task == 'cls':
            model.head.in_channels = 64
    elif 'Swin' in backbone.type:
        backbone.update(TINY_SWIN)
        channels = [32, 64, 128, 256]
        if task == 'det':
            model.neck.in_channels = channels
        else:
            model.decode_head.in_channels = channels
            if model.get('auxiliary_head'):
                model.auxiliary_head.in_channels = channels[2]
    else:  # ViT in mmpretrain
        backbone.update(
            arch=dict(
                embed_dims=64,
                num_layers=2,
                num_heads=4,
                feedforward_channels=128),
            img_size=TINY_SIZES[task][0])
        model.head.in_channels = 64
    if model.type == 'DINO':
        model.encoder.num_layers = model.decoder.num_layers = 1
        model.num_queries = 10
        model.dn_cfg.group_cfg.num_dn_queries = 10
    if model.get('decode_head', {}).get('type') == 'Mask2FormerHead':
        model.decode_head.pixel_decoder.encoder.num_layers = 1
        model.decode_head.transformer_decoder.num_layers = 1
        model.decode_head.update(num_queries=10)
        model.decode_head.train_cfg.num_points = 256
    if task == 'seg':
        cfg.crop_size = TINY_SIZES['seg']
        model.data_preprocessor.size = TINY_SIZES['seg']
        model.test_cfg = dict(mode='whole')


def det_inputs(model, size, batch: int, training: bool):
    from mmdet.testing import demo_mm_inputs
    packed = demo_mm_inputs(
        batch_size=batch,
        image_shapes=[(3, *size)] * batch,
        num_items=[8] * batch,
        num_classes=80,
        with_mask=True)
    return model.data_preprocessor(packed, training)


def seg_inputs(model, size, batch: int, training: bool):
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    samples = []
    for _ in range(batch):
        sample = SegDataSample()
        sample.gt_sem_seg = PixelData(
            data=torch.randint(0, 150, (1, *size), dtype=torch.long))
        sample.set_metainfo(
            dict(img_shape=size, ori_shape=size, pad_shape=size))
        samples.append(sample)
    images = [
        torch.randint(0, 256, (3, *size), dtype=torch.uint8)
        for _ in range(batch)
    ]
    return model.data_preprocessor(
        dict(inputs=images, data_samples=samples), training)


def cls_inputs(model, size, batch: int, training: bool):
    from mmpretrain.structures import DataSample
    samples = [
        DataSample().set_gt_label(torch.randint(0, 1000, ()).item())
        for _ in range(batch)
    ]
    images = [
        torch.randint(0, 256, (3, *size), dtype=torch.uint8)
        for _ in range(batch)
    ]
    return model.data_preprocessor(
        dict(inputs=images, data_samples=samples), training)


INPUTS = dict(det=det_inputs, seg=seg_inputs, cls=cls_inputs)


def synchronize() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(fn, iters: int, warmup: int) -> List[float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        synchronize()
        start = time.perf_counter()
        fn()
        synchronize()
        times.append(time.perf_counter() - start)
    return times


def measure(name: str, args) -> dict:
    """One case, in this (worker) process."""
    import mmitpn  # noqa: F401  (registers mmitpn's modules)
    case = CASES[name]
    cfg = load_case_config(case, args.tiny)
    size = TINY_SIZES[case['task']] if args.tiny else case['size']
    batch = args.batch_size or BATCH_SIZES[case['task']]
    torch.manual_seed(0)
    MessageHub.get_current_instance().update_info('max_iters', 1000)
    model = build_case_model(cfg)
    with DefaultScope.overwrite_default_scope(
            cfg.get('default_scope', 'mmitpn')):
        optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    parameters = sum(p.numel() for p in model.parameters())
    make_inputs = INPUTS[case['task']]
    model.train()

    def train_step():
        data = make_inputs(model, size, batch, True)
        with optim_wrapper.optim_context(model):
            losses = model(**data, mode='loss')
        loss, _ = model.parse_losses(losses)
        optim_wrapper.update_params(loss)

    train_times = timed(train_step, args.iters, args.warmup)
    train_peak = peak_memory_mb()
    model.eval()

    @torch.no_grad()
    def predict():
        data = make_inputs(model, size, batch, False)
        model(**data, mode='predict')

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    infer_times = timed(predict, args.iters, args.warmup)
    return dict(
        case=name,
        config=case['config'],
        size=list(size),
        batch_size=batch,
        params_m=parameters / 1e6,
        train_s=statistics.median(train_times),
        train_times_s=train_times,
        train_peak_mb=train_peak,
        infer_s=statistics.median(infer_times),
        infer_times_s=infer_times,
        infer_peak_mb=peak_memory_mb())


def peak_memory_mb() -> float:
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_worker(name: str, args) -> dict:
    command = [
        sys.executable, __file__, '--worker', name, '--iters',
        str(args.iters), '--warmup',
        str(args.warmup)
    ]
    if args.batch_size:
        command += ['--batch-size', str(args.batch_size)]
    if args.tiny:
        command.append('--tiny')
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f'{name} failed:\n{result.stderr[-4000:]}')
    return json.loads(result.stdout.strip().splitlines()[-1])


def machine() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name()
    from mmitpn.utils import describe_cpu
    return (f'{platform.processor() or platform.machine()} CPU '
            f'({describe_cpu()}), {torch.get_num_threads()} threads')


RATIOS = [('mask-rcnn itpn-base', 'mask-rcnn swin-b (mmdet)'),
          ('cascade itpn-base', 'cascade swin-b (mmdet)'),
          ('upernet itpn-base', 'upernet swin-b (mmseg)'),
          ('finetune itpn-base', 'finetune vit-b (mmpretrain)'),
          ('upernet itpn-large', 'upernet swin-l (mmseg)'),
          ('finetune itpn-large', 'finetune vit-l (mmpretrain)'),
          ('mask-rcnn itpn-base clip',
           'mask-rcnn itpn-base clip, global rel-pos bias'),
          ('mask-rcnn fast-itpn-base', 'mask-rcnn swin-b (mmdet)'),
          ('mask-rcnn fast-itpn-base',
           'mask-rcnn fast-itpn-base, unfused attention'),
          ('mask-rcnn fast-itpn-base, windows 14 + 4 global blocks',
           'mask-rcnn fast-itpn-base, windows 14 + 4 global blocks, '
           'unfused attention'),
          ('mask-rcnn fast-itpn-base, windows 14 + 4 global blocks',
           'mask-rcnn swin-b (mmdet)'),
          ('mask-rcnn fast-itpn-base', 'mask-rcnn itpn-base'),
          ('dino itpn-base', 'dino swin-b (mmdet)'),
          ('dino fast-itpn-base', 'dino swin-b (mmdet)'),
          ('mask2former itpn-base', 'mask2former swin-s (mmseg)'),
          ('mask2former fast-itpn-base', 'mask2former swin-s (mmseg)')]
for _task, _spec in SPEED_TASKS.items():
    for _family in _spec['configs']:
        _global = speed_case_name(_task, _family, 'global attention')
        RATIOS.append((_global, _spec['peer']))
        for _variant in list(SPEED_VARIANTS)[1:]:
            _case = speed_case_name(_task, _family, _variant)
            RATIOS += [(_case, _global), (_case, _spec['peer'])]


def load_finished(path: str, args) -> List[dict]:
    """The results of an earlier run with the same settings, to resume."""
    if not osp.exists(path):
        return []
    with open(path) as f:
        saved = json.load(f)
    if saved.get('settings') != settings(args):
        raise SystemExit(f'{path} was measured with {saved.get("settings")}, '
                         f'not {settings(args)}: pass the same --iters, '
                         '--warmup, --batch-size and --tiny, or another '
                         '--json.')
    return saved['results']


def settings(args) -> dict:
    return dict(
        iters=args.iters,
        warmup=args.warmup,
        batch_size=args.batch_size,
        tiny=args.tiny)


def print_row(result: dict) -> None:
    height, width = result['size']
    # A process's peak resident memory only grows: on the CPU the
    # inference peak cannot be told apart from the training one.
    infer_peak = f'{result["infer_peak_mb"] / 1024:.2f}' \
        if torch.cuda.is_available() else '-'
    print(
        f'| {result["case"]} | {width}x{height} | {result["batch_size"]} | '
        f'{result["params_m"]:.1f} | {result["train_s"]:.2f} | '
        f'{result["train_peak_mb"] / 1024:.2f} | {result["infer_s"]:.2f} | '
        f'{infer_peak} |',
        flush=True)


def main():
    args = parse_args()
    if args.worker:
        print(json.dumps(measure(args.worker, args)))
        return
    names = select_cases(args.cases)
    if args.resume and not args.json:
        raise SystemExit('--resume needs --json (the file to resume).')
    results = load_finished(args.json, args) if args.resume else []
    print(f'machine: {machine()}; median of {args.iters} timed steps after '
          f'{args.warmup}; fp32')
    print('| case | input | batch | params (M) | train step (s) | train '
          'peak (GB) | inference (s) | inference peak (GB) |')
    print('|---|---|---|---|---|---|---|---|')
    for result in results:
        print_row(result)
    finished = {r['case'] for r in results}
    for name in names:
        if name in finished:
            continue
        result = run_worker(name, args)
        results.append(result)
        print_row(result)
        if args.json:
            # Written whole, then renamed: the file is never half-written.
            with open(args.json + '.tmp', 'w') as f:
                json.dump(
                    dict(
                        machine=machine(),
                        settings=settings(args),
                        results=results),
                    f,
                    indent=1)
            os.replace(args.json + '.tmp', args.json)
    by_name = {r['case']: r for r in results}
    for ours, peer in RATIOS:
        if ours in by_name and peer in by_name:
            a, b = by_name[ours], by_name[peer]
            step = a['train_s'] / b['train_s']
            memory = a['train_peak_mb'] / b['train_peak_mb']
            infer = a['infer_s'] / b['infer_s']
            print(f'{ours} / {peer}: train step {step:.2f}x, train peak '
                  f'memory {memory:.2f}x, inference {infer:.2f}x')


if __name__ == '__main__':
    run_tool(main)
