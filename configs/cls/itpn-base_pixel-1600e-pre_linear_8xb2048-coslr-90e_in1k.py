# iTPN-B, pixel pretraining (1600 epochs): linear probe on the backbone.
_base_ = ['./_base_/itpn-base_linear_in1k.py']
