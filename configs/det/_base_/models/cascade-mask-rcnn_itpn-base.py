# Cascade Mask R-CNN with an iTPN-B backbone whose pretrained pyramid is the
# neck (integral transfer): HiViT gives stride 4/8/16 maps, iTPNPyramid (loaded
# from the same pretraining checkpoint, fpn_depth kept) gives five 256-channel
# levels (stride 4-64, avg-pooled 32/64) to the RPN and RoI heads; every
# cascade stage has a 4conv1fc box head with SyncBN and GIoU, inputs padded to
# 32, as the official detectors.
_base_ = 'mmdet::_base_/models/cascade-mask-rcnn_r50_fpn.py'

pretrained = ('work_dirs/itpn-pixel_itpn-base_64xb64-amp-coslr-1600e_in1k/'
              'epoch_1600.pth')
box_head = dict(
    type='Shared4Conv1FCBBoxHead', in_channels=256, conv_out_channels=256,
    fc_out_channels=1024, roi_feat_size=7, num_classes=80,
    norm_cfg=dict(type='SyncBN', requires_grad=True), reg_decoded_bbox=True,
    loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
    loss_bbox=dict(type='GIoULoss', loss_weight=10.0))
cascade_box_heads = [
    dict(
        box_head,
        reg_class_agnostic=True,
        bbox_coder=dict(type='DeltaXYWHBBoxCoder',
                        target_means=[0., 0., 0., 0.], target_stds=stds))
    for stds in ([0.1, 0.1, 0.2, 0.2], [0.05, 0.05, 0.1, 0.1],
                 [0.033, 0.033, 0.067, 0.067])
]
model = dict(
    data_preprocessor=dict(pad_size_divisor=32),
    backbone=dict(
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
            type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    neck=dict(
        _delete_=True,
        type='mmitpn.iTPNPyramid',
        embed_dims=512,
        fpn_dim=256,
        fpn_depth=2,
        num_outs=5,
        extra_pool='avg',
        with_cp=True,
        init_cfg=dict(
            type='Pretrained', checkpoint=pretrained, prefix='neck.')),
    roi_head=dict(bbox_head=cascade_box_heads))
