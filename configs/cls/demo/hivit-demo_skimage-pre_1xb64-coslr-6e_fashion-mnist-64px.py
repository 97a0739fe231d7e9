# CPU demo: fine-tune the `make demo-photos` pretraining checkpoint (HiViT +
# iTPN pixel on scikit-image photographs) on Fashion-MNIST, with layer decay.
_base_ = './_base_/finetune_1xb64-coslr-6e_fashion-mnist-64px.py'
