# CPU demo: UperNet whose backbone and concatenated pyramid are the
# `make demo-photos` pretraining checkpoint (HiViT + iTPN pyramid, no
# conversion), trained on the shapes set of
# tools/dataset_converters/make_shapes_seg.py (background + 3 classes,
# 128 px).
_base_ = './_base_/upernet_1xb8-1k_shapes-seg-128px.py'
