_base_ = './itpn-pixel_itpn-base_64xb64-amp-coslr-400e_in1k.py'

train_cfg = dict(max_epochs=800)
