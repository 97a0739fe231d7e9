_base_ = './itpn-pixel-mfm_itpn-base_64xb64-amp-coslr-400e_in1k.py'

model = dict(backbone=dict(arch='itpn-large'), neck=dict(embed_dims=768),
             mfm_head=dict(teacher_dims=(192, 384, 768)))
