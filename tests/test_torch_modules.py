"""Whole pickled modules (``torch.save(model)``) and state_dicts with convolutions and norms, read without running
code: each against torch on the same weights, and each refusal naming the module and the reason."""

import io
import pickle
import time
import zipfile

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import engine
from converters.pytorch.reader import PickledObject, load_checkpoint
from tests.tolerances import PARITY_F32, PARITY_F64

RNG = np.random.default_rng(7)


class Tagger(nn.Module):
    """Token ids -> embedding -> bidirectional GRU -> linear: forward() follows registration order."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(30, 8, padding_idx=0)
        self.rnn = nn.GRU(8, 6, num_layers=2, batch_first=True, bidirectional=True)
        self.head = nn.Linear(12, 5)

    def forward(self, ids):
        return self.head(self.rnn(self.emb(ids))[0])


class FrameNet(nn.Module):
    """BeatNet's shape: each frame reshaped to a (2, 16) signal, convolved, normalized, pooled, flattened, then a
    linear layer, an LSTM and a head; forward() calls functions between the modules."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(2, 4, 3, padding=1, dilation=1)
        self.bn = nn.BatchNorm1d(4)
        self.proj = nn.Linear(32, 10)
        self.lstm = nn.LSTM(10, 7, batch_first=True)
        self.norm = nn.LayerNorm(7)
        self.out = nn.Linear(7, 3)

    def forward(self, x):                      # (B, T, 32)
        B, T, _ = x.shape
        y = x.reshape(B * T, 2, 16)
        y = F.max_pool1d(F.relu(self.bn(self.conv(y))), 2).flatten(1)
        y = self.proj(y).reshape(B, T, 10)
        y = self.norm(self.lstm(y)[0])
        return F.softmax(self.out(F.gelu(y)), dim=-1)


FRAME_STEPS = ["reshape(2, 16)", "conv", "bn", "relu", "max_pool1d(2)", "flatten", "proj", "lstm", "norm", "gelu",
               "out", "softmax"]


def _trained(module):
    """Non-trivial running statistics and affine parameters, as after training."""
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.BatchNorm1d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
            if isinstance(m, nn.LayerNorm):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return module.eval()


def _saved(tmp_path, obj, name="model.pt"):
    path = tmp_path / name
    torch.save(obj, path)
    return path


def test_a_pickled_module_in_registration_order_matches_torch_and_says_what_it_assumed(tmp_path):
    torch.manual_seed(0)
    net = Tagger().eval()
    model = engine.load(_saved(tmp_path, net))
    ids = RNG.integers(0, 30, (3, 12))
    with torch.no_grad():
        want = net(torch.from_numpy(ids)).numpy()
    got = model.run(ids)
    np.testing.assert_allclose(got, want, atol=PARITY_F32, rtol=0)
    assumed = model.spec.metadata["torch.assumed"]
    assert assumed == ("Tagger: its forward() is code, which rnnjit does not read; its children are taken in the "
                       "order they were registered: emb, rnn, head")


def test_a_pickled_module_with_functional_steps_matches_torch_run_and_streamed(tmp_path):
    torch.manual_seed(1)
    net = _trained(FrameNet())
    path = _saved(tmp_path, net)
    with pytest.raises(engine.FormatError) as err:   # registration order alone cannot be the data flow here
        engine.load(path)
    assert "layers=[...]" in str(err.value) and "in the order they were registered" in str(err.value)
    model = engine.load(path, layers=FRAME_STEPS)
    X = RNG.standard_normal((2, 9, 32)).astype(np.float32)
    with torch.no_grad():
        want = net(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(model.run(X), want, atol=PARITY_F32, rtol=0)
    stream = model.stream()
    streamed = np.stack([stream.step(x) for x in X[0]])
    np.testing.assert_allclose(streamed, want[0], atol=PARITY_F32, rtol=0)
    assert model.spec.metadata["torch.assumed"] == "the model's steps are the ones given with layers=[...]"


def test_the_same_model_from_its_state_dict_with_steps_matches_torch(tmp_path):
    torch.manual_seed(2)
    net = _trained(FrameNet())
    path = _saved(tmp_path, net.state_dict(), "weights.pt")
    with pytest.raises(engine.FormatError, match=r"'conv' is a Conv1d \(weight \(4, 2, 3\)\) whose stride, padding"):
        engine.load(path)
    steps = [{"conv": "conv(padding=1)", "norm": 'norm(kind="layer_norm")'}.get(s, s) for s in FRAME_STEPS]
    model = engine.load(path, layers=steps)
    X = RNG.standard_normal((2, 9, 32)).astype(np.float32)
    with torch.no_grad():
        want = net(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(model.run(X), want, atol=PARITY_F32, rtol=0)
    assumed = model.spec.metadata["torch.assumed"]
    assert "conv: stride, dilation, groups are not in a state_dict" in assumed
    assert "bn: BatchNorm eps" in assumed


def test_a_state_dict_norm_of_a_1d_weight_is_asked_never_guessed(tmp_path):
    torch.manual_seed(3)
    net = nn.Sequential(nn.Linear(4, 6), nn.LayerNorm(6), nn.GRU(6, 5))
    path = _saved(tmp_path, net.state_dict(), "w.pt")
    with pytest.raises(engine.FormatError, match=r"'1' has a 1-D weight of 6 and a bias: a LayerNorm, GroupNorm"):
        engine.load(path)
    with pytest.raises(engine.FormatError, match=r"'1' has a 1-D weight"):
        engine.load(path, layers=["0", "1", "2"])
    model = engine.load(path, layers=["0", '1(kind="layer_norm")', "2"])
    _trained(net)
    x = RNG.standard_normal((11, 4)).astype(np.float32)
    with torch.no_grad():
        h = net[1](net[0](torch.from_numpy(x)))
        want = net[2](h)[0].numpy()
    model = engine.load(_saved(tmp_path, net.state_dict(), "w2.pt"), layers=["0", '1(kind="layer_norm")', "2"])
    np.testing.assert_allclose(model.run(x), want, atol=PARITY_F32, rtol=0)


def test_a_module_rnnjit_cannot_express_is_named_with_the_way_out(tmp_path):
    net = nn.Sequential(nn.Linear(4, 8), nn.MultiheadAttention(8, 2), nn.GRU(8, 3))
    with pytest.raises(engine.FormatError, match=r"1 \(MultiheadAttention\): rnnjit has no node kind for "
                                                 r"torch.nn.MultiheadAttention; export the model to ONNX"):
        engine.load(_saved(tmp_path, net))


class OwnLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(4))

    def forward(self, x):
        return x * self.scale


class WithOwnLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.own = OwnLayer()
        self.rnn = nn.GRU(4, 3)


def test_a_users_layer_with_its_own_parameters_is_named(tmp_path):
    with pytest.raises(engine.FormatError, match=r"own \(OwnLayer\): a class of the model's own code "
                                                 r"\(tests.test_torch_modules.OwnLayer\); what its forward\(\) "
                                                 r"computes is not in the file"):
        engine.load(_saved(tmp_path, WithOwnLayer()))


def test_a_softmax_over_an_axis_forward_decides_is_not_guessed(tmp_path):
    net = nn.Sequential(nn.GRU(4, 3), nn.Softmax(dim=0))
    with pytest.raises(engine.FormatError, match=r"dim=0: forward\(\) decides which axis"):
        engine.load(_saved(tmp_path, net))


def test_a_float64_module_loads_as_float64(tmp_path):
    torch.manual_seed(4)
    net = Tagger().double().eval()
    model = engine.load(_saved(tmp_path, net))
    assert model.spec.dtype == "float64"
    ids = RNG.integers(0, 30, (2, 7))
    with torch.no_grad():
        want = net(torch.from_numpy(ids)).numpy()
    np.testing.assert_allclose(model.run(ids), want, atol=PARITY_F64, rtol=0)


# ------------------------------------------------------------------------------------------- hostile modules
def _zip_pickle(tmp_path, blob, name="evil.pt"):
    """A torch zip checkpoint whose data.pkl is ``blob`` (no storages)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("archive/data.pkl", blob)
        z.writestr("archive/version", "3\n")
    path = tmp_path / name
    path.write_bytes(buf.getvalue())
    return path


def _g(module, name):   # GLOBAL
    return f"c{module}\n{name}\n".encode()


def test_calling_a_torch_nn_class_from_the_file_is_refused(tmp_path):
    blob = b"\x80\x02" + _g("torch.nn.modules.linear", "Linear") + b"K\x03K\x04\x86R."
    with pytest.raises(engine.UnsafeFileError, match=r"builds `torch.nn.modules.linear.Linear` from arguments"):
        load_checkpoint(_zip_pickle(tmp_path, blob))


def test_calling_a_users_class_from_the_file_is_refused(tmp_path):
    blob = b"\x80\x02" + _g("evilpkg.models", "Net") + b")R."
    with pytest.raises(engine.UnsafeFileError, match=r"the file calls `evilpkg.models.Net`"):
        load_checkpoint(_zip_pickle(tmp_path, blob))


def test_a_state_cannot_smuggle_a_setstate(tmp_path):
    # NEWOBJ of a module stand-in, then BUILD with a state naming __setstate__ and __class__: stored as data
    blob = (b"\x80\x02" + _g("torch.nn.modules.activation", "ReLU") + b")\x81}(X\x0c\x00\x00\x00__setstate__"
            b"X\x04\x00\x00\x00evilX\t\x00\x00\x00__class__X\x03\x00\x00\x00bad" + b"ub.")
    obj = load_checkpoint(_zip_pickle(tmp_path, blob))
    assert isinstance(obj, PickledObject) and obj.class_name == "torch.nn.modules.activation.ReLU"
    assert obj.state == {"__setstate__": "evil", "__class__": "bad"}
    assert obj.__setstate__.__func__ is PickledObject.__setstate__ and type(obj).__bases__ == (PickledObject,)


def test_a_forward_hook_function_in_a_module_is_refused(tmp_path):
    net = nn.Sequential(nn.Linear(3, 4), nn.GRU(4, 2))
    net[0].register_forward_hook(print)
    with pytest.raises(engine.UnsafeFileError, match=r"pickles `(__builtin__|builtins)\.print`"):
        engine.load(_saved(tmp_path, net))


@pytest.mark.parametrize("attr, value, match", [
    ("kernel_size", (10 ** 12,), r"kernel_size = \(1000000000000,\) is not a tuple of integers"),
    ("kernel_size", (-3,), r"does not match kernel_size=\(-3,\)"),
    ("groups", 0, r"groups=0 must divide"),
    ("stride", "x", r"stride = 'x' is not a tuple of integers"),
])
def test_crafted_module_attributes_are_checked(tmp_path, attr, value, match):
    conv = nn.Conv1d(2, 4, 3)
    setattr(conv, attr, value)
    net = nn.Sequential(nn.GRU(4, 4), conv)
    with pytest.raises(engine.FormatError, match=match):
        engine.load(_saved(tmp_path, net), layers=["0", "reshape(1, 4)", "1"])


def test_a_negative_layer_count_is_checked_against_the_weights(tmp_path):
    gru = nn.GRU(4, 3, num_layers=2)
    gru.num_layers = -1
    with pytest.raises(engine.FormatError, match=r"num_layers=-1 but weights for 2 layers"):
        engine.load(_saved(tmp_path, nn.Sequential(gru)))


def test_a_module_that_contains_itself_is_refused(tmp_path):
    seq = nn.Sequential(nn.GRU(4, 3))
    seq._modules["me"] = seq
    with pytest.raises(engine.FormatError, match=r"contains itself"):
        engine.load(_saved(tmp_path, seq))


def test_a_pickle_sharing_one_list_two_ways_per_level_loads_in_linear_time(tmp_path):
    a = []
    for _ in range(80):    # 2**80 paths through 80 lists: walked once each
        a = [a, a]
    path = _zip_pickle(tmp_path, pickle.dumps({"w": a}, protocol=2))
    start = time.perf_counter()
    with pytest.raises(engine.FormatError, match=r"say which holds the model's state_dict"):
        engine.load(path)
    assert time.perf_counter() - start < 60   # a hang guard, not a speed claim: walking every path never ends


def test_rnnjit_info_takes_functional_steps_and_prints_the_assumptions(tmp_path):
    from tests.test_cli import CLI
    import subprocess

    torch.manual_seed(5)
    path = _saved(tmp_path, _trained(FrameNet()))
    r = subprocess.run([*CLI, "info", str(path), "--layers", ", ".join(FRAME_STEPS)], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    assert "layers.0 = Reshape(shape=[2, 16])" in r.stdout
    assert "note: torch.assumed = the model's steps are the ones given with layers=[...]" in r.stdout
    assert "training mode" not in r.stdout   # saved after eval()


def test_a_live_module_converts_by_the_same_rules_functional_steps_included():
    """The live module (a class defined here, in a function's scope: it could not even be pickled) gives the same
    model as its saved file, functional steps and all."""
    torch.manual_seed(6)

    class Local(FrameNet):
        pass

    net = _trained(Local())
    X = RNG.standard_normal((2, 7, 32)).astype(np.float32)
    with torch.no_grad():
        want = net(torch.from_numpy(X)).numpy()
    import converters

    model = engine.Model(converters.from_torch(net, layers=FRAME_STEPS))
    np.testing.assert_allclose(model.run(X), want, atol=PARITY_F32, rtol=0)
    with pytest.raises(engine.FormatError, match="layers=\\[...\\]"):
        converters.from_torch(net)
    with pytest.raises(TypeError, match="a live module takes layers= and ignore="):
        converters.from_torch(net, head_activation="sigmoid")


def test_a_step_that_is_neither_a_name_of_the_file_nor_a_function_is_named_with_both_lists(tmp_path):
    torch.manual_seed(7)
    net = _trained(FrameNet())
    pickled, weights = _saved(tmp_path, net), _saved(tmp_path, net.state_dict(), "w.pt")
    for path, what in ((pickled, "module"), (weights, "parameter group")):
        with pytest.raises(engine.FormatError, match=rf"'convv' is neither a {what} \(bn, conv, lstm, norm, out, "
                                                     rf"proj\) nor a functional step"):
            engine.load(path, layers=["reshape(2, 16)", "convv"])
        with pytest.raises(engine.FormatError, match=rf"'conv\(3\)': give a {what}'s attributes by name"):
            engine.load(path, layers=["reshape(2, 16)", "conv(3)"])
        with pytest.raises(engine.FormatError, match=r"layers=\[...\] holds .*s and functional steps \(strings\)"):
            engine.load(path, layers=["reshape(2, 16)", 3])
    with pytest.raises(engine.FormatError, match=r"'conv\(padding=1\)': a module says its own attributes"):
        engine.load(pickled, layers=["reshape(2, 16)", "conv(padding=1)"])
