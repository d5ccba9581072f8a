#!/usr/bin/env python3
"""Reference values for Tests/GenNNTests/ReferenceTests.swift.

Computes layer, loss and optimizer results with PyTorch (and Keras 3 for the LSTM and RMSprop,
whose semantics gen follows) and writes them as small JSON fixtures to
Tests/GenNNTests/Fixtures/. Each file is one JSON object mapping a name to
{"shape": [...], "data": [flat row-major numbers]}; integer data (labels, tokens) is stored as
numbers too.

Inputs are drawn from a seeded numpy generator and rounded to float32 first; references are
then computed in float64 from those exact float32 values and stored rounded to float32, so a
Swift float32 implementation should match to within its own rounding.

Run (CPU only; needs torch, keras 3 with the TensorFlow backend, numpy):

    python Tools/make_fixtures.py            # writes the fixtures
    python Tools/make_fixtures.py --check    # recomputes and compares to the committed files

The output is deterministic for a given library version; rerun only when a fixture's content
must change, and commit the JSON files together with this script.
"""
import argparse
import json
import os
import sys

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, "Tests", "GenNNTests", "Fixtures")

torch.set_default_dtype(torch.float64)
torch.use_deterministic_algorithms(True)


# ----------------------------------------------------------------------------------------------
# helpers

def f32(a):
    """Rounds to float32 (the values the Swift side will see), returned as float64 for exact math."""
    return np.asarray(a, dtype=np.float32).astype(np.float64)


def rand(rng, shape, scale=1.0):
    return f32(rng.standard_normal(shape) * scale)


def t64(a, grad=False):
    return torch.tensor(np.asarray(a, dtype=np.float64), dtype=torch.float64, requires_grad=grad)


def npy(t):
    return t.detach().cpu().numpy().astype(np.float64) if isinstance(t, torch.Tensor) else np.asarray(t, np.float64)


def entry(a):
    a = np.asarray(a, dtype=np.float64)
    if not np.all(np.isfinite(a)):
        raise ValueError("non-finite value in fixture")
    flat = a.astype(np.float32).reshape(-1)
    # str(np.float32) is the shortest string that round-trips to the same float32.
    return {"shape": list(a.shape), "data": [float(str(v)) for v in flat]}


def dump(name, tensors):
    obj = {k: entry(v) for k, v in tensors.items()}
    text = json.dumps(obj, separators=(",", ":"), sort_keys=True)
    return name, text


# ----------------------------------------------------------------------------------------------
# 1. Dense vs torch.nn.Linear

def dense_fixture(rng):
    n, fin, units = 4, 5, 3
    x = rand(rng, (n, fin))
    kernel = rand(rng, (fin, units), 0.5)      # gen layout [in, units]
    bias = rand(rng, (units,), 0.5)
    seed = rand(rng, (n, units))              # upstream gradient dL/dy
    lin = torch.nn.Linear(fin, units)
    with torch.no_grad():
        lin.weight.copy_(t64(kernel.T))       # torch layout [out, in]
        lin.bias.copy_(t64(bias))
    xt = t64(x, grad=True)
    y = lin(xt)
    (y * t64(seed)).sum().backward()
    return dump("dense.json", {
        "x": x, "kernel": kernel, "bias": bias, "seed": seed,
        "y": npy(y), "dx": npy(xt.grad),
        "dkernel": npy(lin.weight.grad).T, "dbias": npy(lin.bias.grad),
    })


# ----------------------------------------------------------------------------------------------
# 2. LSTM vs torch.nn.LSTM and keras.layers.LSTM

def torch_lstm(x, kernel, rkernel, bias, seed_out, seed_h, h0=None, c0=None):
    """Returns forward values and gradients in gen's layouts.

    Loss = Σ outputs ⊙ seed_out + Σ finalHidden ⊙ seed_h (finalCell is detached in gen)."""
    fin, g4 = kernel.shape
    h = g4 // 4
    lstm = torch.nn.LSTM(fin, h, batch_first=True)
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(t64(kernel.T))   # [4H, in], gate order i, f, g, o = Keras i, f, c, o
        lstm.weight_hh_l0.copy_(t64(rkernel.T))  # [4H, H]
        lstm.bias_ih_l0.copy_(t64(bias))
        lstm.bias_hh_l0.zero_()
    xt = t64(x, grad=True)
    if h0 is not None:
        h0t, c0t = t64(h0[None], grad=True), t64(c0[None], grad=True)
        out, (hn, cn) = lstm(xt, (h0t, c0t))
    else:
        out, (hn, cn) = lstm(xt)
    loss = (out * t64(seed_out)).sum() + (hn[0] * t64(seed_h)).sum()
    loss.backward()
    res = {
        "outputs": npy(out), "final_h": npy(hn[0]), "final_c": npy(cn[0]),
        "dx": npy(xt.grad),
        "dkernel": npy(lstm.weight_ih_l0.grad).T,
        "drecurrent": npy(lstm.weight_hh_l0.grad).T,
        # b_ih and b_hh enter as a sum: both get the same gradient, which is dL/d(bias).
        "dbias": npy(lstm.bias_ih_l0.grad),
    }
    assert np.allclose(npy(lstm.bias_ih_l0.grad), npy(lstm.bias_hh_l0.grad))
    if h0 is not None:
        res["dh0"] = npy(h0t.grad)[0]
        res["dc0"] = npy(c0t.grad)[0]
    return res


def keras_lstm(x, kernel, rkernel, bias, seed_out, seed_h, h0=None, c0=None):
    import keras
    import tensorflow as tf
    fin, g4 = kernel.shape
    h = g4 // 4
    layer = keras.layers.LSTM(h, return_sequences=True, return_state=True, dtype="float64")
    xt = tf.constant(x, dtype=tf.float64)
    layer.build((None, None, fin))
    layer.set_weights([kernel, rkernel, bias])   # Keras layouts equal gen's
    with tf.GradientTape() as tape:
        tape.watch(xt)
        states = None
        if h0 is not None:
            states = [tf.constant(h0, tf.float64), tf.constant(c0, tf.float64)]
            tape.watch(states)
            out, hn, cn = layer(xt, initial_state=states)
        else:
            out, hn, cn = layer(xt)
        loss = tf.reduce_sum(out * seed_out) + tf.reduce_sum(hn * seed_h)
    wk, wr, wb = layer.trainable_weights
    targets = [xt, wk, wr, wb] + (states if states else [])
    grads = tape.gradient(loss, targets)
    res = {"outputs": out.numpy(), "final_h": hn.numpy(), "final_c": cn.numpy(),
           "dx": grads[0].numpy(), "dkernel": grads[1].numpy(),
           "drecurrent": grads[2].numpy(), "dbias": grads[3].numpy()}
    if states:
        res["dh0"] = grads[4].numpy()
        res["dc0"] = grads[5].numpy()
    return res


def lstm_case(rng, batch, steps, fin, h, with_state):
    x = rand(rng, (batch, steps, fin))
    kernel = rand(rng, (fin, 4 * h), 0.5)
    rkernel = rand(rng, (h, 4 * h), 0.5)
    bias = rand(rng, (4 * h,), 0.3)
    bias[h:2 * h] += 1.0                      # a forget-gate bias like the initializer's
    bias = f32(bias)
    seed_out = rand(rng, (batch, steps, h))
    seed_h = rand(rng, (batch, h))
    h0 = c0 = None
    if with_state:
        h0 = rand(rng, (batch, h), 0.5)
        c0 = rand(rng, (batch, h), 0.5)
    tr = torch_lstm(x, kernel, rkernel, bias, seed_out, seed_h, h0, c0)
    kr = keras_lstm(x, kernel, rkernel, bias, seed_out, seed_h, h0, c0)
    # The two frameworks must agree before either is used as the reference.
    for k in tr:
        err = np.max(np.abs(tr[k] - kr[k]))
        assert err < 1e-10, f"torch vs keras LSTM disagree on {k}: {err}"
    inputs = {"x": x, "kernel": kernel, "recurrent_kernel": rkernel, "bias": bias,
              "seed_out": seed_out, "seed_h": seed_h}
    if with_state:
        inputs.update({"h0": h0, "c0": c0})
    return inputs, tr, kr


def lstm_fixtures(rng):
    files = []
    for name, (b, t, with_state) in {"lstm_a": (2, 5, False), "lstm_b": (3, 4, True)}.items():
        inputs, tr, kr = lstm_case(rng, b, t, 3, 4, with_state)
        d = dict(inputs)
        d.update({f"torch_{k}": v for k, v in tr.items()})
        d.update({f"keras_{k}": v for k, v in kr.items()})
        files.append(dump(f"{name}.json", d))
    return files


def lstm_tokens_fixture(rng):
    """Token path: one-hot input [B, T, V] through torch.nn.LSTM (input gradient not defined)."""
    batch, steps, vocab, h = 3, 5, 6, 4
    tokens = rng.integers(0, vocab, size=(batch, steps))
    onehot = np.eye(vocab)[tokens]
    kernel = rand(rng, (vocab, 4 * h), 0.5)
    rkernel = rand(rng, (h, 4 * h), 0.5)
    bias = rand(rng, (4 * h,), 0.3)
    seed_out = rand(rng, (batch, steps, h))
    seed_h = rand(rng, (batch, h))
    tr = torch_lstm(onehot, kernel, rkernel, bias, seed_out, seed_h)
    tr.pop("dx")
    d = {"tokens": tokens.astype(np.float64), "kernel": kernel, "recurrent_kernel": rkernel,
         "bias": bias, "seed_out": seed_out, "seed_h": seed_h}
    d.update(tr)
    return dump("lstm_tokens.json", d)


# ----------------------------------------------------------------------------------------------
# 3. softmax, logSoftmax, softmax cross-entropy

def softmax_fixture(rng):
    import torch.nn.functional as F
    n, c = 5, 7
    logits = rand(rng, (n, c), 3.0)
    # Extreme rows: stability of the max shift, and a label on a hugely unlikely class.
    logits[3] = [80, -80, 0, 3, -5, 79.5, 1]
    logits[4] = [-80, -80, -80, -79, -80, -80, -80]
    logits = f32(logits)
    labels = np.array([2, 0, 6, 1, 3])
    seed = rand(rng, (n, c))

    lt = t64(logits, grad=True)
    loss = F.cross_entropy(lt, torch.tensor(labels), reduction="mean")
    loss.backward()
    ce_grad = npy(lt.grad)

    lt = t64(logits, grad=True)
    sm = torch.softmax(lt, dim=-1)
    (sm * t64(seed)).sum().backward()
    sm_grad = npy(lt.grad)

    lt = t64(logits, grad=True)
    lsm = torch.log_softmax(lt, dim=-1)
    (lsm * t64(seed)).sum().backward()
    lsm_grad = npy(lt.grad)

    # Logits with a large common offset (softmax is shift-invariant): the log-probabilities are
    # O(1), so they must come out with O(1)-sized rounding errors, not ~1e-5 from rounding the
    # offset + log Σ exp sum.
    offset = f32(rand(rng, (3, 6)) + np.array([[1000.0], [-500.0], [300.0]]))
    offset_labels = np.array([4, 0, 2])
    lt = t64(offset, grad=True)
    oloss = F.cross_entropy(lt, torch.tensor(offset_labels), reduction="mean")
    oloss.backward()

    return dump("softmax.json", {
        "logits": logits, "labels": labels.astype(np.float64), "seed": seed,
        "ce_loss": np.array(npy(loss)), "ce_grad": ce_grad,
        "softmax": npy(sm), "softmax_grad": sm_grad,
        "log_softmax": npy(lsm), "log_softmax_grad": lsm_grad,
        "offset_logits": offset, "offset_labels": offset_labels.astype(np.float64),
        "offset_ce_loss": np.array(npy(oloss)), "offset_ce_grad": npy(lt.grad),
        "offset_log_softmax": npy(torch.log_softmax(t64(offset), dim=-1)),
    })


# ----------------------------------------------------------------------------------------------
# 4. optimizers

STEPS = 3


def opt_problem(rng):
    w0 = rand(rng, (3, 4))
    b0 = rand(rng, (5,))
    gw = [rand(rng, (3, 4)) for _ in range(STEPS)]
    gb = [rand(rng, (5,), 0.1) for _ in range(STEPS)]
    for g in gb:
        g[0] = 0.0          # a zero gradient: Adam/RMSprop must give exactly zero update there
    for s in range(STEPS):
        # Consistently tiny gradients, where ε is comparable to √v: they tell ε inside the square
        # root (Keras RMSprop) from outside (PyTorch), and PyTorch's Adam ε from Keras's.
        gw[s][0, 1] = 1e-5 * (s + 1)
        gb[s][1] = -1e-4
    return w0, b0, gw, gb


def run_torch_opt(make, w0, b0, gw, gb):
    w, b = t64(w0, grad=True), t64(b0, grad=True)
    opt = make([w, b])
    traj = {}
    for s in range(STEPS):
        w.grad, b.grad = t64(gw[s]), t64(gb[s])
        opt.step()
        traj[f"w{s + 1}"] = npy(w)
        traj[f"b{s + 1}"] = npy(b)
    return traj


def run_keras_rmsprop(w0, b0, gw, gb, lr, rho, eps):
    import keras
    w = keras.Variable(w0, dtype="float64")
    b = keras.Variable(b0, dtype="float64")
    opt = keras.optimizers.RMSprop(learning_rate=lr, rho=rho, epsilon=eps)
    traj = {}
    for s in range(STEPS):
        opt.apply_gradients([(keras.ops.convert_to_tensor(gw[s], "float64"), w),
                             (keras.ops.convert_to_tensor(gb[s], "float64"), b)])
        traj[f"w{s + 1}"] = np.asarray(w.numpy(), np.float64)
        traj[f"b{s + 1}"] = np.asarray(b.numpy(), np.float64)
    return traj


def optimizer_fixture(rng):
    w0, b0, gw, gb = opt_problem(rng)
    d = {"w0": w0, "b0": b0}
    for s in range(STEPS):
        d[f"gw{s + 1}"] = gw[s]
        d[f"gb{s + 1}"] = gb[s]
    cases = {
        "sgd_plain": lambda p: torch.optim.SGD(p, lr=0.1),
        "sgd_momentum": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
        "sgd_nesterov": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True),
        "adam_b09": lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.9, 0.999), eps=1e-7),
        "adam_b05": lambda p: torch.optim.Adam(p, lr=0.0002, betas=(0.5, 0.999), eps=1e-7),
    }
    for name, make in cases.items():
        for k, v in run_torch_opt(make, w0, b0, gw, gb).items():
            d[f"{name}_{k}"] = v
    for k, v in run_keras_rmsprop(w0, b0, gw, gb, lr=0.01, rho=0.9, eps=1e-7).items():
        d[f"rmsprop_{k}"] = v
    # The fixture must be able to catch the usual mix-ups: the alternative conventions have to
    # land far outside the Swift test's tolerance (1e-5 relative) on the tiny-gradient elements.
    torch_rms = run_torch_opt(lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.9, eps=1e-7), w0, b0, gw, gb)
    keras_adam = run_keras_adam(w0, b0, gw, gb, lr=0.01, beta1=0.9, eps=1e-7)
    for alt, ref in [(torch_rms, "rmsprop"), (keras_adam, "adam_b09")]:
        gap = np.max(np.abs(alt["w3"] - d[f"{ref}_w3"]) / (1e-6 + 1e-5 * np.abs(d[f"{ref}_w3"])))
        print(f"{ref}: alternative convention is {gap:.0f}x the test tolerance away", file=sys.stderr)
        assert gap > 10, f"{ref}: fixture cannot tell the alternative ε convention apart ({gap})"
    return dump("optimizers.json", d)


def run_keras_adam(w0, b0, gw, gb, lr, beta1, eps):
    """Keras Adam (ε added to the uncorrected √v) — used only to check the fixture discriminates."""
    import keras
    w = keras.Variable(w0, dtype="float64")
    b = keras.Variable(b0, dtype="float64")
    opt = keras.optimizers.Adam(learning_rate=lr, beta_1=beta1, beta_2=0.999, epsilon=eps)
    traj = {}
    for s in range(STEPS):
        opt.apply_gradients([(keras.ops.convert_to_tensor(gw[s], "float64"), w),
                             (keras.ops.convert_to_tensor(gb[s], "float64"), b)])
        traj[f"w{s + 1}"] = np.asarray(w.numpy(), np.float64)
        traj[f"b{s + 1}"] = np.asarray(b.numpy(), np.float64)
    return traj


def clip_fixture(rng):
    gw = rand(rng, (3, 4))
    gb = rand(rng, (5,))
    d = {"gw": gw, "gb": gb}
    for name, max_norm in {"clip_small": 1.0, "clip_large": 100.0}.items():
        w, b = t64(np.zeros_like(gw), grad=True), t64(np.zeros_like(gb), grad=True)
        w.grad, b.grad = t64(gw), t64(gb)
        norm = torch.nn.utils.clip_grad_norm_([w, b], max_norm=max_norm)
        d[f"{name}_norm"] = np.array(npy(norm))
        d[f"{name}_gw"] = npy(w.grad)
        d[f"{name}_gb"] = npy(b.grad)
    w, b = t64(np.zeros_like(gw), grad=True), t64(np.zeros_like(gb), grad=True)
    w.grad, b.grad = t64(gw), t64(gb)
    torch.nn.utils.clip_grad_value_([w, b], clip_value=0.5)
    d["clipvalue_gw"] = npy(w.grad)
    d["clipvalue_gb"] = npy(b.grad)
    return dump("clipping.json", d)


# ----------------------------------------------------------------------------------------------

def build_all():
    # One generator per fixture, so editing one fixture leaves the others byte-identical.
    files = [dense_fixture(np.random.default_rng(1001))]
    files += lstm_fixtures(np.random.default_rng(1002))
    files.append(lstm_tokens_fixture(np.random.default_rng(1003)))
    files.append(softmax_fixture(np.random.default_rng(1004)))
    files.append(optimizer_fixture(np.random.default_rng(1005)))
    files.append(clip_fixture(np.random.default_rng(1006)))
    return files


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare with committed fixtures, write nothing")
    ap.add_argument("--out", default=OUT_DIR, help="output folder (default: %(default)s)")
    args = ap.parse_args()
    files = build_all()
    total = sum(len(t) for _, t in files)
    if args.check:
        bad = 0
        for name, text in files:
            path = os.path.join(args.out, name)
            with open(path) as fh:
                old = json.load(fh)
            new = json.loads(text)
            for k in new:
                a, b = np.array(new[k]["data"]), np.array(old.get(k, {"data": []})["data"])
                if a.shape != b.shape or np.max(np.abs(a - b), initial=0) > 1e-6 * (1 + np.max(np.abs(a), initial=0)):
                    print(f"{name}:{k} differs")
                    bad += 1
        print("fixtures match" if not bad else f"{bad} differences")
        sys.exit(1 if bad else 0)
    os.makedirs(args.out, exist_ok=True)
    for name, text in files:
        with open(os.path.join(args.out, name), "w") as fh:
            fh.write(text + "\n")
        print(f"wrote {name} ({len(text)} bytes)")
    print(f"total {total} bytes")


if __name__ == "__main__":
    main()
