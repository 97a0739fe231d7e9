# Fast-iTPN-B DINO 1x
# (fast-itpn-base_clip-l-1600e-pre_dino-5scale_8xb2-12e_coco.py) with the
# recommended fast setting of _base_/fast_dense.py.
_base_ = [
    './fast-itpn-base_clip-l-1600e-pre_dino-5scale_8xb2-12e_coco.py',
    './_base_/fast_dense.py',
]

model = dict(
    backbone=dict(
        _base_.fast_backbone['fast-itpn-base'],
        with_cp=_base_.fast_dino_with_cp['fast-itpn-base']),
    neck=dict(with_cp=_base_.fast_dino_with_cp['fast-itpn-base']))
