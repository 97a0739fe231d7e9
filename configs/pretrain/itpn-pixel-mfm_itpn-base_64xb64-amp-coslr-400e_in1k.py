_base_ = [
    './_base_/models/itpn-pixel_itpn-base.py',
    './_base_/datasets/imagenet_pixel.py',
    './_base_/schedules/pixel_adamw_coslr.py',
    '../_base_/default_runtime.py',
]

# Pixel reconstruction plus masked feature modelling: every pyramid level
# predicts, at masked units, the stride-4/8/16 features of a moving average
# of the backbone (mmitpn's reading of the paper; not in the released code).
model = dict(
    mfm_head=dict(type='iTPNMFMHead', fpn_dim=256,
                  teacher_dims=(128, 256, 512), embed_dims=256, depth=2,
                  num_heads=8, level_weights=(1., 1., 1.), img_size=224),
    # teacher = (1 - m) * teacher + m * backbone, m: 0.004 -> 0 (cosine).
    ema=dict(momentum=0.004, end_momentum=0.))

randomness = dict(seed=0, diff_rank_seed=True)
resume = True
