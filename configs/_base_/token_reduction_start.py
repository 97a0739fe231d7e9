# The main block (0-based) from which the recommended fast settings of
# detection and segmentation (det/_base_/fast_dense.py,
# seg/_base_/fast_dense.py) reduce tokens, per backbone arch: after a quarter
# of its main blocks (the arch's `depth`), as block 6 of iTPN-B's 24, the
# start measured in docs/user_guides/detection.md.
token_reduction_start = {
    arch: main_blocks // 4
    for arch, main_blocks in {
        'itpn-base': 24,
        'itpn-large': 40,
        'fast-itpn-tiny': 12,
        'fast-itpn-small': 20,
        'fast-itpn-base': 24,
        'fast-itpn-large': 40,
    }.items()
}
