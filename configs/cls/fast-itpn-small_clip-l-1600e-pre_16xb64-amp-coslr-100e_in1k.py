# Fast-iTPN-S (40 M), CLIP-L distilled pretraining -> ImageNet-1k, 100 epochs
# (official recipe: 16 GPUs x 64, lr 1e-4 at 1024, layer decay 0.90, drop
# path 0.1, 5 warm-up epochs); official result 86.4 % top-1 at 224 px.
_base_ = ['./_base_/fast-itpn-base_finetune_in1k.py']

model = dict(
    backbone=dict(
        arch='fast-itpn-small',
        init_cfg=dict(
            checkpoint='checkpoints/fast-itpn-small_clip-l-1600e-pre.pth')),
    head=dict(in_channels=384))
train_dataloader = dict(batch_size=64)
warmup_epochs = 5
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
train_cfg = dict(max_epochs=100)
