# Pieces shared by the COCO detectors with an iTPN-B backbone whose
# pretrained pyramid is the neck (integral transfer): HiViT gives stride
# 4/8/16 maps, iTPNPyramid (loaded from the same pretraining checkpoint,
# fpn_depth kept) gives five 256-channel levels (stride 4-64, avg-pooled
# 32/64) to the RPN and RoI heads. Official recipe: AdamW, weight decay 0.05,
# layer decay 0.90, 4conv1fc box heads with SyncBN and GIoU, DETR-style
# multi-scale training, pad 32, mixed precision, 32 GPUs x 2 images.
pretrained = ('work_dirs/itpn-pixel_itpn-base_64xb64-amp-coslr-1600e_in1k/'
              'epoch_1600.pth')
itpn_backbone = dict(
    _delete_=True,
    type='mmitpn.HiViT',
    arch='itpn-base',
    img_size=224,
    drop_path_rate=0.05,
    out_indices=(0, 1, 2),
    # Global attention at full resolution, as the official detector, with
    # gradient checkpointing for 1333 px inputs; window_size=14 with
    # global_blocks=(5, 11, 17, 23) costs much less memory and compute.
    with_cp=True,
    init_cfg=dict(
        type='Pretrained', checkpoint=pretrained, prefix='backbone.'))
itpn_neck = dict(
    _delete_=True,
    type='mmitpn.iTPNPyramid',
    embed_dims=512,
    fpn_dim=256,
    fpn_depth=2,
    num_outs=5,
    extra_pool='avg',
    with_cp=True,
    init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='neck.'))
box_head = dict(
    type='Shared4Conv1FCBBoxHead',
    in_channels=256,
    conv_out_channels=256,
    fc_out_channels=1024,
    roi_feat_size=7,
    num_classes=80,
    norm_cfg=dict(type='SyncBN', requires_grad=True),
    reg_decoded_bbox=True,
    loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
    loss_bbox=dict(type='GIoULoss', loss_weight=10.0))

itpn_train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomFlip', prob=0.5),
    dict(
        type='RandomChoice',
        transforms=[[
            dict(
                type='RandomChoiceResize',
                scales=[(480, 1333), (512, 1333), (544, 1333), (576, 1333),
                        (608, 1333), (640, 1333), (672, 1333), (704, 1333),
                        (736, 1333), (768, 1333), (800, 1333)],
                keep_ratio=True)
        ],
                    [
                        dict(
                            type='RandomChoiceResize',
                            scales=[(400, 1333), (500, 1333), (600, 1333)],
                            keep_ratio=True),
                        dict(
                            type='RandomCrop',
                            crop_type='absolute_range',
                            crop_size=(384, 600),
                            allow_negative_crop=True),
                        dict(
                            type='RandomChoiceResize',
                            scales=[(480, 1333), (512, 1333), (544, 1333),
                                    (576, 1333), (608, 1333), (640, 1333),
                                    (672, 1333), (704, 1333), (736, 1333),
                                    (768, 1333), (800, 1333)],
                            keep_ratio=True)
                    ]]),
    dict(type='PackDetInputs'),
]
itpn_optim_wrapper = dict(
    _delete_=True,
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    optimizer=dict(
        type='AdamW',
        lr=2e-4,
        betas=(0.9, 0.999),
        weight_decay=0.05,
        fused=True),
    constructor='mmitpn.LayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.90))
cascade_box_heads = [
    dict(
        box_head,
        reg_class_agnostic=True,
        bbox_coder=dict(
            type='DeltaXYWHBBoxCoder',
            target_means=[0., 0., 0., 0.],
            target_stds=stds))
    for stds in ([0.1, 0.1, 0.2, 0.2], [0.05, 0.05, 0.1, 0.1],
                 [0.033, 0.033, 0.067, 0.067])
]
