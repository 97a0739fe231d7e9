# Fast-iTPN-B from the official CLIP-L distilled pretraining weights, the
# iTPN-B UperNet recipe (lr 1e-4, layer decay 0.90 over len(blocks) layers,
# drop path 0.1). The iTPN pyramid (laterals from the convolutional stem)
# starts fresh: the released checkpoints have none.
_base_ = [
    './itpn-base_pixel-1600e-pre_upernet_8xb2-amp-160k_ade20k-512x512.py'
]

pretrained = 'checkpoints/fast-itpn-base_clip-l-1600e-pre.pth'
model = dict(
    backbone=dict(
        _delete_=True,
        type='mmitpn.FastiTPN',
        arch='fast-itpn-base',
        img_size=512,
        drop_path_rate=0.1,
        out_indices=(0, 1, 2),
        init_cfg=dict(
            type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    neck=dict(init_cfg=None))
optim_wrapper = dict(paramwise_cfg=dict(_delete_=True, layer_decay_rate=0.90))
