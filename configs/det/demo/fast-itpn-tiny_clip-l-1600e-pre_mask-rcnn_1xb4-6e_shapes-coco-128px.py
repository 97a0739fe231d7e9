# CPU demo with Fast-iTPN-T: the HiViT demo's Mask R-CNN on the shapes set,
# the backbone from the official Fast-iTPN-T weights converted with
# tools/model_converters/fast_itpn_to_mmitpn.py (224 px position embedding
# resized to the 128 px input), a fresh iTPN pyramid (96 channels) on the
# conv stem's stride-4/8 maps, layer decay 0.80 (the size's fine-tuning).
_base_ = './_base_/mask-rcnn_1xb4-6e_shapes-coco-128px.py'

# Fast-iTPN-T in place of the recipe's HiViT, its other settings kept.
model = dict(
    backbone=dict(
        type='mmitpn.FastiTPN',
        arch='fast-itpn-tiny',
        img_size=224,
        init_cfg=dict(
            checkpoint='checkpoints/fast-itpn-tiny_clip-l-1600e-pre.pth')),
    neck=dict(embed_dims=384, init_cfg=None))
optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.80))
