# iTPN-B, CLIP-B pretraining (800 epochs) -> ImageNet-1k, 100 epochs:
# lr 5e-4 (not scaled), layer decay 0.60, drop path 0.1, 20 warm-up epochs,
# layer scale 0.1 and the pretrained relative position tables.
_base_ = './itpn-base_pixel-1600e-pre_32xb32-amp-coslr-100e_in1k.py'

model = dict(
    backbone=dict(
        drop_path_rate=0.1,
        layer_scale_init_value=0.1,
        init_cfg=dict(
            checkpoint='work_dirs/itpn-clip-b_itpn-base_64xb32-amp-coslr-'
            '800e_in1k/epoch_800.pth')))
optim_wrapper = dict(optimizer=dict(lr=5e-4))
warmup_epochs = 20
_base_.param_scheduler[0].update(start_factor=1e-3, end=warmup_epochs)
_base_.param_scheduler[1].update(eta_min=1e-6, begin=warmup_epochs)
