# iTPN-B Mask R-CNN 1x
# (itpn-base_pixel-1600e-pre_mask-rcnn_32xb2-amp-1x_coco.py) with the
# recommended fast setting of _base_/fast_dense.py.
_base_ = [
    './itpn-base_pixel-1600e-pre_mask-rcnn_32xb2-amp-1x_coco.py',
    './_base_/fast_dense.py',
]

model = dict(
    backbone=_base_.fast_backbone['itpn-base'],
    neck=dict(with_cp=_base_.fast_with_cp))
