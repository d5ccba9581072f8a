#!/usr/bin/env python3
"""Reference values for Tests/GenNNTests/LayerReferenceTests.swift (pooling, batch normalisation,
upsampling, losses).

Writes Tests/GenNNTests/Fixtures/layers_*.json, each one JSON object mapping a name to
{"shape": [...], "data": [flat row-major numbers]}, the same format as Tools/make_fixtures.py.

Inputs are seeded and rounded to float32; references are computed in float64 (PyTorch on the CPU,
Keras 3 on the TensorFlow backend with float64 layers) and stored rounded to float32. Feature maps
are NHWC as in gen; PyTorch sees them permuted to NCHW and its results are permuted back.

    python Tools/make_layer_fixtures.py            # writes the fixtures
    python Tools/make_layer_fixtures.py --check    # recomputes and compares, writes nothing

| file | reference |
|---|---|
| layers_pool.json | torch max_pool2d / avg_pool2d (3x3 stride 2, ceil_mode, padding 1, count_include_pad on/off; 2x2 stride 2 padding 1 ceil_mode where PyTorch drops a window starting in the padding) forward and input gradients; keras MaxPooling2D / AveragePooling2D padding="same"; keras UpSampling2D (2, 3) |
| layers_bn.json | torch BatchNorm2d train(): output, gradients (x, weight, bias), running stats after one step (momentum 0.1, eps 1e-5, unbiased variance); keras BatchNormalization training=True (momentum 0.99, eps 1e-3): output and moving stats; training=False output with given moving stats; BatchNorm1d on [N, C] |
| layers_losses.json | torch binary_cross_entropy_with_logits (mean and sum, logits up to ±100) with gradients, keras BinaryCrossentropy(from_logits=True); VAE KL term per row with gradients; torch mse_loss with gradient |
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
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, "Tests", "GenNNTests", "Fixtures")

torch.set_default_dtype(torch.float64)


def f32(a):
    return np.asarray(a, dtype=np.float32).astype(np.float64)


def rand(rng, shape, scale=1.0):
    return f32(rng.standard_normal(shape) * scale)


def t64(a, grad=False):
    return torch.tensor(np.asarray(a, dtype=np.float64), dtype=torch.float64, requires_grad=grad)


def npy(t):
    return t.detach().cpu().numpy().astype(np.float64) if isinstance(t, torch.Tensor) else np.asarray(t, np.float64)


def nchw(a):
    return a.permute(0, 3, 1, 2)


def nhwc(a):
    return a.permute(0, 2, 3, 1)


def entry(a):
    a = np.asarray(a, dtype=np.float64)
    if not np.all(np.isfinite(a)):
        raise ValueError("non-finite value in fixture")
    flat = a.astype(np.float32).reshape(-1)
    return {"shape": list(a.shape), "data": [float(str(v)) for v in flat]}


def dump(name, tensors):
    obj = {k: entry(v) for k, v in tensors.items()}
    return name, json.dumps(obj, separators=(",", ":"), sort_keys=True)


def torch_pool(x, seed, fn):
    """Forward and input gradient of an NHWC pooling fn applied in NCHW."""
    xt = t64(x, grad=True)
    y = nhwc(fn(nchw(xt)))
    (y * t64(seed)).sum().backward()
    return npy(y), npy(xt.grad)


def pool_fixture(rng):
    import keras
    # Distinct values (a permutation), so max-pool windows have no ties.
    n, h, w, c = 1, 7, 6, 2
    x = f32((rng.permutation(n * h * w * c).reshape(n, h, w, c) - n * h * w * c / 2) * 0.05)
    out = {"x": x}
    cases = {
        "max_ceil": lambda t: F.max_pool2d(t, 3, 2, 0, ceil_mode=True),
        "max_pad_ceil": lambda t: F.max_pool2d(t, 3, 2, 1, ceil_mode=True),
        "avg_ceil": lambda t: F.avg_pool2d(t, 3, 2, 0, ceil_mode=True),
        "avg_pad_ceil_include": lambda t: F.avg_pool2d(t, 3, 2, 1, ceil_mode=True, count_include_pad=True),
        "avg_pad_ceil_exclude": lambda t: F.avg_pool2d(t, 3, 2, 1, ceil_mode=True, count_include_pad=False),
        "avg_pad_floor": lambda t: F.avg_pool2d(t, (2, 3), (2, 1), (1, 1)),
        # 2x2 stride 2 padding 1 on height 7: the 5th ceil-mode window would start in the bottom padding.
        "max_k2_pad1_ceil": lambda t: F.max_pool2d(t, 2, 2, 1, ceil_mode=True),
        "avg_k2_pad1_ceil": lambda t: F.avg_pool2d(t, 2, 2, 1, ceil_mode=True),
    }
    for name, fn in cases.items():
        shape = tuple(npy(nhwc(fn(nchw(t64(x))))).shape)
        seed = rand(rng, shape)
        y, dx = torch_pool(x, seed, fn)
        out[f"{name}_seed"], out[f"{name}_y"], out[f"{name}_dx"] = seed, y, dx
    # ceil_mode must matter for these shapes.
    assert out["max_ceil_y"].shape[1:3] == (3, 3), out["max_ceil_y"].shape
    assert F.max_pool2d(nchw(t64(x)), 3, 2).shape[2:] == (3, 2)
    assert out["max_k2_pad1_ceil_y"].shape[1:3] == (4, 4), out["max_k2_pad1_ceil_y"].shape
    out["keras_max_same_y"] = np.asarray(keras.layers.MaxPooling2D(3, 2, padding="same", dtype="float64")(x))
    out["keras_avg_same_y"] = np.asarray(keras.layers.AveragePooling2D(2, 2, padding="same", dtype="float64")(x))
    out["keras_upsample_y"] = np.asarray(keras.layers.UpSampling2D((2, 3), dtype="float64")(x))
    out["keras_gap_y"] = np.asarray(keras.layers.GlobalAveragePooling2D(dtype="float64")(x))
    return dump("layers_pool.json", out)


def bn_fixture(rng):
    import keras
    n, h, w, c = 4, 3, 3, 5
    x = f32(rng.standard_normal((n, h, w, c)) * 2 + rng.standard_normal(c))
    gamma, beta = f32(1 + 0.3 * rng.standard_normal(c)), rand(rng, (c,), 0.5)
    seed = rand(rng, (n, h, w, c))
    out = {"x": x, "gamma": gamma, "beta": beta, "seed": seed}

    # PyTorch BatchNorm2d, training mode, one step from running stats (0, 1).
    bn = torch.nn.BatchNorm2d(c, eps=1e-5, momentum=0.1)
    with torch.no_grad():
        bn.weight.copy_(t64(gamma)); bn.bias.copy_(t64(beta))
    bn.train()
    xt = t64(x, grad=True)
    y = nhwc(bn(nchw(xt)))
    (y * t64(seed)).sum().backward()
    out.update(torch_y=npy(y), torch_dx=npy(xt.grad), torch_dgamma=npy(bn.weight.grad), torch_dbeta=npy(bn.bias.grad),
               torch_running_mean=npy(bn.running_mean), torch_running_var=npy(bn.running_var))
    bn.eval()
    x2 = rand(rng, (2, h, w, c))
    out["x2"] = x2
    out["torch_eval_y"] = npy(nhwc(bn(nchw(t64(x2)))))

    # Keras BatchNormalization: training=True updates the moving stats with the biased variance.
    kbn = keras.layers.BatchNormalization(momentum=0.99, epsilon=1e-3, dtype="float64")
    kbn.build((None, h, w, c))
    kbn.gamma.assign(gamma); kbn.beta.assign(beta)
    out["keras_y"] = np.asarray(kbn(x, training=True))
    out["keras_moving_mean"] = np.asarray(kbn.moving_mean)
    out["keras_moving_var"] = np.asarray(kbn.moving_variance)
    out["keras_eval_y"] = np.asarray(kbn(x2, training=False))
    assert np.allclose(out["keras_y"], out["torch_y"], atol=1e-2)   # same normalisation, different eps

    # BatchNorm1d on [N, C] (dense features, as in GAN generators).
    x1 = rand(rng, (6, 3), 1.5)
    g1, b1, s1 = f32(1 + 0.2 * rng.standard_normal(3)), rand(rng, (3,)), rand(rng, (6, 3))
    bn1 = torch.nn.BatchNorm1d(3, eps=1e-5, momentum=0.1)
    with torch.no_grad():
        bn1.weight.copy_(t64(g1)); bn1.bias.copy_(t64(b1))
    x1t = t64(x1, grad=True)
    y1 = bn1(x1t)
    (y1 * t64(s1)).sum().backward()
    out.update(dense_x=x1, dense_gamma=g1, dense_beta=b1, dense_seed=s1, dense_y=npy(y1), dense_dx=npy(x1t.grad),
               dense_dgamma=npy(bn1.weight.grad), dense_dbeta=npy(bn1.bias.grad),
               dense_running_mean=npy(bn1.running_mean), dense_running_var=npy(bn1.running_var))
    return dump("layers_bn.json", out)


def loss_fixture(rng):
    import keras
    logits = rand(rng, (4, 5), 3)
    logits[0, :4] = [100, -100, 100, -100]
    targets = f32(rng.uniform(0, 1, (4, 5)))
    targets[0, :4] = [1, 0, 0, 1]
    out = {"logits": logits, "targets": targets}
    for red in ["mean", "sum"]:
        lt = t64(logits, grad=True)
        loss = F.binary_cross_entropy_with_logits(lt, t64(targets), reduction=red)
        loss.backward()
        out[f"bce_{red}"], out[f"bce_{red}_grad"] = npy(loss), npy(lt.grad)
    kl_bce = keras.losses.BinaryCrossentropy(from_logits=True, reduction="sum_over_batch_size")
    # Keras averages over the last axis, then over the batch: the same as the overall mean here.
    out["keras_bce_mean"] = np.asarray(kl_bce(targets, logits))
    assert abs(float(out["keras_bce_mean"]) - float(out["bce_mean"])) < 1e-6

    mu, logvar, seed = rand(rng, (3, 4)), rand(rng, (3, 4), 0.7), rand(rng, (3,))
    mt, lt = t64(mu, grad=True), t64(logvar, grad=True)
    kl = -0.5 * torch.sum(1 + lt - mt ** 2 - torch.exp(lt), dim=1)
    (kl * t64(seed)).sum().backward()
    out.update(kl_mean=mu, kl_logvar=logvar, kl_seed=seed, kl=npy(kl), kl_dmean=npy(mt.grad), kl_dlogvar=npy(lt.grad))

    p, t = rand(rng, (3, 4)), rand(rng, (3, 4))
    pt = t64(p, grad=True)
    mse = F.mse_loss(pt, t64(t))
    mse.backward()
    out.update(mse_pred=p, mse_target=t, mse=npy(mse), mse_grad=npy(pt.grad))
    return dump("layers_losses.json", out)


def build_all():
    rng = np.random.default_rng(20240611)
    return [pool_fixture(rng), bn_fixture(rng), loss_fixture(rng)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="compare with committed fixtures, write nothing")
    ap.add_argument("--out", default=OUT_DIR)
    args = ap.parse_args()
    files = build_all()
    if args.check:
        bad = 0
        for name, text in files:
            with open(os.path.join(args.out, name)) as fh:
                old = json.load(fh)
            new = json.loads(text)
            for k in new:
                if k not in old or old[k]["shape"] != new[k]["shape"] or \
                        not np.allclose(old[k]["data"], new[k]["data"], rtol=1e-6, atol=1e-7):
                    print(f"{name}: {k} differs"); bad += 1
        print("fixtures match" if bad == 0 else f"{bad} entries differ")
        sys.exit(1 if bad else 0)
    for name, text in files:
        with open(os.path.join(args.out, name), "w") as fh:
            fh.write(text + "\n")
        print(f"wrote {name} ({len(text)} bytes)")


if __name__ == "__main__":
    main()
