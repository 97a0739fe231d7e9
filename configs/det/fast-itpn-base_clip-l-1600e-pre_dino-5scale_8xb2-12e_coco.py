# Fast-iTPN-B DINO 1x, the detector of the Fast-iTPN paper (58.4 box AP
# published, not reproduced here), from the official CLIP-L distilled
# pretraining weights (converted with
# tools/model_converters/fast_itpn_to_mmitpn.py) with the iTPN-B DINO
# recipe. The released checkpoints have no pyramid: it starts fresh
# (fpn_depth 1, as the Fast-iTPN Mask R-CNN).
_base_ = './_base_/dino-5scale_itpn-base_8xb2-12e_coco.py'

pretrained = 'checkpoints/fast-itpn-base_clip-l-1600e-pre.pth'
# Fast-iTPN-B in place of the part's iTPN-B, its other settings kept.
model = dict(
    backbone=dict(type='mmitpn.FastiTPN', arch='fast-itpn-base',
                  init_cfg=dict(checkpoint=pretrained)),
    neck=dict(fpn_depth=1, init_cfg=None))
