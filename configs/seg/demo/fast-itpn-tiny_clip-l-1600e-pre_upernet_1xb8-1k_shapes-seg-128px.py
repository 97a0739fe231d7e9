# CPU demo with Fast-iTPN-T: the HiViT demo's UperNet on the shapes masks,
# the backbone from the official Fast-iTPN-T weights (converted with
# tools/model_converters/fast_itpn_to_mmitpn.py), a fresh concatenated iTPN
# pyramid (96 channels + the stem's 96/192 and the 384 tokens), layer decay
# 0.80.
_base_ = './_base_/upernet_1xb8-1k_shapes-seg-128px.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmitpn.FastiTPN',
        arch='fast-itpn-tiny',
        img_size=224,
        drop_path_rate=0.05,
        out_indices=(0, 1, 2),
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/fast-itpn-tiny_clip-l-1600e-pre.pth',
            prefix='backbone.')),
    neck=dict(embed_dims=384, init_cfg=None),
    decode_head=dict(in_channels=[192, 288, 480, 480]),
    auxiliary_head=dict(in_channels=480))
optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.80))
