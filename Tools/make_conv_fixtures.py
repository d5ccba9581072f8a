#!/usr/bin/env python3
"""Reference values for Tests/GenNNTests/ConvolutionReferenceTests.swift.

Computes 2-D convolutions and transposed convolutions (outputs and gradients) with PyTorch and
TensorFlow/Keras 3 and writes them as small JSON fixtures Tests/GenNNTests/Fixtures/conv_*.json,
in gen's layouts: images NHWC, conv2d kernels HWIO [KH, KW, Cin, Cout], conv2dTranspose kernels
[KH, KW, Cout, Cin] (Keras layout). PyTorch works in NCHW / OIHW (ConvTranspose2d: [Cin, Cout, KH, KW]);
the script converts.

  conv_torch.json            torch.nn.functional.conv2d: symmetric padding, stride, dilation, 1x1,
                             and asymmetric explicit padding (through F.pad)
  conv_keras.json            tf.nn.conv2d with padding SAME (Keras Conv2D padding="same"): even
                             kernels and stride 2, where the extra padding goes bottom/right;
                             checked against keras.layers.Conv2D
  conv_transpose_torch.json  torch.nn.functional.conv_transpose2d with padding and output_padding
  conv_transpose_keras.json  tf.nn.conv2d_transpose as keras.layers.Conv2DTranspose calls it
                             (padding "same" and "valid", output_padding None); checked against the
                             Keras layer

Each case stores x, kernel, bias, seed (the upstream gradient dL/dout), out, dx, dkernel, dbias
under the keys "<case>/<name>". Inputs are seeded and rounded to float32; references are
computed in float64 and stored as float32.

Run (CPU only; needs torch, keras 3 with the TensorFlow backend, numpy):

    python Tools/make_conv_fixtures.py            # writes the fixtures
    python Tools/make_conv_fixtures.py --check    # recomputes and compares to the committed files
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
    return t.detach().cpu().numpy().astype(np.float64)


def entry(a):
    a = np.asarray(a, dtype=np.float64)
    if not np.all(np.isfinite(a)):
        raise ValueError("non-finite value in fixture")
    flat = a.astype(np.float32).reshape(-1)
    return {"shape": list(a.shape), "data": [float(str(v)) for v in flat]}


def dump(name, tensors):
    obj = {k: entry(v) for k, v in tensors.items()}
    return name, json.dumps(obj, separators=(",", ":"), sort_keys=True)


# ----------------------------------------------------------------------------------------------
# conv2d through PyTorch

def torch_conv(x, kernel, bias, seed, stride, pads, dilation):
    """pads = (top, bottom, left, right). x NHWC, kernel HWIO."""
    xt = t64(x.transpose(0, 3, 1, 2), grad=True)
    wt = t64(kernel.transpose(3, 2, 0, 1), grad=True)   # OIHW
    bt = t64(bias, grad=True)
    top, bottom, left, right = pads
    xp = F.pad(xt, (left, right, top, bottom))
    y = F.conv2d(xp, wt, bt, stride=stride, dilation=dilation)
    out = npy(y).transpose(0, 2, 3, 1)
    if seed is None:
        return out
    (y * t64(seed.transpose(0, 3, 1, 2))).sum().backward()
    return out, npy(xt.grad).transpose(0, 2, 3, 1), npy(wt.grad).transpose(2, 3, 1, 0), npy(bt.grad)


def conv_case(rng, name, x_shape, k_shape, stride, pads, dilation, ref):
    x = rand(rng, x_shape)
    kernel = rand(rng, k_shape, 0.5)
    bias = rand(rng, (k_shape[3],), 0.5)
    out0 = ref(x, kernel, bias, None, stride, pads, dilation)
    seed = rand(rng, out0.shape)
    out, dx, dk, db = ref(x, kernel, bias, seed, stride, pads, dilation)
    return {f"{name}/x": x, f"{name}/kernel": kernel, f"{name}/bias": bias, f"{name}/seed": seed,
            f"{name}/out": out, f"{name}/dx": dx, f"{name}/dkernel": dk, f"{name}/dbias": db}


def conv_torch_fixture(rng):
    t = {}
    t.update(conv_case(rng, "pad1", (2, 6, 5, 3), (3, 3, 3, 4), (1, 1), (1, 1, 1, 1), (1, 1), torch_conv))
    t.update(conv_case(rng, "stride2", (2, 7, 8, 2), (3, 3, 2, 3), (2, 2), (1, 1, 1, 1), (1, 1), torch_conv))
    t.update(conv_case(rng, "dilation2", (1, 8, 7, 2), (3, 2, 2, 3), (1, 2), (0, 0, 0, 0), (2, 2), torch_conv))
    t.update(conv_case(rng, "asym", (2, 6, 7, 3), (2, 3, 3, 2), (2, 1), (0, 2, 1, 0), (1, 1), torch_conv))
    t.update(conv_case(rng, "pointwise", (2, 4, 3, 5), (1, 1, 5, 3), (1, 1), (0, 0, 0, 0), (1, 1), torch_conv))
    t.update(conv_case(rng, "vae", (2, 8, 8, 1), (3, 3, 1, 4), (2, 2), (1, 1, 1, 1), (1, 1), torch_conv))
    return dump("conv_torch.json", t)


# ----------------------------------------------------------------------------------------------
# conv2d with padding SAME through TensorFlow (Keras Conv2D semantics)

def tf_conv_same(x, kernel, bias, seed, stride, pads, dilation):
    import tensorflow as tf
    xt = tf.Variable(tf.constant(x, tf.float64))
    kt = tf.Variable(tf.constant(kernel, tf.float64))
    bt = tf.Variable(tf.constant(bias, tf.float64))
    with tf.GradientTape() as tape:
        y = tf.nn.conv2d(xt, kt, strides=[1, *stride, 1], padding="SAME", dilations=[1, *dilation, 1]) + bt
        loss = tf.reduce_sum(y * (seed if seed is not None else 0.0))
    out = y.numpy()
    if seed is None:
        return out
    dx, dk, db = tape.gradient(loss, [xt, kt, bt])
    return out, dx.numpy(), dk.numpy(), db.numpy()


def keras_conv_check(case, name, stride, dilation):
    import keras
    x, kernel, bias = case[f"{name}/x"], case[f"{name}/kernel"], case[f"{name}/bias"]
    layer = keras.layers.Conv2D(kernel.shape[3], kernel.shape[:2], strides=stride, padding="same",
                                dilation_rate=dilation, dtype="float64")
    layer.build(x.shape)
    layer.set_weights([kernel, bias])
    y = np.asarray(layer(x))
    err = np.max(np.abs(y - case[f"{name}/out"]))
    assert err < 1e-10, f"Keras Conv2D disagrees with tf.nn.conv2d on {name}: {err}"


def conv_keras_fixture(rng):
    t = {}
    specs = [("k4s2", (2, 8, 7, 3), (4, 4, 3, 2), (2, 2), (1, 1)),
             ("k3s2", (2, 7, 6, 2), (3, 3, 2, 3), (2, 2), (1, 1)),
             ("k2s1", (1, 5, 6, 2), (2, 2, 2, 3), (1, 1), (1, 1)),
             ("k5s2", (2, 8, 8, 3), (5, 5, 3, 4), (2, 2), (1, 1)),
             ("k3d2", (1, 7, 6, 2), (3, 3, 2, 2), (1, 1), (2, 2))]
    for name, xs, ks, stride, dil in specs:
        # TensorFlow's SAME split (extra on bottom/right) as explicit pads for PyTorch.
        pads = []
        for size, k, s, d in zip(xs[1:3], ks[:2], stride, dil):
            out = -(-size // s)
            total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
            pads += [total // 2, total - total // 2]
        if dil == (1, 1):
            case = conv_case(rng, name, xs, ks, stride, None, dil, tf_conv_same)
            ty = torch_conv(case[f"{name}/x"], case[f"{name}/kernel"], case[f"{name}/bias"], None, stride, tuple(pads), dil)
        else:
            # TensorFlow's CPU kernels have no dilated gradients: PyTorch with the SAME pads, forward checked against TF.
            case = conv_case(rng, name, xs, ks, stride, tuple(pads), dil, torch_conv)
            ty = tf_conv_same(case[f"{name}/x"], case[f"{name}/kernel"], case[f"{name}/bias"], None, stride, None, dil)
        assert np.max(np.abs(ty - case[f"{name}/out"])) < 1e-10, f"SAME split mismatch on {name}"
        keras_conv_check(case, name, stride, dil)
        t.update(case)
    return dump("conv_keras.json", t)


# ----------------------------------------------------------------------------------------------
# conv2dTranspose through PyTorch (padding p, output_padding a)

def torch_transpose(x, kernel, bias, seed, stride, padding, output_padding):
    xt = t64(x.transpose(0, 3, 1, 2), grad=True)
    wt = t64(kernel.transpose(3, 2, 0, 1), grad=True)   # [KH,KW,Cout,Cin] -> [Cin, Cout, KH, KW]
    bt = t64(bias, grad=True)
    y = F.conv_transpose2d(xt, wt, bt, stride=stride, padding=padding, output_padding=output_padding)
    out = npy(y).transpose(0, 2, 3, 1)
    if seed is None:
        return out
    (y * t64(seed.transpose(0, 3, 1, 2))).sum().backward()
    return out, npy(xt.grad).transpose(0, 2, 3, 1), npy(wt.grad).transpose(2, 3, 1, 0), npy(bt.grad)


def transpose_case(rng, name, x_shape, k_shape, ref, *args):
    x = rand(rng, x_shape)
    kernel = rand(rng, k_shape, 0.5)
    bias = rand(rng, (k_shape[2],), 0.5)
    out0 = ref(x, kernel, bias, None, *args)
    seed = rand(rng, out0.shape)
    out, dx, dk, db = ref(x, kernel, bias, seed, *args)
    return {f"{name}/x": x, f"{name}/kernel": kernel, f"{name}/bias": bias, f"{name}/seed": seed,
            f"{name}/out": out, f"{name}/dx": dx, f"{name}/dkernel": dk, f"{name}/dbias": db}


def transpose_torch_fixture(rng):
    t = {}
    t.update(transpose_case(rng, "p1op1", (2, 3, 4, 3), (3, 3, 2, 3), torch_transpose, (2, 2), (1, 1), (1, 1)))
    t.update(transpose_case(rng, "p0", (1, 3, 3, 2), (3, 2, 3, 2), torch_transpose, (1, 2), (0, 0), (0, 1)))
    t.update(transpose_case(rng, "p2s3", (2, 2, 3, 2), (5, 4, 2, 2), torch_transpose, (3, 3), (2, 1), (2, 0)))
    t.update(transpose_case(rng, "pointwise", (2, 3, 3, 4), (1, 1, 3, 4), torch_transpose, (1, 1), (0, 0), (0, 0)))
    return dump("conv_transpose_torch.json", t)


# ----------------------------------------------------------------------------------------------
# conv2dTranspose through TensorFlow, as keras.layers.Conv2DTranspose computes it

def keras_output_length(size, k, s, padding):
    # keras.src.ops.operation_utils / backend.common.backend_utils with output_padding=None.
    if padding == "valid":
        return size * s + max(k - s, 0)
    return size * s


def tf_transpose(x, kernel, bias, seed, stride, padding):
    import tensorflow as tf
    n, h, w, _ = x.shape
    oh = keras_output_length(h, kernel.shape[0], stride[0], padding)
    ow = keras_output_length(w, kernel.shape[1], stride[1], padding)
    xt = tf.Variable(tf.constant(x, tf.float64))
    kt = tf.Variable(tf.constant(kernel, tf.float64))
    bt = tf.Variable(tf.constant(bias, tf.float64))
    with tf.GradientTape() as tape:
        y = tf.nn.conv2d_transpose(xt, kt, output_shape=[n, oh, ow, kernel.shape[2]], strides=[1, *stride, 1],
                                   padding=padding.upper()) + bt
        loss = tf.reduce_sum(y * (seed if seed is not None else 0.0))
    out = y.numpy()
    if seed is None:
        return out
    dx, dk, db = tape.gradient(loss, [xt, kt, bt])
    return out, dx.numpy(), dk.numpy(), db.numpy()


def keras_transpose_check(case, name, stride, padding):
    import keras
    x, kernel, bias = case[f"{name}/x"], case[f"{name}/kernel"], case[f"{name}/bias"]
    layer = keras.layers.Conv2DTranspose(kernel.shape[2], kernel.shape[:2], strides=stride, padding=padding,
                                         dtype="float64")
    layer.build(x.shape)
    assert tuple(layer.kernel.shape) == kernel.shape, f"Keras kernel layout {layer.kernel.shape} vs {kernel.shape}"
    layer.set_weights([kernel, bias])
    y = np.asarray(layer(x))
    assert y.shape == case[f"{name}/out"].shape, f"{name}: Keras shape {y.shape}"
    err = np.max(np.abs(y - case[f"{name}/out"]))
    assert err < 1e-10, f"Keras Conv2DTranspose disagrees with tf.nn.conv2d_transpose on {name}: {err}"


def transpose_keras_fixture(rng):
    t = {}
    specs = [("k5s2same", (2, 4, 3, 3), (5, 5, 2, 3), (2, 2), "same"),    # DCGAN generator block
             ("k4s2same", (1, 3, 4, 2), (4, 4, 3, 2), (2, 2), "same"),
             ("k3s1same", (2, 4, 3, 2), (3, 3, 2, 2), (1, 1), "same"),
             ("k3s2same", (1, 3, 3, 2), (3, 3, 2, 2), (2, 2), "same"),
             ("k3s2valid", (2, 3, 2, 2), (3, 3, 3, 2), (2, 2), "valid"),
             ("k2x3s1valid", (1, 3, 4, 3), (2, 3, 2, 3), (1, 1), "valid")]
    for name, xs, ks, stride, padding in specs:
        case = transpose_case(rng, name, xs, ks, tf_transpose, stride, padding)
        keras_transpose_check(case, name, stride, padding)
        t.update(case)
    return dump("conv_transpose_keras.json", t)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed fixtures, write nothing")
    args = parser.parse_args()
    rng = np.random.default_rng(20240611)
    fixtures = [conv_torch_fixture(rng), conv_keras_fixture(rng), transpose_torch_fixture(rng), transpose_keras_fixture(rng)]
    failed = False
    for name, text in fixtures:
        path = os.path.join(OUT_DIR, name)
        if args.check:
            with open(path) as f:
                old = json.load(f)
            new = json.loads(text)
            same = old.keys() == new.keys() and all(
                old[k]["shape"] == new[k]["shape"]
                and np.allclose(old[k]["data"], new[k]["data"], rtol=1e-6, atol=1e-7) for k in new)
            print(f"{name}: {'ok' if same else 'DIFFERS'}")
            failed |= not same
        else:
            with open(path, "w") as f:
                f.write(text + "\n")
            print(f"wrote {path} ({len(text)} bytes)")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
