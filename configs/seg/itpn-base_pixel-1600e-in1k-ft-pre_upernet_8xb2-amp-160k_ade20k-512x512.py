# From the ImageNet-1k fine-tuned classifier (backbone) and the pretraining
# checkpoint (pyramid, which classification does not train): the official
# lr 3e-5 (BEiT's setting for intermediately fine-tuned checkpoints).
_base_ = './itpn-base_pixel-1600e-pre_upernet_8xb2-amp-160k_ade20k-512x512.py'

model = dict(
    backbone=dict(
        init_cfg=dict(
            checkpoint='work_dirs/itpn-base_pixel-1600e-pre_32xb32-amp-'
            'coslr-100e_in1k/epoch_100.pth')))
optim_wrapper = dict(optimizer=dict(lr=3e-5))
