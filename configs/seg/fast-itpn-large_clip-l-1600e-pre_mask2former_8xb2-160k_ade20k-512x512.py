# Fast-iTPN-L: the Fast-iTPN-B Mask2Former with the large size's width, drop
# path and layer decay, as the Fast-iTPN-L UperNet (the paper's MaskDINO:
# 58.7 mIoU, published, not reproduced here).
_base_ = './fast-itpn-base_clip-l-1600e-pre_mask2former_8xb2-160k_ade20k-512x512.py'  # noqa

pretrained = 'checkpoints/fast-itpn-large_clip-l-1600e-pre.pth'
model = dict(
    backbone=dict(arch='fast-itpn-large', drop_path_rate=0.2,
                  init_cfg=dict(checkpoint=pretrained)),
    neck=dict(embed_dims=768),
    decode_head=dict(in_channels=[448, 640, 1024, 1024]))
optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.95))
