"""PyTorch as a test oracle for MiniDeep (tests/MiniDeep.Core.Tests/Oracle/TorchOracleTests.cs).

Reads a JSON list of cases on stdin and writes a JSON object of results on stdout. A case is
{"id", "code", "inputs": {name: {"data", "shape", "dtype", "grad"}}, "upstream"}: the inputs become
float64 (or int64) tensors, exactly the values MiniDeep saw; "code" is Python that assigns the result
to `out`, with torch, F (torch.nn.functional) and nn in scope; when "upstream" is given, the gradient
of sum(out * upstream) with respect to every input marked "grad" is returned too. Everything runs in
float64, so the reference carries no float32 rounding of its own.
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


def run(case):
    env = {name: tensor(spec) for name, spec in case["inputs"].items()}
    scope = {"torch": torch, "F": F, "nn": nn, **env}
    exec(case["code"], scope)
    out = scope["out"]
    result = {"out": out.detach().reshape(-1).tolist(), "shape": list(out.shape), "grads": {}}
    if case.get("upstream") is not None:
        up = torch.tensor(case["upstream"], dtype=torch.float64).reshape(out.shape)
        wanted = [name for name, spec in case["inputs"].items() if spec.get("grad")]
        grads = torch.autograd.grad((out * up).sum(), [env[n] for n in wanted], allow_unused=True)
        for name, g in zip(wanted, grads):
            result["grads"][name] = None if g is None else g.reshape(-1).tolist()
    return result


def main():
    cases = json.load(sys.stdin)
    results = {}
    for case in cases:
        try:
            results[case["id"]] = run(case)
        except Exception as e:  # reported per case, so one bad case names itself
            results[case["id"]] = {"error": f"{type(e).__name__}: {e}"}
    json.dump({"torch": torch.__version__, "results": results}, sys.stdout)


if __name__ == "__main__":
    main()
