# Fast-iTPN-S: the Fast-iTPN-B detector with the iTPN-B detection recipe's
# drop path (0.3) and the size's fine-tuning layer decay (0.90).
_base_ = './fast-itpn-base_clip-l-1600e-pre_mask-rcnn_32xb2-amp-3x_coco.py'

pretrained = 'checkpoints/fast-itpn-small_clip-l-1600e-pre.pth'
model = dict(
    backbone=dict(arch='fast-itpn-small', drop_path_rate=0.3,
                  init_cfg=dict(checkpoint=pretrained)),
    neck=dict(embed_dims=384))
optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.90))
