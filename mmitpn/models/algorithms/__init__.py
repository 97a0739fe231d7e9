# Copyright (c) mmitpn contributors. All rights reserved.
from .itpn import iTPN, iTPNBase, iTPNCLIP

__all__ = ['iTPN', 'iTPNBase', 'iTPNCLIP']
