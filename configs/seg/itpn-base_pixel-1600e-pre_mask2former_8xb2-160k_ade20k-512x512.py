# From the pretraining checkpoint (backbone and pyramid), as the iTPN-B
# UperNet of the same pretraining.
_base_ = './_base_/mask2former_itpn-base_8xb2-160k_ade20k-512x512.py'
