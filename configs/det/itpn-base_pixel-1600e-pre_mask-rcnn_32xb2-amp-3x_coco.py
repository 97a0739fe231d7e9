# 36 epochs (steps 27, 33), lr 1.5e-4, drop path 0.3.
_base_ = ['./_base_/itpn-base_mask-rcnn_1x_coco.py']

model = dict(backbone=dict(drop_path_rate=0.3))
optim_wrapper = dict(optimizer=dict(lr=1.5e-4))
param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
        end=500),
    dict(
        type='MultiStepLR',
        begin=0,
        end=36,
        by_epoch=True,
        milestones=[27, 33],
        gamma=0.1),
]
train_cfg = dict(max_epochs=36)
