# CPU demo recipe: fine-tuning on Fashion-MNIST with layer decay, the
# backbone from the `make demo-photos` pretraining checkpoint (HiViT + iTPN
# pixel on scikit-image photographs); the Fast-iTPN-T demo replaces the
# backbone.
_base_ = [
    './fashion-mnist_64px.py',
    '../../_base_/default_runtime.py',
]

model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='mmitpn.HiViT',
        arch=dict(
            embed_dims=192, stem_mlp_blocks=(1, 1), depth=4, num_heads=3),
        img_size=64,
        drop_path_rate=0.1,
        rel_pos_type='bias_table',
        out_type='avg_featmap',
        # The 96 px pretraining position embedding is resized to 64 px.
        init_cfg=dict(type='Pretrained',
                      checkpoint='work_dirs/demo/epoch_40.pth',
                      prefix='backbone.')),
    neck=None,
    head=dict(
        type='LinearClsHead',
        num_classes=10,
        in_channels=192,
        loss=dict(
            type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        init_cfg=[dict(type='TruncNormal', layer='Linear', std=2e-5)]))

optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=2e-3, betas=(0.9, 0.999),
                   weight_decay=0.05, fused=True),
    constructor='mmitpn.LayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.75))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=1,
         convert_to_iter_based=True),
]
train_cfg = dict(
    type='mmitpn.ResumableEpochBasedTrainLoop', max_epochs=6, val_interval=3)
val_cfg = dict()
test_cfg = dict()

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(interval=3, max_keep_ckpts=1, save_best='auto'))
randomness = dict(seed=0)
