# iTPN-B CLIP-B, backbone from the ImageNet-1k fine-tuned classifier, lr 3e-5.
_base_ = './itpn-base_clip-b-800e-pre_upernet_8xb2-amp-160k_ade20k-512x512.py'

model = dict(
    backbone=dict(
        init_cfg=dict(
            checkpoint='work_dirs/itpn-base_clip-b-800e-pre_32xb32-amp-'
            'coslr-100e_in1k/epoch_100.pth')))
optim_wrapper = dict(optimizer=dict(lr=3e-5))
