# 160k iterations (mmseg's schedule and hooks, with mmitpn's atomic checkpoints
# that resume exactly under any launcher): AdamW lr 1e-4 for 8 GPUs x 2
# images (scaled linearly to other world sizes), weight decay 0.05, layer
# decay 0.90 (rescaled as the official ld ** (13 / num_layers)), 1500
# warm-up iterations then a poly schedule, mixed precision.
_base_ = 'mmseg::_base_/schedules/schedule_160k.py'

optim_wrapper = dict(
    _delete_=True,
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999),
                   weight_decay=0.05, fused=True),
    constructor='mmitpn.LayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.90, rescale_depth=12))
param_scheduler = [
    dict(
        type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=1500, end=160000,
         by_epoch=False),
]
auto_scale_lr = dict(enable=True, base_batch_size=16)
# mmseg's loop, resuming exactly without reloading the batches trained.
train_cfg = dict(type='mmitpn.ResumableIterBasedTrainLoop')

default_hooks = dict(
    checkpoint=dict(
        type='mmitpn.SafeCheckpointHook', interval=4000, max_keep_ckpts=3))
