# From the pretraining checkpoint (backbone and pyramid). lr 1e-4 is our
# choice for a checkpoint that was not fine-tuned on ImageNet, as MAE's
# UperNet recipe (the official 3e-5 is BEiT's setting for intermediately
# fine-tuned checkpoints, see the *_in1k-ft-pre_* configs).
_base_ = [
    './_base_/models/upernet_itpn-base.py',
    './_base_/datasets/ade20k_bs2.py',
    './_base_/schedules/adamw_poly-160k.py',
    './_base_/default_runtime.py',
]
