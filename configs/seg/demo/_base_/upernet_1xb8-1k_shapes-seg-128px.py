# CPU demo recipe: UperNet trained on the shapes set of
# tools/dataset_converters/make_shapes_seg.py (background + 3 classes, 128 px),
# its backbone and concatenated pyramid the `make demo-photos` pretraining
# checkpoint (HiViT + iTPN pyramid, no conversion): the iTPN UperNet at the
# demo's widths, BatchNorm heads and whole-image inference. The Fast-iTPN-T
# demo replaces the backbone and starts the pyramid fresh.
_base_ = [
    '../../_base_/models/upernet_itpn-base.py',
    '../../_base_/default_runtime.py',
]

data_root = 'data/shapes_seg'
classes = ('background', 'circle', 'square', 'triangle')
crop_size = (128, 128)
pretrained = 'work_dirs/demo/epoch_40.pth'
norm_cfg = dict(type='BN', requires_grad=True)

model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        arch=dict(_delete_=True, embed_dims=192, stem_mlp_blocks=(1, 1),
                  depth=4, num_heads=3),
        img_size=96,
        drop_path_rate=0.05,
        init_cfg=dict(checkpoint=pretrained)),
    neck=dict(embed_dims=192, fpn_dim=96, fpn_depth=1,
              init_cfg=dict(checkpoint=pretrained)),
    decode_head=dict(in_channels=[144, 192, 288, 288], channels=128,
                     num_classes=len(classes), norm_cfg=norm_cfg),
    auxiliary_head=dict(in_channels=288, channels=64, num_classes=len(classes),
                        norm_cfg=norm_cfg),
    test_cfg=dict(_delete_=True, mode='whole'))

dataset = dict(type='BaseSegDataset', data_root=data_root,
               metainfo=dict(classes=classes), img_suffix='.png',
               seg_map_suffix='.png', reduce_zero_label=False)
train_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        dataset,
        data_prefix=dict(
            img_path='images/train', seg_map_path='annotations/train'),
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations'),
            dict(type='RandomFlip', prob=0.5),
            dict(type='PhotoMetricDistortion'),
            dict(type='PackSegInputs'),
        ]))
# The training loader's settings, over the val split in order.
val_dataloader = dict(
    train_dataloader,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        dataset,
        data_prefix=dict(
            img_path='images/val', seg_map_path='annotations/val'),
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations'),
            dict(type='PackSegInputs'),
        ]))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator

optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999),
                   weight_decay=0.05, fused=True),
    constructor='mmitpn.LayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.90))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=100),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=100, end=1000,
         by_epoch=False),
]
train_cfg = dict(
    type='mmitpn.ResumableIterBasedTrainLoop',
    max_iters=1000,
    val_interval=500)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    checkpoint=dict(type='mmitpn.SafeCheckpointHook', by_epoch=False,
                    interval=500, max_keep_ckpts=1))
randomness = dict(seed=0)
