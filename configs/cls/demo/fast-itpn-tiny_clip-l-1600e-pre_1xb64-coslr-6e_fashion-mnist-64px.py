# CPU demo with Fast-iTPN-T: the HiViT demo's Fashion-MNIST fine-tuning, the
# backbone from the official Fast-iTPN-T weights (converted with
# tools/model_converters/fast_itpn_to_mmitpn.py; the 224 px position
# embedding is resized to 64 px), layer decay 0.80.
_base_ = './_base_/finetune_1xb64-coslr-6e_fashion-mnist-64px.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmitpn.FastiTPN',
        arch='fast-itpn-tiny',
        img_size=64,
        drop_path_rate=0.1,
        out_type='avg_featmap',
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/fast-itpn-tiny_clip-l-1600e-pre.pth',
            prefix='backbone.')),
    head=dict(in_channels=384))
optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.80))
