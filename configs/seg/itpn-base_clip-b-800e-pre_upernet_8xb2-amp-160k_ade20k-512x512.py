# iTPN-B CLIP-B pretraining: layer scale 0.1, pretrained relative position
# tables, fpn_depth 1, drop path 0.2.
_base_ = [
    './_base_/models/upernet_itpn-base.py',
    './_base_/datasets/ade20k_bs2.py',
    './_base_/schedules/adamw_poly-160k.py',
    './_base_/default_runtime.py',
]

pretrained = ('work_dirs/itpn-clip-b_itpn-base_64xb32-amp-coslr-800e_in1k/'
              'epoch_800.pth')
model = dict(
    backbone=dict(drop_path_rate=0.2, layer_scale_init_value=0.1,
                  init_cfg=dict(checkpoint=pretrained)),
    neck=dict(fpn_depth=1, init_cfg=dict(checkpoint=pretrained)))
