# Copyright (c) mmitpn contributors. All rights reserved.
from .feature_probe import (FEATURE_KINDS, POOLINGS, PROBE_METHODS,
                            FrozenFeatureExtractor, ProbeResult,
                            extract_features, fit_linear_probe,
                            load_labelled_images, log_probe)

__all__ = [
    'FEATURE_KINDS', 'POOLINGS', 'PROBE_METHODS', 'FrozenFeatureExtractor',
    'ProbeResult', 'extract_features', 'fit_linear_probe',
    'load_labelled_images', 'log_probe'
]
