_base_ = [
    './_base_/models/itpn-clip_itpn-base.py',
    './_base_/datasets/imagenet_clip.py',
    './_base_/schedules/clip_adamw_coslr.py',
    '../_base_/default_runtime.py',
]

randomness = dict(seed=0, diff_rank_seed=True)
resume = True
