# Copyright (c) mmitpn contributors. All rights reserved.
from mmengine.config.utils import MODULE2PACKAGE

from .utils.checkpoint import register_checkpoint_loader
from .version import __version__, version_info

# Lets configs inherit ours with ``_base_ = 'mmitpn::...'`` (mmengine only
# knows OpenMMLab's own packages).
MODULE2PACKAGE.setdefault('mmitpn', 'mmitpn')
# Local checkpoints load tensors only unless their path is trusted.
register_checkpoint_loader()

__all__ = ['__version__', 'version_info']
