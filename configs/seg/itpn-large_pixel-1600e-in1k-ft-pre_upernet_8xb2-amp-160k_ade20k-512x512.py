# iTPN-L, backbone from the ImageNet-1k fine-tuned classifier, lr 3e-5.
_base_ = './itpn-large_pixel-1600e-pre_upernet_8xb2-amp-160k_ade20k-512x512.py'

model = dict(
    backbone=dict(
        init_cfg=dict(
            checkpoint='work_dirs/itpn-large_pixel-1600e-pre_32xb32-amp-'
            'coslr-50e_in1k/epoch_50.pth')))
optim_wrapper = dict(optimizer=dict(lr=3e-5))
