# iTPN-L (HiViT 2+2+40, width 768): layer decay 0.95, drop path 0.2.
_base_ = './itpn-base_pixel-1600e-pre_mask-rcnn_32xb2-amp-3x_coco.py'

pretrained = ('work_dirs/itpn-pixel_itpn-large_64xb64-amp-coslr-1600e_in1k/'
              'epoch_1600.pth')
model = dict(
    backbone=dict(arch='itpn-large', drop_path_rate=0.2,
                  init_cfg=dict(checkpoint=pretrained)),
    neck=dict(embed_dims=768, init_cfg=dict(checkpoint=pretrained)))
optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.95))
