# ADE20K at 512x512 (mmseg's data, pipelines and metrics), 2 images per GPU.
_base_ = 'mmseg::_base_/datasets/ade20k.py'

train_dataloader = dict(batch_size=2)
