# Fast-iTPN-B, CLIP-L distilled pretraining: linear probe on the frozen
# backbone (MAE's recipe, as for iTPN).
_base_ = [
    './_base_/models/linear-probe_itpn-base.py',
    './_base_/datasets/imagenet_bs2048_pil_resize.py',
    './_base_/schedules/lars_coslr-90e_in1k.py',
    './_base_/default_runtime.py',
]

# Fast-iTPN-B in place of the part's iTPN-B, its other settings kept.
model = dict(
    backbone=dict(
        type='mmitpn.FastiTPN',
        arch='fast-itpn-base',
        init_cfg=dict(
            checkpoint='checkpoints/fast-itpn-base_clip-l-1600e-pre.pth')))
default_hooks = dict(checkpoint=dict(interval=10, max_keep_ckpts=3),
                     logger=dict(type='LoggerHook', interval=10))
randomness = dict(seed=0, diff_rank_seed=True)
