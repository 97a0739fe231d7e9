# Copyright (c) mmitpn contributors. All rights reserved.
"""Convert an official iTPN/HiViT checkpoint (pretraining, classification,
detection or segmentation) to mmitpn's layout.

Example:
    python tools/model_converters/itpn_to_mmitpn.py \
        pixel_itpn_base_1600e.pth checkpoints/itpn-base_pixel_1600e.pth
"""
from mmitpn.converters import convert_official
from mmitpn.converters.cli import build_parser, run


def main():
    parser = build_parser(__doc__.splitlines()[0])
    run(convert_official, parser.parse_args())


if __name__ == '__main__':
    main()
