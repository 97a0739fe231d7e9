# iTPN-L (HiViT 2+2+40, width 768): [448, 640, 1024, 1024] channels into
# UPerHead, layer decay 0.95, drop path 0.2.
_base_ = [
    './_base_/models/upernet_itpn-base.py',
    './_base_/datasets/ade20k_bs2.py',
    './_base_/schedules/adamw_poly-160k.py',
    './_base_/default_runtime.py',
]

pretrained = ('work_dirs/itpn-pixel_itpn-large_64xb64-amp-coslr-1600e_in1k/'
              'epoch_1600.pth')
model = dict(
    backbone=dict(arch='itpn-large', drop_path_rate=0.2,
                  init_cfg=dict(checkpoint=pretrained)),
    neck=dict(embed_dims=768, init_cfg=dict(checkpoint=pretrained)),
    decode_head=dict(in_channels=[448, 640, 1024, 1024]),
    auxiliary_head=dict(in_channels=1024))
optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.95))
