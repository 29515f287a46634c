"""The node kinds, one room each, listed in one table.

A room (a module here) holds everything the engine knows of its kind: the ModelSpec class it runs, the packed
layout, its kernels and C entry point, its state slots, whether it reads the future, and how it runs whole
sequences (see base.Kind). Adding a kind is one module here, its kernels under engine/kernels/, and one row
in KINDS.
"""

from . import (activation, conv, dense, elementwise, embedding, frame, framewise, gru, lstm, masking, norm, normalize,
               rnn, temporal_pool)

KINDS = (lstm.KIND, gru.KIND, rnn.KIND, dense.KIND, activation.KIND, normalize.KIND, elementwise.KIND,
         embedding.KIND, conv.KIND, norm.LAYER_NORM, norm.BATCH_NORM, frame.FRAME, frame.CONCAT,
         framewise.FRAME_CONV, framewise.FRAME_CONV_T, framewise.POOL, framewise.PRELU, norm.GROUP_NORM, norm.L2_NORM,
         masking.KIND, temporal_pool.KIND, conv.CONV2D, temporal_pool.CUMULATIVE)
_BY_CLASS = {kind.spec_class: kind for kind in KINDS}


def kind_of(layer):
    """The Kind of a ModelSpec layer."""
    for cls in type(layer).__mro__:   # Add, Mul, ... are Elementwise
        if cls in _BY_CLASS:
            return _BY_CLASS[cls]
    raise TypeError(f"no node kind runs {type(layer).__name__}; the kinds are "
                    f"{', '.join(k.spec_class.__name__ for k in KINDS)}")
