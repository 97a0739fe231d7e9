# Copyright (c) mmitpn contributors. All rights reserved.
"""Every classification config builds at full size; one of each training
group (tests/shipped_configs.py) trains one iteration with tiny overrides, its
backbone (and pyramid) loaded from a pretraining checkpoint written by the
iTPN algorithm."""
import copy
import glob
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS
from PIL import Image
from shipped_configs import (group_ids, load_config, run_image_demo,
                             training_groups)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = sorted(
    glob.glob(osp.join(REPO, 'configs', 'cls', '*.py')) +
    glob.glob(osp.join(REPO, 'configs', 'cls', 'demo', '*.py')))
TINY = dict(embed_dims=64, stem_mlp_blocks=(1, 1), depth=2, num_heads=4)
# The test keeps each config's training pipeline (resized).
TRAINED = training_groups(
    CONFIGS, ('model', 'optim_wrapper', 'train_dataloader.dataset.pipeline'))


def write_imagenet_like(folder):
    rng = np.random.default_rng(0)
    for label in ('a', 'b'):
        (folder / label).mkdir(parents=True)
        pixels = rng.integers(0, 255, (80, 80, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / label / '0.png')
    return str(folder)


def resize_pipeline(pipeline):
    for step in pipeline:
        if step.type in ('RandomResizedCrop', 'CenterCrop'):
            step.update({'scale' if 'scale' in step else 'crop_size': 64})
        elif step.type == 'ResizeEdge':
            step.scale = 73
        elif step.type == 'Resize':
            step.scale = (64, 64)


def shrink(cfg, tmp_path, checkpoint, fashion_mnist_root):
    backbone = cfg.model.backbone
    backbone.update(arch=TINY, img_size=64)
    backbone.init_cfg.checkpoint = checkpoint
    neck = cfg.model.get('neck')
    if neck and neck.type == 'mmitpn.iTPNLinearProbeNeck':
        neck.pyramid.update(embed_dims=64, fpn_dim=32)
        neck.pyramid.init_cfg.checkpoint = checkpoint
        cfg.model.head.in_channels = 3 * 32 + 64
    elif neck:
        neck.input_features = 64
        cfg.model.head.in_channels = 64
    else:
        cfg.model.head.in_channels = 64
    loader = cfg.train_dataloader
    loader.update(batch_size=2, num_workers=0, persistent_workers=False)
    if loader.dataset.type == 'mmitpn.FashionMNIST':
        loader.dataset.update(data_root=fashion_mnist_root, indices=2)
    else:
        loader.dataset = dict(
            type='CustomDataset',
            data_root=write_imagenet_like(tmp_path / 'images'),
            pipeline=loader.dataset.pipeline)
    resize_pipeline(loader.dataset.pipeline)
    cfg.train_cfg.update(max_epochs=1, val_interval=100)
    for scheduler in cfg.param_scheduler:
        scheduler.update(begin=0, end=1)
    return cfg


@pytest.mark.parametrize(
    'config', CONFIGS, ids=[osp.basename(c)[:-3] for c in CONFIGS])
def test_cls_config_builds_at_full_size(config):
    cfg = load_config(config)
    assert cfg.model.backbone.init_cfg.prefix == 'backbone.'
    with DefaultScope.overwrite_default_scope('mmpretrain'), \
            torch.device('meta'):
        MMPRETRAIN_MODELS.build(cfg.model)


@pytest.mark.parametrize('config', list(TRAINED), ids=group_ids(TRAINED))
def test_cls_config_trains_one_iteration(config, tmp_path, fashion_mnist_root,
                                         family_checkpoint,
                                         train_one_iteration):
    cfg = load_config(config)
    checkpoint, pretrained = family_checkpoint(cfg)
    runner = train_one_iteration(
        shrink(cfg, tmp_path, checkpoint, fashion_mnist_root))
    backbone = runner.model.backbone
    if backbone.frozen_stages == 3:
        # Linear probing: the backbone still holds the pretrained weights.
        assert torch.equal(backbone.blocks[0].mlp.fc1.weight,
                           pretrained.blocks[0].mlp.fc1.weight)


@pytest.mark.parametrize(
    'name,lr,layer_decay,drop_path,epochs,warmup,per_gpu,total', [
        ('fast-itpn-tiny_clip-l-1600e-pre_16xb64-amp-coslr-100e_in1k', 1e-4,
         0.80, 0.1, 100, 5, 64, 16 * 64),
        ('fast-itpn-small_clip-l-1600e-pre_16xb64-amp-coslr-100e_in1k', 1e-4,
         0.90, 0.1, 100, 5, 64, 16 * 64),
        ('fast-itpn-base_clip-l-1600e-pre_32xb32-amp-coslr-20e_in1k', 1e-4,
         0.90, 0.1, 20, 3, 32, 32 * 32),
        ('fast-itpn-large_clip-l-1600e-pre_32xb4-accum4-amp-coslr-20e_'
         'in1k-640px', 5e-5, 0.95, 0.2, 20, 3, 4, 32 * 4 * 4),
    ])
def test_fast_itpn_recipes_are_the_official_ones(name, lr, layer_decay,
                                                 drop_path, epochs, warmup,
                                                 per_gpu, total):
    cfg = load_config(osp.join(REPO, 'configs', 'cls', name + '.py'))
    wrapper = cfg.optim_wrapper
    accumulation = wrapper.get('accumulative_counts', 1)
    assert cfg.train_dataloader.batch_size == per_gpu
    # The recipe lr at the recipe's total batch (mmengine counts the batch
    # without the accumulation).
    assert cfg.auto_scale_lr.base_batch_size * accumulation == total
    assert wrapper.optimizer.lr == lr and wrapper.optimizer.weight_decay == \
        0.05
    assert wrapper.paramwise_cfg == dict(layer_decay_rate=layer_decay)
    assert cfg.model.backbone.drop_path_rate == drop_path
    assert cfg.train_cfg.max_epochs == epochs
    assert cfg.param_scheduler[0].end == warmup
    assert cfg.param_scheduler[1].eta_min == 1e-6
    assert [a.type
            for a in cfg.model.train_cfg.augments] == ['Mixup', 'CutMix']
    assert cfg.model.head.loss.label_smooth_val == 0.1
    assert any(h.type == 'EMAHook' for h in cfg.custom_hooks)


def test_classification_inferencer_on_a_written_checkpoint(
        tmp_path, fashion_mnist_root, pretraining_checkpoint,
        train_one_iteration):
    """mmpretrain's ImageClassificationInferencer (demo/image_demo.py) takes
    the demo config and a checkpoint tools/train.py writes, with the class
    names from its dataset_meta."""
    config = osp.join(
        REPO, 'configs', 'cls', 'demo',
        'hivit-demo_skimage-pre_1xb64-coslr-6e_fashion-mnist-64px.py')
    checkpoint, _ = pretraining_checkpoint()
    cfg = shrink(load_config(config), tmp_path, checkpoint, fashion_mnist_root)
    cfg.test_dataloader.dataset.update(data_root=fashion_mnist_root)
    inference_cfg = copy.deepcopy(cfg)
    runner = train_one_iteration(cfg)
    runner.save_checkpoint(str(tmp_path), 'classifier.pth')
    image = tmp_path / 'shirt.png'
    Image.fromarray(
        np.random.default_rng(0).integers(0, 255, (28, 28, 3),
                                          dtype=np.uint8)).save(image)
    summary = run_image_demo(
        str(image), inference_cfg, str(tmp_path / 'classifier.pth'),
        str(tmp_path / 'vis'))
    # "<class> (score 0.123)", the class named by the checkpoint's dataset_meta
    classes = runner.train_dataloader.dataset.metainfo['classes']
    assert summary.split(' (score ')[0] in classes, summary
    assert osp.isfile(tmp_path / 'vis' / 'shirt.png')
