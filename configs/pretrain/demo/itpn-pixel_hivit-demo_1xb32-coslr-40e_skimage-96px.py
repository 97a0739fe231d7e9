# CPU demo: iTPN pixel pretraining of a small HiViT on 96 px crops of the
# photographs that scikit-image ships (tools/dataset_converters/
# prepare_skimage_images.py); `make demo-photos`. A few minutes on 2 CPU cores.
_base_ = '../../_base_/default_runtime.py'

data_root = 'data/skimage_unlabeled'
img_size = 96

model = dict(
    type='iTPN',
    backbone=dict(
        type='HiViT',
        arch=dict(
            embed_dims=192, stem_mlp_blocks=(1, 1), depth=4, num_heads=3),
        img_size=img_size),
    neck=dict(type='iTPNPyramid', embed_dims=192, fpn_dim=96, fpn_depth=1),
    head=dict(type='iTPNPixelHead', fpn_dim=96, decoder_embed_dims=128,
              decoder_depth=2, decoder_num_heads=4, img_size=img_size),
    mask_ratio=0.75)

train_dataloader = dict(
    batch_size=32,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type='mmpretrain.CustomDataset',
        data_root=data_root,
        with_label=False,
        pipeline=[
            dict(type='LoadImageFromFileOrSkip', on_error='skip'),
            dict(type='mmpretrain.RandomResizedCrop', scale=img_size,
                 crop_ratio_range=(0.4, 1.0), backend='pillow',
                 interpolation='bicubic'),
            dict(type='mmpretrain.RandomFlip', prob=0.5),
            dict(type='mmpretrain.PackInputs'),
        ]))

optim_wrapper = dict(
    optimizer=dict(
        type='AdamW', lr=1.5e-4 * 32 / 256 * 8, betas=(0.9, 0.95),
        weight_decay=0.05,
        # One fused kernel per step (CPU and GPU): ~3x faster than the loop.
        fused=True),
    constructor='LayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=1.0,
                       custom_keys={'mask_token': dict(decay_mult=0.)}))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=4,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=4,
         convert_to_iter_based=True),
]
train_cfg = dict(
    type='mmitpn.ResumableEpochBasedTrainLoop', max_epochs=40)

default_hooks = dict(
    logger=dict(interval=8), checkpoint=dict(interval=5, max_keep_ckpts=2))
randomness = dict(seed=0)
# Reconstructions of four training images spread over the dataset (the same
# four in every run on the same data) every 10 epochs, in
# work_dirs/<run>/reconstructions_during_training/ and any visualiser
# backend (TensorBoard with tools/train.py --tensorboard).
custom_hooks = _base_.custom_hooks + [
    dict(type='ReconstructionHook', images=4, interval=10,
         out_dir='reconstructions_during_training'),
]
