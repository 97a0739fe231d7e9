# Fast-iTPN-L DINO 1x
# (fast-itpn-large_clip-l-1600e-pre_dino-5scale_8xb2-12e_coco.py) with the
# recommended fast setting of _base_/fast_dense.py. That config stands on the
# Fast-iTPN-B one; this one takes the Fast-iTPN-B config and the large size's
# settings (drop path, width, layer decay, checkpoint), to stay three config
# files deep.
_base_ = [
    './fast-itpn-base_clip-l-1600e-pre_dino-5scale_8xb2-12e_coco.py',
    './_base_/fast_dense.py',
]

pretrained = 'checkpoints/fast-itpn-large_clip-l-1600e-pre.pth'
model = dict(
    backbone=dict(
        _base_.fast_backbone['fast-itpn-large'],
        arch='fast-itpn-large',
        drop_path_rate=0.2,
        init_cfg=dict(checkpoint=pretrained),
        with_cp=_base_.fast_dino_with_cp['fast-itpn-large']),
    neck=dict(
        embed_dims=768, with_cp=_base_.fast_dino_with_cp['fast-itpn-large']))
optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.95))
