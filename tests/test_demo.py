"""The heartbeat demo: the command a newcomer runs first, its shipped files, and where they came from.

The ground truth is the simulator's (examples/heartbeat/ecg.py): every beat's time and type and every
artifact's span are known exactly, so precision and recall are measured, not estimated.
"""

import os
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

import engine
from engine import demo
from tests.tolerances import FLOAT32_STORAGE, PARITY_F32, SAME_FLOAT64_ARITHMETIC

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(ROOT, "examples", "heartbeat")


def _example(name):
    sys.path.insert(0, EXAMPLE)
    try:
        return __import__(name)
    finally:
        sys.path.remove(EXAMPLE)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    png = tmp_path_factory.mktemp("demo") / "demo.png"
    r = subprocess.run([sys.executable, "-m", "engine", "demo", "--plot", str(png)], capture_output=True, text=True,
                       timeout=900)
    return r, png


def test_the_demo_prints_beats_as_they_happen_and_a_summary_with_precision_and_recall_of_at_least_0_9(demo_run):
    r, _ = demo_run
    assert r.returncode == 0, r.stderr
    beats = [ln for ln in r.stdout.splitlines() if re.match(r"\s+\d+\.\d{3} s  beat #", ln)]
    rec = demo.load_recording()
    assert len(beats) > 0.9 * rec["visible"].sum()
    times = [float(ln.split()[0]) for ln in beats]
    assert times == sorted(times)
    assert any("<< ANOMALY (truth: ectopic)" in ln for ln in beats)
    assert any("artifact" in ln and "<< ANOMALY (truth: dropout)" in ln for ln in r.stdout.splitlines())
    m = re.search(r"precision (\d\.\d+)  recall (\d\.\d+)", r.stdout)
    assert m, r.stdout[-2000:]
    precision, recall = float(m.group(1)), float(m.group(2))
    assert precision >= 0.9 and recall >= 0.9, r.stdout[-1500:]
    assert re.search(r"speed: \d+ steps, [\d.]+ µs per step \(p50 [\d.]+, p99 [\d.]+\), \d+x real time", r.stdout)


def test_realtime_plays_at_the_recordings_rate_and_prints_beats_as_they_happen():
    """--realtime paces the samples at 250 Hz: the first beats are printed while the run is still going."""
    import time

    proc = subprocess.Popen([sys.executable, "-m", "engine", "demo", "--realtime", "--seconds", "4"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first_beat_at = None
    t0 = time.monotonic()
    for line in proc.stdout:
        if " beat #" in line and first_beat_at is None:
            first_beat_at = time.monotonic() - t0
    total = time.monotonic() - t0
    assert proc.wait(timeout=120) == 0, proc.stderr.read()
    assert first_beat_at is not None and total >= 4.0   # 4 s of signal take at least 4 s to play
    assert total - first_beat_at >= 1.0                   # and beats came out along the way, not all at the end


def test_the_summary_agrees_with_an_evaluation_in_this_process(demo_run):
    """The printed precision/recall are what evaluate() gives on a fresh in-process scoring of the recording."""
    r, _ = demo_run
    rec = demo.load_recording()
    events, _, _ = demo.score_recording(demo.load_model(), rec)
    m = demo.evaluate(events, rec)
    assert f"precision {m['precision']:.3f}  recall {m['recall']:.3f}" in r.stdout
    assert m["anomalies"] == (rec["beat_types"] == "V").sum() + len(rec["artifacts"])


def test_the_plot_is_a_real_png_with_the_signal_the_score_and_the_flags(demo_run):
    from matplotlib import image

    _, png = demo_run
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000
    img = image.imread(str(png))
    h, w = img.shape[:2]
    assert w >= 1200 and h >= 600
    rgb = img[..., :3]
    red = (rgb[..., 0] > 0.75) & (rgb[..., 1] < 0.3) & (rgb[..., 2] < 0.3)      # flagged beats and artifacts
    dark = rgb.max(axis=-1) < 0.35                                             # the ECG trace
    orange = (rgb[..., 0] > 0.9) & (rgb[..., 1] > 0.7) & (rgb[..., 1] < 0.9) & (rgb[..., 2] < 0.8)  # true spans
    assert red.sum() > 500 and dark.sum() > 5_000 and orange.sum() > 2_000


def test_the_shipped_files_are_small():
    sizes = [os.path.getsize(p) for p in (demo.MODEL_NATIVE, demo.MODEL_ONNX, demo.MODEL_STATE_DICT, demo.RECORDING)]
    assert sum(sizes) < 1_000_000, sizes
    assert max(sizes[:3]) < 200_000


def test_the_native_model_is_the_shipped_onnx_file_converted_and_loads_without_onnx():
    assert engine.load(demo.MODEL_NATIVE).identity == engine.load(demo.MODEL_ONNX).identity   # the same packed weights
    r = subprocess.run([sys.executable, "-c", "import sys; from engine import demo; demo.load_model(); "
                        "print(sorted(m for m in ('onnx', 'torch', 'h5py') if m in sys.modules))"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stdout + r.stderr


def test_the_onnx_file_and_the_state_dict_are_the_trained_torch_network():
    train = _example("train")
    net = train.HeartbeatNet()
    from converters.pytorch.reader import load_checkpoint

    state = {k: torch.from_numpy(np.array(v)) for k, v in load_checkpoint(demo.MODEL_STATE_DICT).items()}
    net.load_state_dict(state)
    net.eval()
    x = demo.load_recording()["signal"][:3000]
    with torch.no_grad():
        want = net(torch.from_numpy(x)[None, :, None])[0].numpy()
    from_onnx = demo.load_model()
    from_pt = engine.load(demo.MODEL_STATE_DICT, head_activation="sigmoid")
    for model in (from_onnx, from_pt):
        np.testing.assert_allclose(model.run(x[:, None]), want, atol=PARITY_F32, rtol=0)
        s = model.stream()
        np.testing.assert_allclose(np.stack([s.step(v) for v in x[:500, None]]), want[:500], atol=PARITY_F32, rtol=0)


def test_the_shipped_onnx_file_matches_onnxruntime():
    import onnxruntime as ort

    x = demo.load_recording()["signal"][:2000]
    sess = ort.InferenceSession(demo.MODEL_ONNX, providers=["CPUExecutionProvider"])
    want = sess.run(None, {"ecg": x[None, :, None]})[0][0]
    np.testing.assert_allclose(demo.load_model().run(x[:, None]), want, atol=PARITY_F32, rtol=0)


def test_the_shipped_recording_is_the_simulators_output_for_its_seed():
    ecg = _example("ecg")
    train = _example("train")
    rec = demo.load_recording()
    again = ecg.make_recording(train.HELD_OUT_SECONDS, train.HELD_OUT_SEED, pvc_rate=0.08, dropouts=3, bursts=3)
    assert int(rec["seed"]) == train.HELD_OUT_SEED not in train.TRAIN_SEEDS
    np.testing.assert_allclose(rec["signal"], again["signal"], atol=FLOAT32_STORAGE, rtol=0)
    np.testing.assert_array_equal(rec["beat_types"], again["beat_types"])
    np.testing.assert_allclose(rec["r_times"], again["r_times"], atol=SAME_FLOAT64_ARITHMETIC, rtol=0)
    np.testing.assert_allclose(rec["artifacts"], again["artifacts"], atol=SAME_FLOAT64_ARITHMETIC, rtol=0)
    assert (rec["beat_types"] == "V").sum() >= 10 and sorted(rec["artifact_kinds"]) == ["dropout"] * 3 + ["noise"] * 3


def test_the_simulator_makes_what_its_ground_truth_says():
    """Beats are where r_times says (a local extremum near each visible sinus R), rates are physiological,
    premature beats are early, and dropouts are flat."""
    ecg = _example("ecg")
    rec = ecg.make_recording(120, 123, pvc_rate=0.1, dropouts=2, bursts=2)
    sig, fs = rec["signal"], rec["fs"]
    rr = np.diff(rec["r_times"])
    assert 0.3 < rr.min() and rr.max() < 2.2
    hr = 60 / np.median(rr)
    assert 50 < hr < 105
    types = rec["beat_types"]
    v = np.where(types[1:] == "V")[0] + 1
    assert len(v) >= 3
    assert np.all(rr[v - 1] < 0.8 * np.median(rr))  # premature
    for t, k, vis in zip(rec["r_times"], types, rec["visible"]):
        if vis and k == "N":
            i = int(round(t * fs))
            win = sig[i - 5:i + 6]
            assert np.argmax(win) in (4, 5, 6)  # R is the local maximum
    for (s, e), kind in zip(rec["artifacts"], rec["artifact_kinds"]):
        seg = sig[int(s * fs) + 1:int(e * fs) - 1]
        assert (seg.std() < 0.01) if kind == "dropout" else (seg.std() > 0.1)


def test_the_beat_scorer_reports_a_beat_after_its_window_and_flags_by_threshold():
    fs = 100
    scorer = demo.BeatScorer(fs)
    p_beat = np.zeros(400)
    p_anom = np.zeros(400)
    p_beat[[50, 51]] = 0.9                        # inside the warm-up second: not reported
    p_beat[[150, 151, 152, 250, 251, 260]] = 0.9  # beats at 1.5 s and 2.5 s; 2.6 s is inside the refractory period
    p_anom[255:270] = 0.8                         # the second beat is abnormal
    p_anom[300:360] = 0.9                         # a 0.6 s run: an artifact
    events = []
    for b, a in zip(p_beat, p_anom):
        events += scorer.push(b, a)
    events += scorer.finish()
    beats = [e for e in events if e.kind == "beat"]
    assert [(e.time, e.flagged, e.index) for e in beats] == [(1.5, False, 1), (2.5, True, 2)]
    assert beats[1].rr == pytest.approx(1.0) and beats[1].score == pytest.approx(0.8)
    (art,) = [e for e in events if e.kind == "artifact"]
    assert art.time == 3.0 and art.end == 3.6 and art.flagged


def test_evaluation_counts_overlaps_with_the_truth():
    rec = {"r_times": np.array([1.0, 2.0, 3.0]), "beat_types": np.array(["N", "V", "N"]),
           "visible": np.array([True, True, True]), "artifacts": np.array([[5.0, 6.0]]),
           "artifact_kinds": np.array(["noise"])}
    E = demo.Event
    events = [E("beat", 1.0, 0.1, False), E("beat", 2.01, 0.9, True), E("beat", 3.0, 0.7, True),
              E("artifact", 5.2, 0.9, True, end=5.9), E("beat", 6.0 + demo.ARTIFACT_GRACE + 0.2, 0.9, True)]
    m = demo.evaluate(events, rec)
    # true: the premature beat, the artifact; false: the sinus beat at 3.0 s and the beat after the grace period
    assert (m["flags"], m["true_flags"], m["anomalies"], m["found"]) == (4, 2, 2, 2)
    assert m["precision"] == pytest.approx(2 / 4) and m["recall"] == 1.0
