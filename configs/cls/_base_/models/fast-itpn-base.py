# ImageNet-1k classifier on Fast-iTPN-B (official recipe of fast_itpn/):
# mean pooling + fc_norm, drop path 0.1, layer scale 0.1, label smoothing
# 0.1, mixup 0.8, cutmix 1.0.
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='mmitpn.FastiTPN',
        arch='fast-itpn-base',
        img_size=224,
        drop_path_rate=0.1,
        layer_scale_init_value=0.1,
        out_type='avg_featmap',
        init_cfg=dict(
            type='Pretrained',
            # The official CLIP-L distilled pretraining weights, converted
            # with tools/model_converters/fast_itpn_to_mmitpn.py.
            checkpoint='checkpoints/fast-itpn-base_clip-l-1600e-pre.pth',
            prefix='backbone.')),
    neck=None,
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=512,
        loss=dict(
            type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        init_cfg=[dict(type='TruncNormal', layer='Linear', std=2e-5)]),
    train_cfg=dict(augments=[
        dict(type='Mixup', alpha=0.8),
        dict(type='CutMix', alpha=1.0)
    ]))
