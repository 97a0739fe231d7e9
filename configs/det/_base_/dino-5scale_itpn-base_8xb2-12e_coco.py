# DINO 5-scale 1x (mmdet 3.3's dino-5scale_swin-l_8xb2-12e_coco) with an
# iTPN-B backbone and its pretrained pyramid as the neck. DINO-Swin-L reads
# Swin's stride 4/8/16/32 maps plus one stride-64 level made by
# ChannelMapper; here iTPNPyramid gives the same five strides directly:
# its three pyramid levels (stride 4/8/16, 256 channels) and two extra
# levels average-pooled from the stride-16 level (32/64), exactly the levels
# the iTPN Mask R-CNN reads, so no ChannelMapper is needed. The recipe is
# DINO-Swin-L's (AdamW lr 1e-4 for 8 GPUs x 2 images, gradient clipping at
# 0.1, 12 epochs with a step at 11, DINO's multi-scale pipeline, 900
# queries) scaled as the iTPN detection recipes scale Swin's: layer decay
# (0.90 for iTPN-B) instead of DINO's fixed 0.1 backbone lr multiplier,
# weight decay 0.05, drop path 0.05, pad 32 for the backbone, full fp32 as
# mmdet's DINO. Backbone and neck as in models/mask-rcnn_itpn-base.py; the
# Fast-iTPN DINO configs replace the backbone. mmdet's DINO config brings
# mmdet's runtime, so this part states mmitpn's hooks itself: the same as
# default_runtime.py beside it.
_base_ = 'mmdet::dino/dino-5scale_swin-l_8xb2-12e_coco.py'

pretrained = ('work_dirs/itpn-pixel_itpn-base_64xb64-amp-coslr-1600e_in1k/'
              'epoch_1600.pth')
model = dict(
    data_preprocessor=dict(pad_size_divisor=32),
    backbone=dict(
        _delete_=True,
        type='mmitpn.HiViT',
        arch='itpn-base',
        img_size=224,
        drop_path_rate=0.05,
        out_indices=(0, 1, 2),
        with_cp=True,
        init_cfg=dict(
            type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    neck=dict(
        _delete_=True,
        type='mmitpn.iTPNPyramid',
        embed_dims=512,
        fpn_dim=256,
        fpn_depth=2,
        num_outs=5,
        extra_pool='avg',
        with_cp=True,
        init_cfg=dict(
            type='Pretrained', checkpoint=pretrained, prefix='neck.')))
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    clip_grad=dict(max_norm=0.1, norm_type=2),
    constructor='mmitpn.LayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.90))
# The lr above is for 8 GPUs x 2 images; other world sizes scale it linearly.
auto_scale_lr = dict(enable=True, base_batch_size=16)
train_cfg = dict(type='mmitpn.ResumableEpochBasedTrainLoop')

default_hooks = dict(
    checkpoint=dict(
        type='mmitpn.SafeCheckpointHook',
        iter_interval=1000,
        max_keep_iter_ckpts=1))
custom_hooks = [
    dict(type='mmitpn.IterationSeedHook'),
    dict(type='mmitpn.NonFiniteGuardHook'),
    dict(type='mmitpn.TrainingScaleLoggerHook'),
    dict(type='mmitpn.PreemptionHook'),
]
