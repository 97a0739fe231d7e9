# Fast-iTPN-T: the Fast-iTPN-B detector with the iTPN-B detection recipe's
# drop path (0.2) and the size's fine-tuning layer decay (0.80).
_base_ = './fast-itpn-base_clip-l-1600e-pre_cascade-mask-rcnn_32xb2-amp-3x_coco.py'  # noqa

pretrained = 'checkpoints/fast-itpn-tiny_clip-l-1600e-pre.pth'
model = dict(
    backbone=dict(arch='fast-itpn-tiny', drop_path_rate=0.2,
                  init_cfg=dict(checkpoint=pretrained)),
    neck=dict(embed_dims=384))
optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.80))
