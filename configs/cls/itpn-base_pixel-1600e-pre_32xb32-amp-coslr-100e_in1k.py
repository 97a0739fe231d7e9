# iTPN-B, pixel pretraining (1600 epochs) -> ImageNet-1k, 100 epochs
# (official recipe of the pixel variant: batch 1024, lr 1.6e-3, layer decay
# 0.60, drop path 0.15, 5 warm-up epochs).
_base_ = [
    './_base_/models/itpn-base.py',
    './_base_/datasets/imagenet_bs32_randaug_224.py',
    './_base_/schedules/itpn_adamw_coslr-100e_in1k.py',
    './_base_/default_runtime.py',
]

default_hooks = dict(
    checkpoint=dict(interval=1, max_keep_ckpts=3, save_best='auto'))
randomness = dict(seed=0, diff_rank_seed=True)
