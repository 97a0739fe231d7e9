# iTPN-B fine-tuning (official recipe of the pixel variant): AdamW, lr 1.6e-3
# at batch 1024, weight decay 0.05, layer decay 0.60 rescaled as
# ld ** (13 / num_layers), 5 warm-up epochs then cosine to 5e-6, 100
# epochs, mixed precision.
optim_wrapper = dict(
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    optimizer=dict(type='AdamW', lr=4e-4 * 1024 / 256, betas=(0.9, 0.999),
                   weight_decay=0.05, fused=True),
    constructor='mmitpn.LayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.60, rescale_depth=12))

warmup_epochs = 5
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0,
         end=warmup_epochs, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=5e-6, by_epoch=True,
         begin=warmup_epochs, convert_to_iter_based=True),
]
train_cfg = dict(
    type='mmitpn.ResumableEpochBasedTrainLoop', max_epochs=100, val_interval=1)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(enable=True, base_batch_size=1024)
