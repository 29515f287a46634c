"""Keras 3 ``.keras`` and legacy ``.h5`` files -> ModelSpec, read with h5py and the JSON config (no TensorFlow,
no Keras needed).

Supported: Sequential models, functional chains, and functional graphs (branches, Concatenate / Add / Multiply /
Subtract / Maximum / Minimum merges, several inputs and outputs; a layer called more than once is refused by
name), of InputLayer; Embedding (first: the model then takes token ids; ``mask_zero`` is recorded as metadata
"keras.mask_zero": pass ``lengths=`` for padded batches); LSTM, GRU (reset_after True and False), SimpleRNN,
Bidirectional (merge_mode concat, sum, mul or ave); Conv1D, SeparableConv1D, MaxPooling1D / AveragePooling1D
along time (channels_last; "same" padding with stride 1 only, as TensorFlow's amount otherwise depends on the
length); GlobalAverage/MaxPooling1D (a CumulativePool: Keras's output is run()'s last frame);
BatchNormalization, LayerNormalization, UnitNormalization; Dense; TimeDistributed of any of these per-timestep
layers; Activation and the ReLU / LeakyReLU / ELU / PReLU layers; Dropout-type layers (no-ops at inference);
ZeroPadding1D (folded into a 'valid' convolution right after it, else a one-tap depthwise convolution that shifts
time) and Cropping1D (the same, with the cropped frames dropped); Masking (see below). In Sequential models and
chains, (batch, time, frequency, channels) inputs too: Conv2D, Max/AveragePooling2D, BatchNormalization over the
channels and activations on (channels, frequency) frames, then the Reshape (or TimeDistributed(Flatten)) that joins
each frame into features.
Anything else is refused, all such layers named at once.

Layouts (Keras -> engine canonical, PyTorch's; written once, here):
* LSTM   kernel (I, 4H), recurrent_kernel (H, 4H), gates i,f,c,o = our i,f,g,o: transpose only; the one
         bias (4H,) becomes bias_ih, bias_hh = 0.
* GRU    gates z,r,h -> our r,z,n: block permutation [1, 0, 2] on the 3H axis, then transpose.
         reset_after=True: bias (2, 3H) = [input bias; recurrent bias] -> bias_ih, bias_hh, and
         linear_before_reset=1. reset_after=False: bias (3H,) -> bias_ih, linear_before_reset=0.
* SimpleRNN, Dense  kernel (in, out) -> weight (out, in): transpose.
* activation / recurrent_activation: LSTM (f, g, h) = (recurrent_activation, activation, activation),
  GRU (f, g) = (recurrent_activation, activation), SimpleRNN (f,) = (activation,). Keras 3's
  hard_sigmoid is relu6(x + 3) / 6, i.e. ONNX HardSigmoid with alpha 1/6, beta 1/2 (Keras 2's was
  alpha 0.2): the file's keras_version decides.

What a Keras model outputs that a ModelSpec run does not express as such is recorded in
``spec.metadata["keras.output"]``: "sequence" (every step: Model.run's output), "last" (return_sequences
=False: Keras returns Model.run's last step), "first" (a go_backwards layer without return_sequences:
its final state is at the first step of Model.run's output). Masking is Keras's: the model becomes a graph
whose recurrent layers read the mask (engine's Masking node), so masked timesteps leave their state alone.

Where weights live: in ``.keras`` (a zip of config.json, metadata.json, model.weights.h5) under
``layers/<snake_case class name>[_<n>]/...`` counted per class in layer order (Keras's saving_lib
naming, not the layer names); in ``.h5`` under ``model_weights/<layer name>`` in the order its
``weight_names`` attribute lists.
"""

import io
import contextvars
import json
import os
import re
import zipfile

import numpy as np

from engine import (GRU, LSTM, RNN, Activation, Add, BatchNorm, Concat, CumulativePool, Dense, Embedding, Input,
                    Flatten, L2Norm, LayerNorm, Masking, Max, Min, ModelSpec, Mul, Node, Pool, PReLU, Slice, Sub,
                    TemporalConv1d, TemporalConv2d, TemporalPool, Transpose)
from engine.layers import kind_of
from engine.errors import FormatError, SpecError

from .dtypes import arrays_dtype

NO_OPS = {"Dropout", "SpatialDropout1D", "GaussianNoise", "GaussianDropout", "AlphaDropout", "ActivityRegularization"}
RECURRENT = {"LSTM", "GRU", "SimpleRNN"}
# Keras 2's cuDNN layers: an LSTM / GRU with fixed activations (tanh, sigmoid) and cuDNN's biases: an input and a
# recurrent bias for every gate ((8H,) for an LSTM, (6H,) for a GRU, in Keras's gate order), and the GRU's reset
# gate applied after the recurrent product (reset_after, the engine's linear_before_reset)
CUDNN = {"CuDNNLSTM": "LSTM", "CuDNNGRU": "GRU"}


def _uncudnn(layer):
    """A CuDNNLSTM / CuDNNGRU layer config as the LSTM / GRU it computes (other layers unchanged)."""
    cls_name = layer.get("class_name")
    if cls_name == "Bidirectional":
        cfg = dict(layer["config"])
        for key in ("layer", "backward_layer"):
            if cfg.get(key):
                cfg[key] = _uncudnn(cfg[key])
        return dict(layer, config=cfg)
    if cls_name not in CUDNN:
        return layer
    cfg = dict(layer.get("config", {}), activation="tanh", recurrent_activation="sigmoid", use_bias=True,
               reset_after=True, cudnn=True)
    return dict(layer, class_name=CUDNN[cls_name], config=cfg)
MAX_CONFIG = 64 << 20
HINT = (" (a layer class of the user's own, or another rnnjit does not know, can be said: engine.load(path, "
        "custom_layers={'ClassName': <engine layer, or None when it does nothing at inference>}))")


def _snake(name):
    """keras.src.utils.naming.to_snake_case."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _activation(value, keras_major, where, *, in_cell):
    """A Keras activation (a name or a serialized function) -> engine Activation, or None for linear."""
    if isinstance(value, dict):  # {"module": "keras.activations", "class_name": "function", "config": "tanh"}
        value = value.get("config", value.get("class_name"))
        if isinstance(value, dict):
            value = value.get("name")
    if value in (None, "linear"):
        return Activation("affine", 1.0, 0.0) if in_cell else None
    if not isinstance(value, str):
        raise FormatError(f"{where}: activation {value!r:.60} is not a known Keras activation")
    if value == "hard_sigmoid":
        return Activation("hard_sigmoid", 1.0 / 6.0 if keras_major >= 3 else 0.2, 0.5)
    if value == "leaky_relu":
        return Activation("leaky_relu", 0.2)  # Keras 3's default negative_slope
    simple = {"tanh": "tanh", "sigmoid": "sigmoid", "relu": "relu", "elu": "elu", "selu": "selu",
              "softplus": "softplus", "softsign": "softsign", "softmax": "softmax", "log_softmax": "log_softmax"}
    if value not in simple or (in_cell and value in ("softmax", "log_softmax", "selu")):
        raise FormatError(f"{where}: activation {value!r} is not supported"
                          f"{' inside a recurrent cell' if in_cell else ''} (supported: "
                          f"{', '.join(sorted(simple) + ['hard_sigmoid', 'leaky_relu', 'linear'])})")
    return Activation(simple[value])


# ---------------------------------------------------------------------------------------------------
# Reading the file
# ---------------------------------------------------------------------------------------------------

class _Weights:
    """Weight lookup for one file: ``get(layer_config, path_in_keras_file, index)``."""

    def __init__(self, h5, legacy, source):
        self.h5, self.legacy, self.source = h5, legacy, source
        self.counters = {}
        self.paths = {}

    def assign_paths(self, layers):
        """Keras's saving_lib names each layer in the weights file by class, counted in layer order."""
        for layer in layers:
            base = _snake(layer["class_name"])
            n = self.counters.get(base)
            self.counters[base] = 0 if n is None else n + 1
            self.paths[layer["config"]["name"]] = base if n is None else f"{base}_{n + 1}"

    def arrays(self, layer, sub, count):
        """``count`` arrays of a layer (kernel, recurrent_kernel, bias order); ``sub`` is the inner path."""
        name = layer["config"]["name"]
        try:
            if self.legacy:
                group = self.h5["model_weights"][name]
                names = [n.decode() if isinstance(n, bytes) else str(n) for n in group.attrs["weight_names"]]
                start = {"": 0, "forward_layer": 0, "backward_layer": count}.get(sub, 0)
                names = names[start:start + count]
                return [self._read(group[n], f"{name}/{n}") for n in names]
            group = self.h5["layers"][self.paths[name]]
            for part in (sub.split("/") if sub else []):
                group = group[part]
            return [self._read(group["vars"][str(i)], f"{name}/{sub}/vars/{i}") for i in range(count)
                    if str(i) in group["vars"]]
        except KeyError as exc:
            raise FormatError(f"{self.source}: weights of layer {name!r} not found ({exc})") from None

    def _read(self, dataset, what):
        if not hasattr(dataset, "shape") or dataset.dtype.kind not in "fiu":
            raise FormatError(f"{self.source}: {what} is not a numeric array")
        if int(np.prod(dataset.shape)) > (1 << 31):
            raise FormatError(f"{self.source}: {what} has shape {dataset.shape}, too large")
        return np.asarray(dataset[()], dtype=np.float64 if dataset.dtype == np.float64 else np.float32)


def _open(path):
    """(config dict, keras major version, h5py File, legacy?, things to close)."""
    import h5py

    path = os.fspath(path)
    if zipfile.is_zipfile(path):
        try:
            zf = zipfile.ZipFile(path)
            names = set(zf.namelist())
            if "config.json" not in names or "model.weights.h5" not in names:
                raise FormatError(f"{path}: a .keras archive needs config.json and model.weights.h5, found "
                                  f"{sorted(names)[:10]}")
            for entry in ("config.json", "metadata.json", "model.weights.h5"):
                if entry in names and zf.getinfo(entry).file_size > (4 << 30):
                    raise FormatError(f"{path}: {entry} is implausibly large")
            config = json.loads(zf.read("config.json"))
            meta = json.loads(zf.read("metadata.json")) if "metadata.json" in names else {}
            h5 = h5py.File(io.BytesIO(zf.read("model.weights.h5")), "r")
        except (zipfile.BadZipFile, ValueError, OSError, KeyError) as exc:
            raise FormatError(f"{path}: unreadable .keras archive ({exc})") from None
        version = str(meta.get("keras_version", "3"))
        return config, int(version.split(".")[0] or 3), h5, False
    try:
        h5 = h5py.File(path, "r")
    except OSError as exc:
        raise FormatError(f"{path}: neither a .keras archive nor an HDF5 file ({exc})") from None
    raw = h5.attrs.get("model_config")
    if raw is None:
        h5.close()
        raise FormatError(f"{path}: this HDF5 file has no model_config (weights-only files need the model's "
                          f"architecture too: save the whole model)")
    if "model_weights" not in h5:
        h5.close()
        raise FormatError(f"{path}: this HDF5 file has no model_weights group")
    raw = raw.decode() if isinstance(raw, bytes) else str(raw)
    if len(raw) > MAX_CONFIG:
        raise FormatError(f"{path}: model_config is implausibly large")
    try:
        config = json.loads(raw)
    except ValueError as exc:
        raise FormatError(f"{path}: unreadable model_config ({exc})") from None
    version = h5.attrs.get("keras_version", b"2")
    version = version.decode() if isinstance(version, bytes) else str(version)
    return config, int(version.split(".")[0] or 2), h5, True


def _chain(config, source):
    """The model's layers in data-flow order when it is a chain (each layer fed by the one before), else None."""
    cls = config.get("class_name")
    cfg = config.get("config", {})
    if cls not in ("Sequential", "Functional", "Model"):
        raise FormatError(f"{source}: the top level is a {cls!r}; expected a Sequential or functional Model")
    layers = cfg.get("layers") if isinstance(cfg, dict) else None
    if not isinstance(layers, list) or not layers:
        raise FormatError(f"{source}: the model config lists no layers")
    if cls == "Sequential":
        return layers
    prev = None
    for layer in layers:
        inbound = _inbound_names(layer.get("inbound_nodes", []))
        if layer.get("class_name") == "InputLayer":
            if prev is not None:
                return None   # several inputs: a graph
        elif inbound != [prev] or len(layer.get("inbound_nodes", [])) > 1:
            return None       # a branch, a merge or a shared layer: a graph
        prev = layer["config"]["name"]
    if _inbound_names([cfg.get("output_layers", [])]) not in ([prev], []):
        return None
    return layers


def _inbound_names(nodes):
    names = []

    def walk(obj):
        if isinstance(obj, dict):
            if "keras_history" in obj.get("config", {}):
                names.append(obj["config"]["keras_history"][0])
                return
            for v in obj.values():
                walk(v)
        elif isinstance(obj, list):
            if len(obj) >= 3 and isinstance(obj[0], str) and isinstance(obj[1], int):  # Keras 2: [name, i, j, {}]
                names.append(obj[0])
                return
            for v in obj:
                walk(v)

    walk(nodes)
    return names


# ---------------------------------------------------------------------------------------------------
# Layer translation
# ---------------------------------------------------------------------------------------------------

def _gru_zrh_to_rzn(a, H, axis):
    """Keras GRU gate blocks z, r, h -> canonical r, z, n along ``axis``."""
    z, r, h = np.split(a, [H, 2 * H], axis=axis)
    return np.concatenate([r, z, h], axis=axis)


def _recurrent_weights(cls_name, cfg, arrays, where):
    """Keras (kernel, recurrent_kernel, bias) of one direction -> canonical weights dict."""
    H = int(cfg["units"])
    if len(arrays) < 2:
        raise FormatError(f"{where}: expected kernel and recurrent_kernel, found {len(arrays)} arrays")
    kernel, recurrent = arrays[0], arrays[1]
    bias = arrays[2] if len(arrays) > 2 and cfg.get("use_bias", True) else None
    G = {"LSTM": 4, "GRU": 3, "SimpleRNN": 1}[cls_name]
    if kernel.ndim != 2 or kernel.shape[1] != G * H or recurrent.shape != (H, G * H):
        raise FormatError(f"{where}: kernel {kernel.shape} / recurrent_kernel {recurrent.shape} do not fit "
                          f"{cls_name}(units={H}): expected (I, {G * H}) and ({H}, {G * H})")
    if cls_name == "GRU":
        # z,r,h -> r,z,n on the gate axis (last), then (I, 3H) -> (3H, I)
        w = {"weight_ih": _gru_zrh_to_rzn(kernel, H, 1).T, "weight_hh": _gru_zrh_to_rzn(recurrent, H, 1).T}
        if bias is not None:
            if cfg.get("cudnn") and bias.size == 6 * H:
                bias = bias.reshape(2, 3 * H)          # (6H,): input biases, then recurrent
            if cfg.get("reset_after", True):
                if bias.shape != (2, 3 * H):
                    raise FormatError(f"{where}: reset_after GRU bias must be (2, {3 * H}), got {bias.shape}")
                w["bias_ih"] = _gru_zrh_to_rzn(bias[0], H, 0)     # input bias
                w["bias_hh"] = _gru_zrh_to_rzn(bias[1], H, 0)     # recurrent bias (kept apart: lbr=1)
            else:
                w["bias_ih"] = _gru_zrh_to_rzn(bias.reshape(-1), H, 0)
        return w
    # LSTM (i,f,c,o = ours) and SimpleRNN: (I, G*H) -> (G*H, I)
    w = {"weight_ih": kernel.T, "weight_hh": recurrent.T}
    if bias is not None and cfg.get("cudnn") and cls_name == "LSTM":
        if bias.size != 8 * H:
            raise FormatError(f"{where}: a CuDNNLSTM bias has {8 * H} values (input and recurrent), got {bias.shape}")
        w["bias_ih"], w["bias_hh"] = bias.reshape(-1)[:4 * H], bias.reshape(-1)[4 * H:]
    elif bias is not None:
        w["bias_ih"] = bias.reshape(-1)
    return w


class _Unsupported(Exception):
    """A layer class the converter does not translate."""


# custom_layers= of the conversion under way: class name -> what the user says a layer of that class is
_CUSTOM = contextvars.ContextVar("custom_layers", default=None)


def _custom(value, cfg, where):
    """A user's answer for a custom layer: an engine layer, a list of them, None (the layer does nothing at
    inference), or a function of the layer's config returning one of those."""
    if callable(value) and not hasattr(value, "to_config"):
        value = value(cfg)
    layers = [] if value is None else list(value) if isinstance(value, (list, tuple)) else [value]
    for layer in layers:
        if not hasattr(layer, "to_config"):
            raise FormatError(f"{where}: custom_layers gives {type(layer).__name__}, not an engine layer")
    return layers


def _translate(layer, weights, keras_major, size, meta, where, first):
    """One Keras layer as engine layers (in order; a ``_Mask`` where Masking stands), or [] for a no-op.
    ``size``: the width of its input frames; ``first``: nothing precedes it but the input."""
    layer = _uncudnn(layer)
    cls_name, cfg = layer.get("class_name"), layer.get("config", {})
    custom = _CUSTOM.get() or {}
    if cls_name in custom:
        meta.setdefault("keras.custom_layers", "")
        meta["keras.custom_layers"] = ", ".join(sorted(set(filter(None, meta["keras.custom_layers"].split(", ")))
                                                       | {cls_name}))
        return _custom(custom[cls_name], cfg, where)
    if isinstance(size, tuple):    # a (channels, frequency) frame: Conv2D stacks before the recurrent part
        out = _translate_2d(layer, weights, keras_major, size, where)
        if out is not None:
            return out
    if cls_name in RECURRENT or cls_name == "Bidirectional":
        return _convert_recurrent(layer, weights, keras_major, size, meta, where)
    if cls_name == "Dense" or (cls_name == "TimeDistributed" and cfg["layer"]["class_name"] == "Dense"):
        return _convert_dense(layer, weights, keras_major, where)
    if cls_name == "Activation":
        act = _activation(cfg.get("activation"), keras_major, where, in_cell=False)
        return [act] if act is not None else []
    if cls_name in NO_OPS:
        return []
    if cls_name == "Masking":
        return [_Mask(float(cfg.get("mask_value", 0.0)))]
    if cls_name == "BatchNormalization":
        return [_convert_batchnorm(layer, weights, size, where)]
    if cls_name == "UnitNormalization":   # x / max(||x||, 1e-12) over the features, as Keras's ops.normalize
        if cfg.get("axis", -1) not in (-1, 2, [-1], [2]):
            raise FormatError(f"{where}: axis={cfg.get('axis')!r}; only the feature axis (-1) is supported")
        return [L2Norm(-1, 1e-12, name=cfg.get("name"))]
    if cls_name in ("ReLU", "LeakyReLU", "ELU"):
        return [_activation_layer(cls_name, cfg, where)]
    if cls_name == "PReLU":
        (alpha,) = weights.arrays(layer, "", 1) or [None]
        if alpha is None or alpha.size != (size or 0) and alpha.size != 1:
            raise FormatError(f"{where}: alpha of shape {None if alpha is None else alpha.shape}: one slope "
                              f"per feature ({size}) or one for all is supported")
        return [PReLU(alpha.reshape(-1), name=cfg.get("name"))]
    if cls_name == "Conv1D":
        return _convert_conv1d(layer, weights, keras_major, where)
    if cls_name == "SeparableConv1D":
        return _convert_separable1d(layer, weights, keras_major, where)
    if cls_name in ("MaxPooling1D", "AveragePooling1D"):
        return [_convert_pool1d(layer, where)]
    if cls_name in ("GlobalAveragePooling1D", "GlobalMaxPooling1D"):
        if cfg.get("keepdims"):
            raise FormatError(f"{where}: keepdims=True is not supported")
        meta["keras.output"] = "last"   # the pool of the whole sequence is the stream's output after its last frame
        return [CumulativePool("mean" if cls_name == "GlobalAveragePooling1D" else "max", name=cfg.get("name"))]
    if cls_name == "Flatten":
        raise FormatError(f"{where}: Flatten joins the time axis into the features (a model of one fixed-length "
                          f"window, not of a sequence); rnnjit runs models over time")
    if cls_name == "Embedding":
        if not first:
            raise FormatError(f"{where}: an Embedding reads token ids, so only a model's first layer can be one")
        if cfg.get("mask_zero"):
            meta["keras.mask_zero"] = "true"
        return [_convert_embedding(layer, weights, where)]
    if cls_name in ("ZeroPadding1D", "Cropping1D"):
        return [_time_shift(cls_name, cfg, size, where)]
    if cls_name == "LayerNormalization":
        return [_convert_layernorm(layer, weights, size, where)]
    if cls_name == "TimeDistributed":
        inner = cfg.get("layer") or {}
        if inner.get("class_name") not in _PER_TIMESTEP:
            raise FormatError(f"{where}: TimeDistributed({inner.get('class_name')}) needs frames of more than one "
                              f"axis; rnnjit applies {', '.join(sorted(_PER_TIMESTEP))} per timestep")
        return _translate(inner, _Inner(weights, layer), keras_major, size, meta,
                          f"{where} (inside TimeDistributed)", first=False)
    raise _Unsupported()


def _translate_2d(layer, weights, keras_major, shape, where):
    """A layer over (batch, time, frequency, channels) data, whose frames rnnjit holds as (channels, frequency)
    (torch's layout, the one its convolution kinds take): Conv2D, Max/AveragePooling2D, BatchNormalization over
    the channels, and the Reshape / TimeDistributed(Flatten) that joins frequency and channels into features (in
    Keras's order: frequency-major). None for a layer that does not care about the frame's shape."""
    cls_name, cfg = layer.get("class_name"), layer.get("config", {})
    C, F = shape
    if cfg.get("data_format", "channels_last") not in ("channels_last", None):
        raise FormatError(f"{where}: data_format={cfg.get('data_format')!r}; only channels_last is supported")
    if cls_name == "Conv2D":
        kt, kf = _pair(cfg["kernel_size"], "kernel_size", where)
        st, sf = _pair(cfg.get("strides", 1), "strides", where)
        dt, df = _pair(cfg.get("dilation_rate", 1), "dilation_rate", where)
        groups = int(cfg.get("groups", 1))
        n = 2 if cfg.get("use_bias", True) else 1
        arrays = weights.arrays(layer, "", n)
        if not arrays or arrays[0].shape[:3] != (kt, kf, C // groups):
            raise FormatError(f"{where}: kernel of shape {arrays[0].shape if arrays else None} does not fit "
                              f"kernel_size ({kt}, {kf}) over {C} channels")
        pad_t = _time_padding(cfg.get("padding", "valid"), dt * (kt - 1), st, where)
        pad_f = (0, 0)
        if cfg.get("padding", "valid") == "same":   # TensorFlow's split; the frequency axis has a known length
            total = max((-(-F // sf) - 1) * sf + df * (kf - 1) + 1 - F, 0)
            pad_f = (total // 2, total - total // 2)
        w = arrays[0].transpose(3, 2, 0, 1)          # (Kt, Kf, C_in / g, C_out) -> (C_out, C_in / g, Kt, Kf)
        out = [TemporalConv2d(w, arrays[1] if n == 2 else None, stride=(st, sf), padding=(pad_t, pad_f),
                              dilation=(dt, df), groups=groups, name=cfg.get("name"))]
        act = _activation(cfg.get("activation"), keras_major, where, in_cell=False)
        return out + ([act] if act is not None else [])
    if cls_name in ("MaxPooling2D", "AveragePooling2D"):
        kt, kf = _pair(cfg.get("pool_size", 2), "pool_size", where)
        st, sf = _pair(cfg.get("strides") or (kt, kf), "strides", where)
        if cfg.get("padding", "valid") != "valid":
            raise FormatError(f"{where}: padding={cfg.get('padding')!r}; only 'valid' pooling over time and "
                              f"frequency is supported")
        mode = "max" if cls_name == "MaxPooling2D" else "avg"
        # a window over (time, frequency) is a window over time of windows over frequency (max of maxes; the mean
        # of equal-sized means)
        out = [TemporalPool(mode, kt, st, name=cfg.get("name"))] if (kt, st) != (1, 1) else []
        if (kf, sf) != (1, 1):
            out.append(Pool(mode, [kf], [sf], [[0, 0]], name=f"{cfg.get('name')}.frequency"))
        return out
    if cls_name == "BatchNormalization":
        if cfg.get("axis", -1) not in (-1, 3, [-1], [3]):
            raise FormatError(f"{where}: axis={cfg.get('axis')!r}; only the channels (-1) are supported")
        return [_convert_batchnorm(dict(layer, config=dict(cfg, axis=-1)), weights, C, where)]
    flatten = cls_name == "Reshape" or (cls_name == "TimeDistributed" and
                                        (cfg.get("layer") or {}).get("class_name") == "Flatten")
    if flatten:
        target = list(cfg.get("target_shape", [None, F * C])) if cls_name == "Reshape" else [None, F * C]
        if len(target) != 2 or target[-1] not in (F * C, -1):
            raise FormatError(f"{where}: target_shape {target} does not join each frame's {F} x {C} values into "
                              f"one axis of features (the time axis first)")
        return [Transpose([1, 0], name=f"{cfg.get('name')}.channels_last"), Flatten(0, -1, name=cfg.get("name"))]
    if cls_name in ("SpatialDropout2D",) or cls_name in NO_OPS or cls_name in ("Activation", "ReLU", "LeakyReLU",
                                                                               "ELU"):
        return None
    what = f"TimeDistributed({(cfg.get('layer') or {}).get('class_name')})" if cls_name == "TimeDistributed" \
        else cls_name
    raise FormatError(f"{where}: {what} over frames of (frequency, channels); rnnjit converts Conv2D, 2-D pooling, "
                      f"BatchNormalization, activations and the Reshape that flattens each frame there")


def _pair(value, what, where):
    """Keras's 2-D sizes: an int or a pair of them, as (time, frequency)."""
    v = [value, value] if isinstance(value, int) and not isinstance(value, bool) else list(value)
    if len(v) != 2 or not all(isinstance(x, int) and not isinstance(x, bool) and x >= 1 for x in v):
        raise FormatError(f"{where}: {what} must be a positive int or a pair of them, got {value!r}")
    return v[0], v[1]


# what TimeDistributed may wrap: layers that already act on each timestep's features alone
_PER_TIMESTEP = {"Dense", "Activation", "ReLU", "LeakyReLU", "ELU", "PReLU", "BatchNormalization",
                 "LayerNormalization", "UnitNormalization"} | NO_OPS


class _Inner:
    """The weights of the layer a TimeDistributed wraps: under the wrapper's own, at ``layer``."""

    def __init__(self, weights, outer):
        self.weights, self.outer = weights, outer

    def arrays(self, layer, sub, count):
        return self.weights.arrays(self.outer, "layer" + (f"/{sub}" if sub else ""), count)


def _time_shift(cls_name, cfg, size, where):
    """ZeroPadding1D((l, r)) and Cropping1D((a, b)) along time, as a depthwise TemporalConv1d that picks one tap:
    padding is taps [1, 0 x l] over l frames of left padding and l + r of right (output t is input t - l: l zeros
    first; the last l + r frames come from the padded end, so run gives them and a stream l frames late); cropping
    is taps [0 x a, 1, 0 x b] with no padding (output t is input t + a, the sequence a + b shorter: a stream gives
    each frame once the b frames after it are in)."""
    value = cfg.get("padding" if cls_name == "ZeroPadding1D" else "cropping", 1)
    pair = (value, value) if isinstance(value, int) else tuple(value) if isinstance(value, (list, tuple)) else ()
    if len(pair) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 1 << 16
                                 for v in pair):
        raise FormatError(f"{where}: {value!r} is not an int or a (start, end) pair of them")
    if not size:
        raise FormatError(f"{where}: the width of its input is not known")
    a, b = pair
    taps = np.zeros((size, 1, a + b + 1) if cls_name == "Cropping1D" else (size, 1, a + 1))
    taps[:, 0, a if cls_name == "Cropping1D" else 0] = 1.0
    padding = (0, 0) if cls_name == "Cropping1D" else (a, a + b)
    return TemporalConv1d(taps, None, groups=size, padding=padding, name=cfg.get("name"))


def _convert_layernorm(layer, weights, size, where):
    """LayerNormalization over the features: gamma (if scale), beta (if center), epsilon."""
    cfg = layer["config"]
    axis = cfg.get("axis", -1)
    if axis not in (-1, 2, [-1], [2]) or cfg.get("rms_scaling"):
        raise FormatError(f"{where}: axis={axis!r}, rms_scaling={cfg.get('rms_scaling')!r}; only the feature axis "
                          f"(-1) without rms_scaling is supported")
    scale, center = cfg.get("scale", True), cfg.get("center", True)
    arrays = weights.arrays(layer, "", int(scale) + int(center))
    if len(arrays) != int(scale) + int(center) or any(a.shape != (size,) for a in arrays):
        raise FormatError(f"{where}: expected gamma and beta of {size}, got {[a.shape for a in arrays]}")
    gamma = arrays.pop(0) if scale else None
    beta = arrays.pop(0) if center else None
    return LayerNorm((size,), gamma, beta, float(cfg.get("epsilon", 1e-3)), name=cfg.get("name"))


def _fold_zero_padding(layers):
    """ZeroPadding1D((left, right)) right before a Conv1D / SeparableConv1D with padding 'valid' is that
    convolution's own padding (left up to its span: a causal convolution, the usual reason for the pair); the
    pair becomes the one convolution with padding (left, right)."""
    out, i = [], 0
    while i < len(layers):
        layer, nxt = layers[i], layers[i + 1] if i + 1 < len(layers) else None
        if layer.get("class_name") == "ZeroPadding1D" and nxt is not None and \
                nxt.get("class_name") in ("Conv1D", "SeparableConv1D") and \
                nxt.get("config", {}).get("padding", "valid") == "valid":
            pad = layer.get("config", {}).get("padding", 1)
            pad = (pad, pad) if isinstance(pad, int) else tuple(pad)
            cfg = nxt["config"]
            try:
                span = (_one(cfg["kernel_size"], "", "") - 1) * _one(cfg.get("dilation_rate", 1), "", "")
            except (FormatError, KeyError):
                span = -1
            if len(pad) == 2 and all(isinstance(p, int) and p >= 0 for p in pad) and pad[0] <= span:
                out.append(dict(nxt, config=dict(cfg, padding=list(pad))))
                i += 2
                continue
        out.append(layer)
        i += 1
    return out


def _fold_graph_zero_padding(cfg):
    """_fold_zero_padding in a functional graph: a ZeroPadding1D read only by a 'valid' convolution (and not an
    output) becomes that convolution's padding. Returns (the padding layers' names -> the edge they read, the
    convolutions' names -> their configs with the padding)."""
    layers = cfg["layers"]
    consumers = {}
    for layer in layers:
        for edge in _inbound_names(layer.get("inbound_nodes", [])):
            consumers.setdefault(edge, []).append(layer)
    outputs = set(_inbound_names(cfg.get("output_layers", [])))
    alias, folded = {}, {}
    for layer in layers:
        name = layer.get("config", {}).get("name")
        ins = _inbound_names(layer.get("inbound_nodes", []))
        if layer.get("class_name") != "ZeroPadding1D" or name in outputs or len(consumers.get(name, [])) != 1 \
                or len(ins) != 1:
            continue
        conv = consumers[name][0]
        pair = _fold_zero_padding([layer, conv])
        if len(pair) == 1 and len(_inbound_names(conv.get("inbound_nodes", []))) == 1:
            alias[name] = ins[0]
            folded[conv["config"]["name"]] = pair[0]
    return alias, folded


def _shape_after(spec_layers, shape, where):
    """The frame shape after ``spec_layers`` (engine layers) given ``shape`` before them; a 1-D frame as its width."""
    for layer in spec_layers:
        shape, _ = kind_of(layer).infer(layer, [("in", tuple(shape), "float")], where)
    return shape if len(shape) > 1 else shape[0]


def _width(spec_layers, size):
    """The width of the frames after ``spec_layers`` given ``size`` before them."""
    for layer in spec_layers:
        if isinstance(layer, Embedding):
            size = layer.weight.shape[1]
        elif hasattr(layer, "output_size"):
            size = layer.output_size(size) or size
    return size


def _convert(config, keras_major, weights, source):
    layers = _chain(config, source)
    if layers is None:
        return _convert_graph(config, keras_major, weights, source)
    weights.assign_paths(layers)
    layers = _fold_zero_padding(layers)
    spec_layers, refused, meta = [], [], {"keras.output": "sequence"}
    size = first_size = None
    for i, layer in enumerate(layers):
        cls_name, cfg = layer.get("class_name"), layer.get("config", {})
        name = cfg.get("name", f"#{i}")
        where = f"{source}: {cls_name} {name!r}"
        if cls_name == "InputLayer" or size is None:
            shape = cfg.get("batch_shape") or cfg.get("batch_input_shape")
            if shape and len(shape) == 4 and all(isinstance(d, int) and d > 0 for d in shape[2:]):
                # (batch, time, frequency, channels): frames held as (channels, frequency)
                first_size = (shape[2], shape[3])
                spec_layers.append(Transpose([1, 0], name="input.channels_first"))
                size = (shape[3], shape[2])
            elif shape:
                size = first_size = shape[-1]
            if cls_name == "InputLayer":
                continue
        if meta["keras.output"] != "sequence" and cls_name in RECURRENT | set(CUDNN) | {"Bidirectional"}:
            refused.append(f"{name} ({cls_name} after a layer with return_sequences=False)")
            continue
        try:
            new = _translate(layer, weights, keras_major, size, meta, where, first=not spec_layers)
        except _Unsupported:
            refused.append(f"{name} ({cls_name})")
            continue
        except FormatError as exc:
            refused.append(f"{name} ({cls_name}: {str(exc).split(': ', 2)[-1]})")
            continue
        spec_layers += new
        size = _width(new, size) if not isinstance(size, tuple) else _shape_after(new, size, where)
    if refused:
        raise FormatError(f"{source}: layers rnnjit cannot run: {'; '.join(refused)}{HINT}")
    if not spec_layers:
        raise FormatError(f"{source}: no layers rnnjit can run")
    meta["source"] = source
    try:
        if isinstance(first_size, tuple):
            nodes = [Node(f"layers.{i}", layer, "input" if i == 0 else f"layers.{i - 1}")
                     for i, layer in enumerate(spec_layers)]
            return ModelSpec.graph([Input("input", first_size)], nodes, [nodes[-1].name], metadata=meta)
        if isinstance(spec_layers[0], Embedding) or any(isinstance(layer, (_Mask, _Merge)) for layer in spec_layers):
            return _graph(spec_layers, first_size, meta)
        return ModelSpec(spec_layers, input_size=None, metadata=meta)
    except SpecError as exc:
        raise FormatError(f"{source}: the layers do not chain into one model ({exc})") from None


MERGES = {"Concatenate": None, "Add": Add, "Multiply": Mul, "Subtract": Sub, "Maximum": Max, "Minimum": Min}


def _convert_graph(config, keras_major, weights, source):
    """A functional model that is not a chain: branches, merges, several inputs and outputs. Each Keras layer
    becomes its nodes, the last named as the layer (its output edge), those before it ``<layer>.<k>``; a layer
    used more than once (shared weights) is refused by name."""
    cfg = config["config"]
    layers = cfg["layers"]
    weights.assign_paths(layers)
    meta, refused, nodes, inputs = {"keras.output": "sequence"}, [], [], []
    width, mask_of, last = {}, {}, set()          # per edge: frame width, its mask edge, "one frame at the end"
    alias, folded = _fold_graph_zero_padding(cfg)
    for layer in layers:
        cls_name, lcfg = layer.get("class_name"), layer.get("config", {})
        name = lcfg.get("name")
        if name in alias:
            continue
        layer = folded.get(name, layer)
        where = f"{source}: {cls_name} {name!r}"
        if len(layer.get("inbound_nodes", [])) > 1:
            refused.append(f"{name} ({cls_name} shared by {len(layer['inbound_nodes'])} calls: a layer used more than "
                           f"once is not supported)")
            continue
        ins = [alias.get(e, e) for e in _inbound_names(layer.get("inbound_nodes", []))]
        if cls_name == "InputLayer":
            shape = lcfg.get("batch_shape") or lcfg.get("batch_input_shape")
            ints = str(lcfg.get("dtype", "float32")).startswith("int")
            if ints and len(shape) == 2:
                inputs.append(Input(name, (), "int64"))
            elif shape and len(shape) == 3 and shape[-1]:
                inputs.append(Input(name, int(shape[-1])))
                width[name] = int(shape[-1])
            else:
                refused.append(f"{name} (an input of shape {shape}: (batch, time, features) or token ids)")
            mask_of[name] = None
            continue
        missing = [e for e in ins if e not in mask_of]
        if missing or not ins:
            refused.append(f"{name} ({cls_name}: reads {missing or 'nothing'}, which could not be converted)")
            mask_of[name] = None
            continue
        mask = mask_of[ins[0]] if all(mask_of[e] == mask_of[ins[0]] for e in ins) else None
        if any(e in last for e in ins) and cls_name in RECURRENT | set(CUDNN) | {"Bidirectional"}:
            refused.append(f"{name} ({cls_name} after a layer that outputs one frame for the whole sequence)")
            mask_of[name] = None
            continue
        try:
            if cls_name in MERGES:
                axis = lcfg.get("axis", -1)
                if cls_name == "Concatenate" and axis not in (-1, 2):
                    raise FormatError(f"{where}: Concatenate along axis {axis}; only the feature axis (-1)")
                layer_ = Concat(-1) if cls_name == "Concatenate" else MERGES[cls_name]()
                parts = [layer_] if cls_name == "Concatenate" or len(ins) == 2 else None
                if parts is None:   # an n-ary elementwise merge: a chain of two-input nodes
                    edge = ins[0]
                    for k, e in enumerate(ins[1:], 1):
                        out = name if k == len(ins) - 1 else f"{name}.{k}"
                        nodes.append(Node(out, MERGES[cls_name](), [edge, e]))
                        edge = out
                else:
                    nodes.append(Node(name, layer_, list(ins)))
                width[name] = sum(width.get(e, 0) for e in ins) if cls_name == "Concatenate" else width.get(ins[0])
                mask_of[name] = mask
                if any(e in last for e in ins):
                    last.add(name)
                continue
            if len(ins) != 1:
                raise FormatError(f"{where}: reads {len(ins)} inputs")
            new = _translate(layer, weights, keras_major, width.get(ins[0]), meta, where,
                             first=any(i.name == ins[0] and i.dtype == "int64" for i in inputs))
        except _Unsupported:
            refused.append(f"{name} ({cls_name})")
            mask_of[name] = None
            continue
        except FormatError as exc:
            refused.append(f"{name} ({cls_name}: {str(exc).split(': ', 2)[-1]})")
            mask_of[name] = None
            continue
        edge, parts = ins[0], [x for x in new]
        if not parts:   # a no-op: the layer's name is its input's edge
            parts = [Activation("identity")]
        for k, part in enumerate(parts):
            out = name if k == len(parts) - 1 else f"{name}.{k}"
            new, mask = _expand(part, edge, out, mask)
            nodes += new
            edge = out
        if isinstance(parts[-1], CumulativePool) or meta.get("keras.output") == "last" or ins[0] in last:
            last.add(name)
        if any(getattr(p, "kind", None) == "recurrent" for p in parts) and meta.get("keras.output") == "last":
            mask = None
        width[name], mask_of[name] = _width(parts, width.get(ins[0])), mask
    outputs = _inbound_names([cfg.get("output_layers", [])])
    if refused:
        raise FormatError(f"{source}: layers rnnjit cannot run: {'; '.join(refused)}{HINT}")
    meta["source"] = source
    if last:
        meta["keras.output"] = "last" if set(outputs) <= last else "mixed"
        meta["keras.last_outputs"] = ",".join(o for o in outputs if o in last)
    try:
        return ModelSpec.graph(inputs, nodes, outputs, metadata=meta)
    except SpecError as exc:
        raise FormatError(f"{source}: the converted graph is not valid ({exc})") from None


class _Merge:
    """A Bidirectional layer's merge other than concat: its two halves (forward, backward; ``H`` each) summed,
    multiplied or averaged; ``_expand`` makes it nodes."""

    def __init__(self, mode, H):
        self.mode, self.H = mode, H

    def output_size(self, size=None):
        return self.H


def _expand(part, edge, out, mask):
    """The nodes of one translated part reading ``edge``, the last one named ``out``, and the mask after it."""
    if isinstance(part, _Mask):
        return [Node(f"{out}.mask", Masking(part.value), edge), Node(out, Mul(), [edge, f"{out}.mask"])], \
            f"{out}.mask"
    if isinstance(part, _Merge):
        fw, bw = Node(f"{out}.forward", Slice(0, 0, part.H), edge), Node(f"{out}.backward", Slice(0, part.H), edge)
        if part.mode == "ave":
            return [fw, bw, Node(f"{out}.sum", Add(), [fw.name, bw.name]),
                    Node(out, Activation("affine", 0.5, 0.0), f"{out}.sum")], mask
        return [fw, bw, Node(out, Add() if part.mode == "sum" else Mul(), [fw.name, bw.name])], mask
    reads_mask = mask is not None and kind_of(part).accepts_mask
    return [Node(out, part, [edge, mask] if reads_mask else edge)], mask


class _Mask:
    """Where a Masking layer stands in the chain (its mask value); ``_graph`` makes it the mask's nodes."""

    def __init__(self, value):
        self.value = value


def _graph(spec_layers, first_size, meta):
    """The chain as a graph: token ids in when it starts with an Embedding; a Masking layer becomes Keras's
    masking: a Masking node (1 keep, 0 skip per timestep), the features multiplied by it (Keras's Masking zeroes
    the masked timesteps), and every recurrent layer after it reading the mask as its second input."""
    if isinstance(spec_layers[0], Embedding):
        inputs, edge = [Input("ids", (), "int64")], "ids"
    else:
        if first_size is None:
            raise SpecError("the model's input width is not stated (no InputLayer or batch_input_shape)")
        inputs, edge = [Input("input", int(first_size))], "input"
    nodes, mask, k = [], None, 0
    for layer in spec_layers:
        if isinstance(layer, _Mask):
            nodes += [Node(f"mask.{k}", Masking(layer.value), edge), Node(f"masked.{k}", Mul(), [edge, f"mask.{k}"])]
            edge, mask = f"masked.{k}", f"mask.{k}"
            continue
        new, mask = _expand(layer, edge, f"layers.{k}", mask)
        nodes += new
        edge, k = f"layers.{k}", k + 1
    return ModelSpec.graph(inputs, nodes, [edge], metadata=meta)


def _convert_batchnorm(layer, weights, size, where):
    """BatchNormalization over the features (axis -1): gamma (if scale), beta (if center), moving mean and
    variance, in that order in the file."""
    cfg = layer["config"]
    axis = cfg.get("axis", -1)
    if axis not in (-1, 2, [-1], [2]):
        raise FormatError(f"{where}: axis={axis!r}; only the feature axis (-1) is supported")
    scale, center = cfg.get("scale", True), cfg.get("center", True)
    arrays = weights.arrays(layer, "", int(scale) + int(center) + 2)
    if len(arrays) != int(scale) + int(center) + 2 or any(a.ndim != 1 for a in arrays):
        raise FormatError(f"{where}: expected gamma, beta, moving mean and variance vectors, got "
                          f"{[a.shape for a in arrays]}")
    gamma = arrays.pop(0) if scale else None
    beta = arrays.pop(0) if center else None
    mean, var = arrays
    return BatchNorm(mean, var, gamma, beta, float(cfg.get("epsilon", 1e-3)), name=cfg.get("name"))


def _activation_layer(cls_name, cfg, where):
    """ReLU (max_value, negative_slope, threshold), LeakyReLU (Keras 3's negative_slope, Keras 2's alpha; 0.3 by
    default in both) and ELU (alpha) layers as Activation nodes."""
    if cls_name == "LeakyReLU":
        return Activation("leaky_relu", float(cfg.get("negative_slope", cfg.get("alpha", 0.3))))
    if cls_name == "ELU":
        return Activation("elu", float(cfg.get("alpha", 1.0)))
    top, slope, threshold = cfg.get("max_value"), float(cfg.get("negative_slope", 0) or 0), float(
        cfg.get("threshold", 0) or 0)
    if threshold != 0 or (slope != 0 and top is not None):
        raise FormatError(f"{where}: ReLU(max_value={top}, negative_slope={slope}, threshold={threshold}) is not "
                          f"supported (a threshold, or a slope with a ceiling)")
    if slope != 0:
        return Activation("leaky_relu", slope)
    return Activation("relu") if top is None else Activation("clip", 0.0, float(top))


def _cell_activations(cls_name, cfg, keras_major, where):
    act = _activation(cfg.get("activation", "tanh"), keras_major, where, in_cell=True)
    if cls_name == "SimpleRNN":
        return [act]
    rec = _activation(cfg.get("recurrent_activation", "sigmoid"), keras_major, where, in_cell=True)
    return [rec, act, act] if cls_name == "LSTM" else [rec, act]


def _make(cls_name, cfg, in_size, weights_list, direction, activations):
    H = int(cfg["units"])
    I = weights_list[0]["weight_ih"].shape[1]
    if cls_name == "LSTM":
        return LSTM(I, H, weights_list, direction=direction, activations=activations)
    if cls_name == "GRU":
        return GRU(I, H, weights_list, direction=direction, activations=activations,
                   linear_before_reset=bool(cfg.get("reset_after", True)))
    return RNN(I, H, weights_list, direction=direction, activations=activations)


def _convert_recurrent(layer, weights, keras_major, size, meta, where):
    cls_name, cfg = layer["class_name"], layer["config"]
    if cls_name == "Bidirectional":
        mode = cfg.get("merge_mode", "concat")
        if mode not in ("concat", "sum", "mul", "ave"):
            raise FormatError(f"{where}: merge_mode {mode!r} is not supported (concat, sum, mul, ave)")
        inner = cfg["layer"]
        backward = cfg.get("backward_layer") or inner
        if inner["class_name"] not in RECURRENT or backward["class_name"] != inner["class_name"]:
            raise FormatError(f"{where}: wraps {inner['class_name']}, expected one of {sorted(RECURRENT)}")
        if not inner["config"].get("return_sequences", False):
            raise FormatError(f"{where}: a Bidirectional layer without return_sequences outputs two different "
                              f"timesteps (forward's last, backward's first); only return_sequences=True is supported")
        if inner["config"].get("go_backwards", False):
            raise FormatError(f"{where}: go_backwards inside Bidirectional is not supported")
        acts = [_cell_activations(inner["class_name"], inner["config"], keras_major, where),
                _cell_activations(backward["class_name"], backward["config"], keras_major, where)]
        n = 3 if inner["config"].get("use_bias", True) else 2
        if weights.legacy:
            fw, bw = weights.arrays(layer, "forward_layer", n), weights.arrays(layer, "backward_layer", n)
        else:
            fw, bw = weights.arrays(layer, "forward_layer/cell", n), weights.arrays(layer, "backward_layer/cell", n)
        ws = [_recurrent_weights(inner["class_name"], inner["config"], fw, where),
              _recurrent_weights(backward["class_name"], backward["config"], bw, where)]
        rnn = _make(inner["class_name"], inner["config"], size, ws, "bidirectional", acts)
        return [rnn] if mode == "concat" else [rnn, _Merge(mode, rnn.output_size(size) // 2)]
    n = 3 if cfg.get("use_bias", True) else 2
    arrays = weights.arrays(layer, "" if weights.legacy else "cell", n)
    w = _recurrent_weights(cls_name, cfg, arrays, where)
    backwards = bool(cfg.get("go_backwards", False))
    if not cfg.get("return_sequences", False):
        meta["keras.output"] = "first" if backwards else "last"
    elif backwards:
        raise FormatError(f"{where}: go_backwards with return_sequences=True returns the outputs in reversed "
                          f"time order, which a ModelSpec does not express")
    if cfg.get("stateful"):
        meta["keras.stateful"] = "true"
    return [_make(cls_name, cfg, size, [w], "reverse" if backwards else "forward",
                  [_cell_activations(cls_name, cfg, keras_major, where)])]


def _one(value, what, where):
    """Keras's 1-D sizes come as an int or a 1-list."""
    v = value[0] if isinstance(value, (list, tuple)) and len(value) == 1 else value
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise FormatError(f"{where}: {what} must be a positive int, got {value!r}")
    return v


def _time_padding(padding, span, stride, where):
    """Keras's padding along time as (left, right): "valid" none, "causal" the span in front, "same" the span
    split as TensorFlow splits it (the extra frame after), which for a stride above 1 depends on the length."""
    if padding == "valid":
        return (0, 0)
    if isinstance(padding, list) and len(padding) == 2:   # a ZeroPadding1D folded in (_fold_zero_padding)
        return tuple(padding)
    if padding == "causal":
        return (span, 0)
    if padding == "same":
        if stride != 1:
            raise FormatError(f"{where}: padding='same' with strides={stride} pads by an amount that depends on "
                              f"the sequence's length; only stride 1 is supported with it")
        return (span // 2, span - span // 2)
    raise FormatError(f"{where}: padding {padding!r} is not one of 'valid', 'same', 'causal'")


def _conv_sizes(cfg, where):
    """A 1-D convolution layer's (kernel, stride, dilation) along time; channels_last only."""
    if cfg.get("data_format", "channels_last") != "channels_last":
        raise FormatError(f"{where}: data_format={cfg.get('data_format')!r}; only channels_last is supported")
    return (_one(cfg["kernel_size"], "kernel_size", where), _one(cfg.get("strides", 1), "strides", where),
            _one(cfg.get("dilation_rate", 1), "dilation_rate", where))


def _convert_conv1d(layer, weights, keras_major, where):
    """Keras's Conv1D along time (channels_last): kernel (K, C_in / groups, C_out) -> torch's (C_out, C_in /
    groups, K)."""
    cfg = layer["config"]
    K, stride, dilation = _conv_sizes(cfg, where)
    arrays = weights.arrays(layer, "", 2 if cfg.get("use_bias", True) else 1)
    if not arrays or arrays[0].ndim != 3 or arrays[0].shape[0] != K or arrays[0].shape[2] != int(cfg["filters"]):
        raise FormatError(f"{where}: kernel shape {arrays[0].shape if arrays else None} does not fit "
                          f"kernel_size={K}, filters={cfg.get('filters')}")
    padding = _time_padding(cfg.get("padding", "valid"), (K - 1) * dilation, stride, where)
    out = [TemporalConv1d(arrays[0].transpose(2, 1, 0), arrays[1] if len(arrays) > 1 else None, stride=stride,
                          dilation=dilation, groups=int(cfg.get("groups", 1)), padding=padding, name=cfg.get("name"))]
    act = _activation(cfg.get("activation"), keras_major, where, in_cell=False)
    return out + ([act] if act is not None else [])


def _convert_separable1d(layer, weights, keras_major, where):
    """SeparableConv1D: a depthwise convolution along time (depthwise_kernel (K, C_in, multiplier), each input
    channel its own multiplier outputs) then a pointwise one (pointwise_kernel (1, C_in * multiplier, C_out)) with
    the bias, as two TemporalConv1d nodes."""
    cfg = layer["config"]
    K, stride, dilation = _conv_sizes(cfg, where)
    arrays = weights.arrays(layer, "", 3 if cfg.get("use_bias", True) else 2)
    if len(arrays) < 2 or arrays[0].ndim != 3 or arrays[0].shape[0] != K or arrays[1].ndim != 3:
        raise FormatError(f"{where}: kernels of shapes {[a.shape for a in arrays]} do not fit kernel_size={K}")
    depth, point = arrays[0], arrays[1]
    _, cin, mult = depth.shape
    padding = _time_padding(cfg.get("padding", "valid"), (K - 1) * dilation, stride, where)
    # (K, C_in, M) -> torch's depthwise (C_in * M, 1, K), output channel c * M + m reading input channel c
    dw = TemporalConv1d(depth.transpose(1, 2, 0).reshape(cin * mult, 1, K), stride=stride, dilation=dilation,
                        groups=cin, padding=padding, name=f"{cfg.get('name')}.depthwise")
    pw = TemporalConv1d(point[0].T[:, :, None], arrays[2] if len(arrays) > 2 else None, name=cfg.get("name"))
    act = _activation(cfg.get("activation"), keras_major, where, in_cell=False)
    return [dw, pw] + ([act] if act is not None else [])


def _convert_pool1d(layer, where):
    """MaxPooling1D / AveragePooling1D along time (channels_last); "same" averages leave the padding out."""
    cfg = layer["config"]
    if cfg.get("data_format", "channels_last") != "channels_last":
        raise FormatError(f"{where}: data_format={cfg.get('data_format')!r}; only channels_last is supported")
    K = _one(cfg.get("pool_size", 2), "pool_size", where)
    stride = _one(cfg.get("strides") or K, "strides", where)
    padding = _time_padding(cfg.get("padding", "valid"), K - 1, stride, where)
    mode = "max" if layer["class_name"] == "MaxPooling1D" else "avg"
    return TemporalPool(mode, K, stride, padding, count_include_pad=False, name=cfg.get("name"))


def _convert_embedding(layer, weights, where):
    """Keras's Embedding: ``embeddings`` (input_dim, output_dim), our table as it is."""
    cfg = layer["config"]
    (table,) = weights.arrays(layer, "", 1) or [None]
    if table is None or table.ndim != 2 or table.shape != (int(cfg["input_dim"]), int(cfg["output_dim"])):
        raise FormatError(f"{where}: embeddings of shape {None if table is None else table.shape} do not fit "
                          f"input_dim={cfg.get('input_dim')}, output_dim={cfg.get('output_dim')}")
    return Embedding(table, name=cfg.get("name"))


def _convert_dense(layer, weights, keras_major, where):
    cfg = layer["config"]
    inner = layer
    sub = ""
    if layer["class_name"] == "TimeDistributed":
        inner = cfg["layer"]
        sub = "layer"
    icfg = inner["config"]
    n = 2 if icfg.get("use_bias", True) else 1
    arrays = weights.arrays(layer, sub, n)
    if not arrays or arrays[0].ndim != 2 or arrays[0].shape[1] != int(icfg["units"]):
        raise FormatError(f"{where}: kernel shape {arrays[0].shape if arrays else None} does not fit "
                          f"units={icfg['units']}")
    out = [Dense(arrays[0].T, arrays[1] if n == 2 else None, name=icfg.get("name"))]   # (in, out) -> (out, in)
    act = _activation(icfg.get("activation"), keras_major, where, in_cell=False)
    if act is not None:
        out.append(act)
    return out


def from_keras(path, *, dtype=None, custom_layers=None, isolate=True):
    """A ModelSpec from a Keras ``.keras`` or legacy ``.h5`` model file (see the module docstring).

    The HDF5 library parses the file in a child process (``isolate=True``, the default): on malformed files
    it can loop forever or crash, and neither may take the caller's process with it. The child has
    PARSE_TIMEOUT seconds (``RNNJIT_PARSE_TIMEOUT``); a hang or a crash becomes a FormatError.

    ``custom_layers``: {class name: what a layer of that class is}: an engine layer (or a list of them), None
    for a layer that does nothing at inference, or a function of the layer's config returning one of those.
    """
    source = os.fspath(path)
    if not os.path.exists(source):
        raise FileNotFoundError(f"no such model file: {source}")
    if not isolate:
        return _from_keras(source, dtype, custom_layers)
    return _isolated(source, dtype, custom_layers)


def _from_keras(source, dtype, custom_layers=None):
    config, keras_major, h5, legacy = _open(source)
    token = _CUSTOM.set(dict(custom_layers or {}))
    try:
        spec = _convert(config, keras_major, _Weights(h5, legacy, source), source)
    finally:
        _CUSTOM.reset(token)
        h5.close()
    if dtype is None:   # the file's own: its weights are read as float64 only where it stores float64
        dtype = arrays_dtype(a for node in spec.nodes for a in node.layer.to_config()[1].values())
    if dtype != spec.dtype:
        spec = spec.with_dtype(dtype)
    return spec


PARSE_TIMEOUT = 120.0


def _child(conn, source, dtype, custom_layers=None):
    from engine import errors
    from engine.io import spec_to_bytes

    try:
        conn.send(("ok", spec_to_bytes(_from_keras(source, dtype, custom_layers))))
    except errors.RnnjitError as exc:
        conn.send(("error", type(exc).__name__, str(exc)))
    except Exception as exc:  # noqa: BLE001 - anything else the parsers raise on a malformed file
        conn.send(("error", "FormatError", f"{source}: malformed Keras file ({type(exc).__name__}: {exc})"))
    finally:
        conn.close()


def _isolated(source, dtype, custom_layers=None):
    import multiprocessing

    from engine import errors
    from engine.io import load_spec

    timeout = float(os.environ.get("RNNJIT_PARSE_TIMEOUT", PARSE_TIMEOUT))
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(send, source, dtype, custom_layers), daemon=True)
    proc.start()
    send.close()
    try:
        if not recv.poll(timeout):
            raise FormatError(f"{source}: the HDF5 parser did not finish within {timeout:.0f} s; the file is "
                              f"malformed (or set RNNJIT_PARSE_TIMEOUT higher for a huge model)")
        try:
            msg = recv.recv()
        except EOFError:
            proc.join(5)
            raise FormatError(f"{source}: the HDF5 library crashed reading this file (exit code "
                              f"{proc.exitcode}); the file is malformed") from None
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join(5)
        recv.close()
    if msg[0] == "ok":
        return load_spec(msg[1])
    cls = getattr(errors, msg[1], None)
    if not (isinstance(cls, type) and issubclass(cls, errors.RnnjitError)):
        cls = FormatError
    raise cls(msg[2])
