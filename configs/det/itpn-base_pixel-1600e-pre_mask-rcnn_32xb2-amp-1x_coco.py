# iTPN-B pixel pretraining (1600 epochs), Mask R-CNN 1x: 12 epochs, steps at
# 9 and 11, lr 2e-4, drop path 0.05, layer decay 0.90.
_base_ = [
    './_base_/models/mask-rcnn_itpn-base.py',
    './_base_/datasets/coco_instance_detr-aug.py',
    './_base_/schedules/adamw_1x.py',
    './_base_/default_runtime.py',
]
