# Copyright (c) mmitpn contributors. All rights reserved.
from .iteration_seed_hook import IterationSeedHook
from .non_finite_guard_hook import DivergenceError, NonFiniteGuardHook
from .preemption_hook import (PREEMPTED_EXIT_CODE, PreemptionHook,
                              TrainingPreempted)
from .reconstruction_hook import ReconstructionHook
from .safe_checkpoint_hook import SafeCheckpointHook
from .training_scale_logger_hook import TrainingScaleLoggerHook

__all__ = [
    'DivergenceError', 'IterationSeedHook', 'NonFiniteGuardHook',
    'PREEMPTED_EXIT_CODE', 'PreemptionHook', 'ReconstructionHook',
    'SafeCheckpointHook', 'TrainingPreempted', 'TrainingScaleLoggerHook'
]
