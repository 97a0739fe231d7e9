# CPU demo: DINO 5-scale whose backbone is the `make demo-photos`
# pretraining checkpoint's HiViT (loaded without conversion), trained on the
# COCO-format shapes set of tools/dataset_converters/make_shapes_coco.py
# (3 classes, 128 px). The iTPN pyramid's five levels (stride 4-64) are
# DINO's multi-scale input, as in the COCO configs. mmdet's DINO decoder
# encodes reference points with 128 features per coordinate, so the
# transformer and the pyramid stay 256 wide: the demo checkpoint's pyramid
# (96 wide) cannot load and the pyramid starts fresh. For a CPU: 3 encoder
# and 3 decoder layers (feed-forward 1024), 100 queries, 30 denoising
# queries.
_base_ = '../_base_/dino-5scale_itpn-base_8xb2-12e_coco.py'

data_root = 'data/shapes_coco/'
classes = ('circle', 'square', 'triangle')
pretrained = 'work_dirs/demo/epoch_40.pth'
channels = 256  # DINO's width

model = dict(
    num_queries=100,
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
    neck=dict(_delete_=True, type='mmitpn.iTPNPyramid', embed_dims=192,
              fpn_dim=channels, fpn_depth=1, num_outs=5, extra_pool='avg',
              init_cfg=None),
    encoder=dict(
        num_layers=3, layer_cfg=dict(ffn_cfg=dict(feedforward_channels=1024))),
    decoder=dict(
        num_layers=3, layer_cfg=dict(ffn_cfg=dict(feedforward_channels=1024))),
    bbox_head=dict(num_classes=len(classes)),
    dn_cfg=dict(group_cfg=dict(num_dn_queries=30)),
    test_cfg=dict(max_per_img=50))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(128, 128), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor')),
]
train_dataloader = dict(
    _delete_=True,
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
    _delete_=True,
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
val_evaluator = dict(_delete_=True, type='CocoMetric',
                     ann_file=data_root + 'annotations/instances_val.json',
                     metric='bbox')
test_evaluator = val_evaluator

# The COCO recipe's optimizer (AdamW, clipping at 0.1, layer decay 0.90).
optim_wrapper = dict(optimizer=dict(lr=2e-4))
param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=100),
    dict(type='MultiStepLR', begin=0, end=2, by_epoch=True, milestones=[],
         gamma=0.1),
]
# Two epochs (200 iterations of 4 images) fit about 13 minutes of one busy
# CPU thread; DINO needs far longer to converge (mmdet's schedule is 12
# epochs of COCO).
train_cfg = dict(max_epochs=2, val_interval=2)
default_hooks = dict(logger=dict(type='LoggerHook', interval=20),
                     checkpoint=dict(interval=2))
auto_scale_lr = dict(enable=False, base_batch_size=4)
randomness = dict(seed=0)
