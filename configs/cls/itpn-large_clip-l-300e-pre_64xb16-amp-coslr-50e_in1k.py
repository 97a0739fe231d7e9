# iTPN-L/16, CLIP-L pretraining (300 epochs) -> ImageNet-1k, 50 epochs:
# lr 2e-4 (not scaled), layer decay 0.55, drop path 0.25, layer scale 0.1.
_base_ = './itpn-base_pixel-1600e-pre_32xb32-amp-coslr-100e_in1k.py'

train_dataloader = dict(batch_size=16)
model = dict(
    backbone=dict(
        arch='itpn-large',
        drop_path_rate=0.25,
        layer_scale_init_value=0.1,
        init_cfg=dict(
            checkpoint='work_dirs/itpn-clip-l_itpn-large_64xb32-amp-coslr-'
            '300e_in1k/epoch_300.pth')),
    head=dict(in_channels=768))
optim_wrapper = dict(
    optimizer=dict(lr=2e-4), paramwise_cfg=dict(layer_decay_rate=0.55))
train_cfg = dict(max_epochs=50)
