# Copyright (c) mmitpn contributors. All rights reserved.
"""The configs of the study's runs, built from the shipped demo configs.

Each run trains through ``tools/train.py`` with a config generated here.
Optimiser, batch, augmentation and the shape of every schedule (warm-up,
decay, rates) come from the demo config of its task; the study sets only
its own lengths, data, model size and seed.
"""
import copy
import os.path as osp
from typing import Optional

import numpy as np
from mmengine.config import Config

from .plan import (ARCH, CONTINUATIONS, DIMS, FPN_DIM, GARMENT_CLASSES, IMG,
                   MFM_VARIANTS, REPO)

RUNTIME = osp.join(REPO, 'configs', '_base_', 'default_runtime.py')
CLS_DATA = osp.join(REPO, 'configs', 'cls', 'demo', '_base_',
                    'fashion-mnist_64px.py')
PRETRAIN_DEMO = osp.join(
    REPO, 'configs', 'pretrain', 'demo',
    'itpn-pixel_hivit-demo_1xb128-coslr-3e_objects-64px.py')
CLS_FINETUNE = osp.join(
    REPO, 'configs', 'cls', 'demo',
    'hivit-demo_skimage-pre_1xb64-coslr-6e_fashion-mnist-64px.py')
SEG_DEMO = osp.join(
    REPO, 'configs', 'seg', 'demo',
    'hivit-demo_skimage-pre_upernet_1xb8-1k_shapes-seg-128px.py')
DET_DEMO = osp.join(
    REPO, 'configs', 'det', 'demo',
    'hivit-demo_skimage-pre_mask-rcnn_1xb4-6e_shapes-coco-128px.py')
# The detection demo warms up over 100 of its 600 iterations; the study's
# 120-iteration runs over 50.
DET_WARMUP_ITERS = 50


def _warmup_and_decay(schedule: list, source: str) -> list:
    if len(schedule) != 2 or schedule[0]['type'] != 'LinearLR':
        raise ValueError(
            f'{source}: the study rescales a schedule of a LinearLR warm-up '
            f'and one decay, got {[s["type"] for s in schedule]}.')
    return copy.deepcopy(list(schedule))


def epoch_schedule(schedule: list, epochs: int, source: str) -> list:
    """A config's epoch-based warm-up and decay, ending after ``epochs``;
    the warm-up leaves at least one epoch to the decay (none in a 1-epoch
    run)."""
    warmup, decay = _warmup_and_decay(schedule, source)
    length = min(warmup['end'] - warmup['begin'], epochs - 1)
    decay.update(begin=length, end=epochs)
    if length == 0:
        return [decay]
    warmup['end'] = length
    return [warmup, decay]


def iter_schedule(schedule: list, iters: int, source: str) -> list:
    """A config's iteration-based warm-up and decay over ``iters``
    iterations, the warm-up the same share of them (at least one)."""
    warmup, decay = _warmup_and_decay(schedule, source)
    length = max(1, iters * (warmup['end'] - warmup['begin']) // decay['end'])
    warmup['end'] = length
    decay.update(begin=length, end=iters)
    return [warmup, decay]


def pretrain_recipe() -> Config:
    """The pretraining demo config, whose optimiser, batch, augmentation and
    schedule every pretraining run of the study uses."""
    return Config.fromfile(PRETRAIN_DEMO)


def lr_after(epoch: int, args) -> float:
    """Learning rate of the pretraining schedule after ``epoch`` epochs:
    the recipe's warm-up, then its cosine decay over ``pretrain_epochs``."""
    recipe = pretrain_recipe()
    warmup, decay = _warmup_and_decay(recipe.param_scheduler, PRETRAIN_DEMO)
    base, eta_min = recipe.optim_wrapper.optimizer.lr, decay['eta_min']
    start = warmup['end'] - warmup['begin']
    progress = (epoch - start) / max(args.pretrain_epochs - start, 1)
    return eta_min + (base - eta_min) * (1 + np.cos(np.pi * progress)) / 2


def pretrain_model(objective: str, mask_ratio: float) -> dict:
    """The study's iTPN (or MAE-style) model for ``objective``."""
    model = dict(
        type='mmitpn.iTPN',
        data_preprocessor=dict(
            type='mmpretrain.SelfSupDataPreprocessor',
            mean=[123.675, 116.28, 103.53],
            std=[58.395, 57.12, 57.375],
            to_rgb=False),
        backbone=dict(type='HiViT', arch=ARCH, img_size=IMG),
        neck=dict(
            type='iTPNPyramid', embed_dims=DIMS, fpn_dim=FPN_DIM, fpn_depth=1),
        head=dict(
            type='iTPNPixelHead',
            fpn_dim=FPN_DIM,
            decoder_embed_dims=128,
            decoder_depth=2,
            decoder_num_heads=4,
            img_size=IMG),
        mask_ratio=mask_ratio)
    if objective == 'mae':
        model['neck'] = None
        model['head'].update(fpn_dim=DIMS, levels=(16, ))
    elif objective == 'itpn-pixel-mfm' or objective in MFM_VARIANTS:
        options = copy.deepcopy(MFM_VARIANTS.get(objective, {}))
        model.update(
            mfm_head=dict(
                type='iTPNMFMHead',
                fpn_dim=FPN_DIM,
                teacher_dims=(DIMS // 4, DIMS // 2, DIMS),
                embed_dims=64,
                depth=1,
                num_heads=2,
                level_weights=options.pop('level_weights', (1., 1., 1.)),
                img_size=IMG),
            ema=options.pop('ema', dict(momentum=0.01, end_momentum=0.)))
    return model


def with_root(dataset: dict, args) -> dict:
    """A Fashion-MNIST dataset config reading ``--fashion-mnist-root``."""
    if args.fashion_mnist_root is None:
        return dataset
    return dict(dataset, data_root=args.fashion_mnist_root)


def as_run(cfg: Config) -> Config:
    """``cfg`` without the shipped configs' ``PreemptionHook``: the study
    ran without it, and its configs save with mmengine's ``CheckpointHook``,
    through which the hook cannot save."""
    cfg.custom_hooks = [
        hook for hook in cfg.get('custom_hooks', [])
        if hook['type'].split('.')[-1] != 'PreemptionHook'
    ]
    return cfg


def pretrain_checkpoints(args) -> dict:
    """The last checkpoint (the study), or one after every epoch with the
    optimiser state (the pre-registered plans probe and continue from
    earlier epochs, and an interrupted run resumes from its last epoch)."""
    if args.plan in ('prereg', 'decide'):
        return dict(interval=1, max_keep_ckpts=-1, save_optimizer=True)
    return dict(interval=args.pretrain_epochs, max_keep_ckpts=1)


def pretrain_config(objective: str, args, seed: int) -> Config:
    """Pretraining on Fashion-MNIST training images with ``objective``."""
    data = Config.fromfile(CLS_DATA)
    recipe = pretrain_recipe()
    loader = recipe.train_dataloader
    # Fashion-MNIST images are held in memory: no loading step.
    pipeline = [
        step for step in loader.dataset.pipeline
        if step['type'] != 'LoadImageFromFileOrSkip'
    ]
    cfg = Config.fromfile(RUNTIME)
    cfg.merge_from_dict(
        dict(
            model=pretrain_model(objective, args.mask_ratio),
            train_dataloader=dict(
                batch_size=loader.batch_size,
                num_workers=0,
                sampler=loader.sampler,
                collate_fn=loader.collate_fn,
                dataset=dict(
                    with_root(data.train_dataloader.dataset, args),
                    indices=args.pretrain_images,
                    pipeline=pipeline)),
            optim_wrapper=recipe.optim_wrapper,
            param_scheduler=epoch_schedule(recipe.param_scheduler,
                                           args.pretrain_epochs,
                                           PRETRAIN_DEMO),
            train_cfg=dict(
                type='EpochBasedTrainLoop', max_epochs=args.pretrain_epochs),
            default_hooks=dict(
                logger=dict(interval=20),
                checkpoint=pretrain_checkpoints(args)),
            randomness=dict(seed=seed)))
    return as_run(cfg)


def continuation_config(arm: str, checkpoint: str, args, seed: int) -> Config:
    """An arm of the MFM continuation: the pixel run's checkpoint after
    ``continue_from`` epochs trained to ``pretrain_epochs`` with pixel
    reconstruction only (``cont-pixel``) or pixel + MFM (``cont-mfm``).

    Both arms start from the same weights, the learning rate the pixel run
    had there, a fresh AdamW state and the same cosine decay; an MFM
    teacher copies the loaded backbone at its first update.
    """
    cfg = pretrain_config(CONTINUATIONS[arm], args, seed)
    epochs = args.pretrain_epochs - args.continue_from
    cfg.optim_wrapper.optimizer.lr = float(lr_after(args.continue_from, args))
    decay = cfg.param_scheduler[-1]
    cfg.param_scheduler = [dict(decay, begin=0, end=epochs)]
    cfg.train_cfg.max_epochs = epochs
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook',
        interval=epochs,
        max_keep_ckpts=1,
        save_optimizer=False)
    cfg.load_from = checkpoint
    return cfg


def finetune_config(checkpoint: Optional[str], args, seed: int) -> Config:
    """The classification demo's fine-tuning, shortened to the study's
    budget, from a pretraining checkpoint (``None``: random init)."""
    cfg = Config.fromfile(CLS_FINETUNE)
    backbone = cfg.model.backbone
    backbone.arch = ARCH
    if checkpoint is None:
        backbone.pop('init_cfg')
    else:
        backbone.init_cfg.checkpoint = checkpoint
    cfg.model.head.in_channels = DIMS
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        loader.dataset = with_root(loader.dataset, args)
    cfg.train_dataloader.dataset.indices = args.finetune_images
    cfg.val_dataloader.dataset.indices = args.test_images
    cfg.test_dataloader = cfg.val_dataloader
    epochs = args.finetune_epochs
    # mmengine's loop, with which the study ran.
    cfg.train_cfg = dict(
        type='EpochBasedTrainLoop', max_epochs=epochs, val_interval=1)
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook', interval=epochs, max_keep_ckpts=1)
    cfg.param_scheduler = epoch_schedule(cfg.param_scheduler, epochs,
                                         CLS_FINETUNE)
    cfg.randomness = dict(seed=seed)
    return as_run(cfg)


def _transfer_parts(cfg: Config, checkpoint: Optional[str],
                    with_pyramid: bool) -> None:
    backbone, neck = cfg.model.backbone, cfg.model.neck
    backbone.update(arch=ARCH, img_size=IMG)
    neck.update(embed_dims=DIMS, fpn_dim=FPN_DIM)
    if checkpoint is None:
        backbone.pop('init_cfg')
    else:
        backbone.init_cfg.checkpoint = checkpoint
    if checkpoint is not None and with_pyramid:
        neck.init_cfg.checkpoint = checkpoint
    else:
        neck.pop('init_cfg')


def seg_config(checkpoint, with_pyramid, data_root, args, seed) -> Config:
    """The segmentation demo's UperNet on the study's model for
    ``args.seg_iters`` iterations, mIoU ``args.seg_points`` times."""
    cfg = Config.fromfile(SEG_DEMO)
    _transfer_parts(cfg, checkpoint, with_pyramid)
    levels = [FPN_DIM + DIMS // 4, FPN_DIM + DIMS // 2, FPN_DIM + DIMS]
    cfg.model.decode_head.in_channels = levels + levels[-1:]
    cfg.model.auxiliary_head.in_channels = levels[-1]
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        loader.dataset.data_root = data_root
    cfg.test_dataloader = cfg.val_dataloader
    iters = args.seg_iters
    interval = max(1, iters // args.seg_points)
    cfg.param_scheduler = iter_schedule(cfg.param_scheduler, iters, SEG_DEMO)
    cfg.train_cfg = dict(
        type='IterBasedTrainLoop', max_iters=iters, val_interval=interval)
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook',
        by_epoch=False,
        interval=iters,
        max_keep_ckpts=1)
    cfg.default_hooks.logger.interval = max(1, interval // 2)
    cfg.randomness = dict(seed=seed)
    return as_run(cfg)


def garments_seg_config(checkpoint, with_pyramid, data_root, args,
                        seed) -> Config:
    """The pre-registered in-domain dense transfer: :func:`seg_config`'s
    UperNet and schedule (linear warm-up over the first 10 % of
    ``args.seg_iters``, then linear decay to 0; mIoU evaluated
    ``args.seg_points`` times, evenly spaced) on the garments set of
    :func:`~projects.itpn_study.study.garments.make_garments_seg` (64 px,
    11 classes)."""
    cfg = seg_config(checkpoint, with_pyramid, data_root, args, seed)
    cfg.model.data_preprocessor.size = (IMG, IMG)
    for head in (cfg.model.decode_head, cfg.model.auxiliary_head):
        head.num_classes = len(GARMENT_CLASSES)
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        loader.dataset.metainfo = dict(classes=GARMENT_CLASSES)
    cfg.test_dataloader = cfg.val_dataloader
    return cfg


def det_config(checkpoint, with_pyramid, data_root, args, seed) -> Config:
    """The detection demo's Mask R-CNN on the study's model for
    ``args.det_epochs`` epochs on ``args.det_images`` images, its learning
    rate divided by 10 for the last epoch."""
    cfg = Config.fromfile(DET_DEMO)
    _transfer_parts(cfg, checkpoint, with_pyramid)
    channels = FPN_DIM
    roi = cfg.model.roi_head
    cfg.model.rpn_head.update(in_channels=channels, feat_channels=channels)
    roi.bbox_roi_extractor.out_channels = channels
    roi.bbox_head.update(in_channels=channels, conv_out_channels=channels)
    roi.mask_roi_extractor.out_channels = channels
    roi.mask_head.update(in_channels=channels, conv_out_channels=channels)
    cfg.train_dataloader.dataset.update(
        data_root=data_root, indices=args.det_images)
    cfg.val_dataloader.dataset.data_root = data_root
    cfg.val_evaluator.ann_file = osp.join(data_root,
                                          'annotations/instances_val.json')
    cfg.test_dataloader, cfg.test_evaluator = (cfg.val_dataloader,
                                               cfg.val_evaluator)
    epochs = args.det_epochs
    warmup, decay = _warmup_and_decay(cfg.param_scheduler, DET_DEMO)
    warmup['end'] = DET_WARMUP_ITERS
    decay.update(end=epochs, milestones=[max(1, epochs - 1)])
    cfg.param_scheduler = [warmup, decay]
    cfg.train_cfg = dict(
        type='EpochBasedTrainLoop', max_epochs=epochs, val_interval=1)
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook', interval=epochs, max_keep_ckpts=1)
    cfg.default_hooks.logger.interval = 10
    cfg.randomness = dict(seed=seed)
    return as_run(cfg)


# The dense pilot's recipes (design.RECIPES): what each changes in the
# shipped segmentation recipe.
RECIPE_CHANGES = {
    'shipped': {},
    'backbone-lr-0.1': dict(backbone_lr_mult=0.1),
    'frozen-backbone': dict(frozen_stages=3),
}


def decide_pretrain_config(objective: str, args, seed: int,
                           init: str) -> Config:
    """Pretraining of the plan ``decide``: :func:`pretrain_config` on the
    first ``args.pretrain_images`` training images, started from the
    seed's saved initialisation ``init`` (shared by the objectives)."""
    cfg = pretrain_config(objective, args, seed)
    cfg.load_from = init
    return cfg


def decide_seg_config(recipe: str, init: str, data_root: str, args, seed: int,
                      dense: dict) -> Config:
    """The low-label dense transfer of the plan ``decide``:
    :func:`garments_seg_config` for ``dense['iters']`` iterations with
    ``dense['points']`` evaluations, every part started from the saved
    segmentor ``init`` (:func:`~.inits.dense_init`), with the fine-tuning
    ``recipe`` (:data:`RECIPE_CHANGES`)."""
    if recipe not in RECIPE_CHANGES:
        raise ValueError(f'unknown recipe {recipe!r}; the registered ones '
                         f'are {tuple(RECIPE_CHANGES)}.')
    args = copy.copy(args)
    args.seg_iters, args.seg_points = dense['iters'], dense['points']
    cfg = garments_seg_config(None, False, data_root, args, seed)
    changes = RECIPE_CHANGES[recipe]
    if 'backbone_lr_mult' in changes:
        cfg.optim_wrapper.paramwise_cfg.custom_keys = {
            'backbone.': dict(lr_mult=changes['backbone_lr_mult'])
        }
    if 'frozen_stages' in changes:
        cfg.model.backbone.frozen_stages = changes['frozen_stages']
    cfg.load_from = init
    return cfg
