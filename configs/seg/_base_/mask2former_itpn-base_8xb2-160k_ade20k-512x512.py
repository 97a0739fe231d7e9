# ADE20K Mask2Former (mmseg 1.2's mask2former_*_8xb2-160k_ade20k-512x512,
# the 512x512 counterpart of its Swin-B 640x640 config) with an iTPN-B
# backbone and its pretrained pyramid: the nearest available counterpart of
# the MaskDINO segmentor of the Fast-iTPN paper (MaskDINO is in neither mmdet
# nor mmseg). The pyramid feeds Mask2Former's MSDeformAttn pixel decoder as
# it feeds UperNet: each pyramid level concatenated with the backbone feature
# of its stride, plus a max-pooled stride-32 level ([384, 512, 768, 768]
# channels at strides 4/8/16/32, the four inputs of Mask2Former's Swin
# configs). The recipe is Mask2Former-Swin's (AdamW lr 1e-4, weight decay
# 0.05, gradient clipping at 0.01, poly schedule over 160k iterations of
# batch 16, 100 queries, no weight decay on the query and level embeddings)
# with the iTPN UperNet backbone settings in place of Swin's fixed 0.1
# backbone lr multiplier: layer decay 0.90 (rescaled as the official
# ld ** (13 / num_layers)), drop path 0.1, relative position tables sized for
# the 512 crop, slide inference with stride 341; full fp32 as mmseg's
# Mask2Former. mmseg's Mask2Former config brings mmseg's runtime and hooks,
# so this part states mmitpn's hooks itself: the same as default_runtime.py
# and schedules/adamw_poly-160k.py beside it.
_base_ = 'mmseg::mask2former/mask2former_r50_8xb2-160k_ade20k-512x512.py'

crop_size = (512, 512)
pretrained = ('work_dirs/itpn-pixel_itpn-base_64xb64-amp-coslr-1600e_in1k/'
              'epoch_1600.pth')
model = dict(
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
    decode_head=dict(in_channels=[384, 512, 768, 768]),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(341, 341)))

embed_multi = dict(lr_mult=1.0, decay_mult=0.0)
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.05, eps=1e-8,
                   betas=(0.9, 0.999)),
    clip_grad=dict(max_norm=0.01, norm_type=2),
    constructor='mmitpn.LayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(
        layer_decay_rate=0.90,
        rescale_depth=12,
        custom_keys={
            'query_embed': embed_multi,
            'query_feat': embed_multi,
            'level_embed': embed_multi,
        }))
# The lr above is for 8 GPUs x 2 images; other world sizes scale it linearly.
auto_scale_lr = dict(enable=True, base_batch_size=16)

train_cfg = dict(type='mmitpn.ResumableIterBasedTrainLoop')
default_hooks = dict(
    checkpoint=dict(
        type='mmitpn.SafeCheckpointHook', interval=4000, max_keep_ckpts=3))
custom_hooks = [
    dict(type='mmitpn.IterationSeedHook'),
    dict(type='mmitpn.NonFiniteGuardHook'),
    dict(type='mmitpn.TrainingScaleLoggerHook'),
    dict(type='mmitpn.PreemptionHook'),
]
