"""The engine's own exception types.

Every error the engine raises on bad input is one of these, so a service can catch ``RnnjitError`` and know
it came from a bad model file or a bad call, not from a bug elsewhere. Each also derives from the builtin a
caller would expect (``ValueError``, ``TypeError``), so ordinary ``except ValueError`` code keeps working.
"""


class RnnjitError(Exception):
    """Base class of every error rnnjit raises on purpose."""


class SpecError(RnnjitError, ValueError):
    """A ModelSpec (or one of its layers) is inconsistent: wrong shapes, unknown names, bad values."""


class FormatError(RnnjitError, ValueError):
    """A model or state file is not what it claims to be: wrong magic, newer version, missing arrays."""


class ShapeError(RnnjitError, ValueError):
    """An input array handed to a model or stream has the wrong rank, size or dtype."""


class StreamingError(RnnjitError, ValueError):
    """The model cannot be stepped one timestep at a time (it needs the future, e.g. a bidirectional layer)."""


class StateError(RnnjitError, ValueError):
    """A state or snapshot does not fit the model or stream it is restored into."""


class UnsafeFileError(FormatError):
    """A model file asks to run code or to reach outside itself (a pickled callable, a path escaping its
    archive). Nothing from it was executed."""
