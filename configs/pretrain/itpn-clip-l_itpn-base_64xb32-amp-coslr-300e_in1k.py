_base_ = [
    './_base_/models/itpn-clip_itpn-base.py',
    './_base_/datasets/imagenet_clip.py',
    './_base_/schedules/clip_adamw_coslr.py',
    '../_base_/default_runtime.py',
]

# OpenAI CLIP ViT-L/14 teacher (768-d), fed 196 px so that its 14x14 tokens
# match the student's units: the teacher's view of each crop (the second
# output of RandomResizedCropAndInterpolationWithTwoPic) is resized to 196 px
# with lanczos, from the original image (as released).
model = dict(
    head=dict(teacher_dims=768),
    teacher=dict(
        model_name='ViT-L-14-quickgelu', ckpt='checkpoints/clip/ViT-L-14.pth'))
teacher_img_size = 196
_base_.train_pipeline[3].second_size = teacher_img_size
_base_.train_dataloader.dataset.pipeline = _base_.train_pipeline

randomness = dict(seed=0, diff_rank_seed=True)
resume = True
