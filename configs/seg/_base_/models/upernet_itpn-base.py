# UperNet with an iTPN-B backbone and its pretrained pyramid, as the official
# segmentation code: each pyramid level is concatenated with the backbone
# feature of its stride, plus a max-pooled stride-32 level ([384, 512, 768,
# 768] channels), feeding UPerHead (768 channels) and an FCN auxiliary head.
# Relative position bias tables are sized for the 512 crop (resized on load
# from 224 pretraining), position embeddings are interpolated for every
# input; slide inference with stride 341.
_base_ = 'mmseg::_base_/models/upernet_r50.py'

pretrained = ('work_dirs/itpn-pixel_itpn-base_64xb64-amp-coslr-1600e_in1k/'
              'epoch_1600.pth')
model = dict(
    pretrained=None,
    data_preprocessor=dict(size=(512, 512)),
    backbone=dict(
        _delete_=True,
        type='mmitpn.HiViT',
        arch='itpn-base',
        img_size=512,
        drop_path_rate=0.1,
        rel_pos_type='bias_table',
        out_indices=(0, 1, 2),
        init_cfg=dict(
            type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    neck=dict(
        type='mmitpn.iTPNPyramid',
        embed_dims=512,
        fpn_dim=256,
        fpn_depth=2,
        num_outs=4,
        extra_pool='max',
        concat_inputs=True,
        init_cfg=dict(
            type='Pretrained', checkpoint=pretrained, prefix='neck.')),
    decode_head=dict(
        in_channels=[384, 512, 768, 768], channels=768, num_classes=150),
    auxiliary_head=dict(in_channels=768, num_classes=150),
    test_cfg=dict(mode='slide', crop_size=(512, 512), stride=(341, 341)))
