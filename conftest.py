# Copyright (c) mmitpn contributors. All rights reserved.
"""What every test of the repository shares (``tests/`` and the projects'
tests): each test starts with the mmengine globals the one before it found."""
import pytest
from mmengine.logging import MMLogger
from mmengine.registry import DefaultScope


@pytest.fixture(autouse=True)
def isolated_mmengine_globals():
    """Restore mmengine's default scope and current logger after each test.

    A runner built by one test makes e.g. ``mmpretrain`` the global default
    scope, which would make later ``MODELS.build`` calls of mmitpn's registry
    look up ``mmpretrain``'s (its ``HiViT`` instead of mmitpn's), in whatever
    test file the same worker runs next.
    """
    scopes = DefaultScope._instance_dict.copy()
    loggers = MMLogger._instance_dict.copy()
    yield
    for manager, saved in ((DefaultScope, scopes), (MMLogger, loggers)):
        manager._instance_dict.clear()
        manager._instance_dict.update(saved)
