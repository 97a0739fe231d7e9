# Copyright (c) mmitpn contributors. All rights reserved.
from .checkpoint import (UnsafeCheckpointError, extract_state_dict,
                         load_checkpoint_file)

__all__ = [
    'UnsafeCheckpointError', 'extract_state_dict', 'load_checkpoint_file'
]
