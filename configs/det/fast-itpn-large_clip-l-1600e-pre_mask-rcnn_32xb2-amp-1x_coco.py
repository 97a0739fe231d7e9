# Fast-iTPN-L: the Fast-iTPN-B detector with the iTPN-L detection recipe's
# drop path (0.2) and the size's fine-tuning layer decay (0.95).
_base_ = './fast-itpn-base_clip-l-1600e-pre_mask-rcnn_32xb2-amp-1x_coco.py'

pretrained = 'checkpoints/fast-itpn-large_clip-l-1600e-pre.pth'
model = dict(
    backbone=dict(arch='fast-itpn-large', drop_path_rate=0.2,
                  init_cfg=dict(checkpoint=pretrained)),
    neck=dict(embed_dims=768))
optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.95))
