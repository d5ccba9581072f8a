#!/usr/bin/env python3
"""Architecture fixtures for Tests/GenNNTests/PretrainedNetworkTests.swift.

The real weights of VGG and Inception are far too large to commit, so both sides build the
networks with the same *deterministic* weights, computed from a formula that is cheap to
implement twice (here in numpy, in the test in Swift), run them on the same deterministic input,
and compare summaries of a few activations and of the logits.

Weights: every float tensor of torchvision's state_dict, by name, in PyTorch's layout (OIHW for
convolutions, [out, in] for Linear), flat row-major index i:

    seed   = FNV-1a 64 of the UTF-8 name
    u(i)   = splitmix64(seed + (i + 1) * 0x9E3779B97F4A7C15) >> 40, divided by 2^24   (in [0, 1))
    s(i)   = 2 u(i) - 1                                                               (in [-1, 1))

    conv / linear weight (rank 4 or 2):   sqrt(6 / fan_in) * s(i)   (He-uniform, fan_in = numel / out)
    BatchNorm weight (rank 1 ".weight"):  1 + 0.2 s(i)
    any ".bias":                          0.1 s(i)
    running_mean:                         0.1 s(i)
    running_var:                          0.75 + 0.5 u(i)
    num_batches_tracked:                  left at 0 (ignored by the Swift loader)

splitmix64(z): z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9; z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
z ^ (z >> 31), all modulo 2^64.

Input: NCHW float32, x(i) = 2 s(i) with the seed of the name "input" (values in [-2, 2), about
the range of a normalised image). For inception_v3 the model is built with transform_input=False
and gets x directly: x plays the role of the *transformed* input, which is what the Swift
network's `activations`/`logits` take (its `preprocess` does the normalisation and the transform).

Each fixture `net_<name>.json` holds the input shape and, for each compared activation (and
"logits"), the NCHW shape, mean, std, min, max, and 96 samples at NCHW flat indices
`(k * numel) // 96 + (k * 7919) % max(numel // 96, 1)`, k = 0..95, with those indices.

Run with a Python that has torch + torchvision (CPU is enough):

    /tmp/gen-anchors/bin/python Tools/make_network_fixtures.py           # writes the fixtures
    /tmp/gen-anchors/bin/python Tools/make_network_fixtures.py --check   # recomputes and compares

Also prints, for the record, the smallest input each network accepts.
"""
import argparse
import json
import os
import sys

import numpy as np
import torch
import torchvision

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "GenNNTests", "Fixtures")
M64 = (1 << 64) - 1


def fnv1a64(name: str) -> int:
    h = 0xCBF29CE484222325
    for b in name.encode("utf-8"):
        h ^= b
        h = (h * 0x100000001B3) & M64
    return h


def uniform(name: str, n: int) -> np.ndarray:
    """u(i) for i in 0..<n as float64 (exact: 24-bit values)."""
    seed = np.uint64(fnv1a64(name))
    with np.errstate(over="ignore"):
        i = np.arange(1, n + 1, dtype=np.uint64)
        z = seed + i * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(40)).astype(np.float64) / float(1 << 24)


def value(name: str, shape) -> np.ndarray:
    n = int(np.prod(shape)) if len(shape) else 1
    u = uniform(name, n)
    s = 2 * u - 1
    if name.endswith("running_var"):
        v = 0.75 + 0.5 * u
    elif name.endswith("running_mean") or name.endswith(".bias"):
        v = 0.1 * s
    elif name.endswith(".weight") and len(shape) == 1:
        v = 1 + 0.2 * s
    elif name.endswith(".weight"):
        fan_in = n // shape[0]
        v = np.sqrt(6.0 / fan_in) * s
    else:
        raise ValueError(f"no formula for {name} {shape}")
    return v.astype(np.float32).reshape(shape)


def fill(model: torch.nn.Module):
    sd = model.state_dict()
    new = {}
    for k, t in sd.items():
        if k.endswith("num_batches_tracked"):
            new[k] = torch.zeros_like(t)
        else:
            new[k] = torch.from_numpy(value(k, list(t.shape)))
    model.load_state_dict(new, strict=True)
    model.eval()


def summary(t: torch.Tensor) -> dict:
    a = t.detach().double().numpy()
    flat = a.reshape(-1)
    n = flat.size
    step = max(n // 96, 1)
    idx = [(k * n) // 96 + (k * 7919) % step for k in range(96)]
    idx = [min(i, n - 1) for i in idx]
    return {
        "shape": list(a.shape),
        "mean": float(flat.mean()), "std": float(flat.std()),
        "min": float(flat.min()), "max": float(flat.max()),
        "indices": idx, "values": [float(flat[i]) for i in idx],
    }


def run(name: str, size: int, layers: dict) -> dict:
    """layers: fixture key -> module attribute path whose output is recorded."""
    if name.startswith("inception"):
        model = torchvision.models.Inception3(transform_input=False, aux_logits=False, init_weights=False)
    else:
        model = getattr(torchvision.models, name)(weights=None)
    fill(model)
    x = torch.from_numpy((2 * (2 * uniform("input", 3 * size * size) - 1)).astype(np.float32).reshape(1, 3, size, size))
    got = {}
    hooks = []
    for key, path in layers.items():
        mod = model.get_submodule(path)
        hooks.append(mod.register_forward_hook(lambda m, i, o, key=key: got.__setitem__(key, o.clone())))
    with torch.no_grad():
        logits = model(x)
    for h in hooks:
        h.remove()
    out = {"network": name, "input_shape": [1, 3, size, size], "layers": {}}
    for key in layers:
        out["layers"][key] = summary(got[key])
    out["layers"]["logits"] = summary(logits)
    return out


CASES = {
    # SqueezeNet 1.1 (no real weights here): layer names -> torchvision features index.
    "squeezenet1_1": (61, {"conv1": "features.1", "pool1": "features.2", "fire3": "features.4",
                           "fire5": "features.7", "fire9": "features.12"}),
    # VGG19: post-ReLU outputs (torchvision's ReLU is in place, so hooks on the ReLU modules).
    "vgg19": (80, {"block1_conv2": "features.3", "block3_conv4": "features.17",
                   "block4_pool": "features.27", "block5_conv4": "features.35"}),
    "vgg16": (32, {"block2_conv2": "features.8", "block5_conv3": "features.29", "block5_pool": "features.30"}),
    # InceptionV3 at its minimum size.
    "inception_v3": (75, {"Conv2d_2b_3x3": "Conv2d_2b_3x3", "Mixed_5b": "Mixed_5b", "Mixed_6a": "Mixed_6a",
                          "Mixed_6e": "Mixed_6e", "Mixed_7a": "Mixed_7a", "Mixed_7c": "Mixed_7c"}),
}


def minimum_size(name: str) -> int:
    if name.startswith("inception"):
        model = torchvision.models.Inception3(transform_input=False, aux_logits=False, init_weights=False)
    else:
        model = getattr(torchvision.models, name)(weights=None)
    model.eval()
    for s in range(8, 120):
        try:
            with torch.no_grad():
                model(torch.zeros(1, 3, s, s))
            return s
        except RuntimeError:
            continue
    return -1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    ok = True
    for name, (size, layers) in CASES.items():
        out = run(name, size, layers)
        path = os.path.join(OUT, f"net_{name}.json")
        if args.check:
            old = json.load(open(path))
            for k, v in out["layers"].items():
                d = max(abs(a - b) for a, b in zip(v["values"], old["layers"][k]["values"]))
                scale = max(abs(v["min"]), abs(v["max"]), 1e-12)
                print(f"{name} {k}: max |diff| / max |x| = {d / scale:.2e}")
                ok = ok and d / scale < 1e-4
        else:
            with open(path, "w") as f:
                json.dump(out, f, separators=(",", ":"))
            print(f"wrote {path} ({os.path.getsize(path)} bytes)")
        for k, v in out["layers"].items():
            print(f"  {k}: shape {v['shape']} mean {v['mean']:.4g} std {v['std']:.4g} max {v['max']:.4g}")
    for name in ["squeezenet1_0", "squeezenet1_1", "vgg16", "vgg19", "inception_v3"]:
        print(f"minimum input size {name}: {minimum_size(name)}")
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
