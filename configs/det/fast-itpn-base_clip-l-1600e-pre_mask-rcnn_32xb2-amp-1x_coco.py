# Fast-iTPN-B from the official CLIP-L distilled pretraining weights
# (converted with tools/model_converters/fast_itpn_to_mmitpn.py), the iTPN-B
# recipe (12 epochs with steps at 9 and 11, AdamW lr 2e-4, layer decay 0.90,
# drop path 0.05).
# The iTPN pyramid is the neck: its laterals are the convolutional stem's
# stride-4/8 maps; the released checkpoints have no pyramid, so it starts
# fresh (fpn_depth 1, as the official iTPN detectors).
_base_ = [
    './_base_/models/mask-rcnn_itpn-base.py',
    './_base_/datasets/coco_instance_detr-aug.py',
    './_base_/schedules/adamw_1x.py',
    './_base_/default_runtime.py',
]

pretrained = 'checkpoints/fast-itpn-base_clip-l-1600e-pre.pth'
# Fast-iTPN-B in place of the part's iTPN-B, its other settings kept.
model = dict(
    backbone=dict(type='mmitpn.FastiTPN', arch='fast-itpn-base',
                  init_cfg=dict(checkpoint=pretrained)),
    neck=dict(fpn_depth=1, init_cfg=None))
