"""The heartbeat demo: a small recurrent network scores an ECG recording sample by sample.

The model (``data/heartbeat.npz``, the native form of ``data/heartbeat.onnx``, the same weights as
``data/heartbeat_state_dict.pt``) and a held-out
recording (``data/recording.npz``, with its ground truth) ship with the package; the simulator and the
training script that made them are in examples/heartbeat/. The network reads one ECG sample (mV) per step
and writes two probabilities: "a QRS complex just happened" and "this is abnormal" (a premature ventricular
beat, a lead dropout, a burst of muscle noise). ``BeatScorer`` turns those two streams into events as they
happen: each beat with its score, and artifact spans.

Design: everything here is causal and O(1) per sample, so the same scorer runs on a live signal; the
evaluation against ground truth (``evaluate``) is separate and only needs the events.
"""

import os
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from ..latency import summarize

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
MODEL_NATIVE = os.path.join(DATA, "heartbeat.npz")
MODEL_ONNX = os.path.join(DATA, "heartbeat.onnx")
MODEL_STATE_DICT = os.path.join(DATA, "heartbeat_state_dict.pt")
RECORDING = os.path.join(DATA, "recording.npz")

THRESHOLD = 0.5        # both channels
REFRACTORY = 0.25      # s: no second beat within this of the last one
BEAT_WINDOW = 0.30     # s: a beat's score is the max anomaly probability over [R, R + this]
ARTIFACT_MIN = 0.45    # s: an anomaly run at least this long is an artifact (longer than any beat's window)
WARMUP = 1.0           # s: no events while the state settles from zeros (training ignored this second too)
ARTIFACT_GRACE = 1.0   # s: an alarm up to this long after an artifact ends is attributed to it (evaluation)
BEAT_SPAN = (0.10, 0.35)   # s before and after an R peak: the span of one beat, a flagged one or a true ectopic one


def load_model():
    """The demo network as an ``engine.Model``, from the shipped native file: numpy reads it, where the ONNX file
    would cost an onnx import and its converter's constant folding at every start."""
    import engine

    return engine.load(MODEL_NATIVE)


def load_recording(path=RECORDING):
    """The held-out recording: signal (N,) float32 mV, fs, and its ground truth (see examples/heartbeat/ecg.py)."""
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files} | {"fs": int(z["fs"])}


@dataclass
class Event:
    kind: str            # "beat" or "artifact"
    time: float          # s: the beat's R time, or the artifact's start
    score: float         # max anomaly probability over the beat's window / over the artifact
    flagged: bool
    rr: float = float("nan")   # s, beats only: interval from the previous beat
    end: float = float("nan")  # s, artifacts only
    index: int = 0             # beat number, from 1


@dataclass
class BeatScorer:
    """Causal event detection from the model's two output channels, fed one sample at a time.

    ``push(p_beat, p_anomaly)`` returns the events completed by this sample (usually none): a beat is reported
    BEAT_WINDOW after its QRS, an artifact when its anomaly run ends (``finish()`` flushes what is still open).
    """

    fs: int
    threshold: float = THRESHOLD
    n: int = 0
    beats: int = 0
    _last_beat: float = -1e9
    _beat_above: bool = False
    _pending: list = field(default_factory=list)   # [t_beat, rr, running max]
    _run_start: int = -1
    _run_max: float = 0.0

    def push(self, p_beat, p_anom):
        t = self.n / self.fs
        self.n += 1
        events = []
        if t < WARMUP:
            return events
        # beats: a rising edge of the beat channel, outside the refractory period
        above = p_beat >= self.threshold
        if above and not self._beat_above and t - self._last_beat >= REFRACTORY:
            rr = t - self._last_beat if self.beats else float("nan")
            self._pending.append([t, rr, 0.0])
            self._last_beat = t
            self.beats += 1
        self._beat_above = above
        if self._pending:
            for p in self._pending:
                p[2] = max(p[2], p_anom)
            while self._pending and t - self._pending[0][0] >= BEAT_WINDOW:
                tb, rr, score = self._pending.pop(0)
                events.append(Event("beat", tb, score, score >= self.threshold, rr=rr,
                                    index=self.beats - len(self._pending)))
        # artifacts: a long run of the anomaly channel above threshold
        if p_anom >= self.threshold:
            if self._run_start < 0:
                self._run_start, self._run_max = self.n - 1, 0.0
            self._run_max = max(self._run_max, p_anom)
        elif self._run_start >= 0:
            events.extend(self._close_run(t))
        return events

    def _close_run(self, t_end):
        start, self._run_start = self._run_start / self.fs, -1
        if t_end - start >= ARTIFACT_MIN:
            return [Event("artifact", start, self._run_max, True, end=t_end)]
        return []

    def finish(self):
        t = self.n / self.fs
        events = [Event("beat", tb, s, s >= self.threshold, rr=rr, index=self.beats - len(self._pending) + i + 1)
                  for i, (tb, rr, s) in enumerate(self._pending)]
        self._pending = []
        if self._run_start >= 0:
            events.extend(self._close_run(t))
        return events


def ground_truth(rec):
    """Anomalies as (kind, start, end): each ventricular beat's span, and each artifact's span extended by
    ARTIFACT_GRACE: the network is causal, and a lead-off is recognised by how long the line stays flat, so
    its alarm can rise (or linger) up to a second after the artifact ends."""
    before, after = BEAT_SPAN
    out = [("ectopic", float(t) - before, float(t) + after) for t, k in zip(rec["r_times"], rec["beat_types"])
           if k == "V"]
    out += [(str(k), float(s), float(e) + ARTIFACT_GRACE) for (s, e), k in zip(rec["artifacts"], rec["artifact_kinds"])]
    return sorted(out, key=lambda a: a[1])


def _overlaps(a, b):
    return a[0] < b[1] and b[0] < a[1]


def _span(ev):
    """The time span an event covers: a beat's BEAT_SPAN around its R peak, an artifact's own extent."""
    return (ev.time - BEAT_SPAN[0], ev.time + BEAT_SPAN[1]) if ev.kind == "beat" else (ev.time, ev.end)


def evaluate(events, rec):
    """Flags against ground truth by overlap, and beat detection against the visible beats.

    A flag is true when its span overlaps a true anomaly (see ground_truth); an anomaly is found when some flag
    overlaps it.
    Beat detection: a visible beat is found by a detection within 150 ms; detections inside artifacts are
    not counted against it.
    """
    truth = ground_truth(rec)
    flags = [e for e in events if e.flagged]
    true_flags = sum(any(_overlaps(_span(f), g[1:]) for g in truth) for f in flags)
    found = [any(_overlaps(_span(f), g[1:]) for f in flags) for g in truth]
    by_kind = {}
    for g, ok in zip(truth, found):
        n_ok, n_all = by_kind.get(g[0], (0, 0))
        by_kind[g[0]] = (n_ok + ok, n_all + 1)

    beats = np.array([e.time for e in events if e.kind == "beat"])
    visible = rec["r_times"][rec["visible"]]
    hit = np.array([beats.size > 0 and np.min(np.abs(beats - t)) <= 0.15 for t in visible])
    in_artifact = np.zeros(beats.size, bool)
    for s, e in rec["artifacts"]:
        in_artifact |= (beats > s - 0.15) & (beats < e + 0.3)
    all_r = rec["r_times"]
    det_ok = np.array([np.min(np.abs(all_r - b)) <= 0.15 for b in beats[~in_artifact]]) if beats.size else np.zeros(0)
    return {
        "flags": len(flags), "true_flags": int(true_flags), "anomalies": len(truth), "found": int(sum(found)),
        "precision": true_flags / len(flags) if flags else float("nan"),
        "recall": sum(found) / len(truth) if truth else float("nan"),
        "by_kind": by_kind,
        "beats_detected": int(beats.size), "beats_visible": int(visible.size), "beats_found": int(hit.sum()),
        "beat_sensitivity": float(hit.mean()) if hit.size else float("nan"),
        "beat_ppv": float(det_ok.mean()) if det_ok.size else float("nan"),
    }


def score_recording(model, rec, *, realtime=False, on_event=None):
    """Stream the recording through the model one sample at a time; return (events, outputs, step_ns)."""
    fs = rec["fs"]
    x = np.asarray(rec["signal"], dtype=model.dtype)
    n = x.size
    stream = model.stream()
    scorer = BeatScorer(fs)
    out = np.empty((n, model.output_size), model.dtype)
    step_ns = np.empty(n, np.int64)
    xi = np.empty(1, model.dtype)
    events = []
    clock = time.perf_counter_ns
    t0 = time.perf_counter()
    for i in range(n):
        if realtime:
            delay = t0 + i / fs - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        xi[0] = x[i]
        a = clock()
        stream.step(xi, out=out[i])
        step_ns[i] = clock() - a
        new = scorer.push(float(out[i, 0]), float(out[i, 1]))
        if new:
            events.extend(new)
            if on_event:
                for ev in new:
                    on_event(ev)
    tail = scorer.finish()
    events.extend(tail)
    if on_event:
        for ev in tail:
            on_event(ev)
    return events, out, step_ns


def _kind_of(ev, truth):
    """What the flag overlaps in the ground truth (a ground_truth() list), for the printout."""
    return next((kind for kind, s, e in truth if _overlaps(_span(ev), (s, e))), "false alarm")


def format_event(ev, truth=None):
    """One printed line; with ``truth`` (ground_truth()), a flag names the true anomaly it hits."""
    if ev.kind == "beat":
        rr = "    -   " if np.isnan(ev.rr) else f"{ev.rr:6.3f} s"
        line = f"{ev.time:9.3f} s  beat #{ev.index:<5d} RR {rr}  score {ev.score:4.2f}"
    else:
        line = f"{ev.time:9.3f} s  artifact   {ev.end - ev.time:5.2f} s long   score {ev.score:4.2f}"
    if ev.flagged:
        line += "  << ANOMALY" + (f" (truth: {_kind_of(ev, truth)})" if truth is not None else "")
    return line


def plot(path, rec, out, events):
    """A PNG of the signal with the true anomalies shaded and the flagged events marked, and the two scores."""
    try:
        import matplotlib
    except ImportError:
        raise RuntimeError("--plot needs matplotlib: pip install 'rnnjit[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fs = rec["fs"]
    sig = rec["signal"]
    t = np.arange(sig.size) / fs
    rows = max(1, int(np.ceil(t[-1] / 60.0)))
    fig, axes = plt.subplots(2 * rows, 1, figsize=(18, 3.2 * rows), sharex=False,
                             gridspec_kw={"height_ratios": [2, 1] * rows})
    truth = ground_truth(rec)
    for r in range(rows):
        lo, hi = r * 60.0, min((r + 1) * 60.0, t[-1])
        sl = slice(int(lo * fs), int(hi * fs))
        ax, ax2 = axes[2 * r], axes[2 * r + 1]
        ax.plot(t[sl], sig[sl], lw=0.6, color="0.2")
        for kind, s, e in truth:
            if e > lo and s < hi:
                ax.axvspan(max(s, lo), min(e, hi), color="tab:orange", alpha=0.25, lw=0)
        for ev in events:
            if ev.flagged and lo <= ev.time < hi:
                if ev.kind == "beat":
                    i = min(int(ev.time * fs) + 2, sig.size - 1)
                    ax.plot(ev.time, sig[max(i - 5, 0):i + 10].max(), "v", color="tab:red", ms=7)
                else:
                    ax.axvspan(ev.time, min(ev.end, hi), ymin=0.92, ymax=1.0, color="tab:red", alpha=0.8, lw=0)
        ax.set_xlim(lo, lo + 60)
        ax.set_ylabel("ECG (mV)")
        ax2.plot(t[sl], out[sl, 1], lw=0.7, color="tab:red", label="anomaly score")
        ax2.plot(t[sl], out[sl, 0], lw=0.5, color="tab:blue", alpha=0.6, label="beat probability")
        ax2.axhline(THRESHOLD, color="0.5", lw=0.6, ls="--")
        ax2.set_xlim(lo, lo + 60)
        ax2.set_ylim(-0.05, 1.05)
        ax2.set_ylabel("score")
    axes[1].legend(loc="upper right", fontsize=8)
    axes[-1].set_xlabel("time (s)")
    axes[0].set_title("rnnjit heartbeat demo: ECG (true anomalies shaded orange, flagged beats ▼ and "
                      "artifacts ▬ in red) and the model's scores")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def first_seconds(rec, seconds):
    """The recording cut to its first ``seconds``, ground truth included."""
    n = min(int(round(seconds * rec["fs"])), rec["signal"].size)
    end = n / rec["fs"]
    keep = rec["r_times"] < end
    arts = rec["artifacts"][:, 0] < end
    return dict(rec, signal=rec["signal"][:n], r_times=rec["r_times"][keep], beat_types=rec["beat_types"][keep],
                visible=rec["visible"][keep], artifacts=np.minimum(rec["artifacts"][arts], end),
                artifact_kinds=rec["artifact_kinds"][arts])


def main(*, realtime=False, plot_path=None, quiet=False, model_path=None, seconds=None, out=sys.stdout):
    """``rnnjit demo``: stream the shipped recording, print events as they happen, then the summary."""
    import engine

    model = engine.load(model_path) if model_path else load_model()
    rec = load_recording()
    if seconds is not None:
        rec = first_seconds(rec, seconds)
    fs, n = rec["fs"], rec["signal"].size
    print(f"rnnjit demo: {n / fs:.0f} s of ECG at {fs} Hz, streamed sample by sample "
          f"{'at its real rate' if realtime else 'as fast as possible'}", file=out)
    print(f"model: {model.describe_short()}, {model.num_parameters} parameters "
          f"({os.path.basename(model_path or MODEL_ONNX)})", file=out)
    t_compile = time.perf_counter()
    model.stream().step(np.zeros(model.input_size, model.dtype))  # first use compiles the kernels (cached after)
    t_compile = time.perf_counter() - t_compile
    if t_compile > 0.5:
        print(f"(first use: compiled the kernels in {t_compile:.1f} s; cached for next time)", file=out)
    print(f"{'time':>11s}  event", file=out)

    truth = ground_truth(rec)

    def show(ev):
        if not quiet or ev.flagged:
            print(format_event(ev, truth), file=out, flush=realtime)

    t0 = time.perf_counter()
    events, outputs, step_ns = score_recording(model, rec, realtime=realtime, on_event=show)
    wall = time.perf_counter() - t0
    m = evaluate(events, rec)
    kinds = ", ".join(f"{k} {ok}/{all_}" for k, (ok, all_) in sorted(m["by_kind"].items()))
    print("summary:", file=out)
    print(f"  beats: {m['beats_detected']} detected; {m['beats_found']} of {m['beats_visible']} visible beats "
          f"found ({100 * m['beat_sensitivity']:.1f} %), {100 * m['beat_ppv']:.1f} % of detections are real beats",
          file=out)
    print(f"  anomalies: {m['flags']} flagged, {m['true_flags']} true; {m['anomalies']} in the ground truth, "
          f"{m['found']} found ({kinds})", file=out)
    print(f"  precision {m['precision']:.3f}  recall {m['recall']:.3f}", file=out)
    lat = summarize(step_ns)
    print(f"  speed: {n} steps, {lat['mean_us']:.2f} µs per step (p50 {lat['p50_us']:.2f}, p99 {lat['p99_us']:.2f}), "
          f"{n / fs / (step_ns.sum() / 1e9):.0f}x real time for the network, {n / fs / wall:.0f}x with event scoring "
          f"and printing", file=out)
    if plot_path:
        plot(plot_path, rec, outputs, events)
        print(f"  plot: {plot_path}", file=out)
    return m
