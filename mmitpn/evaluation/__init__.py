# Copyright (c) mmitpn contributors. All rights reserved.
from .feature_probe import (FEATURE_KINDS, GRAD_TOLERANCE, PENALTY_GRID,
                            POOLINGS, PROBE_METHODS, FrozenFeatureExtractor,
                            ProbeConvergenceError, ProbeGridError, ProbeResult,
                            choose_penalty, extract_features, fit_linear_probe,
                            fixed_split, load_labelled_images, log_probe,
                            solve_logistic)

__all__ = [
    'FEATURE_KINDS', 'GRAD_TOLERANCE', 'PENALTY_GRID', 'POOLINGS',
    'PROBE_METHODS', 'FrozenFeatureExtractor', 'ProbeConvergenceError',
    'ProbeGridError', 'ProbeResult', 'choose_penalty', 'extract_features',
    'fit_linear_probe', 'fixed_split', 'load_labelled_images', 'log_probe',
    'solve_logistic'
]
