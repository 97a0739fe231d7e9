# Fashion-MNIST (Debian's dataset-fashion-mnist, read from its IDX files) at
# 64x64 px, a size the HiViT unit grid accepts (4x4 units of 16 px). Images
# are normalised with the ImageNet statistics the pretraining used.
data_preprocessor = dict(num_classes=10, mean=[123.675, 116.28, 103.53],
                         std=[58.395, 57.12, 57.375], to_rgb=False)

train_pipeline = [
    dict(type='RandomResizedCrop', scale=64, crop_ratio_range=(0.5, 1.0),
         backend='pillow', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='Resize', scale=(64, 64), backend='pillow',
         interpolation='bicubic'),
    dict(type='PackInputs'),
]

train_dataloader = dict(
    batch_size=64,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    # The first 20,000 of the 60,000 training images keep CPU runs short.
    dataset=dict(type='mmitpn.FashionMNIST', split='train', indices=20000,
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=256,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='mmitpn.FashionMNIST', split='test', test_mode=True,
                 pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, 5))
test_evaluator = val_evaluator
