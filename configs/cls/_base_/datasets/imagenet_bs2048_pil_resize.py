# ImageNet-1k for linear probing (mmpretrain's data, metrics and loaders):
# random resized crops and flips only; 2048 images per GPU.
_base_ = 'mmpretrain::_base_/datasets/imagenet_bs32_pil_resize.py'

train_dataloader = dict(batch_size=2048, drop_last=True)
val_dataloader = dict(batch_size=256, drop_last=False)
test_dataloader = val_dataloader
