# iTPN-B pixel pretraining (official itpn_base_dec512d8b): HiViT 3+3+24
# with a trainable sin-cos position embedding and no relative positions, a
# pyramid with fpn_depth 2, the fused 8 x 512 pixel decoder.
model = dict(
    type='iTPN',
    backbone=dict(type='HiViT', arch='itpn-base', img_size=224,
                  drop_path_rate=0., pos_embed_init='sincos'),
    neck=dict(type='iTPNPyramid', embed_dims=512, fpn_dim=256, fpn_depth=2),
    head=dict(type='iTPNPixelHead', fpn_dim=256, decoder_embed_dims=512,
              decoder_depth=8, decoder_num_heads=16, img_size=224),
    mask_ratio=0.75)
