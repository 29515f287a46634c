"""Native format versions: files that rnnjit 0.1.0 wrote (format version 1, tests/fixtures/native_v1, made by
its make.py at that release) load today and give the outputs that release gave, and the naive NumPy
reference's; chains are still written as version 1, graphs as version 2."""

import glob
import os

import numpy as np
import pytest

import engine
from engine import io as native
from tests.reference import naive
from tests.tolerances import REFERENCE_F32, REFERENCE_F64, STEP_VS_RUN_F32, STEP_VS_RUN_F64

HERE = os.path.join(os.path.dirname(__file__), "fixtures", "native_v1")
FIXTURES = sorted(p for p in glob.glob(os.path.join(HERE, "*.npz")) if not p.endswith((".io.npz", ".snap.npz")))


def test_the_fixtures_are_there():
    assert [os.path.basename(p) for p in FIXTURES] == ["bidir_gru.npz", "lstm_dense.npz", "lstm_proj_peep_rnn.npz",
                                                        "norm_gru2_act.npz"]


@pytest.mark.parametrize("path", FIXTURES, ids=os.path.basename)
def test_a_version_1_file_loads_and_gives_what_its_release_gave(path):
    assert native.native_format_version(path) == 1
    model = engine.load(path)
    assert model.spec.is_chain
    io = np.load(path[:-4] + ".io.npz")
    X, lengths = io["X"], io["lengths"]
    exact = model.dtype == np.float64
    y = model.run(X, lengths=lengths)
    # the same kernels on the same machine give the same numbers; across instruction sets the summation order
    # may differ, which the step-vs-run bar covers
    np.testing.assert_allclose(y, io["run"], atol=STEP_VS_RUN_F64 if exact else STEP_VS_RUN_F32, rtol=0)
    if "step_n" in io.files:
        np.testing.assert_allclose(model.stream().step_n(X[0]), io["step_n"],
                                   atol=STEP_VS_RUN_F64 if exact else STEP_VS_RUN_F32, rtol=0)
    # and it is the model the file describes
    ref = naive.run(model.spec, X[:1].transpose(1, 0, 2))
    np.testing.assert_allclose(y[:1], ref.transpose(1, 0, 2), atol=REFERENCE_F64 if exact else REFERENCE_F32,
                               rtol=0)


@pytest.mark.parametrize("path", FIXTURES, ids=os.path.basename)
def test_a_chain_is_written_as_version_1_byte_for_byte_in_its_header(path, tmp_path):
    """Saving a loaded v1 chain writes version 1 again, with the same header: an older rnnjit reads it."""
    spec = engine.load_spec(path)
    again = spec.save(tmp_path / "again")
    assert native.native_format_version(again) == 1
    with np.load(path) as a, np.load(again) as b:
        assert sorted(a.files) == sorted(b.files)
        assert a[native.HEADER_KEY].tobytes() == b[native.HEADER_KEY].tobytes()
        for key in a.files:
            assert np.array_equal(a[key], b[key]), key


@pytest.mark.parametrize("name", ["lstm_dense", "norm_gru2_act", "lstm_proj_peep_rnn"])
def test_a_snapshot_taken_by_the_previous_release_restores_and_continues(name):
    """Snapshots keep their version-1 layout and a chain keeps its model identity, so a stream saved by 0.1.0
    (make_snapshots.py, run at that release) resumes today and continues as it did then."""
    model = engine.load(os.path.join(HERE, name + ".npz"))
    then = np.load(os.path.join(HERE, name + ".snap.npz"))
    assert model.identity == str(then["identity"])
    with open(os.path.join(HERE, name + ".snap"), "rb") as fh:
        stream = engine.Stream.from_bytes(fh.read(), model)
    X = np.load(os.path.join(HERE, name + ".io.npz"))["X"][0]
    exact = model.dtype == np.float64
    np.testing.assert_allclose(stream.step_n(X[5:]), then["rest"], atol=STEP_VS_RUN_F64 if exact else STEP_VS_RUN_F32,
                               rtol=0)
