# ImageNet-1k for pixel (and pixel + MFM) pretraining: one random-resized
# crop, flipped, normalised with ImageNet statistics. Layout (mmpretrain's
# ImageNet): data/imagenet/train/<class>/<image>.JPEG, or meta/train.txt.
data_root = 'data/imagenet/'
img_size = 224

data_preprocessor = dict(type='mmpretrain.SelfSupDataPreprocessor',
                         mean=[123.675, 116.28, 103.53],
                         std=[58.395, 57.12, 57.375], to_rgb=True)

train_pipeline = [
    # Unreadable images are logged with their path and replaced.
    dict(type='LoadImageFromFileOrSkip', on_error='skip'),
    dict(type='mmpretrain.RandomResizedCrop', scale=img_size,
         crop_ratio_range=(0.2, 1.0), backend='pillow',
         interpolation='bicubic'),
    dict(type='mmpretrain.RandomFlip', prob=0.5),
    dict(type='mmpretrain.PackInputs'),
]

train_dataloader = dict(
    batch_size=64,
    num_workers=8,
    persistent_workers=True,
    pin_memory=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='mmpretrain.ImageNet', data_root=data_root,
                 split='train', pipeline=train_pipeline))
