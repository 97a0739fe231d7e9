# Cascade Mask R-CNN 3x: 36 epochs, steps at 27 and 33; every cascade stage
# has a 4conv1fc box head with SyncBN and GIoU.
_base_ = [
    'mmdet::_base_/models/cascade-mask-rcnn_r50_fpn.py',
    'mmdet::_base_/datasets/coco_instance.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py',
    './itpn-base_det_parts.py',
]

model = dict(
    data_preprocessor=dict(pad_size_divisor=32),
    backbone={{_base_.itpn_backbone}},
    neck={{_base_.itpn_neck}},
    roi_head=dict(bbox_head={{_base_.cascade_box_heads}}))
train_dataloader = dict(
    batch_size=2, dataset=dict(pipeline={{_base_.itpn_train_pipeline}}))
optim_wrapper = {{_base_.itpn_optim_wrapper}}
# Atomic checkpoints that resume exactly under any launcher.
default_hooks = dict(checkpoint=dict(type='mmitpn.SafeCheckpointHook'))
custom_hooks = [
    dict(type='mmitpn.IterationSeedHook'),
    dict(type='mmitpn.NonFiniteGuardHook'),
    dict(type='mmitpn.TrainingScaleLoggerHook'),
]
auto_scale_lr = dict(enable=True, base_batch_size=64)
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
