# iTPN-B CLIP-B pretraining, Cascade Mask R-CNN, 36 epochs, lr 1e-4, drop
# path 0.2.
_base_ = './itpn-base_pixel-1600e-pre_cascade-mask-rcnn_32xb2-amp-3x_coco.py'

pretrained = ('work_dirs/itpn-clip-b_itpn-base_64xb32-amp-coslr-800e_in1k/'
              'epoch_800.pth')
model = dict(
    backbone=dict(layer_scale_init_value=0.1,
                  init_cfg=dict(checkpoint=pretrained)),
    neck=dict(fpn_depth=1, init_cfg=dict(checkpoint=pretrained)))
