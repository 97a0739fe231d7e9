# Fast-iTPN-B pixel pretraining, mmitpn's reading of Fast-iTPN (its
# pretraining code is not released; its released weights come from CLIP-L
# distillation): the iTPN-B pixel model of itpn-pixel_itpn-base.py with the
# Fast-iTPN-B backbone. The convolutional stem is unit-local (1x1
# convolutions, 2x2 merges inside each unit), so 75 % of the units are
# dropped in every stage as for HiViT. A sin-cos-initialised, trainable
# position embedding (as in the iTPN pixel recipe) and layer scale 0.1 as
# the released models.
model = dict(
    type='iTPN',
    backbone=dict(type='FastiTPN', arch='fast-itpn-base', img_size=224,
                  drop_path_rate=0., layer_scale_init_value=0.1,
                  pos_embed_init='sincos'),
    neck=dict(type='iTPNPyramid', embed_dims=512, fpn_dim=256, fpn_depth=2),
    head=dict(type='iTPNPixelHead', fpn_dim=256, decoder_embed_dims=512,
              decoder_depth=8, decoder_num_heads=16, img_size=224),
    mask_ratio=0.75)
