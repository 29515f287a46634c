"""PyTorch checkpoints -> ModelSpec: parity with torch on randomized models, saved with torch.save (zip and
legacy formats) and as safetensors, loaded in a process where torch is absent from sys.modules; live
nn.Module objects; options and the errors for what a state_dict cannot say."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import safetensors.torch
import torch

import converters
import engine
from tests.tolerances import PARITY_F32, assert_parity

torch.set_num_threads(1)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ACTS = {"relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid, None: lambda y: y}


class Net(torch.nn.Module):
    """A recurrent stack (at some nesting depth) with a Linear head and optional activations."""

    def __init__(self, kind, I, H, layers, bidirectional, proj, hidden_act, head_act, n_out):
        super().__init__()
        common = dict(num_layers=layers, bidirectional=bidirectional, batch_first=True)
        if kind == "lstm":
            rnn = torch.nn.LSTM(I, H, proj_size=proj, **common)
        elif kind == "gru":
            rnn = torch.nn.GRU(I, H, **common)
        else:
            rnn = torch.nn.RNN(I, H, nonlinearity=kind.split("_")[1], **common)
        self.encoder = torch.nn.Module()
        self.encoder.rnn = rnn
        width = (2 if bidirectional else 1) * (proj or H)
        self.fc1 = torch.nn.Linear(width, 5)
        self.fc2 = torch.nn.Linear(5, n_out)
        self.hidden_act, self.head_act = hidden_act, head_act
        with torch.no_grad():
            for p in self.parameters():
                p.uniform_(-1.5 / max(p.shape[-1], 1) ** 0.5, 1.5 / max(p.shape[-1], 1) ** 0.5)

    def forward(self, x):
        y = self.encoder.rnn(x)[0]
        return ACTS[self.head_act](self.fc2(ACTS[self.hidden_act](self.fc1(y))))


def random_case(rng, i):
    kind = rng.choice(["lstm", "gru", "rnn_tanh", "rnn_relu"])
    H = int(rng.choice([1, 5, 16, 33]))
    proj = int(rng.integers(1, H)) if kind == "lstm" and H > 1 and rng.random() < 0.5 else 0
    return dict(name=f"case{i}", kind=str(kind), I=int(rng.integers(1, 9)), H=H, layers=int(rng.integers(1, 4)),
                bidirectional=bool(rng.random() < 0.4), proj=proj,
                hidden_act=rng.choice(["relu", "tanh", None]), head_act=rng.choice(["sigmoid", None]),
                n_out=int(rng.integers(1, 4)), legacy=bool(rng.random() < 0.3))


def _options(case):
    opts = {"activations": {"fc1": case["hidden_act"]} if case["hidden_act"] else None,
            "head_activation": case["head_act"]}
    if case["kind"] == "rnn_relu":
        opts["rnn_nonlinearity"] = "relu"
    return opts


def test_checkpoints_load_without_torch_and_match_torch(tmp_path, rng):
    cases = [random_case(rng, i) for i in range(12)]
    for case in cases:
        torch.manual_seed(int(rng.integers(1 << 31)))
        net = Net(case["kind"], case["I"], case["H"], case["layers"], case["bidirectional"], case["proj"],
                  case["hidden_act"], case["head_act"], case["n_out"]).eval()
        X = rng.uniform(-1, 1, (2, 9, case["I"])).astype(np.float32)
        with torch.inference_mode():
            expected = net(torch.from_numpy(X)).numpy()
        torch.save(net.state_dict(), tmp_path / f"{case['name']}.pt", _use_new_zipfile_serialization=not case["legacy"])
        safetensors.torch.save_file(net.state_dict(), tmp_path / f"{case['name']}.safetensors")
        np.savez(tmp_path / f"{case['name']}.io.npz", X=X, expected=expected)
    (tmp_path / "cases.json").write_text(json.dumps([dict(c, options=_options(c)) for c in cases]))

    script = textwrap.dedent("""
        import json, sys
        import numpy as np

        class NoTorch:  # torch is not there: any attempt to import it fails
            def find_spec(self, name, path=None, target=None):
                if name == "torch" or name.startswith("torch."):
                    raise ImportError("torch is blocked in this test")
        sys.meta_path.insert(0, NoTorch())
        import engine
        from tests.tolerances import PARITY_F32, assert_parity

        d = sys.argv[1]
        for case in json.load(open(d + "/cases.json")):
            io = np.load(d + "/" + case["name"] + ".io.npz")
            for ext in (".pt", ".safetensors"):
                # safetensors keeps no module order and these sizes may chain several ways: name the order
                extra = {"layers": ["encoder.rnn", "fc1", "fc2"]} if ext == ".safetensors" else {}
                model = engine.load(d + "/" + case["name"] + ext, **case["options"], **extra)
                what = f"{case} via {ext}"
                assert_parity(model.run(io["X"]), io["expected"], PARITY_F32, "float32", what + " run")
                if not case["bidirectional"]:
                    s = model.stream()
                    ys = np.stack([s.step(x) for x in io["X"][0]])
                    assert_parity(ys, io["expected"][0], PARITY_F32, "float32", what + " step")
        heavy = [m for m in sys.modules if m.split(".")[0] == "torch"]
        assert not heavy, heavy
        print("CHECKED", len(json.load(open(d + "/cases.json"))))
    """)
    r = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, cwd=ROOT,
                       timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert f"CHECKED {len(cases)}" in r.stdout


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn_tanh"])
def test_a_live_module_converts_with_its_activations(kind, rng):
    torch.manual_seed(3)
    rnn = {"lstm": torch.nn.LSTM(4, 6, batch_first=True), "gru": torch.nn.GRU(4, 6, batch_first=True),
           "rnn_tanh": torch.nn.RNN(4, 6, batch_first=True)}[kind]

    class Live(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = rnn
            self.head = torch.nn.Sequential(torch.nn.Linear(6, 6), torch.nn.LeakyReLU(0.2), torch.nn.Dropout(0.5),
                                            torch.nn.Linear(6, 3), torch.nn.Softmax(dim=-1))

        def forward(self, x):
            return self.head(self.rnn(x)[0])

    net = Live().eval()
    X = rng.uniform(-1, 1, (3, 8, 4)).astype(np.float32)
    with torch.inference_mode():
        expected = net(torch.from_numpy(X)).numpy()
    model = engine.Model(converters.from_torch(net))
    assert_parity(model.run(X), expected, PARITY_F32, "float32")


def test_state_dict_arrays_pass_through_unchanged(tmp_path):
    # PyTorch's layout is the engine's canonical layout: loading a checkpoint must not permute anything
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(3, 4, num_layers=2, bidirectional=True, proj_size=2)
    torch.save(lstm.state_dict(), tmp_path / "m.pt")
    spec = converters.from_torch(tmp_path / "m.pt")
    for k, layer in enumerate(spec.layers):
        for d, sfx in enumerate(["", "_reverse"]):
            for name, arr in layer.weights[d].items():
                np.testing.assert_array_equal(arr, getattr(lstm, f"{name}_l{k}{sfx}").detach().numpy())


def test_nested_checkpoint_dicts_and_the_key_option(tmp_path):
    gru = torch.nn.GRU(2, 3)
    torch.save({"epoch": 7, "model_state_dict": gru.state_dict(), "lr": 0.1}, tmp_path / "auto.pt")
    assert converters.from_torch(tmp_path / "auto.pt").layers[0].hidden_size == 3
    torch.save({"a": gru.state_dict(), "b": gru.state_dict()}, tmp_path / "two.pt")
    with pytest.raises(engine.FormatError, match=r"keys \['a', 'b'\].*key='...'"):
        converters.from_torch(tmp_path / "two.pt")
    assert converters.from_torch(tmp_path / "two.pt", key="b").layers[0].input_size == 2


def test_a_training_checkpoint_gives_its_model_and_says_what_it_left_out(tmp_path):
    """{"model_state": ..., "optimizer": ..., "epoch": ...}: the model's state_dict is found, and the optimizer
    state and counters are named in spec.metadata as left out."""
    torch.manual_seed(1)
    gru = torch.nn.GRU(2, 3)
    opt = torch.optim.Adam(gru.parameters())
    gru(torch.zeros(1, 1, 2))[0].sum().backward()
    opt.step()
    torch.save({"model_state": gru.state_dict(), "optimizer": opt.state_dict(), "epoch": 12, "best_loss": 0.25},
               tmp_path / "train.pt")
    spec = converters.from_torch(tmp_path / "train.pt")
    assert spec.layers[0].hidden_size == 3
    assert spec.metadata["checkpoint"] == "the state_dict under 'model_state'; left out: best_loss, epoch, optimizer"
    X = np.random.default_rng(1).normal(size=(5, 2)).astype(np.float32)
    with torch.no_grad():
        want = gru(torch.from_numpy(X)[:, None])[0][:, 0].numpy()
    assert_parity(engine.Model(spec).run(X), want, PARITY_F32, "float32")


def test_several_recurrent_groups_need_the_layers_option_and_the_error_lists_them(tmp_path):
    sd = {**{f"enc.{k}": v for k, v in torch.nn.GRU(2, 3).state_dict().items()},
          **{f"dec.{k}": v for k, v in torch.nn.LSTM(3, 4).state_dict().items()},
          **{f"out.{k}": v for k, v in torch.nn.Linear(4, 1).state_dict().items()}}
    torch.save(sd, tmp_path / "m.pt")
    with pytest.raises(engine.FormatError, match=r"2 recurrent parameter groups.*'enc' \(rnn\), 'dec' \(rnn\), 'out'"):
        converters.from_torch(tmp_path / "m.pt")
    spec = converters.from_torch(tmp_path / "m.pt", layers=["enc", "dec", "out"])
    assert [type(layer).__name__ for layer in spec.layers] == ["GRU", "LSTM", "Dense"]
    spec = converters.from_torch(tmp_path / "m.pt", layers=["dec", "out"], ignore=["enc"])
    assert spec.input_size == 3


def test_keys_the_engine_cannot_run_are_reported_by_name(tmp_path):
    sd = dict(torch.nn.GRU(2, 3).state_dict())
    sd["bn.running_mean"] = torch.zeros(3)
    sd["bn.num_batches_tracked"] = torch.tensor(5)
    torch.save(sd, tmp_path / "m.pt")
    with pytest.raises(engine.FormatError, match=r"no layer rnnjit can run: .*bn.running_mean.*ignore="):
        converters.from_torch(tmp_path / "m.pt")
    assert converters.from_torch(tmp_path / "m.pt", ignore=["bn"]).output_size == 3


def test_groups_that_do_not_chain_say_so(tmp_path):
    sd = {**torch.nn.GRU(2, 3).state_dict(), **{f"fc.{k}": v for k, v in torch.nn.Linear(5, 1).state_dict().items()}}
    torch.save(sd, tmp_path / "m.pt")
    with pytest.raises(engine.FormatError, match=r"do not chain.*GRU\(2, 3.*Dense\(5 -> 1\)"):
        converters.from_torch(tmp_path / "m.pt")


def test_safetensors_order_is_recovered_from_sizes_or_asked_for(tmp_path):
    sd = {**{f"z_in.{k}": v for k, v in torch.nn.Linear(3, 4).state_dict().items()},
          **{f"a_rnn.{k}": v for k, v in torch.nn.GRU(4, 5).state_dict().items()}}
    safetensors.torch.save_file(sd, tmp_path / "m.safetensors")
    spec = converters.from_torch(tmp_path / "m.safetensors")
    assert [type(layer).__name__ for layer in spec.layers] == ["Dense", "GRU"]
    sq = {**{f"a.{k}": v for k, v in torch.nn.Linear(4, 4).state_dict().items()},
          **{f"b.{k}": v for k, v in torch.nn.GRU(4, 4).state_dict().items()}}
    safetensors.torch.save_file(sq, tmp_path / "amb.safetensors")
    with pytest.raises(engine.FormatError, match="allow several orders"):
        converters.from_torch(tmp_path / "amb.safetensors")


def test_half_and_bfloat16_checkpoints_load_widened(tmp_path):
    gru = torch.nn.GRU(2, 3)
    for dt in (torch.float16, torch.bfloat16, torch.float64):
        sd = {k: v.to(dt) for k, v in gru.state_dict().items()}
        torch.save(sd, tmp_path / "m.pt")
        safetensors.torch.save_file(sd, tmp_path / "m.safetensors")
        for ext in (".pt", ".safetensors"):
            spec = converters.from_torch(tmp_path / f"m{ext}")
            np.testing.assert_array_equal(spec.layers[0].weights[0]["weight_hh"], sd["weight_hh_l0"].double().numpy())


def test_npz_with_pytorch_names_loads_through_the_same_path(tmp_path):
    torch.manual_seed(1)
    lstm = torch.nn.LSTM(2, 3)
    np.savez(tmp_path / "m.npz", **{k: v.numpy() for k, v in lstm.state_dict().items()})
    X = np.random.default_rng(0).uniform(-1, 1, (5, 2)).astype(np.float32)
    with torch.inference_mode():
        expected = lstm(torch.from_numpy(X))[0].numpy()
    assert_parity(engine.load(tmp_path / "m.npz").run(X), expected, PARITY_F32, "float32")
