# Fast-iTPN-L UperNet
# (fast-itpn-large_clip-l-1600e-pre_upernet_8xb2-amp-160k_ade20k-512x512.py)
# with the recommended fast setting of _base_/fast_dense.py. That config
# stands on the Fast-iTPN-B one; this one takes the Fast-iTPN-B config and
# the large size's settings (drop path, width, layer decay, checkpoint, head
# inputs), to stay three config files deep.
_base_ = [
    './fast-itpn-base_clip-l-1600e-pre_upernet_8xb2-amp-160k_ade20k-512x512.py',  # noqa
    './_base_/fast_dense.py',
]

pretrained = 'checkpoints/fast-itpn-large_clip-l-1600e-pre.pth'
model = dict(
    backbone=dict(
        arch='fast-itpn-large',
        drop_path_rate=0.2,
        init_cfg=dict(checkpoint=pretrained),
        **_base_.fast_backbone['fast-itpn-large']),
    neck=dict(embed_dims=768, with_cp=_base_.fast_with_cp),
    decode_head=dict(in_channels=[448, 640, 1024, 1024]),
    auxiliary_head=dict(in_channels=1024))
optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.95))
