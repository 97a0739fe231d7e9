# ImageNet-1k for CLIP-supervised pretraining, as released: colour jitter,
# flip, random-resized crop (scale 0.08-1), BEiT block-wise masks of 75 of
# the 14x14 units. The CLIP teacher gets its own view of the same box of the
# original image, resized with lanczos to its input size (224 px for
# ViT-B/16), kept in [0, 1] by the second normalisation; the model applies
# CLIP's mean and std.
data_root = 'data/imagenet/'
img_size = 224
teacher_img_size = 224
grid = img_size // 16

data_preprocessor = dict(type='mmpretrain.TwoNormDataPreprocessor',
                         mean=[123.675, 116.28, 103.53],
                         std=[58.395, 57.12, 57.375], second_mean=[0., 0., 0.],
                         second_std=[255., 255., 255.], to_rgb=True)

train_pipeline = [
    dict(type='LoadImageFromFileOrSkip', on_error='skip'),
    dict(type='mmpretrain.ColorJitter', brightness=0.4, contrast=0.4,
         saturation=0.4, hue=0.),
    dict(type='mmpretrain.RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='mmpretrain.RandomResizedCropAndInterpolationWithTwoPic',
         size=img_size, second_size=teacher_img_size, scale=(0.08, 1.0),
         interpolation='bicubic', second_interpolation='lanczos'),
    dict(type='mmpretrain.BEiTMaskGenerator', input_size=(grid, grid),
         num_masking_patches=75, max_num_patches=75, min_num_patches=16),
    dict(type='mmpretrain.PackInputs', algorithm_keys=['mask']),
]

train_dataloader = dict(
    batch_size=32,
    num_workers=8,
    persistent_workers=True,
    pin_memory=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='mmpretrain.ImageNet', data_root=data_root,
                 split='train', pipeline=train_pipeline))
