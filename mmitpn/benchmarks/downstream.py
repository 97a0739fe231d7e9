# Copyright (c) mmitpn contributors. All rights reserved.
"""Downstream training and inference steps to time: the shipped detection,
segmentation and fine-tuning configs at full size (or tiny), and peers of
the same size from mmdet's, mmseg's and mmpretrain's own configs.

A case names its config relative to mmitpn's ``configs/`` folder, or a
library's config as ``mmdet::...`` (found by ``mmengine.hub``).
"""
import os.path as osp
import statistics
from typing import Callable, Dict, List, Optional, Tuple

import torch
from mmengine.config import Config
from mmengine.hub import get_config
from mmengine.logging import MessageHub
from mmengine.optim import build_optim_wrapper
from mmengine.registry import MODELS, DefaultScope

from mmitpn.utils import adapt_cfg_to_device, count_macs
from .utils import (device, peak_memory_mb, reset_peak_memory, synchronize,
                    timed_steps)

SIZES = dict(det=(800, 1344), seg=(512, 512), cls=(224, 224))
SWIN_B = dict(embed_dims=128, depths=[2, 2, 18, 2], num_heads=[4, 8, 16, 32])
WINDOWS = dict(window_size=14, global_blocks=(5, 11, 17, 23))
UNFUSED = dict(fused_attention=False)
ITPN_DET = 'det/itpn-base_pixel-1600e-pre_mask-rcnn_32xb2-amp-1x_coco.py'
CLIP_DET = 'det/itpn-base_clip-b-800e-pre_mask-rcnn_32xb2-amp-1x_coco.py'
FAST_DET = 'det/fast-itpn-base_clip-l-1600e-pre_mask-rcnn_32xb2-amp-1x_coco.py'
ITPN_SEG = ('seg/itpn-base_pixel-1600e-pre_upernet_8xb2-amp-160k_'
            'ade20k-512x512.py')
FAST_SEG = ('seg/fast-itpn-base_clip-l-1600e-pre_upernet_8xb2-amp-160k_'
            'ade20k-512x512.py')


def _case(task: str, group, config: str, **options) -> dict:
    """A case: its task, group(s), config and overrides (``backbone``: keys
    of the backbone; ``swin``: a Swin backbone with these keys)."""
    groups = (group, ) if isinstance(group, str) else tuple(group)
    return dict(task=task, group=groups, config=config, **options)


def _swin_b(task: str, group, config: str, **options) -> dict:
    return _case(task, group, config, swin=SWIN_B, **options)


CASES: Dict[str, dict] = {
    'mask-rcnn itpn-base':
    _case('det', 'base', ITPN_DET),
    # mmdet ships Swin-T/S Mask R-CNN configs: its Swin-S one with Swin-B.
    'mask-rcnn swin-b (mmdet)':
    _swin_b('det', ('base', 'speed', 'with_cp'),
            'mmdet::swin/mask-rcnn_swin-s-p4-w7_fpn_amp-ms-crop-3x_coco.py'),
    # iTPN's detection recipe has a heavier box head (4 convolutions and a
    # fully connected layer, batch norm) than mmdet's Swin (2 fully
    # connected layers): the same backbone and neck with iTPN's RoI heads
    # tell the backbones' difference apart from the heads'.
    'mask-rcnn swin-b (mmdet), roi heads of itpn':
    _swin_b(
        'det',
        'with_cp',
        'mmdet::swin/mask-rcnn_swin-s-p4-w7_fpn_amp-ms-crop-3x_coco.py',
        roi_head_from=ITPN_DET),
    'mask-rcnn itpn-base, windows 14 + 4 global blocks':
    _case('det', 'base', ITPN_DET, backbone=WINDOWS),
    'mask-rcnn fast-itpn-base':
    _case('det', 'base', FAST_DET),
    'mask-rcnn fast-itpn-base, unfused attention':
    _case('det', 'base', FAST_DET, backbone=UNFUSED),
    'mask-rcnn fast-itpn-base, windows 14 + 4 global blocks':
    _case('det', 'base', FAST_DET, backbone=WINDOWS),
    'mask-rcnn fast-itpn-base, windows 14 + 4 global blocks, unfused '
    'attention':
    _case('det', 'base', FAST_DET, backbone=dict(WINDOWS, **UNFUSED)),
    'mask-rcnn itpn-base clip':
    _case('det', 'base', CLIP_DET),
    'mask-rcnn itpn-base clip, global rel-pos bias':
    _case('det', 'base', CLIP_DET, backbone=dict(rel_pos_type='bias_table')),
    'cascade itpn-base':
    _case(
        'det', 'base', 'det/itpn-base_pixel-1600e-pre_cascade-mask-rcnn_'
        '32xb2-amp-3x_coco.py'),
    'cascade swin-b (mmdet)':
    _swin_b('det', 'base',
            'mmdet::cascade_rcnn/cascade-mask-rcnn_r50_fpn_ms-3x_coco.py'),
    'upernet itpn-base':
    _case('seg', 'base', ITPN_SEG),
    'upernet swin-b (mmseg)':
    _case(
        'seg', ('base', 'speed', 'with_cp'),
        'mmseg::swin/swin-base-patch4-window7-in1k-pre_upernet_8xb2-160k_'
        'ade20k-512x512.py'),
    'finetune itpn-base':
    _case('cls', 'base',
          'cls/itpn-base_pixel-1600e-pre_32xb32-amp-coslr-100e_in1k.py'),
    'finetune vit-b (mmpretrain)':
    _case(
        'cls', 'base', 'mmpretrain::mae/benchmarks/vit-base-p16_8xb128-'
        'coslr-100e_in1k.py'),
    'upernet itpn-large':
    _case(
        'seg', 'large', 'seg/itpn-large_pixel-1600e-pre_upernet_8xb2-amp-'
        '160k_ade20k-512x512.py'),
    'upernet swin-l (mmseg)':
    _case(
        'seg', 'large', 'mmseg::swin/swin-large-patch4-window7-in22k-pre_'
        'upernet_8xb2-160k_ade20k-512x512.py'),
    'finetune itpn-large':
    _case('cls', 'large',
          'cls/itpn-large_pixel-1600e-pre_32xb32-amp-coslr-50e_in1k.py'),
    'finetune vit-l (mmpretrain)':
    _case(
        'cls', 'large', 'mmpretrain::mae/benchmarks/vit-large-p16_8xb128-'
        'coslr-50e_in1k.py'),
    'mask-rcnn itpn-large':
    _case('det', 'large',
          'det/itpn-large_pixel-1600e-pre_mask-rcnn_32xb2-amp-1x_coco.py'),
    'dino itpn-base':
    _case('det', 'dino',
          'det/itpn-base_pixel-1600e-pre_dino-5scale_8xb2-12e_coco.py'),
    'dino fast-itpn-base':
    _case('det', 'dino',
          'det/fast-itpn-base_clip-l-1600e-pre_dino-5scale_8xb2-12e_coco.py'),
    # Swin-B's backbone in mmdet's DINO Swin-L config (window 12, as Swin-L).
    'dino swin-b (mmdet)':
    _swin_b('det', 'dino', 'mmdet::dino/dino-5scale_swin-l_8xb2-12e_coco.py'),
    'mask2former itpn-base':
    _case(
        'seg', 'dino', 'seg/itpn-base_pixel-1600e-pre_mask2former_8xb2-160k_'
        'ade20k-512x512.py'),
    'mask2former fast-itpn-base':
    _case(
        'seg', 'dino', 'seg/fast-itpn-base_clip-l-1600e-pre_mask2former_'
        '8xb2-160k_ade20k-512x512.py'),
    # mmseg's Swin-B Mask2Former is at 640x640.
    'mask2former swin-s (mmseg)':
    _case(
        'seg', 'dino', 'mmseg::mask2former/mask2former_swin-s_8xb2-160k_'
        'ade20k-512x512.py'),
}


def _migration(keep_ratio: float, kind: str = 'migration') -> dict:
    return dict(
        token_reduction=dict(type=kind, start_block=6, keep_ratio=keep_ratio))


def recommended_backbone(window: int) -> dict:
    """Windows, 8 gathering tokens and window migration at keep 0.5 from
    main block 6: the recommended token reduction."""
    return dict(
        window_size=window,
        gathering_tokens=8,
        **_migration(0.5, 'window_migration'))


# The token-reduction options of the backbone template, each applied to the
# shipped iTPN-B and Fast-iTPN-B detector and segmentor. Windows are 14 units
# at 1344x800 (ViTDet's size; 4x6 windows of the padded 56x84 grid) and 16
# at 512x512 (2x2 windows of the 32x32 grid: 14 would pad it to 42x42).
SPEED_VARIANTS: Dict[str, Callable[[int], dict]] = {
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
    lambda window: recommended_backbone(window),
    # The recommended setting and global attention with activation
    # checkpointing switched on and off whatever the config ships: what
    # dropping the recomputation gains, apart from what the model gains.
    'global attention, with_cp':
    lambda window: dict(with_cp=True),
    'global attention, no with_cp':
    lambda window: dict(with_cp=False),
    'windows + 8 gathering tokens + window migration keep 0.5, with_cp':
    lambda window: dict(recommended_backbone(window), with_cp=True),
    'windows + 8 gathering tokens + window migration keep 0.5, no with_cp':
    lambda window: dict(recommended_backbone(window), with_cp=False),
}
# The variants of the ``with_cp`` group (with the peers).
WITH_CP_VARIANTS = tuple(v for v in SPEED_VARIANTS if v.endswith('with_cp'))
SPEED_TASKS = {
    'mask-rcnn':
    dict(
        task='det',
        window=14,
        peer='mask-rcnn swin-b (mmdet)',
        configs={
            'itpn-base': ITPN_DET,
            'fast-itpn-base': FAST_DET
        }),
    'upernet':
    dict(
        task='seg',
        window=16,
        peer='upernet swin-b (mmseg)',
        configs={
            'itpn-base': ITPN_SEG,
            'fast-itpn-base': FAST_SEG
        }),
}


def speed_case_name(task: str, family: str, variant: str) -> str:
    return f'{task} {family}, {variant}'


# (case, reference) pairs whose ratios a run prints when it measured both.
RATIOS: List[Tuple[str, str]] = [
    ('mask-rcnn itpn-base', 'mask-rcnn swin-b (mmdet)'),
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
     'mask-rcnn fast-itpn-base, windows 14 + 4 global blocks, unfused '
     'attention'),
    ('mask-rcnn fast-itpn-base, windows 14 + 4 global blocks',
     'mask-rcnn swin-b (mmdet)'),
    ('mask-rcnn fast-itpn-base', 'mask-rcnn itpn-base'),
    ('dino itpn-base', 'dino swin-b (mmdet)'),
    ('dino fast-itpn-base', 'dino swin-b (mmdet)'),
    ('mask2former itpn-base', 'mask2former swin-s (mmseg)'),
    ('mask2former fast-itpn-base', 'mask2former swin-s (mmseg)'),
]
for _task, _spec in SPEED_TASKS.items():
    for _family, _path in _spec['configs'].items():
        _global = speed_case_name(_task, _family, 'global attention')
        RATIOS.append((_global, _spec['peer']))
        for _variant, _backbone in SPEED_VARIANTS.items():
            _name = speed_case_name(_task, _family, _variant)
            _groups = ('speed', 'with_cp') \
                if _variant in WITH_CP_VARIANTS else 'speed'
            CASES[_name] = _case(
                _spec['task'],
                _groups,
                _path,
                backbone=_backbone(_spec['window']))
            if _name != _global:
                RATIOS += [(_name, _global), (_name, _spec['peer'])]
            if _task == 'mask-rcnn' and _variant in WITH_CP_VARIANTS:
                RATIOS.append(
                    (_name, 'mask-rcnn swin-b (mmdet), roi heads of itpn'))
GROUPS = ('base', 'large', 'speed', 'with_cp', 'dino')
TINY_HIVIT = dict(embed_dims=64, stem_mlp_blocks=(1, 1), depth=2, num_heads=4)
TINY_SWIN = dict(embed_dims=32, depths=[1, 1, 1, 1], num_heads=[1, 2, 4, 8])
TINY_SIZES = dict(det=(64, 96), seg=(64, 64), cls=(64, 64))
# Images per step by task: segmentation's recipe has 2 per device (batch
# norm in the decode head needs 2).
BATCH_SIZES = dict(det=1, seg=2, cls=8)


def select_cases(names: List[str]) -> List[str]:
    """Case names of ``names``: cases, groups of :data:`GROUPS` or ``all``.

    Raises:
        ValueError: A name is none of these.
    """
    selected: List[str] = []
    for name in names:
        if name == 'all':
            selected += list(CASES)
        elif name in GROUPS:
            selected += [k for k, v in CASES.items() if name in v['group']]
        elif name in CASES:
            selected.append(name)
        else:
            raise ValueError(f'Unknown case {name!r}; cases: {list(CASES)}, '
                             f'groups: {GROUPS}, or "all".')
    return list(dict.fromkeys(selected))


def strip_pretrained(node) -> None:
    """No checkpoint is loaded: drop Pretrained init_cfgs and pretrained."""
    if isinstance(node, dict):
        init_cfg = node.get('init_cfg')
        if isinstance(init_cfg, dict) and init_cfg.get('type') == 'Pretrained':
            node['init_cfg'] = None
        if 'pretrained' in node:
            node['pretrained'] = None
        for value in node.values():
            strip_pretrained(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            strip_pretrained(value)


def load_case_config(case: dict, config_dir: str, tiny: bool) -> Config:
    """The case's config with its overrides, without pretrained weights,
    adapted to the device (:func:`~mmitpn.utils.adapt_cfg_to_device`).

    Args:
        case: A value of :data:`CASES`.
        config_dir: mmitpn's ``configs/`` folder.
        tiny: Tiny widths and depths (:func:`shrink`).
    """
    path = case['config']
    cfg = get_config(path) if '::' in path else Config.fromfile(
        osp.join(config_dir, path))
    cfg.launcher = 'none'
    model = cfg.model
    if cfg.get('data_preprocessor') is not None:
        # What the Runner does with a top-level data_preprocessor.
        model.setdefault('data_preprocessor', cfg.data_preprocessor)
    strip_pretrained(model)
    backbone = model.backbone
    if case.get('swin'):
        backbone.update(case['swin'])
        model.neck.in_channels = [
            case['swin']['embed_dims'] * 2**i for i in range(4)
        ]
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
    if case.get('roi_head_from'):
        model.roi_head = Config.fromfile(
            osp.join(config_dir, case['roi_head_from'])).model.roi_head
    if tiny:
        shrink(cfg, case['task'])
    return adapt_cfg_to_device(cfg)


def build_case_model(cfg: Config) -> torch.nn.Module:
    """Build the case's model on the benchmark device and initialise it as
    the Runner does (``init_weights``; no checkpoint, :func:`load_case_config`
    removed them): some library modules, e.g. DINO's ``level_embed``, are
    created uninitialised and hold whatever the memory held until then."""
    with DefaultScope.overwrite_default_scope(
            cfg.get('default_scope', 'mmitpn')):
        model = MODELS.build(cfg.model)
        model.init_weights()
    return model.to(device())


def shrink(cfg: Config, task: str) -> None:
    """Tiny widths and depths, keeping every module type."""
    model = cfg.model
    backbone = model.backbone
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


def _random_images(size: Tuple[int, int], batch: int) -> List[torch.Tensor]:
    return [
        torch.randint(0, 256, (3, *size), dtype=torch.uint8)
        for _ in range(batch)
    ]


def det_inputs(size: Tuple[int, int],
               batch: int,
               num_classes: int = 80) -> dict:
    """Random images with 8 boxes and masks each (default: of COCO's 80
    classes)."""
    from mmdet.testing import demo_mm_inputs
    return demo_mm_inputs(
        batch_size=batch,
        image_shapes=[(3, *size)] * batch,
        num_items=[8] * batch,
        num_classes=num_classes,
        with_mask=True)


def seg_inputs(size: Tuple[int, int],
               batch: int,
               num_classes: int = 150) -> dict:
    """Random images and label maps (default: of ADE20K's 150 classes)."""
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    samples = []
    for _ in range(batch):
        sample = SegDataSample()
        sample.gt_sem_seg = PixelData(
            data=torch.randint(0, num_classes, (1, *size), dtype=torch.long))
        sample.set_metainfo(
            dict(img_shape=size, ori_shape=size, pad_shape=size))
        samples.append(sample)
    return dict(inputs=_random_images(size, batch), data_samples=samples)


def cls_inputs(size: Tuple[int, int],
               batch: int,
               num_classes: int = 1000) -> dict:
    """Random images and labels (default: of ImageNet-1K's 1000 classes)."""
    from mmpretrain.structures import DataSample
    samples = [
        DataSample().set_gt_label(torch.randint(0, num_classes, ()).item())
        for _ in range(batch)
    ]
    return dict(inputs=_random_images(size, batch), data_samples=samples)


INPUTS = dict(det=det_inputs, seg=seg_inputs, cls=cls_inputs)


def case_steps(
    task: str,
    cfg: Config,
    size: Tuple[int, int],
    batch: int,
    wrap_optimizer: Optional[Callable[[dict], dict]] = None
) -> Tuple[torch.nn.Module, Callable[[], None], Callable[[], None]]:
    """``(model, train step, inference)`` of a case's config on random
    inputs of ``size`` (height, width): a train step is the forward,
    backward and the config's optimizer (as ``wrap_optimizer`` rewrites
    it), each call on fresh inputs through the model's data preprocessor.
    """
    torch.manual_seed(0)
    MessageHub.get_current_instance().update_info('max_iters', 1000)
    model = build_case_model(cfg)
    wrapper_cfg = cfg.optim_wrapper
    with DefaultScope.overwrite_default_scope(
            cfg.get('default_scope', 'mmitpn')):
        optim_wrapper = build_optim_wrapper(
            model,
            wrap_optimizer(wrapper_cfg) if wrap_optimizer else wrapper_cfg)
    if task == 'seg':
        model.data_preprocessor.size = size
    make_inputs = INPUTS[task]

    def train_step():
        model.train()
        data = model.data_preprocessor(make_inputs(size, batch), True)
        with optim_wrapper.optim_context(model):
            losses = model(**data, mode='loss')
        loss, _ = model.parse_losses(losses)
        optim_wrapper.update_params(loss)

    @torch.no_grad()
    def predict():
        model.eval()
        data = model.data_preprocessor(make_inputs(size, batch), False)
        model(**data, mode='predict')

    return model, train_step, predict


def case_macs(model: torch.nn.Module, task: str,
              size: Tuple[int, int]) -> Dict[str, Optional[int]]:
    """Multiply-accumulates of one image of ``size`` through a case's model,
    counted on the meta device (:func:`~mmitpn.utils.count_macs`; the model
    is moved there, so measure first): ``pyramid``, the backbone and neck
    (iTPN's pyramid, an FPN, or none); ``model``, the whole segmentor's
    ``'tensor'`` forward (decode head included), None for a detector or
    classifier, whose heads' work (proposals after NMS) does not run on the
    meta device, and for a segmentor whose head needs data samples
    (Mask2Former)."""
    model = model.eval().to('meta')
    images = torch.empty(1, 3, *size, device='meta')

    def pyramid():
        features = model.backbone(images)
        neck = getattr(model, 'neck', None)
        return features if neck is None else neck(features)

    # The counter's module tracker needs autograd on.
    with torch.enable_grad():
        macs = dict(
            pyramid=count_macs(pyramid),
            model=None,
            roi_heads=roi_heads_macs(model))
        if task == 'seg':
            try:
                macs['model'] = count_macs(
                    lambda: model(images, mode='tensor'))
            except TypeError:  # a head that needs data samples
                pass
    return macs


def roi_heads_macs(model: torch.nn.Module) -> Optional[int]:
    """Multiply-accumulates of a two-stage detector's RoI heads in one
    training step of one image: every stage's box head on the RoIs its
    sampler keeps, and its mask head on the most positives that sampler
    allows (``num * pos_fraction``; the number of positives depends on the
    image, so this is the heads' upper bound). None for a model without RoI
    heads. Counted on the device of the model's parameters (meta in
    :func:`case_macs`)."""
    roi_head = getattr(model, 'roi_head', None)
    if roi_head is None:
        return None
    stage_cfgs = roi_head.train_cfg
    if not isinstance(stage_cfgs, (list, tuple)):
        stage_cfgs = [stage_cfgs]
    box_heads = roi_head.bbox_head
    mask_heads = getattr(roi_head, 'mask_head', None)
    if not isinstance(box_heads, torch.nn.ModuleList):
        box_heads = [box_heads]
        mask_heads = [mask_heads]
    device = next(roi_head.parameters()).device

    def features(head: torch.nn.Module, rois: int) -> torch.Tensor:
        # mmdet's box and mask heads keep their RoI size as a pair (the
        # mask head's default, 14, is the size its extractors give).
        return torch.empty(
            rois, head.in_channels, *head.roi_feat_size, device=device)

    def heads() -> None:
        for stage_cfg, box_head, mask_head in zip(
                stage_cfgs, box_heads, mask_heads or [None] * len(box_heads)):
            sampled = stage_cfg['sampler']['num']
            box_head(features(box_head, sampled))
            if mask_head is not None:
                positives = int(sampled * stage_cfg['sampler']['pos_fraction'])
                mask_head(features(mask_head, positives))

    return count_macs(heads)


def measure_case(name: str,
                 config_dir: str,
                 iters: int,
                 warmup: int,
                 batch_size: Optional[int] = None,
                 tiny: bool = False,
                 train: bool = True) -> dict:
    """Time ``warmup`` untimed and ``iters`` timed training steps of a case,
    then as many inferences, in this process: the case's row of results
    (median wall and CPU seconds, peak memory of training and of inference,
    and the MACs of one image, :func:`case_macs`). With ``train=False``
    only the inferences are timed and the training keys are ``None``."""
    case = CASES[name]
    task = case['task']
    cfg = load_case_config(case, config_dir, tiny)
    size = TINY_SIZES[task] if tiny else SIZES[task]
    batch = batch_size or BATCH_SIZES[task]
    model, train_step, predict = case_steps(task, cfg, size, batch)
    train_times = timed_steps(train_step, iters, warmup) if train else None
    synchronize()
    train_peak = peak_memory_mb() if train else None
    reset_peak_memory()
    infer_times = timed_steps(predict, iters, warmup)
    infer_peak = peak_memory_mb()
    params = sum(p.numel() for p in model.parameters())
    macs = case_macs(model, task, size)
    result = dict(
        case=name,
        config=case['config'],
        size=list(size),
        batch_size=batch,
        params_m=params / 1e6,
        pyramid_gmacs=macs['pyramid'] / 1e9,
        model_gmacs=None if macs['model'] is None else macs['model'] / 1e9,
        roi_heads_gmacs=None
        if macs['roi_heads'] is None else macs['roi_heads'] / 1e9,
        train_peak_mb=train_peak,
        infer_peak_mb=infer_peak)
    for step, times in (('train', train_times), ('infer', infer_times)):
        if times is None:
            result.update({
                f'{step}_{key}': None
                for key in ('s', 'times_s', 'cpu_s', 'cpu_times_s')
            })
            continue
        wall, cpu = zip(*times)
        result.update({
            f'{step}_s': statistics.median(wall),
            f'{step}_times_s': list(wall),
            f'{step}_cpu_s': statistics.median(cpu),
            f'{step}_cpu_times_s': list(cpu)
        })
    return result


ROW_HEADER = ('| case | input | batch | params (M) | GMACs backbone + neck '
              '| GMACs model | GMACs RoI heads (train) | train step (s) '
              '| train step CPU (s) | train '
              'peak (GB) | inference (s) | inference CPU (s) | inference '
              'peak (GB) |')


def format_row(result: dict) -> str:
    """A Markdown row of :func:`measure_case`'s result (the columns of
    :data:`ROW_HEADER`; GMACs of one image; ``-`` where not measured)."""
    height, width = result['size']
    # A process's peak resident memory only grows: on the CPU the
    # inference peak cannot be told apart from the training one.
    infer_peak = f'{result["infer_peak_mb"] / 1024:.2f}' \
        if torch.cuda.is_available() else '-'

    def value(key: str, digits: int = 2) -> str:
        return '-' if result.get(key) is None else \
            f'{result[key]:.{digits}f}'

    train_peak = '-' if result['train_peak_mb'] is None else \
        f'{result["train_peak_mb"] / 1024:.2f}'
    return (f'| {result["case"]} | {width}x{height} | '
            f'{result["batch_size"]} | {result["params_m"]:.1f} | '
            f'{value("pyramid_gmacs", 1)} | {value("model_gmacs", 1)} | '
            f'{value("roi_heads_gmacs", 1)} | '
            f'{value("train_s")} | {value("train_cpu_s")} | {train_peak} | '
            f'{result["infer_s"]:.2f} | {value("infer_cpu_s")} | '
            f'{infer_peak} |')


def format_ratios(results: List[dict]) -> List[str]:
    """One line per pair of :data:`RATIOS` measured in ``results``."""
    by_name = {r['case']: r for r in results}
    lines = []
    for ours, peer in RATIOS:
        if ours in by_name and peer in by_name:
            a, b = by_name[ours], by_name[peer]
            # CPU time where both rows have it (runs since it was added).
            key = '_cpu_s' if a.get('infer_cpu_s') is not None and \
                b.get('infer_cpu_s') is not None else '_s'
            train = ''
            if a.get('train_s') is not None and b.get('train_s') is not None:
                train = (f'train step '
                         f'{a["train" + key] / b["train" + key]:.2f}x, train '
                         'peak memory '
                         f'{a["train_peak_mb"] / b["train_peak_mb"]:.2f}x, ')
            lines.append(
                f'{ours} / {peer}: {train}'
                f'inference {a["infer" + key] / b["infer" + key]:.2f}x'
                f'{" (CPU time)" if key == "_cpu_s" else " (wall time)"}')
    return lines
