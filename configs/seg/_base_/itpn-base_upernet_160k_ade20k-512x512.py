# ADE20K UperNet with an iTPN-B backbone and its pretrained pyramid, as the
# official segmentation code: each pyramid level is concatenated with the
# backbone feature of its stride, plus a max-pooled stride-32 level
# ([384, 512, 768, 768] channels), feeding UPerHead (768 channels) and an
# FCN auxiliary head. Relative position bias tables are sized for the 512
# crop (resized on load from 224 pretraining), position embeddings are
# interpolated for every input; 160k iterations, batch 16, AdamW, poly
# schedule with 1500 warm-up iterations, layer decay 0.90 (rescaled as the
# official ld ** (13 / num_layers)), slide inference with stride 341.
_base_ = [
    'mmseg::_base_/models/upernet_r50.py',
    'mmseg::_base_/datasets/ade20k.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_160k.py',
]

crop_size = (512, 512)
pretrained = ('work_dirs/itpn-pixel_itpn-base_64xb64-amp-coslr-1600e_in1k/'
              'epoch_1600.pth')
model = dict(
    pretrained=None,
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        _delete_=True,
        type='mmitpn.HiViT',
        arch='itpn-base',
        img_size=512,
        drop_path_rate=0.1,
        rel_pos_type='bias_table',
        out_indices=(0, 1, 2),
        init_cfg=dict(
            type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    neck=dict(
        type='mmitpn.iTPNPyramid',
        embed_dims=512,
        fpn_dim=256,
        fpn_depth=2,
        num_outs=4,
        extra_pool='max',
        concat_inputs=True,
        init_cfg=dict(
            type='Pretrained', checkpoint=pretrained, prefix='neck.')),
    decode_head=dict(
        in_channels=[384, 512, 768, 768], channels=768, num_classes=150),
    auxiliary_head=dict(in_channels=768, num_classes=150),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(341, 341)))

train_dataloader = dict(batch_size=2)

optim_wrapper = dict(
    _delete_=True,
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    optimizer=dict(
        type='AdamW',
        lr=1e-4,
        betas=(0.9, 0.999),
        weight_decay=0.05,
        fused=True),
    constructor='mmitpn.LayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.90, rescale_depth=12))
param_scheduler = [
    dict(
        type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0,
        end=1500),
    dict(
        type='PolyLR',
        eta_min=0.0,
        power=1.0,
        begin=1500,
        end=160000,
        by_epoch=False),
]
# Atomic checkpoints that resume exactly under any launcher.
default_hooks = dict(checkpoint=dict(type='mmitpn.SafeCheckpointHook'))
custom_hooks = [
    dict(type='mmitpn.IterationSeedHook'),
    dict(type='mmitpn.NonFiniteGuardHook'),
    dict(type='mmitpn.TrainingScaleLoggerHook'),
]
# The lr above is for 8 GPUs x 2 images; other world sizes scale it linearly.
auto_scale_lr = dict(enable=True, base_batch_size=16)
