# Fast-iTPN-B Mask2Former
# (fast-itpn-base_clip-l-1600e-pre_mask2former_8xb2-160k_ade20k-512x512.py)
# with the recommended fast setting of _base_/fast_dense.py.
_base_ = [
    './fast-itpn-base_clip-l-1600e-pre_mask2former_8xb2-160k_ade20k-512x512.py',  # noqa
    './_base_/fast_dense.py',
]

model = dict(
    backbone=_base_.fast_backbone['fast-itpn-base'],
    neck=dict(with_cp=_base_.fast_with_cp))
