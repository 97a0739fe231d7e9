_base_ = './itpn-clip-b_itpn-base_64xb32-amp-coslr-300e_in1k.py'

# iTPN-L/16: HiViT 2+2+40, width 768, 12 heads, drop path 0.2.
model = dict(backbone=dict(arch='itpn-large', drop_path_rate=0.2),
             neck=dict(embed_dims=768),
             head=dict(embed_dims=768, num_heads=12))
train_cfg = dict(max_epochs=800)
