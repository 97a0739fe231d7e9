# Cascade Mask R-CNN 3x: 36 epochs, steps at 27 and 33, lr 1e-4, drop path
# 0.2.
_base_ = [
    './_base_/models/cascade-mask-rcnn_itpn-base.py',
    './_base_/datasets/coco_instance_detr-aug.py',
    './_base_/schedules/adamw_3x.py',
    './_base_/default_runtime.py',
]

model = dict(backbone=dict(drop_path_rate=0.2))
optim_wrapper = dict(optimizer=dict(lr=1e-4))
