# iTPN-L DINO 1x (itpn-large_pixel-1600e-pre_dino-5scale_8xb2-12e_coco.py)
# with the recommended fast setting of _base_/fast_dense.py. That config
# stands on the iTPN-B one; this one takes the iTPN-B config and the large
# size's settings (drop path, width, layer decay, checkpoint), to stay three
# config files deep.
_base_ = [
    './itpn-base_pixel-1600e-pre_dino-5scale_8xb2-12e_coco.py',
    './_base_/fast_dense.py',
]

pretrained = ('work_dirs/itpn-pixel_itpn-large_64xb64-amp-coslr-1600e_in1k/'
              'epoch_1600.pth')
model = dict(
    backbone=dict(
        _base_.fast_backbone['itpn-large'],
        arch='itpn-large',
        drop_path_rate=0.2,
        init_cfg=dict(checkpoint=pretrained),
        with_cp=_base_.fast_dino_with_cp['itpn-large']),
    neck=dict(
        embed_dims=768,
        init_cfg=dict(checkpoint=pretrained),
        with_cp=_base_.fast_dino_with_cp['itpn-large']))
optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.95))
