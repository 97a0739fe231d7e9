# Fast-iTPN-T: the Fast-iTPN-B UperNet with drop path 0.1 and layer decay
# 0.80; decode head inputs are each pyramid level (256) concatenated with
# the backbone feature of its stride (96/192/384).
_base_ = './fast-itpn-base_clip-l-1600e-pre_upernet_8xb2-amp-160k_ade20k-512x512.py'  # noqa

pretrained = 'checkpoints/fast-itpn-tiny_clip-l-1600e-pre.pth'
model = dict(
    backbone=dict(arch='fast-itpn-tiny', drop_path_rate=0.1,
                  init_cfg=dict(checkpoint=pretrained)),
    neck=dict(embed_dims=384),
    decode_head=dict(in_channels=[352, 448, 640, 640]),
    auxiliary_head=dict(in_channels=640))
optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.80))
