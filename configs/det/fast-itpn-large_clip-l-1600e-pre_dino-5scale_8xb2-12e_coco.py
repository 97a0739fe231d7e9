# Fast-iTPN-L DINO 1x (58.8 box AP published, not reproduced here): the
# Fast-iTPN-B detector with the large size's drop path and layer decay, as
# the Fast-iTPN-L Mask R-CNN.
_base_ = './fast-itpn-base_clip-l-1600e-pre_dino-5scale_8xb2-12e_coco.py'

pretrained = 'checkpoints/fast-itpn-large_clip-l-1600e-pre.pth'
model = dict(
    backbone=dict(arch='fast-itpn-large', drop_path_rate=0.2,
                  init_cfg=dict(checkpoint=pretrained)),
    neck=dict(embed_dims=768))
optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.95))
