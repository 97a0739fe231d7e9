# iTPN-L UperNet
# (itpn-large_pixel-1600e-pre_upernet_8xb2-amp-160k_ade20k-512x512.py) with
# the recommended fast setting of _base_/fast_dense.py.
_base_ = [
    './itpn-large_pixel-1600e-pre_upernet_8xb2-amp-160k_ade20k-512x512.py',
    './_base_/fast_dense.py',
]

model = dict(
    backbone=_base_.fast_backbone['itpn-large'],
    neck=dict(with_cp=_base_.fast_with_cp))
