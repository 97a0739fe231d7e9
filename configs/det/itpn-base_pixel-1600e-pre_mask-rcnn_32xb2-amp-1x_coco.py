_base_ = ['./_base_/itpn-base_mask-rcnn_1x_coco.py']
