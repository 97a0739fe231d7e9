# Official pixel recipe: AdamW (0.9, 0.95), lr 1.5e-4 * 4096 / 256, weight
# decay 0.05 except norms, biases, 1-D parameters and position embeddings,
# 40 warm-up epochs then cosine to 0, mixed precision.
optim_wrapper = dict(
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    optimizer=dict(
        type='AdamW', lr=1.5e-4 * 4096 / 256, betas=(0.9, 0.95),
        weight_decay=0.05,
        # One fused kernel per step (CPU and GPU): ~3x faster than the loop.
        fused=True),
    # Rate 1: no layer decay, only the no-decay rules and few param groups.
    constructor='LayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=1.0,
                       custom_keys={'mask_token': dict(decay_mult=0.)}))

warmup_epochs = 40
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0,
         end=warmup_epochs, convert_to_iter_based=True),
    # Ends with training (mmengine sets ``end`` to ``train_cfg.max_epochs``).
    dict(type='CosineAnnealingLR', eta_min=0., by_epoch=True,
         begin=warmup_epochs, convert_to_iter_based=True),
]
train_cfg = dict(
    type='mmitpn.ResumableEpochBasedTrainLoop', max_epochs=400)
auto_scale_lr = dict(enable=True, base_batch_size=4096)
