"""Train the heartbeat demo's network on synthetic ECG and write the files ``rnnjit demo`` ships.

    pip install -e ".[test]"            # torch==2.13.0 (CPU) and onnx
    python examples/heartbeat/train.py  # ~12 minutes on 2 cores; writes engine/demo/data/

Reproducible: the data come from ecg.make_recording with fixed seeds, torch is seeded and runs
deterministic CPU kernels on two threads. Writes:

- heartbeat_state_dict.pt  the trained weights (torch.save of the state_dict; load with head_activation="sigmoid")
- heartbeat.onnx           the same network exported by torch.onnx.export (GRU -> Linear -> Sigmoid)
- heartbeat.npz            the ONNX file converted to rnnjit's native format (what the demo loads)
- recording.npz            a held-out recording (a seed never used in training) and its ground truth

The network: GRU(1 -> 32, 2 layers) -> Linear(32 -> 2) -> sigmoid, one ECG sample in per step, two
probabilities out (beat, anomaly); the targets are ecg.targets (causal, masked where ambiguous).
"""

import argparse
import os
import sys
import time

import numpy as np
import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import ecg  # noqa: E402

OUT = os.path.join(HERE, "..", "..", "engine", "demo", "data")
HIDDEN, LAYERS = 32, 2
TRAIN_SEEDS = range(1, 241)        # 240 recordings of 60 s
HELD_OUT_SEED = 9001               # the shipped recording: never seen in training
HELD_OUT_SECONDS = 180.0


class HeartbeatNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(1, HIDDEN, num_layers=LAYERS, batch_first=True)
        self.head = nn.Linear(HIDDEN, 2)

    def forward(self, x):  # (B, T, 1) -> (B, T, 2)
        return torch.sigmoid(self.head(self.rnn(x)[0]))

    def logits(self, x):
        return self.head(self.rnn(x)[0])


def training_set(seeds, seconds=60.0):
    xs, ys, ms = [], [], []
    for s in seeds:
        rng = np.random.default_rng(10_000 + s)
        rec = ecg.make_recording(seconds, s, pvc_rate=rng.uniform(0.03, 0.2),
                                 dropouts=int(rng.integers(0, 3)), bursts=int(rng.integers(0, 3)))
        y, m = ecg.targets(rec)
        xs.append(rec["signal"])
        ys.append(y)
        ms.append(m)
    return np.stack(xs)[..., None], np.stack(ys), np.stack(ms)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=900)
    ap.add_argument("--out", default=OUT)
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    rng = np.random.default_rng(0)

    t0 = time.time()
    X, Y, M = training_set(TRAIN_SEEDS)
    print(f"training set: {X.shape[0]} recordings x {X.shape[1] / ecg.FS:.0f} s ({time.time() - t0:.0f} s)")
    net = HeartbeatNet()
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=args.steps, pct_start=0.1)
    crop, batch = 6 * ecg.FS, 32
    pos_weight = torch.tensor([1.0, 3.0])  # anomalies are rare; weigh their positives up
    for step in range(args.steps):
        idx = rng.integers(0, X.shape[0], batch)
        start = rng.integers(0, X.shape[1] - crop, batch)
        xb = torch.from_numpy(np.stack([X[i, s:s + crop] for i, s in zip(idx, start)]))
        yb = torch.from_numpy(np.stack([Y[i, s:s + crop] for i, s in zip(idx, start)]))
        mb = torch.from_numpy(np.stack([M[i, s:s + crop] for i, s in zip(idx, start)]))
        mb[:, :ecg.FS] = 0  # the first second: the state is still warming up
        loss = nn.functional.binary_cross_entropy_with_logits(net.logits(xb), yb, weight=mb, pos_weight=pos_weight,
                                                              reduction="sum") / mb.sum()
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 100 == 0 or step == args.steps - 1:
            print(f"step {step:5d}  loss {loss.item():.4f}  ({time.time() - t0:.0f} s)", flush=True)

    net.eval()
    os.makedirs(args.out, exist_ok=True)
    torch.save(net.state_dict(), os.path.join(args.out, "heartbeat_state_dict.pt"))
    torch.onnx.export(net, torch.zeros(1, 50, 1), os.path.join(args.out, "heartbeat.onnx"), dynamo=False,
                      input_names=["ecg"], output_names=["scores"],
                      dynamic_axes={"ecg": {0: "batch", 1: "time"}, "scores": {0: "batch", 1: "time"}})
    import engine   # the same network in rnnjit's native format: what `rnnjit demo` loads (numpy alone)

    engine.load(os.path.join(args.out, "heartbeat.onnx")).save(os.path.join(args.out, "heartbeat.npz"))
    rec = ecg.make_recording(HELD_OUT_SECONDS, HELD_OUT_SEED, pvc_rate=0.08, dropouts=3, bursts=3)
    np.savez_compressed(os.path.join(args.out, "recording.npz"),
                        **{k: np.asarray(v) for k, v in rec.items()})
    print(f"wrote {sorted(os.listdir(args.out))} to {os.path.abspath(args.out)} ({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
