"""Synthetic single-lead ECG with ground truth: a beat-template generator with realistic rhythm and noise.

Design: each beat is a sum of Gaussian waves (P, Q, R, S, and a two-part asymmetric T), the morphology of
McSharry et al.'s ECGSYN written directly in time rather than integrated as an ODE, so that every beat's
R time and type are known exactly. What makes it look like a recording rather than a textbook figure:

- rhythm: a mean rate drawn per recording (55-100 bpm) modulated by respiratory sinus arrhythmia (HF, at the
  breathing rate), a Mayer wave (LF, ~0.1 Hz) and beat-to-beat jitter; P-R and Q-T intervals scale with the
  RR interval (Bazett), QRS width does not;
- morphology: every wave's amplitude and width drawn per recording, R amplitude modulated by breathing;
- noise: white noise, mains hum (50 or 60 Hz), baseline wander (breathing plus a slow random drift), a
  recording gain.

Injected anomalies, each with its time in the ground truth:

- ``V`` premature ventricular beats: early (coupling 55-75 % of RR), no P wave, a wide QRS with the focus's
  own polarity and a discordant T, followed by a compensatory pause (the sinus rhythm is not reset);
- ``dropout``: the lead comes off; the signal goes flat (small noise around a constant) for 0.6-2.5 s;
- ``noise``: a burst of muscle noise (EMG, broadband) for 1-3 s with a smooth envelope.

Only numpy. ``make_recording(seconds, seed)`` is deterministic for a given seed.
"""

import numpy as np

FS = 250  # Hz

# Waves relative to the R peak at RR = 1 s: (name, centre s, width s, amplitude mV). P and T move with RR.
_WAVES = (("P", -0.20, 0.025, 0.15), ("Q", -0.030, 0.010, -0.12), ("R", 0.0, 0.010, 1.0),
          ("S", 0.032, 0.011, -0.25), ("T1", 0.25, 0.050, 0.22), ("T2", 0.31, 0.035, 0.14))


def _rr_series(n, rng, hr, resp_hz):
    """n RR intervals (s): mean from ``hr`` bpm, RSA at the breathing rate, a Mayer wave and jitter."""
    rr0 = 60.0 / hr
    t = np.cumsum(np.full(n, rr0))
    rsa = rng.uniform(0.02, 0.06) * np.sin(2 * np.pi * resp_hz * t + rng.uniform(0, 2 * np.pi))
    mayer = rng.uniform(0.01, 0.04) * np.sin(2 * np.pi * rng.uniform(0.08, 0.12) * t + rng.uniform(0, 2 * np.pi))
    jitter = rng.normal(0, rng.uniform(0.005, 0.02), n)
    return rr0 * (1 + rsa + mayer + jitter)


def _gauss(sig, t, centre, width, amp):
    """Add amp * exp(-(t-centre)^2 / 2 width^2) into sig, over +-5 widths only."""
    lo = max(int((centre - 5 * width) * FS), 0)
    hi = min(int((centre + 5 * width) * FS) + 2, len(sig))
    if hi > lo:
        tt = t[lo:hi]
        sig[lo:hi] += amp * np.exp(-0.5 * ((tt - centre) / width) ** 2)


def make_recording(seconds, seed, *, pvc_rate=0.08, dropouts=None, bursts=None):
    """A synthetic recording: a dict with ``signal`` (N,) float32 mV at ``fs`` Hz and its ground truth.

    ``r_times`` (s) and ``beat_types`` ("N" sinus, "V" premature ventricular) list every beat the heart made;
    ``visible`` says whether the beat can be seen (not inside a dropout or a noise burst); ``artifacts`` is an
    (K, 2) array of [start, end] seconds with ``artifact_kinds`` ("dropout" or "noise").
    """
    rng = np.random.default_rng(seed)
    n = int(round(seconds * FS))
    t = np.arange(n) / FS
    hr = rng.uniform(55, 100)
    resp_hz = rng.uniform(0.15, 0.35)
    waves = [(name, c * rng.uniform(0.9, 1.1), w * rng.uniform(0.85, 1.2), a * rng.uniform(0.75, 1.3))
             for name, c, w, a in _WAVES]

    # ---- rhythm: sinus beat times, then premature ventricular beats replacing some of them
    rr = _rr_series(int(seconds * 2.2) + 10, rng, hr, resp_hz)
    sinus = 0.3 + np.cumsum(rr) - rr[0]
    sinus = sinus[sinus < seconds - 0.5]
    # one ventricular focus per recording: its polarity and shape are the recording's own
    pvc_amp = rng.choice([-1.0, 1.0]) * rng.uniform(0.9, 1.6)
    pvc_width = rng.uniform(0.028, 0.045)
    beats = []  # (time, type, rr_before)
    k = 0
    while k < len(sinus):
        prev_ok = beats and beats[-1][1] == "N"
        if prev_ok and k + 1 < len(sinus) and rng.random() < pvc_rate and sinus[k] > 2.0:
            rr_here = sinus[k] - sinus[k - 1]
            tv = sinus[k - 1] + rr_here * rng.uniform(0.55, 0.75)
            beats.append((tv, "V", rr_here))
            k += 1  # compensatory pause: sinus beat k is not conducted, k+1 comes on time
            beats.append((sinus[k], "N", sinus[k] - sinus[k - 2]))
        else:
            beats.append((sinus[k], "N", sinus[k] - sinus[k - 1] if k else rr[0]))
        k += 1
    r_times = np.array([b[0] for b in beats])
    beat_types = np.array([b[1] for b in beats])

    # ---- artifacts: dropouts and noise bursts, away from the premature beats and from each other
    n_drop = dropouts if dropouts is not None else rng.poisson(seconds / 60.0)
    n_burst = bursts if bursts is not None else rng.poisson(seconds / 60.0)
    kinds = ["dropout"] * n_drop + ["noise"] * n_burst
    rng.shuffle(kinds)
    intervals = []
    for kind in kinds:
        for _ in range(200):
            dur = rng.uniform(0.6, 2.5) if kind == "dropout" else rng.uniform(1.0, 3.0)
            s = rng.uniform(3.0, seconds - dur - 1.0)
            e = s + dur
            clash = any(s < e2 + 1.5 and s2 < e + 1.5 for s2, e2, _ in intervals)
            clash = clash or np.any((r_times[beat_types == "V"] > s - 0.8) & (r_times[beat_types == "V"] < e + 0.8))
            if not clash:
                intervals.append((s, e, kind))
                break
    intervals.sort()
    artifacts = np.array([(s, e) for s, e, _ in intervals], dtype=np.float64).reshape(-1, 2)
    artifact_kinds = np.array([k for _, _, k in intervals], dtype="<U7")

    # ---- the heart's signal
    sig = np.zeros(n)
    breath = np.sin(2 * np.pi * resp_hz * t[np.minimum((r_times * FS).astype(int), n - 1)])
    for i, (tb, kind, rr_b) in enumerate(beats):
        scale = np.sqrt(max(min(rr_b, 1.6), 0.4))  # Bazett: P-R and Q-T stretch with sqrt(RR)
        gain = 1.0 + 0.06 * breath[i]
        if kind == "N":
            for name, c, w, a in waves:
                centre = tb + (c * scale if name in ("P", "T1", "T2") else c)
                _gauss(sig, t, centre, w, a * gain)
        else:  # ventricular: no P, wide QRS of the focus's polarity, discordant broad T
            _gauss(sig, t, tb - 0.02, pvc_width * 1.2, -0.25 * pvc_amp)
            _gauss(sig, t, tb, pvc_width, pvc_amp * gain)
            _gauss(sig, t, tb + 0.06, pvc_width * 1.3, -0.35 * pvc_amp)
            _gauss(sig, t, tb + 0.30 * scale, 0.07, -0.35 * np.sign(pvc_amp) * rng.uniform(0.7, 1.3))

    # ---- noise and baseline
    wander = rng.uniform(0.05, 0.25) * np.sin(2 * np.pi * resp_hz * t + rng.uniform(0, 2 * np.pi))
    drift = np.cumsum(rng.normal(0, 1, n))
    drift = np.convolve(drift - drift.mean(), np.ones(FS * 4) / (FS * 4), mode="same")
    drift *= rng.uniform(0.05, 0.3) / max(np.abs(drift).max(), 1e-9)
    mains = rng.uniform(0.0, 0.03) * np.sin(2 * np.pi * rng.choice([50.0, 60.0]) * t + rng.uniform(0, 2 * np.pi))
    white = rng.normal(0, rng.uniform(0.008, 0.03), n)
    sig = sig + wander + drift + mains + white
    for (s, e), kind in zip(artifacts, artifact_kinds):
        lo, hi = int(s * FS), int(e * FS)
        if kind == "noise":  # muscle noise: differenced white noise (broadband, high-frequency heavy)
            m = hi - lo
            env = np.sin(np.linspace(0, np.pi, m)) ** 0.5
            emg = np.diff(rng.normal(0, 1, m + 1))
            sig[lo:hi] += rng.uniform(0.25, 0.6) * env * emg
        else:  # lead off: flat at a constant, a little noise
            sig[lo:hi] = rng.uniform(-0.3, 0.3) + rng.normal(0, 0.003, hi - lo)
    sig *= rng.uniform(0.7, 1.4)  # recording gain

    visible = np.ones(len(r_times), dtype=bool)
    for s, e in artifacts:
        visible &= ~((r_times > s - 0.05) & (r_times < e + 0.05))
    return {"signal": sig.astype(np.float32), "fs": FS, "r_times": r_times, "beat_types": beat_types,
            "visible": visible, "artifacts": artifacts, "artifact_kinds": artifact_kinds, "seed": seed}


# Training targets: two channels per sample, both causal (they turn on once the evidence has been seen).
BEAT_ON = (0.0, 0.05)       # "a QRS just happened": [R, R+50 ms]
PVC_ON = (0.03, 0.30)       # "that beat was ventricular": [R+30 ms, R+300 ms]
ARTIFACT_LAG = 0.15         # artifacts are scored from 150 ms after they start (time to recognise them)


def targets(rec):
    """(y, mask) each (N, 2): channel 0 beat, channel 1 anomaly; mask 0 where the target is ambiguous."""
    n = len(rec["signal"])
    y = np.zeros((n, 2), np.float32)
    mask = np.ones((n, 2), np.float32)

    def idx(a, b):
        return slice(max(int(round(a * FS)), 0), min(int(round(b * FS)), n))

    for tb, kind, vis in zip(rec["r_times"], rec["beat_types"], rec["visible"]):
        if not vis:
            continue
        y[idx(tb + BEAT_ON[0], tb + BEAT_ON[1]), 0] = 1
        mask[idx(tb - 0.02, tb + BEAT_ON[0]), 0] = 0   # the QRS upstroke: either answer is fine
        mask[idx(tb + BEAT_ON[1], tb + 0.08), 0] = 0
        if kind == "V":
            y[idx(tb + PVC_ON[0], tb + PVC_ON[1]), 1] = 1
            mask[idx(tb - 0.05, tb + PVC_ON[0]), 1] = 0
            mask[idx(tb + PVC_ON[1], tb + 0.45), 1] = 0
    for s, e in rec["artifacts"]:
        y[idx(s, e), 1] = 1
        mask[idx(s, s + ARTIFACT_LAG), 1] = 0
        mask[idx(e - 0.05, e + 0.3), 1] = 0
        mask[idx(s - 0.05, e + 0.3), 0] = 0  # beats inside artifacts: not asked for
    return y, mask
