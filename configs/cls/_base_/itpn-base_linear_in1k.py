# Linear probing of a frozen iTPN-B backbone (MAE's recipe: BatchNorm without
# affine parameters before a linear classifier, LARS, base lr 0.1 at batch
# 16384 scaled linearly, 10 warm-up epochs, cosine, 90 epochs; random
# resized crops and flips only). Top-1 and top-5 on the validation set.
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs32_pil_resize.py',
    'mmpretrain::_base_/default_runtime.py',
]

train_dataloader = dict(batch_size=2048, drop_last=True)
val_dataloader = dict(batch_size=256, drop_last=False)
test_dataloader = val_dataloader

model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='mmitpn.HiViT',
        arch='itpn-base',
        img_size=224,
        # Mean of the stride-16 tokens, without the fine-tuning fc_norm.
        out_type='avg_featmap',
        final_norm=False,
        frozen_stages=3,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='work_dirs/itpn-pixel_itpn-base_64xb64-amp-coslr-'
            '1600e_in1k/epoch_1600.pth',
            prefix='backbone.')),
    neck=dict(type='ClsBatchNormNeck', input_features=512),
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=512,
        loss=dict(type='CrossEntropyLoss'),
        topk=(1, 5),
        init_cfg=[dict(type='TruncNormal', layer='Linear', std=0.01)]))

optim_wrapper = dict(
    type='AmpOptimWrapper',
    optimizer=dict(
        type='LARS', lr=0.1 * 16384 / 256, weight_decay=0.0, momentum=0.9))
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-4,
        by_epoch=True,
        begin=0,
        end=10,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        eta_min=0.,
        by_epoch=True,
        begin=10,
        convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=90, val_interval=10)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(enable=True, base_batch_size=16384)

default_hooks = dict(
    checkpoint=dict(type='mmitpn.SafeCheckpointHook', interval=10, max_keep_ckpts=3),
    logger=dict(type='LoggerHook', interval=10))
custom_hooks = [
    dict(type='mmitpn.IterationSeedHook'),
    dict(type='mmitpn.NonFiniteGuardHook'),
    dict(type='mmitpn.TrainingScaleLoggerHook'),
]
randomness = dict(seed=0, diff_rank_seed=True)
