# Copyright (c) mmitpn contributors. All rights reserved.
from mmengine.config.utils import MODULE2PACKAGE

from .version import __version__, version_info

# Lets configs inherit ours with ``_base_ = 'mmitpn::...'`` (mmengine only
# knows OpenMMLab's own packages).
MODULE2PACKAGE.setdefault('mmitpn', 'mmitpn')

__all__ = ['__version__', 'version_info']
