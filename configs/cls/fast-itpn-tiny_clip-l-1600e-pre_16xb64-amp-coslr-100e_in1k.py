# Fast-iTPN-T (24 M), CLIP-L distilled pretraining -> ImageNet-1k, 100 epochs
# (official recipe as for S, layer decay 0.80); official result 85.1 % top-1
# at 224 px.
_base_ = './fast-itpn-small_clip-l-1600e-pre_16xb64-amp-coslr-100e_in1k.py'

model = dict(
    backbone=dict(
        arch='fast-itpn-tiny',
        init_cfg=dict(
            checkpoint='checkpoints/fast-itpn-tiny_clip-l-1600e-pre.pth')))
optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.80))
