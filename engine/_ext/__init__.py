"""The call layer: the compiled Cython ``StepCore`` when it is built, else its pure-Python twin.

``COMPILED`` says which one is in use. The twin is chosen when ``RNNJIT_PUREPYTHON=1`` (for testing
both ways) or when the extension is missing (no C compiler or Cython at install time); the latter is
said once, as a warning, because steps then cost several microseconds more.
"""

import warnings

from .. import config

COMPILED = False
if not config.PURE_PYTHON:
    try:
        from ._stepcore import StepCore

        COMPILED = True
    except ImportError as exc:  # extension not built
        warnings.warn(f"rnnjit: the compiled call layer is not available ({exc}); using the pure-Python "
                      f"twin, which is slower per step. Reinstall with a C compiler and Cython to build it.",
                      RuntimeWarning, stacklevel=2)
if not COMPILED:
    from .twin import StepCore

__all__ = ["StepCore", "COMPILED"]
