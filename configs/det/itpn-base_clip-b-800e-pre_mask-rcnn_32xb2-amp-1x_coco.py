# iTPN-B CLIP-B pretraining (800 epochs): layer scale 0.1 and fpn_depth 1.
# Like the official CLIP-B detector, no relative position bias (rpe=False):
# the pretrained tables are left out (listed as unexpected keys on load).
_base_ = './itpn-base_pixel-1600e-pre_mask-rcnn_32xb2-amp-1x_coco.py'

pretrained = ('work_dirs/itpn-clip-b_itpn-base_64xb32-amp-coslr-800e_in1k/'
              'epoch_800.pth')
model = dict(
    backbone=dict(layer_scale_init_value=0.1,
                  init_cfg=dict(checkpoint=pretrained)),
    neck=dict(fpn_depth=1, init_cfg=dict(checkpoint=pretrained)))
