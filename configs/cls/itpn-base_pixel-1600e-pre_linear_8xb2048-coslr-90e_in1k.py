# iTPN-B, pixel pretraining (1600 epochs): linear probe on the frozen
# backbone (MAE's recipe: BatchNorm without affine parameters before a
# linear classifier, LARS, 90 epochs; random resized crops and flips only).
_base_ = [
    './_base_/models/linear-probe_itpn-base.py',
    './_base_/datasets/imagenet_bs2048_pil_resize.py',
    './_base_/schedules/lars_coslr-90e_in1k.py',
    './_base_/default_runtime.py',
]

default_hooks = dict(checkpoint=dict(interval=10, max_keep_ckpts=3),
                     logger=dict(type='LoggerHook', interval=10))
randomness = dict(seed=0, diff_rank_seed=True)
