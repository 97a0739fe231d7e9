# Fast-iTPN-B Cascade Mask R-CNN 3x
# (fast-itpn-base_clip-l-1600e-pre_cascade-mask-rcnn_32xb2-amp-3x_coco.py)
# with the recommended fast setting of _base_/fast_dense.py.
_base_ = [
    './fast-itpn-base_clip-l-1600e-pre_cascade-mask-rcnn_32xb2-amp-3x_coco.py',
    './_base_/fast_dense.py',
]

model = dict(
    backbone=_base_.fast_backbone['fast-itpn-base'],
    neck=dict(with_cp=_base_.fast_with_cp))
