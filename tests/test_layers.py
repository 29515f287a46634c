"""The kinds table: every ModelSpec layer class has exactly one room, the engine outside the rooms does not
branch on kinds, and a new kind is its kernel module, its room and one table row (tests/newkind/, written
as docs/architecture.md says) - then it packs, steps (compiled call layer and twin), streams and runs."""

import os
import re

import numpy as np
import pytest

import engine
from engine import layers
from engine import spec as spec_module
from tests.helpers import random_weights
from tests.tolerances import REFERENCE_F32

ENGINE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "engine")


def test_every_layer_class_has_exactly_one_kind():
    classes = [spec_module.LSTM, spec_module.GRU, spec_module.RNN, spec_module.Dense, spec_module.Activation,
               spec_module.Normalize, spec_module.Elementwise, spec_module.Embedding, spec_module.TemporalConv1d,
               spec_module.LayerNorm, spec_module.BatchNorm, spec_module.FrameOp, spec_module.Concat,
               spec_module.FrameConv, spec_module.FrameConvTranspose, spec_module.Pool, spec_module.PReLU,
               spec_module.GroupNorm, spec_module.L2Norm, spec_module.Masking, spec_module.TemporalPool, spec_module.CumulativePool,
                   spec_module.TemporalConv2d]
    assert sorted(k.spec_class.__name__ for k in layers.KINDS) == sorted(c.__name__ for c in classes)
    assert len({k.code for k in layers.KINDS}) == len({k.name for k in layers.KINDS}) == len(layers.KINDS)
    with pytest.raises(TypeError, match="no node kind runs str"):
        layers.kind_of("lstm")


# what branching on a kind looks like: its code, its cell name, its class
BRANCHES = re.compile(r"\bOP_[A-Z_]+\b|\.cell\s*[!=]=|isinstance\([^)]*\b(LSTM|GRU|RNN|Dense|Normalize|Activation|"
                      r"Elementwise|Add|Mul|Embedding|TemporalConv1d|LayerNorm|BatchNorm)\b")


@pytest.mark.parametrize("path", ["spec.py", "model.py", "plan.py", "session.py", "cli.py", "io.py",
                                  os.path.join("_ext", "twin.py"), os.path.join("_ext", "_stepcore.pyx")])
def test_the_engine_outside_the_rooms_asks_the_kind_instead_of_branching_on_it(path):
    with open(os.path.join(ENGINE, path)) as fh:
        hits = [f"{i}: {line.strip()}" for i, line in enumerate(fh, 1) if BRANCHES.search(line)]
    assert not hits, hits


@pytest.fixture
def scale_kind(monkeypatch):
    from tests.newkind import room

    monkeypatch.setattr(layers, "KINDS", layers.KINDS + (room.KIND,))
    monkeypatch.setitem(layers._BY_CLASS, room.Scale, room.KIND)
    return room


def test_a_new_kind_is_a_kernel_module_a_room_and_a_table_row(scale_kind, rng):
    s = rng.uniform(0.5, 2, 5)
    lstm = engine.LSTM(5, 6, random_weights(rng, "lstm", 5, 6))
    with_scale = engine.Model(engine.ModelSpec([scale_kind.Scale(s), lstm]))
    # the same model with the scale folded into the LSTM's input weights: what Scale must amount to
    folded = engine.LSTM(5, 6, [dict(lstm.weights[0], weight_ih=lstm.weights[0]["weight_ih"] * s)])
    reference = engine.Model(engine.ModelSpec([folded]), dtype="float64")
    X = rng.uniform(-1, 1, (3, 20, 5))
    want = reference.run(X)
    np.testing.assert_allclose(with_scale.run(X), want, atol=REFERENCE_F32, rtol=0)
    stream = with_scale.stream()
    np.testing.assert_allclose(stream.step_n(X[0].astype(np.float32)), want[0], atol=REFERENCE_F32, rtol=0)
    group = with_scale.streams(3)
    steps = np.stack([group.step(X[:, t].astype(np.float32)) for t in range(20)], axis=1)
    np.testing.assert_allclose(steps, want, atol=REFERENCE_F32, rtol=0)
    assert "Scale(5)" in with_scale.summary()
