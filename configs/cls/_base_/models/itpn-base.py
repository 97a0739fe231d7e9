# ImageNet-1k classifier on an iTPN-B backbone pretrained with mmitpn
# (mmpretrain's ImageClassifier): mean pooling + fc_norm, drop path 0.15,
# label smoothing 0.1, mixup 0.8, cutmix 1.0.
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='mmitpn.HiViT',
        arch='itpn-base',
        img_size=224,
        drop_path_rate=0.15,
        # Pixel pretraining had no relative position bias: the tables start
        # fresh here (and are listed as missing when the weights load).
        rel_pos_type='bias_table',
        out_type='avg_featmap',
        init_cfg=dict(
            type='Pretrained',
            checkpoint='work_dirs/itpn-pixel_itpn-base_64xb64-amp-coslr-'
            '1600e_in1k/epoch_1600.pth',
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
