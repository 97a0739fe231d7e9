# Copyright (c) mmitpn contributors. All rights reserved.
"""Convert an official Fast-iTPN checkpoint (``model``, ``module`` or bare
state dict; tensors only) to mmitpn's layout (``mmitpn.FastiTPN``).

Example:
    python tools/model_converters/fast_itpn_to_mmitpn.py \
        fast_itpn_base_clipl_e1600.pt checkpoints/fast-itpn-base.pth
"""
from mmitpn.converters import convert_fast_itpn
from mmitpn.converters.cli import build_parser, run


def main():
    parser = build_parser(__doc__.splitlines()[0])
    run(convert_fast_itpn, parser.parse_args())


if __name__ == '__main__':
    main()
