# Fast-iTPN-B pretraining with an OpenAI CLIP ViT-L/14 teacher on ImageNet-1k
# for 1600 epochs, mmitpn's reading of the Fast-iTPN paper (its pretraining
# code is not released): the iTPN CLIP objective (pyramid and auxiliary
# branch, SmoothL1 to the teacher's patch tokens, block-wise masks of 75 of
# the 14x14 units) on the full sequence, with a learned 128-channel (D/4)
# mask token replacing all 16 sub-tokens of every masked unit right after the
# patch embedding. The teacher sees its own 196 px lanczos view of the crop.
_base_ = './itpn-clip-l_itpn-base_64xb32-amp-coslr-300e_in1k.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='FastiTPN',
        arch='fast-itpn-base',
        img_size=224,
        drop_path_rate=0.1,
        layer_scale_init_value=0.1,
        out_type='raw'))
train_cfg = dict(max_epochs=1600)
