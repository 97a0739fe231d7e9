# Fast-iTPN-B pixel pretraining on ImageNet-1k for 1600 epochs, mmitpn's
# reading of Fast-iTPN (its pretraining code is not released; its released
# weights come from CLIP-L distillation): the iTPN-B pixel recipe of
# itpn-pixel_itpn-base_64xb64-amp-coslr-1600e_in1k.py with the Fast-iTPN-B
# backbone. The convolutional stem is unit-local (1x1 convolutions, 2x2
# merges inside each unit), so 75 % of the units are dropped in every stage
# as for HiViT. A sin-cos-initialised, trainable position embedding (as in
# the iTPN pixel recipe) and layer scale 0.1 as the released models.
_base_ = './itpn-pixel_itpn-base_64xb64-amp-coslr-1600e_in1k.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='FastiTPN',
        arch='fast-itpn-base',
        img_size=224,
        drop_path_rate=0.,
        layer_scale_init_value=0.1,
        pos_embed_init='sincos'))
