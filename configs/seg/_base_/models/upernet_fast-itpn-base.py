# UperNet with a Fast-iTPN-B backbone from the official CLIP-L distilled
# pretraining weights and an iTPN pyramid (laterals from the convolutional
# stem) that starts fresh: the released checkpoints have none. Heads, crop
# and slide inference as the iTPN UperNet's.
_base_ = 'mmseg::_base_/models/upernet_r50.py'

pretrained = 'checkpoints/fast-itpn-base_clip-l-1600e-pre.pth'
model = dict(
    pretrained=None,
    data_preprocessor=dict(size=(512, 512)),
    backbone=dict(
        _delete_=True,
        type='mmitpn.FastiTPN',
        arch='fast-itpn-base',
        img_size=512,
        drop_path_rate=0.1,
        out_indices=(0, 1, 2),
        init_cfg=dict(
            type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    neck=dict(type='mmitpn.iTPNPyramid', embed_dims=512, fpn_dim=256,
              fpn_depth=2, num_outs=4, extra_pool='max', concat_inputs=True,
              init_cfg=None),
    decode_head=dict(
        in_channels=[384, 512, 768, 768], channels=768, num_classes=150),
    auxiliary_head=dict(in_channels=768, num_classes=150),
    test_cfg=dict(mode='slide', crop_size=(512, 512), stride=(341, 341)))
