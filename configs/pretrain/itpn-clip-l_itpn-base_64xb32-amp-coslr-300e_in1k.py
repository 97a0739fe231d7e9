_base_ = './itpn-clip-b_itpn-base_64xb32-amp-coslr-300e_in1k.py'

# OpenAI CLIP ViT-L/14 teacher (768-d), fed 196 px so that its 14x14 tokens
# match the student's units: the teacher's view of each crop is resized to
# 196 px with lanczos, from the original image (as released).
model = dict(
    head=dict(teacher_dims=768),
    teacher=dict(
        model_name='ViT-L-14-quickgelu', ckpt='checkpoints/clip/ViT-L-14.pth'))

train_dataloader = dict(
    dataset=dict(pipeline=[
        dict(type='LoadImageFromFileOrSkip', on_error='skip'),
        dict(
            type='mmpretrain.ColorJitter',
            brightness=0.4,
            contrast=0.4,
            saturation=0.4,
            hue=0.),
        dict(type='mmpretrain.RandomFlip', prob=0.5, direction='horizontal'),
        dict(
            type='mmpretrain.RandomResizedCropAndInterpolationWithTwoPic',
            size=224,
            second_size=196,
            scale=(0.08, 1.0),
            interpolation='bicubic',
            second_interpolation='lanczos'),
        dict(
            type='mmpretrain.BEiTMaskGenerator',
            input_size=(14, 14),
            num_masking_patches=75,
            max_num_patches=75,
            min_num_patches=16),
        dict(type='mmpretrain.PackInputs', algorithm_keys=['mask']),
    ]))
