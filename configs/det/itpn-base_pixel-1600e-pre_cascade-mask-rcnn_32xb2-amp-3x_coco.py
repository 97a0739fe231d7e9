# lr 1e-4, drop path 0.2.
_base_ = ['./_base_/itpn-base_cascade-mask-rcnn_3x_coco.py']

model = dict(backbone=dict(drop_path_rate=0.2))
optim_wrapper = dict(optimizer=dict(lr=1e-4))
