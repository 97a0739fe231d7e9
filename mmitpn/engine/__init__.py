# Copyright (c) mmitpn contributors. All rights reserved.
from .auto_resume import restart_count, resume_if_restarted  # noqa: F401
from .hooks import *  # noqa: F401,F403
from .loops import *  # noqa: F401,F403
from .optimizers import *  # noqa: F401,F403
