#!/usr/bin/env python3
"""Reference values for Tests/GenStudioTests/VAEReferenceTests.swift: one training step of the
convolutional VAE of `gen vae train` computed by the PyTorch reference of Tools/vae_reference.py.

The model is the reference's own `VAE` class (imported, one source of truth), at 28x28x1 with
latent dimension 2 and the book's Dense(16), but with 4 and 8 filters instead of 32 and 64 so the
fixture stays small (the structure, the 'same' paddings of 28 -> 14 -> 7 -> 14 -> 28, the NHWC
flatten and every kernel path of gen are the same as for the book's model).

Weights: the reference's Keras initialisation (Glorot-uniform kernels) from torch.manual_seed(SEED),
then the biases, zeros there, are replaced by uniform values in [-0.1, 0.1] so that the bias paths
are exercised ([-1, 1] for the mean and log-variance heads, so that the KL term is of order 1). Every weight is rounded to float32 and the computation is done in float64.

Input: 4 synthetic Fashion-MNIST-like images (soft shapes on a black background, quantised to
k/255, with exact 0s and 1s) and a fixed epsilon [4, 2] (standard normal, rounded to float32).

The fixture `Tests/GenStudioTests/Fixtures/vae_step.safetensors` (float32, gen's layouts: Dense
[in, out], Conv2D HWIO [KH, KW, Cin, Cout], Conv2DTranspose [KH, KW, Cout, Cin], images NHWC) holds:

| name | content |
|---|---|
| `x`, `eps` | `[4, 28, 28, 1]` images, `[4, 2]` epsilon |
| `mean`, `log_var`, `logits` | encoder outputs `[4, 2]`, decoder logits `[4, 28, 28, 1]` |
| `reconstruction`, `kl` | per image: BCE summed over pixels, KL(q(z|x) ‖ N(0, I)) summed over latent dims, `[4]` |
| `loss` | `[1]`: mean over the batch of reconstruction + beta * KL (beta = 1), what the gradients are of |
| `weights/NAME` | the weights before the step, NAME as gen's parameter names (`encoder/conv_0/kernel`, ...) |
| `grads/NAME` | d loss / d weight |
| `grads_beta0/NAME` | d mean(reconstruction) / d weight (beta = 0: the KL term's gradient is the difference) |
| `adam/NAME` | the weights after one torch.optim.Adam step (lr 1e-3, betas 0.9/0.999, eps 1e-7) |

and in `__metadata__`: `config` (gen's VAEModelConfig as JSON), `adam` (its settings), and
`glorot_limits` for the book's full-size model (28x28x1, latent 2, filters 32/64): for each of
gen's kernel names, the Keras kernel shape and Glorot-uniform limit sqrt(6 / (fan_in + fan_out))
with Keras's own `compute_fans` on that shape (layers built with Keras 3, torch backend), next to
the limit the PyTorch reference draws from.

    /tmp/gen-anchors/bin/python Tools/make_vae_fixture.py           # writes the fixture
    /tmp/gen-anchors/bin/python Tools/make_vae_fixture.py --check   # recomputes and compares, writes nothing
    /tmp/gen-anchors/bin/python Tools/make_vae_fixture.py --full /tmp/vae_step_full.safetensors

`--full` writes the same fixture for the book's full-size model (filters 32/64) and a batch of 16
(about 2 MB, not committed); `GEN_VAE_FULL_FIXTURE=/tmp/vae_step_full.safetensors swift test
--filter VAEReferenceTests` then also runs the checks on it (skipped without the variable).
"""
import argparse
import json
import math
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np
import torch
from safetensors.numpy import load_file, save_file

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import vae_reference as ref  # noqa: E402  (the model definitions; its training runs only as a script)

OUT = os.path.join(HERE, "..", "Tests", "GenStudioTests", "Fixtures", "vae_step.safetensors")
SEED = 20240611
N, SIZE, LATENT, FILTERS, DENSE = 4, 28, 2, (4, 8), 16
LR, BETAS, EPS = 1e-3, (0.9, 0.999), 1e-7

# gen's parameter names in VAEModel.parameters order, with the reference module holding each.
LAYERS = [("encoder/conv_0", "c1"), ("encoder/conv_1", "c2"), ("encoder/dense", "d1"),
          ("encoder/z_mean", "mean"), ("encoder/z_log_var", "logvar"), ("decoder/dense", "d2"),
          ("decoder/deconv_0", "t1"), ("decoder/deconv_1", "t2"), ("decoder/output", "t3")]


def layer_tensors(model, attr):
    """(kernel, bias) torch parameters of the reference module `attr`."""
    m = getattr(model, attr)
    if isinstance(m, (ref.SameConv, ref.SameConvT)):
        m = m.conv
    return m.weight, m.bias


def to_gen(kernel):
    """A reference kernel in gen's layout (numpy float32)."""
    k = kernel.detach().cpu().numpy()
    if k.ndim == 2:          # nn.Linear [out, in] -> Dense [in, out]
        return np.ascontiguousarray(k.T, dtype=np.float32)
    # Conv2d [Cout, Cin, KH, KW] -> HWIO [KH, KW, Cin, Cout];
    # ConvTranspose2d [Cin, Cout, KH, KW] -> [KH, KW, Cout, Cin]: both are permute(2, 3, 1, 0).
    return np.ascontiguousarray(k.transpose(2, 3, 1, 0), dtype=np.float32)


def images(rng, n):
    """n Fashion-MNIST-like images [n, 1, 28, 28] in [0, 1], multiples of 1/255."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)
    out = np.zeros((n, 1, SIZE, SIZE))
    for i in range(n):
        cy, cx = rng.uniform(10, 18, 2)
        ry, rx = rng.uniform(5, 11, 2)
        d = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2
        shape = 1 / (1 + np.exp(8 * (d - 1)))                       # a soft ellipse
        texture = 0.75 + 0.25 * np.sin(xx * rng.uniform(0.5, 1.5) + yy * rng.uniform(0.2, 0.8))
        v = np.clip(shape * texture * 1.2, 0, 1)
        v[v < 0.03] = 0                                             # a black background
        out[i, 0] = np.round(v * 255) / 255
    return out


def compute(filters=FILTERS, n=N):
    torch.manual_seed(SEED)
    rng = np.random.default_rng(SEED)
    model = ref.VAE(LATENT, filters=filters, dense_units=DENSE, size=SIZE, channels=1)
    with torch.no_grad():
        for _, attr in LAYERS:
            k, b = layer_tensors(model, attr)
            scale = 1.0 if attr in ("mean", "logvar") else 0.1   # heads: a KL term of order 1, not ~0
            b.copy_(torch.from_numpy(rng.uniform(-scale, scale, b.shape)))   # rounded to the float32 parameter
    model = model.double()
    x = torch.from_numpy(images(rng, n).astype(np.float32).astype(np.float64))
    eps = torch.from_numpy(rng.standard_normal((n, LATENT)).astype(np.float32).astype(np.float64))

    weights = {name: to_gen(layer_tensors(model, attr)[0]) for name, attr in LAYERS}
    weights.update({name + "_b": layer_tensors(model, attr)[1].detach().numpy().astype(np.float32) for name, attr in LAYERS})

    mean, log_var = model.encode(x)
    z = mean + torch.exp(0.5 * log_var) * eps
    logits = model.decode_logits(z)
    rec, kl = model.losses(x, eps)
    grads_beta0 = torch.autograd.grad(rec.mean(), list(model.parameters()), retain_graph=True)
    grads_beta0 = dict(zip((id(p) for p in model.parameters()), grads_beta0))
    loss = (rec + 1.0 * kl).mean()
    opt = torch.optim.Adam(model.parameters(), lr=LR, betas=BETAS, eps=EPS)
    opt.zero_grad()
    loss.backward()

    out = {"x": x.permute(0, 2, 3, 1), "eps": eps, "mean": mean, "log_var": log_var,
           "logits": logits.permute(0, 2, 3, 1), "reconstruction": rec, "kl": kl, "loss": loss.reshape(1)}
    out = {k: np.ascontiguousarray(v.detach().numpy(), dtype=np.float32) for k, v in out.items()}
    for name, attr in LAYERS:
        k, b = layer_tensors(model, attr)
        out[f"weights/{name}/kernel"] = weights[name]
        out[f"weights/{name}/bias"] = weights[name + "_b"]
        out[f"grads/{name}/kernel"] = to_gen(k.grad)
        out[f"grads/{name}/bias"] = b.grad.numpy().astype(np.float32)
        out[f"grads_beta0/{name}/kernel"] = to_gen(grads_beta0[id(k)])
        out[f"grads_beta0/{name}/bias"] = grads_beta0[id(b)].numpy().astype(np.float32)
    opt.step()
    for name, attr in LAYERS:
        k, b = layer_tensors(model, attr)
        out[f"adam/{name}/kernel"] = to_gen(k)
        out[f"adam/{name}/bias"] = b.detach().numpy().astype(np.float32)
    return out


def glorot_limits():
    """Keras's and the reference's Glorot-uniform limits for the book's model, by gen kernel name."""
    import keras
    from keras import layers
    from keras.src.initializers.random_initializers import compute_fans

    enc_in = keras.Input((28, 28, 1))
    h = layers.Conv2D(32, 3, activation="relu", strides=2, padding="same")(enc_in)
    h = layers.Conv2D(64, 3, activation="relu", strides=2, padding="same")(h)
    h = layers.Flatten()(h)
    h = layers.Dense(16, activation="relu")(h)
    heads = [layers.Dense(2), layers.Dense(2)]
    enc = keras.Model(enc_in, [hd(h) for hd in heads])
    dec_in = keras.Input((2,))
    h = layers.Dense(7 * 7 * 64, activation="relu")(dec_in)
    h = layers.Reshape((7, 7, 64))(h)
    h = layers.Conv2DTranspose(64, 3, activation="relu", strides=2, padding="same")(h)
    h = layers.Conv2DTranspose(32, 3, activation="relu", strides=2, padding="same")(h)
    dec = keras.Model(dec_in, layers.Conv2DTranspose(1, 3, activation="sigmoid", padding="same")(h))
    kernels = [w for m in (enc, dec) for w in m.weights if len(w.shape) > 1]
    names = [n for n, _ in LAYERS]
    assert len(kernels) == len(names)

    # The reference's limits: record the fans each glorot_ call of its VAE gets, in order.
    fans = []
    original = ref.glorot_

    def recording(w, fan_in, fan_out):
        fans.append((w.shape, fan_in, fan_out))
        original(w, fan_in, fan_out)
    ref.glorot_ = recording
    try:
        ref.VAE(2)
    finally:
        ref.glorot_ = original
    assert len(fans) == len(names)  # the reference creates its layers in gen's order

    limits = {}
    for name, kvar, (_, rin, rout) in zip(names, kernels, fans):
        fi, fo = compute_fans(tuple(kvar.shape))
        limits[name + "/kernel"] = {"shape": [int(d) for d in kvar.shape], "fan_in": fi, "fan_out": fo,
                                    "keras": math.sqrt(6 / (fi + fo)), "reference": math.sqrt(6 / (rin + rout))}
    return limits


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed fixture, write nothing")
    parser.add_argument("--full", metavar="PATH", help="write the book-size variant (filters 32/64, batch 16) to PATH instead")
    args = parser.parse_args()
    torch.set_num_threads(1)
    filters, n = ((32, 64), 16) if args.full else (FILTERS, N)
    tensors = compute(filters, n)
    limits = glorot_limits()
    for name, v in limits.items():
        assert abs(v["keras"] - v["reference"]) < 1e-12, f"reference and Keras Glorot limits differ for {name}: {v}"
    meta = {"config": json.dumps({"imageSize": SIZE, "channels": 1, "latentDim": LATENT, "filters": list(filters),
                                  "denseUnits": DENSE}),
            "adam": json.dumps({"learningRate": LR, "beta1": BETAS[0], "beta2": BETAS[1], "epsilon": EPS}),
            "beta": "1", "glorot_limits": json.dumps(limits, sort_keys=True)}
    print(f"loss {tensors['loss'][0]:.6f}  reconstruction {tensors['reconstruction']}  kl {tensors['kl']}")
    if args.check:
        old = load_file(OUT)
        bad = [k for k in tensors if k not in old or old[k].shape != tensors[k].shape
               or not np.allclose(old[k], tensors[k], rtol=1e-6, atol=1e-9)]
        print("fixture matches" if not bad else f"differs: {bad}")
        sys.exit(1 if bad else 0)
    out = args.full or OUT
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    save_file(tensors, out, metadata=meta)
    print(f"wrote {os.path.relpath(out)} ({os.path.getsize(out)} bytes, {len(tensors)} tensors)")


if __name__ == "__main__":
    main()
