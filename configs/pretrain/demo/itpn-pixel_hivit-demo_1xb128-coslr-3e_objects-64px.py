# CPU demo (`make demo`): iTPN pixel pretraining of a small HiViT on 64 px
# images of centred objects generated with scikit-image
# (tools/dataset_converters/make_objects_cls.py data/objects). The model,
# batch and schedule are those of the project's small-scale study
# (projects/itpn_study/), whose Fashion-MNIST model predicts the
# structure of hidden units after 3 epochs; a few minutes on 2 CPU cores.
_base_ = '../../_base_/default_runtime.py'

data_root = 'data/objects'
img_size = 64
batch_size = 128

model = dict(
    type='iTPN',
    backbone=dict(
        type='HiViT',
        arch=dict(
            embed_dims=128, stem_mlp_blocks=(1, 1), depth=4, num_heads=4),
        img_size=img_size),
    neck=dict(type='iTPNPyramid', embed_dims=128, fpn_dim=64, fpn_depth=1),
    head=dict(type='iTPNPixelHead', fpn_dim=64, decoder_embed_dims=128,
              decoder_depth=2, decoder_num_heads=4, img_size=img_size),
    mask_ratio=0.75)

train_dataloader = dict(
    batch_size=batch_size,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type='mmpretrain.CustomDataset',
        data_root=data_root,
        data_prefix='train',
        with_label=False,
        pipeline=[
            dict(type='LoadImageFromFileOrSkip', on_error='skip'),
            dict(type='mmpretrain.RandomResizedCrop', scale=img_size,
                 crop_ratio_range=(0.5, 1.0), backend='pillow',
                 interpolation='bicubic'),
            dict(type='mmpretrain.RandomFlip', prob=0.5),
            dict(type='mmpretrain.PackInputs'),
        ]))

optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=1.5e-4 * batch_size / 256 * 8,
                   betas=(0.9, 0.95), weight_decay=0.05, fused=True),
    constructor='LayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(
        layer_decay_rate=1.0, custom_keys={'mask_token': dict(decay_mult=0.)}))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=1, end=3,
         convert_to_iter_based=True),
]
train_cfg = dict(
    type='mmitpn.ResumableEpochBasedTrainLoop', max_epochs=3)

default_hooks = dict(
    logger=dict(interval=20), checkpoint=dict(max_keep_ckpts=1))
randomness = dict(seed=0)
