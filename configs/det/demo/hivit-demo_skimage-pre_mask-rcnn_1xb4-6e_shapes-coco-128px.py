# CPU demo: Mask R-CNN whose backbone and neck are the `make demo-photos`
# pretraining checkpoint (HiViT + iTPN pyramid, loaded without conversion),
# trained on the COCO-format shapes set of
# tools/dataset_converters/make_shapes_coco.py (3 classes, 128 px).
_base_ = './_base_/mask-rcnn_1xb4-6e_shapes-coco-128px.py'
