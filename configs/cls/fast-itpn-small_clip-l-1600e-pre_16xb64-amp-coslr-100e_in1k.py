# Fast-iTPN-S (40 M), CLIP-L distilled pretraining -> ImageNet-1k, 100 epochs
# (official recipe: 16 GPUs x 64, lr 1e-4 at 1024, layer decay 0.90, drop
# path 0.1, 5 warm-up epochs, model EMA); official result 86.4 % top-1 at
# 224 px.
_base_ = [
    './_base_/models/fast-itpn-base.py',
    './_base_/datasets/imagenet_bs32_randaug_224.py',
    './_base_/schedules/fast-itpn_adamw_coslr-20e_in1k.py',
    './_base_/default_runtime.py',
]

model = dict(
    backbone=dict(
        arch='fast-itpn-small',
        init_cfg=dict(
            checkpoint='checkpoints/fast-itpn-small_clip-l-1600e-pre.pth')),
    head=dict(in_channels=384))
train_dataloader = dict(batch_size=64)
warmup_epochs = 5
_base_.param_scheduler[0].end = _base_.param_scheduler[1].begin = warmup_epochs
train_cfg = dict(max_epochs=100)
default_hooks = dict(
    checkpoint=dict(interval=1, max_keep_ckpts=3, save_best='auto'))
# Model EMA (decay 0.9999); validation and checkpoints use the EMA weights.
custom_hooks = _base_.custom_hooks + [
    dict(type='EMAHook', momentum=1e-4, priority='ABOVE_NORMAL'),
]
randomness = dict(seed=0, diff_rank_seed=True)
