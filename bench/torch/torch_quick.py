"""PyTorch on the CPU, on the workloads of MiniDeep's quick mode (bench/MiniDeep.Benchmarks/Quick.cs),
timed the way the quick mode times them, so that the two JSON objects compare key by key.

- the training steps: MLP 784-512-256-10 at batch 64 and 256, and the CNN
  conv32-ReLU-maxpool-conv64-ReLU-maxpool-fc128-ReLU-fc10 at batch 64; SGD with momentum 0.9,
  lr 0.01, cross-entropy, uniform [0, 1) inputs and random labels, float32. Each step warms up for
  2 s, then 15 rounds take one sample of each step (a sample lasts at least 0.05 s, 0.1 s for the
  CNN) and each figure is the median over the rounds;
- the per-op overhead: an add of two 64-float tensors, and (w*w).sum().backward() on 64 floats with
  w.grad reset to None first, through Python, as a PyTorch user calls them;
- SGEMM: n x n x n products written into a preallocated C (torch.mm(a, b, out=c)), n = 64 to 2048.

Usage: python3 bench/torch/torch_quick.py [--threads N] [--json FILE]
(Debian: apt-get install python3-torch; /usr/bin/python3, the interpreter that package serves.)
"""
import argparse
import json
import os
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def repetitions_for(f, min_sample, warmup=2.0):
    start, warm = time.perf_counter(), 0
    while warm < 3 or time.perf_counter() - start < warmup:
        f()
        warm += 1
    per_call = (time.perf_counter() - start) / warm
    return max(1, int(-(-min_sample // per_call)))


def time_per_call(f, reps):
    start = time.perf_counter()
    for _ in range(reps):
        f()
    return (time.perf_counter() - start) / reps


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else 0.5 * (xs[n // 2 - 1] + xs[n // 2])


def median_seconds(f, min_sample, samples, warmup=2.0):
    reps = repetitions_for(f, min_sample, warmup)
    return median([time_per_call(f, reps) for _ in range(samples)])


class Step:
    """One training step (SGD, momentum 0.9, lr 0.01, cross-entropy) of a model on a fixed batch."""

    def __init__(self, model, shape, seed):
        g = torch.Generator().manual_seed(seed)
        self.model = model
        self.opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        self.x = torch.rand(shape, generator=g)
        self.y = torch.randint(0, 10, (shape[0],), generator=g)

    def __call__(self):
        self.opt.zero_grad()
        loss = F.cross_entropy(self.model(self.x), self.y)
        loss.backward()
        self.opt.step()


def mlp():
    return nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 10))


def cnn():
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))


def transformer():
    # Two post-norm encoder layers of width 64 over 32 tokens; enable_nested_tensor has no effect in training.
    return nn.Sequential(
        nn.TransformerEncoder(nn.TransformerEncoderLayer(64, 4, dim_feedforward=256, dropout=0.0, batch_first=True), 2,
                              enable_nested_tensor=False),
        nn.Flatten(), nn.Linear(32 * 64, 10))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    total = time.perf_counter()

    steps = [("mlp64", Step(mlp(), (64, 784), 1), 0.05), ("mlp256", Step(mlp(), (256, 784), 1), 0.05),
             ("cnn64", Step(cnn(), (64, 1, 28, 28), 2), 0.1), ("transformer32", Step(transformer(), (32, 32, 64), 3), 0.1)]
    reps = [repetitions_for(f, m) for _, f, m in steps]
    samples = [[] for _ in steps]
    for _ in range(15):
        for k, (_, f, _m) in enumerate(steps):
            samples[k].append(time_per_call(f, reps[k]))

    g = torch.Generator().manual_seed(3)
    a, b = torch.randn(64, generator=g), torch.randn(64, generator=g)
    w = torch.randn(64, generator=g).requires_grad_()

    def backward():
        w.grad = None
        (w * w).sum().backward()

    add_us = median_seconds(lambda: a + b, 0.02, 9) * 1e6
    back_us = median_seconds(backward, 0.02, 9) * 1e6

    sgemm = {}
    for n in (64, 128, 256, 512, 1024, 2048):
        g = torch.Generator().manual_seed(n)
        x, y, c = torch.randn(n, n, generator=g), torch.randn(n, n, generator=g), torch.empty(n, n)
        s = median_seconds(lambda: torch.mm(x, y, out=c), 0.02, 5 if n >= 2048 else 9, warmup=0.5)
        sgemm[str(n)] = round(2.0 * n ** 3 / s / 1e9, 1)

    result = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu_capability": next((line.split(":", 1)[1].strip() for line in torch.__config__.show().splitlines()
                                if "CPU capability usage" in line), None),
        "mkldnn": torch.backends.mkldnn.is_available(),
        "sgemm": sgemm,
        "mlp_step_ms": {"64": round(median(samples[0]) * 1e3, 3), "256": round(median(samples[1]) * 1e3, 3)},
        "cnn_step_ms": {"64": round(median(samples[2]) * 1e3, 3)},
        "transformer_step_ms": {"32": round(median(samples[3]) * 1e3, 3)},
        "tiny_add_us": round(add_us, 3),
        "tiny_backward_us": round(back_us, 3),
        "seconds": round(time.perf_counter() - total, 1),
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        tmp = args.json + ".tmp"
        with open(tmp, "w") as f:
            f.write(text + "\n")
        os.replace(tmp, args.json)


if __name__ == "__main__":
    main()
