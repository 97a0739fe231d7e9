# Fast-iTPN-T Mask R-CNN 3x
# (fast-itpn-tiny_clip-l-1600e-pre_mask-rcnn_32xb2-amp-3x_coco.py) with the
# recommended fast setting of _base_/fast_dense.py. That config stands on the
# Fast-iTPN-B one; this one takes the Fast-iTPN-B config and the tiny size's
# settings (drop path, width, layer decay, checkpoint), to stay three config
# files deep.
_base_ = [
    './fast-itpn-base_clip-l-1600e-pre_mask-rcnn_32xb2-amp-3x_coco.py',
    './_base_/fast_dense.py',
]

pretrained = 'checkpoints/fast-itpn-tiny_clip-l-1600e-pre.pth'
model = dict(
    backbone=dict(
        arch='fast-itpn-tiny',
        drop_path_rate=0.3,
        init_cfg=dict(checkpoint=pretrained),
        **_base_.fast_backbone['fast-itpn-tiny']),
    neck=dict(embed_dims=384, with_cp=_base_.fast_with_cp))
optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.80))
