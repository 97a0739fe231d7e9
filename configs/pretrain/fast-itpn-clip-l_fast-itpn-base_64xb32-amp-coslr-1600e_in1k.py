# Fast-iTPN-B pretraining with an OpenAI CLIP ViT-L/14 teacher on ImageNet-1k
# for 1600 epochs, mmitpn's reading of the Fast-iTPN paper (its pretraining
# code is not released; see the model part): block-wise masks of 75 of the
# 14x14 units; the teacher sees its own 196 px lanczos view of the crop (the
# second output of RandomResizedCropAndInterpolationWithTwoPic), so that its
# 14x14 tokens match the student's units.
_base_ = [
    './_base_/models/fast-itpn-clip-l_fast-itpn-base.py',
    './_base_/datasets/imagenet_clip.py',
    './_base_/schedules/clip_adamw_coslr.py',
    '../_base_/default_runtime.py',
]

teacher_img_size = 196
_base_.train_pipeline[3].second_size = teacher_img_size
_base_.train_dataloader.dataset.pipeline = _base_.train_pipeline
train_cfg = dict(max_epochs=1600)

randomness = dict(seed=0, diff_rank_seed=True)
resume = True
