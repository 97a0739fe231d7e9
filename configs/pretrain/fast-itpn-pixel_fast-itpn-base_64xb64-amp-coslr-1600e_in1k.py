# Fast-iTPN-B pixel pretraining on ImageNet-1k for 1600 epochs, mmitpn's
# reading of Fast-iTPN (see the model part): the iTPN-B pixel recipe of
# itpn-pixel_itpn-base_64xb64-amp-coslr-1600e_in1k.py with the Fast-iTPN-B
# backbone.
_base_ = [
    './_base_/models/fast-itpn-pixel_fast-itpn-base.py',
    './_base_/datasets/imagenet_pixel.py',
    './_base_/schedules/pixel_adamw_coslr.py',
    '../_base_/default_runtime.py',
]

train_cfg = dict(max_epochs=1600)
randomness = dict(seed=0, diff_rank_seed=True)
resume = True
