# From the pretraining checkpoint (backbone and pyramid), as the iTPN-B
# UperNet of the same pretraining.
_base_ = ['./_base_/itpn-base_mask2former_160k_ade20k-512x512.py']
