# Fast-iTPN-L: the Fast-iTPN-B UperNet with drop path 0.2 and layer decay
# 0.95; decode head inputs are each pyramid level (256) concatenated with
# the backbone feature of its stride (192/384/768).
_base_ = './fast-itpn-base_clip-l-1600e-pre_upernet_8xb2-amp-160k_ade20k-512x512.py'  # noqa

pretrained = 'checkpoints/fast-itpn-large_clip-l-1600e-pre.pth'
model = dict(
    backbone=dict(arch='fast-itpn-large', drop_path_rate=0.2,
                  init_cfg=dict(checkpoint=pretrained)),
    neck=dict(embed_dims=768),
    decode_head=dict(in_channels=[448, 640, 1024, 1024]),
    auxiliary_head=dict(in_channels=1024))
optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.95))
