"""The node kinds, one room each, listed in one table.

A room (a module here) holds everything the engine knows of its kind: the ModelSpec class it runs, the packed
layout, its kernels and C entry point, its state slots, whether it reads the future, and how it runs whole
sequences (see base.Kind). Adding a kind is one module here, its kernels under engine/kernels/, and one row
in KINDS.
"""

from . import activation, dense, gru, lstm, normalize, rnn

KINDS = (lstm.KIND, gru.KIND, rnn.KIND, dense.KIND, activation.KIND, normalize.KIND)
_BY_CLASS = {kind.spec_class: kind for kind in KINDS}


def kind_of(layer):
    """The Kind of a ModelSpec layer."""
    try:
        return _BY_CLASS[type(layer)]
    except KeyError:
        raise TypeError(f"no node kind runs {type(layer).__name__}; the kinds are "
                        f"{', '.join(k.spec_class.__name__ for k in KINDS)}") from None


def pack_spec(spec, dtype):
    """Every layer of ``spec`` packed for ``dtype``, in order."""
    packed, size = [], spec.input_size
    for layer in spec.layers:
        p = kind_of(layer).pack(layer, size, dtype)
        packed.append(p)
        size = p.out_size
    return packed
