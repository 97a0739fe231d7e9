# Linear probing (MAE's recipe): LARS, base lr 0.1 at batch 16384 scaled
# linearly, no weight decay, 10 warm-up epochs then cosine, 90 epochs,
# validation every 10.
optim_wrapper = dict(
    type='AmpOptimWrapper',
    optimizer=dict(
        type='LARS', lr=0.1 * 16384 / 256, weight_decay=0.0, momentum=0.9))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0, end=10,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=0., by_epoch=True, begin=10,
         convert_to_iter_based=True),
]
train_cfg = dict(
    type='mmitpn.ResumableEpochBasedTrainLoop', max_epochs=90, val_interval=10)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(enable=True, base_batch_size=16384)
