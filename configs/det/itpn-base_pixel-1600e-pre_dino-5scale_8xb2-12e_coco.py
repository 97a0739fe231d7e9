_base_ = ['./_base_/itpn-base_dino-5scale_12e_coco.py']
