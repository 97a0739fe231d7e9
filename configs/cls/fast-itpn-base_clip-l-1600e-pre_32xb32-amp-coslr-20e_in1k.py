# Fast-iTPN-B (85 M), CLIP-L distilled pretraining (1600 epochs) ->
# ImageNet-1k, 20 epochs (official recipe of fast_itpn/: total batch 1024 (32
# GPUs x 32), model EMA, the pipeline of the iTPN recipe, RandAugment
# m9-mstd0.5-inc1 included); official result 87.4 % top-1 at 224 px.
_base_ = [
    './_base_/models/fast-itpn-base.py',
    './_base_/datasets/imagenet_bs32_randaug_224.py',
    './_base_/schedules/fast-itpn_adamw_coslr-20e_in1k.py',
    './_base_/default_runtime.py',
]

default_hooks = dict(
    checkpoint=dict(interval=1, max_keep_ckpts=3, save_best='auto'))
# Model EMA (decay 0.9999); validation and checkpoints use the EMA weights.
custom_hooks = _base_.custom_hooks + [
    dict(type='EMAHook', momentum=1e-4, priority='ABOVE_NORMAL'),
]
randomness = dict(seed=0, diff_rank_seed=True)
