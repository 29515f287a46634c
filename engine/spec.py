"""ModelSpec: the neutral description of a model that every converter produces and the engine consumes.

A ModelSpec is an ordered list of layers. Weights are held in ONE canonical layout, PyTorch's:

* LSTM gates stacked as **i, f, g, o** (g is the cell candidate, ONNX's "c"); GRU gates as **r, z, n**;
  RNN has one gate.
* per direction: ``weight_ih`` (G*H, I), ``weight_hh`` (G*H, H_out), ``bias_ih`` (G*H,), ``bias_hh`` (G*H,);
  LSTM optionally ``weight_hr`` (H_out, H) (projection, H_out = proj_size) and ``peephole`` (3, H) in
  gate order **i, f, o**.
* a bidirectional layer outputs ``concat(forward, reverse)`` along the feature axis: (.., 2 * H_out).
* GRU keeps ``linear_before_reset`` as a flag: True (1) is PyTorch and Keras ``reset_after=True``;
  False (0) is the ONNX default and Keras ``reset_after=False``.

Gate functions follow the ONNX operators: LSTM ``activations`` are (f, g, h), GRU (f, g), RNN (f), one
tuple per direction. ``clip`` bounds every gate pre-activation to [-clip, clip] (as onnxruntime does,
after peepholes and biases are added). ``input_forget`` couples the gates: f = 1 - i.

The engine never guesses a layout: converters translate into this one (see converters/), and layers
validate shapes on construction, naming the layer and the shapes when they do not fit. Each layer class lives
in its kind's room (engine/layers/) with the rest of what the engine knows of that kind; this module holds the
ModelSpec and re-exports the layer classes.
"""

import numpy as np

from .errors import SpecError
from .layers import KINDS
from .layers.activation import ACTIVATIONS, Activation  # noqa: F401 - re-exported
from .layers.dense import Dense  # noqa: F401 - re-exported
from .layers.gru import GRU  # noqa: F401 - re-exported
from .layers.lstm import LSTM  # noqa: F401 - re-exported
from .layers.normalize import Normalize  # noqa: F401 - re-exported
from .layers.recurrent import DIRECTIONS  # noqa: F401 - re-exported
from .layers.rnn import RNN  # noqa: F401 - re-exported
from .layers.validate import _positive_int

# the native format's "kind" (and, for recurrent layers, "cell") -> the layer class, from the kinds table
LAYER_KINDS = {k.spec_class.kind: k.spec_class for k in KINDS if k.spec_class.kind != "recurrent"}
RECURRENT_CELLS = {k.spec_class.cell: k.spec_class for k in KINDS if k.spec_class.kind == "recurrent"}


def layer_from_config(config, arrays):
    """A layer from its native-format config (``to_config``) and arrays, by its kind (and cell)."""
    kind = config.get("kind")
    if kind == "recurrent":
        cls = RECURRENT_CELLS.get(config.get("cell"))
        if cls is None:
            raise SpecError(f"unknown recurrent cell {config.get('cell')!r}; expected one of {sorted(RECURRENT_CELLS)}")
        return cls.from_config(config, arrays)
    if kind not in LAYER_KINDS:
        raise SpecError(f"unknown layer kind {kind!r}; expected one of {sorted(LAYER_KINDS) + ['recurrent']}")
    return LAYER_KINDS[kind].from_config(config, arrays)


# ----------------------------------------------------------------------------------------------------
# The model description
# ----------------------------------------------------------------------------------------------------

DTYPES = ("float32", "float64")


class ModelSpec:
    """An ordered list of layers, validated as a chain, plus the dtype the model runs in by default.

    ``input_size`` is taken from the first layer that has one (a Normalize, Dense or recurrent layer);
    a model that starts with an activation must say it.
    """

    def __init__(self, layers, input_size=None, dtype="float32", name=None, metadata=None):
        layers = list(layers)
        if not layers:
            raise SpecError("a ModelSpec needs at least one layer")
        for i, layer in enumerate(layers):
            if isinstance(layer, str):
                layers[i] = Activation(layer)
            elif not hasattr(layer, "validate"):
                raise SpecError(f"layer {i}: expected an LSTM, GRU, RNN, Dense, Normalize or Activation, "
                                f"got {type(layer).__name__}")
        if input_size is None:
            input_size = next((layer.input_size for layer in layers if layer.input_size is not None), None)
            if input_size is None:
                raise SpecError("a model of activations only needs input_size")
        self.input_size = _positive_int(input_size, "input_size", "ModelSpec")
        dtype = np.dtype(dtype).name
        if dtype not in DTYPES:
            raise SpecError(f"ModelSpec dtype must be one of {DTYPES}, got {dtype}")
        self.dtype = dtype
        self.name = name
        self.metadata = {str(k): str(v) for k, v in (metadata or {}).items()}
        size = self.input_size
        for i, layer in enumerate(layers):
            size = layer.validate(size, f"layer {i} ({type(layer).__name__})")
        self.layers = tuple(layers)
        self.output_size = size

    @property
    def streamable(self):
        """True when every layer can be stepped one timestep at a time (none reads the future, as a reverse
        or bidirectional RNN does)."""
        from .layers import kind_of

        return not any(kind_of(layer).reads_future(layer) for layer in self.layers)

    def __repr__(self):
        body = "".join(f"\n  ({i}) {layer!r}" for i, layer in enumerate(self.layers))
        return f"ModelSpec(input_size={self.input_size}, output_size={self.output_size}, dtype={self.dtype}){body}"

    def save(self, path):
        """Write the native format (.npz with a JSON header; see engine.io); returns the path written."""
        from .io import save_spec
        return save_spec(self, path)
