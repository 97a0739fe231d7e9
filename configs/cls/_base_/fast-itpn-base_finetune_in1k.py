# ImageNet-1k fine-tuning of Fast-iTPN-B (official recipe of fast_itpn/:
# total batch 1024 (32 GPUs x 32), AdamW lr 1e-4 at that batch, weight decay
# 0.05, layer decay 0.90 over len(blocks) layers (merges counted, no
# rescaling), drop path 0.1, 20 epochs with 3 warm-up epochs, cosine to 1e-6,
# model EMA, mixup 0.8, cutmix 1.0, label smoothing 0.1, random erasing 0.25,
# ImageNet mean/std, mean pooling + fc_norm). The pipeline (RandAugment
# m9-mstd0.5-inc1 included) and runtime are those of the iTPN recipe.
_base_ = ['./itpn-base_finetune_in1k.py']

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmitpn.FastiTPN',
        arch='fast-itpn-base',
        img_size=224,
        drop_path_rate=0.1,
        layer_scale_init_value=0.1,
        out_type='avg_featmap',
        init_cfg=dict(
            type='Pretrained',
            # The official CLIP-L distilled pretraining weights, converted
            # with tools/model_converters/fast_itpn_to_mmitpn.py.
            checkpoint='checkpoints/fast-itpn-base_clip-l-1600e-pre.pth',
            prefix='backbone.')),
    head=dict(in_channels=512))

optim_wrapper = dict(
    optimizer=dict(lr=1e-4),
    paramwise_cfg=dict(_delete_=True, layer_decay_rate=0.90))

warmup_epochs = 3
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-3,
        by_epoch=True,
        begin=0,
        end=warmup_epochs,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        eta_min=1e-6,
        by_epoch=True,
        begin=warmup_epochs,
        convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=20)
auto_scale_lr = dict(enable=True, base_batch_size=1024)
# Model EMA (decay 0.9999); validation and checkpoints use the EMA weights.
custom_hooks = [
    dict(type='mmitpn.IterationSeedHook'),
    dict(type='mmitpn.NonFiniteGuardHook'),
    dict(type='mmitpn.TrainingScaleLoggerHook'),
    dict(type='EMAHook', momentum=1e-4, priority='ABOVE_NORMAL'),
]
