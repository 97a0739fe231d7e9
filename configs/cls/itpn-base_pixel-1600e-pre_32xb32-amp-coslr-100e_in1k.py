# iTPN-B, pixel pretraining (1600 epochs) -> ImageNet-1k, 100 epochs.
_base_ = ['./_base_/itpn-base_finetune_in1k.py']
