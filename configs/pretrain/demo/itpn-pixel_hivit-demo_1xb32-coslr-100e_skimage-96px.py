# The CPU demo trained long enough for the reconstructions to show spatial
# structure: 4x the demo's learning rate and 100 epochs (about 15 minutes on
# 2 CPU cores). The pattern R² of hidden units stays at 0 for about 45
# epochs, then rises to about 0.03 (README, "What the reconstructions show").
_base_ = './itpn-pixel_hivit-demo_1xb32-coslr-40e_skimage-96px.py'

optim_wrapper = dict(optimizer=dict(lr=6e-4))
train_cfg = dict(max_epochs=100)
