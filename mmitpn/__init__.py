# Copyright (c) mmitpn contributors. All rights reserved.
from mmengine.config.utils import MODULE2PACKAGE

from .utils.checkpoint import register_mmengine_state_globals
from .version import __version__, version_info

# Lets configs inherit ours with ``_base_ = 'mmitpn::...'`` (mmengine only
# knows OpenMMLab's own packages).
MODULE2PACKAGE.setdefault('mmitpn', 'mmitpn')
# Weights-only loads (mmengine's own loader included) admit mmengine's
# training state, exactly and without admitting code; see
# mmitpn.utils.checkpoint.
register_mmengine_state_globals()

__all__ = ['__version__', 'version_info']
