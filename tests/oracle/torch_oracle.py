"""PyTorch as a test oracle for MiniDeep (tests/MiniDeep.Core.Tests/Oracle/TorchOracleTests.cs).

Reads a JSON list of cases on stdin and writes a JSON object of results on stdout. A case is
{"id", "code", "inputs": {name: {"data", "shape", "dtype", "grad"}}, "upstream"}: the inputs become
float64 (or int64) tensors, exactly the values MiniDeep saw; "code" is Python that assigns the result
to `out`, with torch, F (torch.nn.functional) and nn in scope. When "upstream" is true, a random u of
out's shape (float32 values, seeded by the case's position, returned so that MiniDeep uses the same)
and the gradient of sum(out * u) with respect to every input marked "grad" are returned too.
Everything runs in float64, so the reference carries no float32 rounding of its own.
"""
import json
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)


def tensor(spec):
    dtype = torch.int64 if spec["dtype"] == "int" else torch.float64
    t = torch.tensor(spec["data"], dtype=dtype).reshape(spec["shape"])
    return t.requires_grad_() if spec.get("grad") else t


def run(case, seed):
    env = {name: tensor(spec) for name, spec in case["inputs"].items()}
    scope = {"torch": torch, "F": F, "nn": nn, **env}
    exec(case["code"], scope)
    out = scope["out"]
    result = {"out": out.detach().reshape(-1).tolist(), "shape": list(out.shape), "grads": {}}
    if case.get("upstream"):
        g = torch.Generator().manual_seed(seed)
        up = torch.randn(out.shape, generator=g, dtype=torch.float64).float().double()
        result["upstream"] = up.reshape(-1).tolist()
        wanted = [name for name, spec in case["inputs"].items() if spec.get("grad")]
        grads = torch.autograd.grad((out * up).sum(), [env[n] for n in wanted], allow_unused=True)
        for name, g in zip(wanted, grads):
            result["grads"][name] = None if g is None else g.reshape(-1).tolist()
    return result


def main():
    cases = json.load(sys.stdin)
    results = {}
    for position, case in enumerate(cases):
        try:
            results[case["id"]] = run(case, position)
        except Exception as e:  # reported per case, so one bad case names itself
            results[case["id"]] = {"error": f"{type(e).__name__}: {e}"}
    json.dump({"torch": torch.__version__, "results": results}, sys.stdout)


if __name__ == "__main__":
    main()
