"""MiniDeep's quick mode against PyTorch on this machine, measured, not quoted.

Alternates processes, so that both see the same phases of a noisy machine: each round runs
MiniDeep's `quick` mode once and torch_quick.py once with 1 thread and once with 2, and PyTorch's
figure for a workload in a round is the better of its two thread counts (PyTorch's OpenMP threads
cost more than they bring on the small products, and the baseline should be its best). Prints a
markdown table: the median over rounds of each side, the range, and the median of the per-round
speed-ups (PyTorch's time / MiniDeep's; MiniDeep's GFLOP/s / PyTorch's), > 1 where MiniDeep is
faster. Writes every round's JSON to --json.

Usage: /usr/bin/python3 bench/torch/compare.py [--rounds 3] [--json FILE]
Needs python3-torch (Debian) and the .NET SDK; run from the repository root.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile


def run_json(cmd):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "out.json")
        subprocess.run(cmd + ["--json", path], check=True, stdout=subprocess.DEVNULL)
        with open(path) as f:
            return json.load(f)


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else 0.5 * (xs[n // 2 - 1] + xs[n // 2])


# (label, key path, unit, higher is better)
ROWS = [("SGEMM n = %s" % n, ("sgemm", str(n)), "GFLOP/s", True) for n in (64, 128, 256, 512, 1024, 2048)] + [
    ("MLP 784-512-256-10 step, batch 64", ("mlp_step_ms", "64"), "ms", False),
    ("MLP step, batch 256", ("mlp_step_ms", "256"), "ms", False),
    ("CNN step, batch 64", ("cnn_step_ms", "64"), "ms", False),
    ("Transformer encoder step (2 layers, width 64), 32 sequences of 32", ("transformer_step_ms", "32"), "ms", False),
    ("add of two 64-float tensors", ("tiny_add_us",), "µs", False),
    ("(w*w).sum().backward(), 64 floats", ("tiny_backward_us",), "µs", False),
]


def get(d, path):
    for k in path:
        d = d[k]
    return d


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json")
    args = parser.parse_args()
    subprocess.run(["dotnet", "build", "-c", "Release", "bench/MiniDeep.Benchmarks", "-v", "q", "-nologo"],
                   check=True, stdout=subprocess.DEVNULL)
    ours_cmd = ["dotnet", "run", "--no-build", "-c", "Release", "--project", "bench/MiniDeep.Benchmarks", "--", "quick"]
    torch_cmd = [sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "torch_quick.py")]
    rounds = []
    for r in range(args.rounds):
        ours = run_json(ours_cmd)
        torch2 = run_json(torch_cmd + ["--threads", "2"])
        torch1 = run_json(torch_cmd + ["--threads", "1"])
        rounds.append({"minideep": ours, "torch_2_threads": torch2, "torch_1_thread": torch1})
        print(f"round {r + 1} of {args.rounds} done", file=sys.stderr)

    t = rounds[0]["torch_2_threads"]
    print(f"MiniDeep (vector width {rounds[0]['minideep']['vector_width']}, {rounds[0]['minideep']['threads']} threads, "
          f"FMA peak {median([x['minideep']['peak_gflops'] for x in rounds]):.0f} GFLOP/s) against PyTorch {t['torch']} "
          f"(CPU capability {t['cpu_capability']}, oneDNN {'on' if t['mkldnn'] else 'off'}), {args.rounds} alternating rounds\n")
    print("| workload | MiniDeep, median (range) | PyTorch, best of 1 or 2 threads, median (range) | speed-up, median (range) |")
    print("| --- | --- | --- | --- |")
    for label, path, unit, higher in ROWS:
        ours = [get(x["minideep"], path) for x in rounds]
        best = [(max if higher else min)(get(x["torch_1_thread"], path), get(x["torch_2_threads"], path)) for x in rounds]
        speed = [(o / b) if higher else (b / o) for o, b in zip(ours, best)]
        fmt = (lambda v: f"{v:.1f}") if higher else (lambda v: f"{v:.3g}")
        print(f"| {label} | {fmt(median(ours))} {unit} ({fmt(min(ours))}–{fmt(max(ours))}) | "
              f"{fmt(median(best))} {unit} ({fmt(min(best))}–{fmt(max(best))}) | "
              f"{median(speed):.2f}× ({min(speed):.2f}–{max(speed):.2f}) |")
    if args.json:
        tmp = args.json + ".tmp"
        with open(tmp, "w") as f:
            json.dump(rounds, f, indent=2)
            f.write("\n")
        os.replace(tmp, args.json)


if __name__ == "__main__":
    main()
