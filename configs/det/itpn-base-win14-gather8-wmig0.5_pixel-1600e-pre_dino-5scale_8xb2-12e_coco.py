# iTPN-B DINO 1x (itpn-base_pixel-1600e-pre_dino-5scale_8xb2-12e_coco.py)
# with the recommended fast setting of _base_/fast_dense.py.
_base_ = [
    './itpn-base_pixel-1600e-pre_dino-5scale_8xb2-12e_coco.py',
    './_base_/fast_dense.py',
]

model = dict(
    backbone=dict(
        _base_.fast_backbone['itpn-base'],
        with_cp=_base_.fast_dino_with_cp['itpn-base']),
    neck=dict(with_cp=_base_.fast_dino_with_cp['itpn-base']))
