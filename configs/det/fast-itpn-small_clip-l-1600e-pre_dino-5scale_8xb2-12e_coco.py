# Fast-iTPN-S DINO 1x: the Fast-iTPN-B detector with the small size's width
# and layer decay, as the Fast-iTPN-S Mask R-CNN.
_base_ = './fast-itpn-base_clip-l-1600e-pre_dino-5scale_8xb2-12e_coco.py'

pretrained = 'checkpoints/fast-itpn-small_clip-l-1600e-pre.pth'
model = dict(
    backbone=dict(arch='fast-itpn-small', drop_path_rate=0.05,
                  init_cfg=dict(checkpoint=pretrained)),
    neck=dict(embed_dims=384))
optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.90))
