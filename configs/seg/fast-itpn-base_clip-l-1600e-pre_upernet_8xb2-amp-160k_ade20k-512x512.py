# Fast-iTPN-B from the official CLIP-L distilled pretraining weights, the
# iTPN-B UperNet recipe (lr 1e-4, layer decay 0.90 over len(blocks) layers,
# drop path 0.1). The iTPN pyramid (laterals from the convolutional stem)
# starts fresh: the released checkpoints have none.
_base_ = [
    './_base_/models/upernet_fast-itpn-base.py',
    './_base_/datasets/ade20k_bs2.py',
    './_base_/schedules/adamw_poly-160k.py',
    './_base_/default_runtime.py',
]

optim_wrapper = dict(paramwise_cfg=dict(_delete_=True, layer_decay_rate=0.90))
