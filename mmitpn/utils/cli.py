# Copyright (c) mmitpn contributors. All rights reserved.
"""One-line errors for mmitpn's command-line tools."""
import os.path as osp
import sys
from typing import Callable, Sequence, Tuple

from .checkpoint import UnsafeCheckpointError

# What a user can fix: a missing or unreadable file, a bad value or key in a
# config or on the command line, a checkpoint that needs an opt-in, a full
# disk. Anything else is a bug and keeps its traceback.
USER_ERRORS = (OSError, ValueError, KeyError, UnsafeCheckpointError)
DEBUG_FLAG = '--debug'


def add_debug_argument(parser) -> None:
    """The ``--debug`` switch that :func:`run_tool` honours."""
    parser.add_argument(
        DEBUG_FLAG,
        action='store_true',
        help='show the full traceback of an error instead of one line')


def add_shape_argument(parser, what: str = 'input') -> None:
    """``--shape H [W]``: an image size, square when one value is given
    (read it with :func:`image_shape`)."""
    parser.add_argument(
        '--shape',
        type=int,
        nargs='+',
        default=[224],
        help=f'{what} height and width (one value: square)')


def image_shape(values: Sequence[int]) -> Tuple[int, int]:
    """``(height, width)`` of a ``--shape`` given as one or two values."""
    if len(values) not in (1, 2):
        raise ValueError(
            f'--shape takes one or two values, got {list(values)}.')
    return (values[0], values[-1])


def run_tool(main: Callable[[], object]) -> None:
    """Run a tool's ``main``; end a user error with one line on stderr
    (``<tool>: error: <message>``) and exit code 1, unless ``--debug``."""
    try:
        main()
    except USER_ERRORS as error:
        if DEBUG_FLAG in sys.argv:
            raise
        message = error.args[0] if isinstance(error, KeyError) and \
            error.args else str(error)
        message = ' '.join(str(message).split()) or type(error).__name__
        print(
            f'{osp.basename(sys.argv[0])}: error: {message} (--debug shows '
            'the traceback)',
            file=sys.stderr)
        sys.exit(1)
