# Copyright (c) mmitpn contributors. All rights reserved.
"""Every segmentation config builds at full size, one of each training group
(tests/shipped_configs.py) trains one iteration with tiny overrides;
pretraining and official layouts load."""
import ast
import copy
import glob
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.registry import DefaultScope
from mmengine.runner import Runner
from PIL import Image
from shipped_configs import (group_ids, kept_tokens, load_config,
                             run_image_demo, shrink_token_reduction,
                             training_groups)

from mmitpn.utils import adapt_cfg_to_device

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = sorted(
    glob.glob(osp.join(REPO, 'configs', 'seg', '*.py')) +
    glob.glob(osp.join(REPO, 'configs', 'seg', 'demo', '*.py')))
TINY = dict(embed_dims=64, stem_mlp_blocks=(1, 1), depth=2, num_heads=4)
# The demo configs train and evaluate in test_demo_config_trains_and_evaluates.
TRAINED = training_groups([c for c in CONFIGS if '/demo/' not in c])
PIXEL_CONFIG = osp.join(
    REPO, 'configs', 'seg',
    'itpn-base_pixel-1600e-pre_upernet_8xb2-amp-160k_ade20k-512x512.py')


@pytest.fixture(scope='module')
def shapes_seg(tmp_path_factory):
    root = tmp_path_factory.mktemp('shapes_seg')
    subprocess.run([
        sys.executable,
        osp.join(REPO, 'tools', 'dataset_converters', 'make_shapes_seg.py'),
        str(root), '--train', '2', '--val', '2', '--size', '64'
    ],
                   check=True,
                   capture_output=True)
    return str(root)


def shrink(cfg, tmp_path, data_root, checkpoint):
    model = cfg.model
    model.data_preprocessor.size = (64, 64)
    model.backbone.update(arch=TINY, img_size=64)
    shrink_token_reduction(model.backbone)
    model.backbone.init_cfg.checkpoint = checkpoint
    model.neck.update(embed_dims=64, fpn_dim=32)
    if model.neck.init_cfg is not None:
        model.neck.init_cfg.checkpoint = checkpoint
    if model.decode_head.type == 'Mask2FormerHead':
        # One pixel-decoder and one transformer-decoder layer, few queries
        # and points: the full-width head stays, the iteration is short.
        model.decode_head.update(
            in_channels=[48, 64, 96, 96], num_classes=4, num_queries=10)
        model.decode_head.loss_cls.class_weight = [1.0] * 4 + [0.1]
        model.decode_head.pixel_decoder.encoder.num_layers = 1
        model.decode_head.transformer_decoder.num_layers = 1
        model.decode_head.train_cfg.num_points = 256
    else:
        model.decode_head.update(
            in_channels=[48, 64, 96, 96], channels=32, num_classes=4)
        model.auxiliary_head.update(in_channels=96, channels=16, num_classes=4)
    model.test_cfg = dict(mode='whole')
    loader = cfg.train_dataloader
    loader.update(batch_size=2, num_workers=0, persistent_workers=False)
    loader.sampler = dict(type='DefaultSampler', shuffle=True)
    loader.dataset = dict(
        type='BaseSegDataset',
        data_root=data_root,
        metainfo=dict(classes=('background', 'circle', 'square', 'triangle')),
        img_suffix='.png',
        seg_map_suffix='.png',
        data_prefix=dict(
            img_path='images/train', seg_map_path='annotations/train'),
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations'),
            dict(type='PackSegInputs'),
        ])
    cfg.train_cfg = dict(
        type='mmitpn.ResumableIterBasedTrainLoop', max_iters=1)
    cfg.param_scheduler = []
    return cfg


@pytest.mark.parametrize(
    'config', CONFIGS, ids=[osp.basename(c)[:-3] for c in CONFIGS])
def test_seg_config_builds_at_full_size(config):
    cfg = load_config(config)
    assert cfg.model.neck.concat_inputs
    from mmseg.registry import MODELS as MMSEG_MODELS
    with DefaultScope.overwrite_default_scope('mmseg'), \
            torch.device('meta'):
        segmentor = MMSEG_MODELS.build(copy.deepcopy(cfg.model))
    assert list(segmentor.neck.out_channels) == \
        list(cfg.model.decode_head.in_channels)


@pytest.mark.parametrize('config', list(TRAINED), ids=group_ids(TRAINED))
def test_seg_config_trains_one_iteration(config, tmp_path, shapes_seg,
                                         family_checkpoint,
                                         train_one_iteration):
    cfg = load_config(config)
    checkpoint, _ = family_checkpoint(cfg)
    runner = train_one_iteration(shrink(cfg, tmp_path, shapes_seg, checkpoint))
    if cfg.model.backbone.get('token_reduction'):
        # The trained segmentor predicts with the reduction on: it keeps 8
        # of each image's 16 tokens.
        segmentor = runner.model.eval()
        data = segmentor.data_preprocessor(
            next(iter(runner.train_dataloader)), False)
        with torch.no_grad(), kept_tokens(segmentor.backbone) as kept:
            results = segmentor.predict(data['inputs'], data['data_samples'])
        assert kept == [8]
        for result in results:
            assert result.pred_sem_seg.data.shape[-2:] == (64, 64)


@pytest.mark.parametrize(
    'demo',
    [
        'hivit-demo_skimage-pre_upernet_1xb8-1k_shapes-seg-128px.py',
        # Fast-iTPN-T at its full size, its backbone from a converted
        # checkpoint, a fresh pyramid.
        'fast-itpn-tiny_clip-l-1600e-pre_upernet_1xb8-1k_shapes-seg-128px.py'
    ])
def test_demo_config_trains_and_evaluates(demo, tmp_path, shapes_seg,
                                          fast_itpn_checkpoint):
    cfg = load_config(osp.join(REPO, 'configs', 'seg', 'demo', demo))
    if cfg.model.backbone.type == 'mmitpn.FastiTPN':
        checkpoint, _ = fast_itpn_checkpoint(
            arch='fast-itpn-tiny', img_size=224)
        cfg.model.backbone.init_cfg.checkpoint = checkpoint
    else:
        cfg.model.backbone.init_cfg = cfg.model.neck.init_cfg = None
    cfg.model.data_preprocessor.size = (64, 64)
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        loader.batch_size = 2
        loader.dataset.data_root = shapes_seg
    cfg.test_dataloader = cfg.val_dataloader
    cfg.train_cfg.update(max_iters=2, val_interval=2)
    cfg.param_scheduler = []
    cfg.default_hooks.checkpoint.interval = 2
    cfg.work_dir = str(tmp_path / 'work_dir')
    runner = Runner.from_cfg(adapt_cfg_to_device(cfg))
    runner.train()
    metrics = runner.test()
    assert 0 <= metrics['mIoU'] <= 100, metrics
    # mmseg's MMSegInferencer takes the config and the written checkpoint.
    image = osp.join(shapes_seg, 'images', 'val', '00000.png')
    summary = run_image_demo(image, cfg, osp.join(cfg.work_dir, 'iter_2.pth'),
                             str(tmp_path / 'vis'))
    # "segmentation map (64, 64), classes [0, 2]"
    size = Image.open(image).size[::-1]
    assert summary.startswith(f'segmentation map {size}, classes '), summary
    assert max(ast.literal_eval(summary.split('classes ')[1])) < 4
    picture = Image.open(tmp_path / 'vis' / 'vis' / '00000.png')
    assert picture.size[::-1] == size and picture.mode == 'RGB'
    meta = torch.load(
        osp.join(cfg.work_dir, 'iter_2.pth'), weights_only=False)['meta']
    assert len(meta['dataset_meta']['classes']) == 4
    assert len(meta['dataset_meta']['palette']) == 4


def tiny_segmentor(checkpoint, **backbone):
    cfg = load_config(PIXEL_CONFIG)
    # Without relative position tables (the pixel pretraining has none and
    # they would be listed as freshly initialised) nothing is missing.
    cfg.model.backbone.update(arch=TINY, rel_pos_type=None, **backbone)
    cfg.model.backbone.init_cfg.checkpoint = checkpoint
    cfg.model.neck.update(embed_dims=64)
    cfg.model.neck.init_cfg.checkpoint = checkpoint
    cfg.model.decode_head.in_channels = [272, 288, 320, 320]
    cfg.model.auxiliary_head.in_channels = 320
    from mmseg.registry import MODELS as MMSEG_MODELS
    with DefaultScope.overwrite_default_scope('mmseg'):
        return MMSEG_MODELS.build(cfg.model)


def test_pretraining_checkpoint_fills_backbone_and_pyramid(
        pretraining_checkpoint, mm_log):
    checkpoint, pretrained = pretraining_checkpoint(fpn_dim=256)
    segmentor = tiny_segmentor(checkpoint)
    segmentor.init_weights()
    log = mm_log.getvalue()
    for part in ('backbone', 'neck'):
        assert f'load {part}. in model from: {checkpoint}' in log, log
    assert 'missing keys' not in log
    backbone = segmentor.backbone.state_dict()
    for name, value in pretrained.backbone.state_dict().items():
        if name == 'absolute_pos_embed':  # resized from 4x4 to 32x32 units
            assert backbone[name].shape == (1, 1024, 64)
        else:
            assert torch.equal(backbone[name], value), name
    for name, value in pretrained.neck.state_dict().items():
        assert torch.equal(segmentor.neck.state_dict()[name], value), name


def test_bad_checkpoints_are_named(check_checkpoint_errors):
    check_checkpoint_errors(tiny_segmentor, fpn_dim=256)


def test_crop_size_the_backbone_cannot_take_is_named(tmp_path):
    unused = str(tmp_path / 'unused.pth')
    with pytest.raises(ValueError, match='got 500x500'):
        tiny_segmentor(unused, img_size=500)
    # Training inputs padded to a crop of 500 by the data preprocessor.
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    segmentor = tiny_segmentor(unused)
    segmentor.data_preprocessor.size = (500, 500)
    sample = SegDataSample(
        gt_sem_seg=PixelData(data=torch.zeros(1, 480, 490, dtype=torch.long)))
    data = segmentor.data_preprocessor(
        dict(
            inputs=[torch.zeros(3, 480, 490, dtype=torch.uint8)],
            data_samples=[sample]),
        training=True)
    with pytest.raises(ValueError, match='got 500x500'):
        segmentor(data['inputs'], mode='tensor')


def test_official_segmentation_layout_loads_after_conversion(key_listing):
    from mmitpn.converters import convert_official
    state_dict = key_listing('keys_seg_base.txt', prefixes=['backbone.'])
    conversion = convert_official(state_dict)
    assert conversion.backbone['img_size'] == 512
    cfg = load_config(PIXEL_CONFIG)
    from mmseg.registry import MODELS as MMSEG_MODELS
    with DefaultScope.overwrite_default_scope('mmseg'), \
            torch.device('meta'):
        segmentor = MMSEG_MODELS.build(cfg.model)
    result = segmentor.load_state_dict(
        conversion.state_dict, strict=False, assign=True)
    assert result.unexpected_keys == []
    assert all(
        key.startswith(('decode_head.', 'auxiliary_head.'))
        for key in result.missing_keys)
