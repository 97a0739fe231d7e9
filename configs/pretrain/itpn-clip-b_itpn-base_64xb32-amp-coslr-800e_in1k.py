_base_ = './itpn-clip-b_itpn-base_64xb32-amp-coslr-300e_in1k.py'

train_cfg = dict(max_epochs=800)
