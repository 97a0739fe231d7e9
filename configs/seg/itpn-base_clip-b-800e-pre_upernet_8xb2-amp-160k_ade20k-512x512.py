# iTPN-B CLIP-B pretraining: layer scale 0.1, pretrained relative position
# tables, fpn_depth 1, drop path 0.2.
_base_ = ['./_base_/itpn-base_upernet_160k_ade20k-512x512.py']

pretrained = ('work_dirs/itpn-clip-b_itpn-base_64xb32-amp-coslr-800e_in1k/'
              'epoch_800.pth')
model = dict(
    backbone=dict(
        drop_path_rate=0.2,
        layer_scale_init_value=0.1,
        init_cfg=dict(checkpoint=pretrained)),
    neck=dict(fpn_depth=1, init_cfg=dict(checkpoint=pretrained)))
