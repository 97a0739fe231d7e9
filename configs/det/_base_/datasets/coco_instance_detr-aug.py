# COCO instance segmentation (mmdet's data and metrics) with the DETR-style
# multi-scale training of the official iTPN detectors: flip, then either a
# resize of the short side to 480-800 px or a resize to 400-600 px, a crop
# of 384-600 px and a resize to 480-800 px; 2 images per GPU.
_base_ = 'mmdet::_base_/datasets/coco_instance.py'

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomFlip', prob=0.5),
    dict(
        type='RandomChoice',
        transforms=[
            [
                dict(
                    type='RandomChoiceResize',
                    scales=[(short, 1333) for short in range(480, 801, 32)],
                    keep_ratio=True)
            ],
            [
                dict(type='RandomChoiceResize',
                     scales=[(400, 1333), (500, 1333), (600, 1333)],
                     keep_ratio=True),
                dict(type='RandomCrop', crop_type='absolute_range',
                     crop_size=(384, 600), allow_negative_crop=True),
                dict(
                    type='RandomChoiceResize',
                    scales=[(short, 1333) for short in range(480, 801, 32)],
                    keep_ratio=True)
            ],
        ]),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(batch_size=2, dataset=dict(pipeline=train_pipeline))
