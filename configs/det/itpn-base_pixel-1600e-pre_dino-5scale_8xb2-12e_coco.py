_base_ = './_base_/dino-5scale_itpn-base_8xb2-12e_coco.py'
