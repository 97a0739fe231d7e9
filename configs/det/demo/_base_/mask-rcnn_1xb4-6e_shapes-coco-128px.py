# CPU demo recipe: Mask R-CNN trained on the COCO-format shapes set of
# tools/dataset_converters/make_shapes_coco.py (3 classes, 128 px), its
# backbone and neck the `make demo-photos` pretraining checkpoint (HiViT +
# iTPN pyramid, loaded without conversion); the Fast-iTPN-T demo replaces
# the backbone and starts the pyramid fresh.
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    '../../_base_/default_runtime.py',
]

data_root = 'data/shapes_coco/'
classes = ('circle', 'square', 'triangle')
pretrained = 'work_dirs/demo/epoch_40.pth'
channels = 96  # the demo pyramid's fpn_dim

model = dict(
    data_preprocessor=dict(pad_size_divisor=32),
    backbone=dict(
        _delete_=True,
        type='mmitpn.HiViT',
        arch=dict(
            embed_dims=192, stem_mlp_blocks=(1, 1), depth=4, num_heads=3),
        img_size=96,
        drop_path_rate=0.05,
        out_indices=(0, 1, 2),
        init_cfg=dict(
            type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    neck=dict(
        _delete_=True,
        type='mmitpn.iTPNPyramid',
        embed_dims=192,
        fpn_dim=channels,
        fpn_depth=1,
        num_outs=5,
        extra_pool='avg',
        init_cfg=dict(
            type='Pretrained', checkpoint=pretrained, prefix='neck.')),
    rpn_head=dict(in_channels=channels, feat_channels=channels),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=channels),
        bbox_head=dict(type='Shared4Conv1FCBBoxHead', in_channels=channels,
                       conv_out_channels=channels, fc_out_channels=256,
                       num_classes=len(classes),
                       norm_cfg=dict(type='BN', requires_grad=True),
                       reg_decoded_bbox=True,
                       loss_bbox=dict(type='GIoULoss', loss_weight=10.0)),
        mask_roi_extractor=dict(out_channels=channels),
        mask_head=dict(in_channels=channels, conv_out_channels=channels,
                       num_classes=len(classes))),
    # Fewer proposals and sampled RoIs than on COCO: small images with a few
    # objects, and a CPU.
    train_cfg=dict(rpn_proposal=dict(nms_pre=500, max_per_img=300),
                   rcnn=dict(sampler=dict(num=128))),
    test_cfg=dict(
        rpn=dict(nms_pre=500, max_per_img=300), rcnn=dict(max_per_img=50)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(128, 128), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor')),
]
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=dict(type='AspectRatioBatchSampler'),
    dataset=dict(type='CocoDataset', data_root=data_root,
                 metainfo=dict(classes=classes),
                 ann_file='annotations/instances_train.json',
                 data_prefix=dict(img='train/'),
                 filter_cfg=dict(filter_empty_gt=True, min_size=4),
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='CocoDataset', data_root=data_root,
                 metainfo=dict(classes=classes),
                 ann_file='annotations/instances_val.json',
                 data_prefix=dict(img='val/'), test_mode=True,
                 pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='CocoMetric',
                     ann_file=data_root + 'annotations/instances_val.json',
                     metric=['bbox', 'segm'])
test_evaluator = val_evaluator

optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=5e-4, betas=(0.9, 0.999),
                   weight_decay=0.05, fused=True),
    constructor='mmitpn.LayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.90))
param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=100),
    dict(type='MultiStepLR', begin=0, end=6, by_epoch=True, milestones=[5],
         gamma=0.1),
]
train_cfg = dict(
    type='mmitpn.ResumableEpochBasedTrainLoop', max_epochs=6, val_interval=6)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(logger=dict(type='LoggerHook', interval=20),
                     checkpoint=dict(interval=6))
randomness = dict(seed=0)
