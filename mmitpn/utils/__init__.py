# Copyright (c) mmitpn contributors. All rights reserved.
from .checkpoint import (UnsafeCheckpointError, extract_state_dict,
                         load_checkpoint_file)
from .complexity import count_macs

__all__ = [
    'UnsafeCheckpointError', 'count_macs', 'extract_state_dict',
    'load_checkpoint_file'
]
