# The generated centred objects (tools/dataset_converters/make_objects_cls.py
# data/objects: 5 classes, 64x64 px) as a labelled classification set, for
# tools/analysis_tools/feature_probe.py --data. Images are normalised with
# the ImageNet statistics the pretraining used.
data_root = 'data/objects'
classes = ('circle', 'square', 'triangle', 'star', 'ring')  # meta/classes.txt

data_preprocessor = dict(num_classes=5, mean=[123.675, 116.28, 103.53],
                         std=[58.395, 57.12, 57.375], to_rgb=False)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=64, crop_ratio_range=(0.5, 1.0),
         backend='pillow', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='PackInputs'),
]

train_dataloader = dict(
    batch_size=64,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='CustomDataset', data_root=data_root,
                 ann_file='meta/train.txt', data_prefix='train',
                 classes=classes, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=256,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='CustomDataset', data_root=data_root,
                 ann_file='meta/test.txt', data_prefix='test', classes=classes,
                 test_mode=True, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator
