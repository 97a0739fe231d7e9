# iTPN-L/16 CLIP-L pretraining (300 epochs), Mask R-CNN 1x: lr 2e-4, layer
# decay 0.95, drop path 0.2, layer scale 0.1, fpn_depth 1 (as the CLIP-B
# detector) and, as the official CLIP-L detector, new ViTDet-style
# decomposed relative positions (not pretrained).
_base_ = './itpn-base_pixel-1600e-pre_mask-rcnn_32xb2-amp-1x_coco.py'

pretrained = ('work_dirs/itpn-clip-l_itpn-large_64xb32-amp-coslr-300e_in1k/'
              'epoch_300.pth')
model = dict(
    backbone=dict(arch='itpn-large', drop_path_rate=0.2,
                  layer_scale_init_value=0.1, rel_pos_type='decomposed',
                  init_cfg=dict(checkpoint=pretrained)),
    neck=dict(
        embed_dims=768, fpn_depth=1, init_cfg=dict(checkpoint=pretrained)))
optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.95))
