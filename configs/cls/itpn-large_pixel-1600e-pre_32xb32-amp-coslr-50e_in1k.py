# iTPN-L, pixel pretraining (1600 epochs) -> ImageNet-1k, 50 epochs:
# lr 1e-3 * 1024 / 256, layer decay 0.55, drop path 0.2.
_base_ = './itpn-base_pixel-1600e-pre_32xb32-amp-coslr-100e_in1k.py'

model = dict(
    backbone=dict(
        arch='itpn-large',
        drop_path_rate=0.2,
        init_cfg=dict(
            checkpoint='work_dirs/itpn-pixel_itpn-large_64xb64-amp-coslr-'
            '1600e_in1k/epoch_1600.pth')),
    head=dict(in_channels=768))
optim_wrapper = dict(optimizer=dict(lr=1e-3 * 1024 / 256),
                     paramwise_cfg=dict(layer_decay_rate=0.55))
train_cfg = dict(max_epochs=50)
