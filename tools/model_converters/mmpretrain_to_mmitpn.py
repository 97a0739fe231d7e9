# Copyright (c) mmitpn contributors. All rights reserved.
"""Convert an mmpretrain 1.2.0 HiViT / iTPN / ImageClassifier checkpoint to
mmitpn's layout (``pos_embed`` -> ``absolute_pos_embed``, derived buffers
dropped).

Example:
    python tools/model_converters/mmpretrain_to_mmitpn.py \
        itpn-pixel_hivit-base-p16_8xb512-amp-coslr-800e_in1k.pth out.pth
"""
from mmitpn.converters import convert_mmpretrain
from mmitpn.converters.cli import build_parser, run


def main():
    parser = build_parser(__doc__.splitlines()[0])
    run(convert_mmpretrain, parser.parse_args())


if __name__ == '__main__':
    main()
