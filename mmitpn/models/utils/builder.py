# Copyright (c) mmitpn contributors. All rights reserved.
"""Building nested modules independently of the caller's scope."""
from torch import nn

from mmitpn.registry import MODELS


def build_part(cfg: dict) -> nn.Module:
    """Build a sub-module; unprefixed types resolve in mmitpn whatever the
    caller's default scope (e.g. ``type='mmitpn.iTPN'`` built from an
    mmpretrain config), and prefixed ones (``'mmpretrain.X'``) still work."""
    return MODELS.build(dict(cfg, _scope_=cfg.get('_scope_', 'mmitpn')))
