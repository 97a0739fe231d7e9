# Copyright (c) mmitpn contributors. All rights reserved.
"""Every detection config builds at full size, one of each training group
(tests/shipped_configs.py) trains one iteration with tiny overrides; the
pretraining checkpoint loads into backbone and neck."""
import copy
import glob
import json
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.dataset import Compose
from mmengine.registry import DefaultScope
from mmengine.runner import Runner
from shipped_configs import (group_ids, kept_tokens, load_config,
                             run_image_demo, shrink_token_reduction,
                             training_groups)

from mmitpn.utils import adapt_cfg_to_device

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = sorted(
    glob.glob(osp.join(REPO, 'configs', 'det', '*.py')) +
    glob.glob(osp.join(REPO, 'configs', 'det', 'demo', '*.py')))
TINY = dict(embed_dims=64, stem_mlp_blocks=(1, 1), depth=2, num_heads=4)
# HiViT detectors whose pyramid starts fresh: the 96-wide demo pyramid does
# not fit DINO's 256-wide transformer.
FRESH_PYRAMID = ('hivit-demo_skimage-pre_dino-5scale_1xb4-2e_shapes-coco-'
                 '128px.py', )
CLASSES = ('circle', 'square', 'triangle')
# The demo configs train and evaluate in test_demo_config_trains_and_evaluates.
TRAINED = training_groups([c for c in CONFIGS if '/demo/' not in c])


@pytest.fixture(scope='module')
def shapes_coco(tmp_path_factory):
    root = tmp_path_factory.mktemp('shapes_coco')
    subprocess.run([
        sys.executable,
        osp.join(REPO, 'tools', 'dataset_converters', 'make_shapes_coco.py'),
        str(root), '--train', '2', '--val', '2', '--size', '64'
    ],
                   check=True,
                   capture_output=True)
    return str(root)


def set_num_classes(node, num_classes):
    if isinstance(node, dict):
        if 'num_classes' in node:
            node['num_classes'] = num_classes
        for value in node.values():
            set_num_classes(value, num_classes)
    elif isinstance(node, list):
        for value in node:
            set_num_classes(value, num_classes)


def shrink(cfg, tmp_path, data_root, checkpoint):
    model = cfg.model
    model.backbone.update(arch=TINY, img_size=64)
    shrink_token_reduction(model.backbone)
    model.backbone.init_cfg.checkpoint = checkpoint
    model.neck.embed_dims = 64
    if model.neck.init_cfg is not None:
        model.neck.init_cfg.checkpoint = checkpoint
    set_num_classes(model, len(CLASSES))
    if model.type in ('MaskRCNN', 'CascadeRCNN'):
        # 16 sampled RoIs per image instead of 512: the 4conv1fc box heads
        # of the three cascade stages dominate the iteration.
        stages = model.train_cfg.rcnn
        for stage in stages if isinstance(stages, list) else [stages]:
            stage.sampler.num = 16
    if model.type == 'DINO':
        # One encoder and one decoder layer, few queries: the full-width
        # transformer stays, the iteration takes a second.
        model.encoder.num_layers = model.decoder.num_layers = 1
        model.num_queries = 10
        model.dn_cfg.group_cfg.num_dn_queries = 10
        model.test_cfg.max_per_img = 10
    loader = cfg.train_dataloader
    loader.update(batch_size=2, num_workers=0, persistent_workers=False)
    loader.dataset.update(
        data_root=data_root,
        metainfo=dict(classes=CLASSES),
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='train/'),
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
            dict(type='PackDetInputs'),
        ])
    cfg.train_cfg.update(max_epochs=1, val_interval=100)
    cfg.param_scheduler = []
    return cfg


@pytest.mark.parametrize(
    'config', CONFIGS, ids=[osp.basename(c)[:-3] for c in CONFIGS])
def test_det_config_builds_at_full_size(config, shapes_coco):
    cfg = load_config(config)
    fast_itpn = cfg.model.backbone.type == 'mmitpn.FastiTPN'
    assert cfg.model.backbone.init_cfg.prefix == 'backbone.'
    if fast_itpn or osp.basename(config) in FRESH_PYRAMID:
        # The released Fast-iTPN weights have no pyramid: it starts fresh.
        assert cfg.model.neck.init_cfg is None
    else:
        assert cfg.model.neck.init_cfg.prefix == 'neck.'
        assert cfg.model.neck.init_cfg.checkpoint == \
            cfg.model.backbone.init_cfg.checkpoint
    from mmdet.registry import MODELS as MMDET_MODELS
    with DefaultScope.overwrite_default_scope('mmdet'):
        with torch.device('meta'):
            detector = MMDET_MODELS.build(copy.deepcopy(cfg.model))
        # The config's own training pipeline runs on a real sample.
        sample = dict(
            img_path=osp.join(shapes_coco, 'train', '00000.png'),
            img_id=0,
            instances=[
                dict(
                    bbox=[10., 10., 30., 30.],
                    bbox_label=0,
                    ignore_flag=0,
                    mask=[[10., 10., 30., 10., 30., 30.]])
            ])
        packed = Compose(cfg.train_dataloader.dataset.pipeline)(
            copy.deepcopy(sample))
        packed_test = Compose(cfg.test_dataloader.dataset.pipeline)(sample)
    assert packed['inputs'].shape[0] == 3
    # What the RoI heads read to map predictions back to the image.
    assert {'img_shape', 'ori_shape',
            'scale_factor'} <= set(packed_test['data_samples'].metainfo)
    assert detector.neck.num_outs == 5


@pytest.mark.parametrize('config', list(TRAINED), ids=group_ids(TRAINED))
def test_det_config_trains_one_iteration(config, tmp_path, shapes_coco,
                                         family_checkpoint,
                                         train_one_iteration):
    cfg = load_config(config)
    checkpoint, _ = family_checkpoint(cfg, fpn_dim=cfg.model.neck.fpn_dim)
    runner = train_one_iteration(
        shrink(cfg, tmp_path, shapes_coco, checkpoint))
    if cfg.model.backbone.get('token_reduction'):
        # The trained detector predicts with the reduction on: it keeps 8
        # of each image's 16 tokens.
        detector = runner.model.eval()
        data = detector.data_preprocessor(
            next(iter(runner.train_dataloader)), False)
        for sample in data['data_samples']:  # the tiny pipeline's images
            sample.set_metainfo(dict(scale_factor=(1., 1.)))
        with torch.no_grad(), kept_tokens(detector.backbone) as kept:
            results = detector.predict(data['inputs'], data['data_samples'])
        assert kept == [8]
        for result in results:
            assert torch.isfinite(result.pred_instances.bboxes).all()


@pytest.mark.parametrize(
    'demo',
    [
        'hivit-demo_skimage-pre_mask-rcnn_1xb4-6e_shapes-coco-128px.py',
        # Fast-iTPN-T at its full size, its backbone from a converted
        # checkpoint, a fresh pyramid.
        'fast-itpn-tiny_clip-l-1600e-pre_mask-rcnn_1xb4-6e_shapes-coco-'
        '128px.py',
        # DINO: boxes only.
        'hivit-demo_skimage-pre_dino-5scale_1xb4-2e_shapes-coco-128px.py'
    ])
def test_demo_config_trains_and_evaluates(demo, tmp_path, shapes_coco,
                                          fast_itpn_checkpoint):
    cfg = load_config(osp.join(REPO, 'configs', 'det', 'demo', demo))
    if cfg.model.backbone.type == 'mmitpn.FastiTPN':
        checkpoint, _ = fast_itpn_checkpoint(
            arch='fast-itpn-tiny', img_size=224)
        cfg.model.backbone.init_cfg.checkpoint = checkpoint
    else:
        cfg.model.backbone.init_cfg = cfg.model.neck.init_cfg = None
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        loader.batch_size = 2
        loader.dataset.data_root = shapes_coco
    cfg.val_evaluator.ann_file = osp.join(shapes_coco, 'annotations',
                                          'instances_val.json')
    cfg.test_dataloader = cfg.val_dataloader
    cfg.test_evaluator = cfg.val_evaluator
    cfg.train_cfg.update(max_epochs=1, val_interval=1)
    cfg.default_hooks.checkpoint.interval = 1
    cfg.work_dir = str(tmp_path / 'work_dir')
    runner = Runner.from_cfg(adapt_cfg_to_device(cfg))
    runner.train()
    metrics = runner.test()
    with_masks = cfg.model.type != 'DINO'
    keys = ('coco/bbox_mAP', 'coco/segm_mAP') if with_masks else \
        ('coco/bbox_mAP', )
    for key in keys:
        assert 0 <= metrics[key] <= 1, metrics
    # mmdet's DetInferencer takes the config and the written checkpoint.
    image = osp.join(shapes_coco, 'val', '00000.png')
    summary = run_image_demo(image, cfg, osp.join(cfg.work_dir, 'epoch_1.pth'),
                             str(tmp_path / 'vis'))
    assert 'instances, top (label, score)' in summary, summary
    with open(tmp_path / 'vis' / 'preds' / '00000.json') as file:
        prediction = json.load(file)
    assert {'labels', 'scores', 'bboxes'} <= set(prediction)
    assert ('masks' in prediction) == with_masks
    assert osp.isfile(tmp_path / 'vis' / 'vis' / '00000.png')
    meta = torch.load(
        osp.join(cfg.work_dir, 'epoch_1.pth'), weights_only=False)['meta']
    assert meta['dataset_meta']['classes'] == CLASSES
    assert len(meta['dataset_meta']['palette']) >= len(CLASSES)


def tiny_detector(checkpoint):
    cfg = load_config(
        osp.join(REPO, 'configs', 'det',
                 'itpn-base_pixel-1600e-pre_mask-rcnn_32xb2-amp-1x_coco.py'))
    cfg.model.backbone.update(arch=TINY, img_size=64)
    cfg.model.backbone.init_cfg.checkpoint = checkpoint
    cfg.model.neck.update(embed_dims=64)
    cfg.model.neck.init_cfg.checkpoint = checkpoint
    from mmdet.registry import MODELS as MMDET_MODELS
    with DefaultScope.overwrite_default_scope('mmdet'):
        return MMDET_MODELS.build(cfg.model)


def test_pretraining_checkpoint_fills_backbone_and_pyramid(
        pretraining_checkpoint, mm_log):
    checkpoint, pretrained = pretraining_checkpoint(fpn_dim=256)
    detector = tiny_detector(checkpoint)
    detector.init_weights()
    log = mm_log.getvalue()
    for part in ('backbone', 'neck'):
        assert f'load {part}. in model from: {checkpoint}' in log, log
    assert 'missing keys' not in log
    for part in ('backbone', 'neck'):
        for name, value in getattr(pretrained, part).state_dict().items():
            assert torch.equal(
                getattr(detector, part).state_dict()[name], value), name


def test_bad_checkpoints_are_named(check_checkpoint_errors):
    check_checkpoint_errors(tiny_detector, fpn_dim=256)


def test_padded_size_the_backbone_cannot_take_is_named(tmp_path):
    detector = tiny_detector(str(tmp_path / 'unused.pth'))
    # 100x150 padded to a multiple of 8 (instead of the configs' 32).
    detector.data_preprocessor.pad_size_divisor = 8
    data = detector.data_preprocessor(
        dict(inputs=[torch.zeros(3, 100, 150, dtype=torch.uint8)]))
    with pytest.raises(ValueError, match='got 104x152'):
        detector(data['inputs'], mode='tensor')


def test_official_detection_layout_loads_after_conversion(key_listing):
    from mmitpn.converters import convert_official
    state_dict = key_listing('keys_det_pixel_base.txt', prefixes=['backbone.'])
    conversion = convert_official(state_dict)
    cfg = load_config(
        osp.join(REPO, 'configs', 'det',
                 'itpn-base_pixel-1600e-pre_mask-rcnn_32xb2-amp-1x_coco.py'))
    cfg.model.neck.fpn_depth = conversion.neck['fpn_depth']
    from mmdet.registry import MODELS as MMDET_MODELS
    with DefaultScope.overwrite_default_scope('mmdet'), \
            torch.device('meta'):
        detector = MMDET_MODELS.build(cfg.model)
    result = detector.load_state_dict(
        conversion.state_dict, strict=False, assign=True)
    assert result.unexpected_keys == []
    assert all(
        key.startswith(('rpn_head.', 'roi_head.'))
        for key in result.missing_keys)
