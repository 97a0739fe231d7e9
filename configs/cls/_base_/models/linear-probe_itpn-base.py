# Linear probe of a frozen iTPN-B backbone (MAE's: BatchNorm without affine
# parameters before a linear classifier); top-1 and top-5.
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='mmitpn.HiViT',
        arch='itpn-base',
        img_size=224,
        # Mean of the stride-16 tokens, without the fine-tuning fc_norm.
        out_type='avg_featmap',
        final_norm=False,
        frozen_stages=3,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='work_dirs/itpn-pixel_itpn-base_64xb64-amp-coslr-'
            '1600e_in1k/epoch_1600.pth',
            prefix='backbone.')),
    neck=dict(type='ClsBatchNormNeck', input_features=512),
    head=dict(type='LinearClsHead', num_classes=1000, in_channels=512,
              loss=dict(type='CrossEntropyLoss'), topk=(1, 5),
              init_cfg=[dict(type='TruncNormal', layer='Linear', std=0.01)]))
