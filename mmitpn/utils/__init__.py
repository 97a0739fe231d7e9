# Copyright (c) mmitpn contributors. All rights reserved.
from .atomic_file import AtomicLocalBackend, write_atomically
from .checkpoint import (MMENGINE_STATE_GLOBALS, Ignored, MissingWeightsError,
                         UnsafeCheckpointError, checkpoint_problem,
                         extract_state_dict, load_checkpoint_file,
                         refuse_unsafe_checkpoint,
                         register_mmengine_state_globals, require_weights)
from .cli import run_tool
from .complexity import count_macs
from .dataset_check import StageCheck, check_dataset
from .sample_seeding import sample_noise
from .setup_env import (adapt_cfg_to_device, check_data_files,
                        cpu_has_native_bf16, describe_cpu, init_distributed)

__all__ = [
    'MMENGINE_STATE_GLOBALS', 'AtomicLocalBackend', 'Ignored',
    'MissingWeightsError', 'StageCheck', 'UnsafeCheckpointError',
    'adapt_cfg_to_device', 'check_data_files', 'check_dataset',
    'checkpoint_problem', 'count_macs', 'cpu_has_native_bf16', 'describe_cpu',
    'extract_state_dict', 'init_distributed', 'load_checkpoint_file',
    'refuse_unsafe_checkpoint', 'register_mmengine_state_globals',
    'require_weights', 'run_tool', 'sample_noise', 'write_atomically'
]
