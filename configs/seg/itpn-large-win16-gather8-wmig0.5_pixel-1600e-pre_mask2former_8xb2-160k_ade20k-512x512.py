# iTPN-L Mask2Former with the recommended fast setting of
# _base_/fast_dense.py: the iTPN-B Mask2Former with the large size's settings
# of the other seg configs (drop path, width, layer decay, checkpoint, head
# inputs).
_base_ = [
    './itpn-base_pixel-1600e-pre_mask2former_8xb2-160k_ade20k-512x512.py',
    './_base_/fast_dense.py',
]

pretrained = ('work_dirs/itpn-pixel_itpn-large_64xb64-amp-coslr-1600e_in1k/'
              'epoch_1600.pth')
model = dict(
    backbone=dict(
        arch='itpn-large',
        drop_path_rate=0.2,
        init_cfg=dict(checkpoint=pretrained),
        **_base_.fast_backbone['itpn-large']),
    neck=dict(
        embed_dims=768,
        init_cfg=dict(checkpoint=pretrained),
        with_cp=_base_.fast_with_cp),
    decode_head=dict(in_channels=[448, 640, 1024, 1024]))
optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.95))
