# Fast-iTPN-B pixel reconstruction plus masked feature modelling for 1600
# epochs (mmitpn's reading of both papers, see the pixel config beside this
# one): every pyramid level predicts, at masked units, the stride-4/8/16
# features (128/256/512 channels) of a moving average of the Fast-iTPN
# backbone that sees the full image.
_base_ = './fast-itpn-pixel_fast-itpn-base_64xb64-amp-coslr-1600e_in1k.py'

model = dict(
    mfm_head=dict(type='iTPNMFMHead', fpn_dim=256,
                  teacher_dims=(128, 256, 512), embed_dims=256, depth=2,
                  num_heads=8, level_weights=(1., 1., 1.), img_size=224),
    # teacher = (1 - m) * teacher + m * backbone, m: 0.004 -> 0 (cosine).
    ema=dict(momentum=0.004, end_momentum=0.))
