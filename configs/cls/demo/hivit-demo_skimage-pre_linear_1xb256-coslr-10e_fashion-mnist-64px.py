# CPU demo: linear probe of the frozen `make demo-photos` pretraining
# checkpoint on Fashion-MNIST (BatchNorm without affine + linear head). MAE's
# LARS recipe (lr 0.1 at batch 256) is made for batch 16,384 and 90 epochs:
# here it moves the head too little to measure the features (26.8 % top-1). SGD
# with momentum at lr 0.3 on the un-augmented training images (the features the
# closed-form probe of tools/analysis_tools/feature_probe.py fits) gets close
# to that converged probe in 10 epochs; the lr sweep is in the README.
_base_ = [
    './_base_/fashion-mnist_64px.py',
    '../_base_/default_runtime.py',
]

# The probe measures the frozen features of the images themselves: the
# training images go through the deterministic test pipeline.
train_dataloader = dict(
    batch_size=256, dataset=dict(pipeline={{_base_.test_pipeline}}))
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='mmitpn.HiViT',
        arch=dict(
            embed_dims=192, stem_mlp_blocks=(1, 1), depth=4, num_heads=3),
        img_size=64,
        out_type='avg_featmap',
        final_norm=False,
        frozen_stages=3,
        init_cfg=dict(type='Pretrained',
                      checkpoint='work_dirs/demo/epoch_40.pth',
                      prefix='backbone.')),
    neck=dict(type='ClsBatchNormNeck', input_features=192),
    head=dict(type='LinearClsHead', num_classes=10, in_channels=192,
              loss=dict(type='CrossEntropyLoss'),
              init_cfg=[dict(type='TruncNormal', layer='Linear', std=0.01)]))

optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.3, weight_decay=0.0, momentum=0.9))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=2,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=0., by_epoch=True, begin=2,
         convert_to_iter_based=True),
]
train_cfg = dict(
    type='mmitpn.ResumableEpochBasedTrainLoop', max_epochs=10, val_interval=5)
val_cfg = dict()
test_cfg = dict()

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(interval=5, max_keep_ckpts=1, save_best='auto'))
randomness = dict(seed=0)
