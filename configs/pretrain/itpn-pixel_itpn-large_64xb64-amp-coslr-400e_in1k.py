_base_ = './itpn-pixel_itpn-base_64xb64-amp-coslr-400e_in1k.py'

# iTPN-L: HiViT 2+2+40, width 768, same pyramid and decoder.
model = dict(backbone=dict(arch='itpn-large'), neck=dict(embed_dims=768))
