_base_ = [
    './_base_/models/itpn-pixel_itpn-base.py',
    './_base_/datasets/imagenet_pixel.py',
    './_base_/schedules/pixel_adamw_coslr.py',
    '../_base_/default_runtime.py',
]

randomness = dict(seed=0, diff_rank_seed=True)
# Resume automatically from the work dir's last checkpoint.
resume = True
