# The Mask R-CNN 1x of the official iTPN detectors: 12 epochs with steps at 9
# and 11, AdamW lr 2e-4 (for 32 GPUs x 2 images, scaled linearly to other
# batches), weight decay 0.05, layer decay 0.90, 500 warm-up iterations, mixed
# precision.
_base_ = 'mmdet::_base_/schedules/schedule_1x.py'

optim_wrapper = dict(
    _delete_=True,
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    optimizer=dict(type='AdamW', lr=2e-4, betas=(0.9, 0.999),
                   weight_decay=0.05, fused=True),
    constructor='mmitpn.LayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.90))
param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=12, by_epoch=True,
         milestones=[9, 11], gamma=0.1),
]
train_cfg = dict(type='mmitpn.ResumableEpochBasedTrainLoop')
auto_scale_lr = dict(enable=True, base_batch_size=64)
