# Copyright (c) mmitpn contributors. All rights reserved.
__version__ = '0.1.0'


def parse_version_info(version_str: str) -> tuple:
    """Parse a version string such as ``'0.1.0rc1'`` into a tuple."""
    version_info = []
    for part in version_str.split('.'):
        if part.isdigit():
            version_info.append(int(part))
        elif 'rc' in part:
            patch, rc = part.split('rc')
            version_info.extend([int(patch), f'rc{rc}'])
    return tuple(version_info)


version_info = parse_version_info(__version__)
