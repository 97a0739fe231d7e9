# Fast-iTPN-B (85 M), CLIP-L distilled pretraining (1600 epochs) -> ImageNet-1k,
# 20 epochs; official result 87.4 % top-1 at 224 px.
_base_ = ['./_base_/fast-itpn-base_finetune_in1k.py']
