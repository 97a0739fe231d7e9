# 36 epochs (steps 27, 33), lr 1.5e-4, drop path 0.3.
_base_ = [
    './_base_/models/mask-rcnn_itpn-base.py',
    './_base_/datasets/coco_instance_detr-aug.py',
    './_base_/schedules/adamw_3x.py',
    './_base_/default_runtime.py',
]

model = dict(backbone=dict(drop_path_rate=0.3))
