"""Reference training of the book's convolutional VAE in PyTorch, for `gen vae train`'s learning target.

The model is the one `gen vae train` builds by default (F. Chollet, *Deep Learning with Python*,
2nd ed., §12.4; Kingma & Welling 2014), written to match gen and Keras exactly:

- encoder: Conv2D 32 and 64 (3x3, stride 2, padding "same" with TensorFlow's rule: the extra padding
  row/column goes at the bottom/right), ReLU; Flatten (NHWC order, as Keras); Dense 16 ReLU;
  Dense(latent) mean and Dense(latent) log-variance;
- decoder: Dense 7*7*64 ReLU, reshape NHWC; Conv2DTranspose 64 and 32 (3x3, stride 2, "same" as
  TensorFlow: output 2x the input, cropped at the bottom/right), ReLU; Conv2DTranspose 1 (3x3,
  stride 1, same) with sigmoid, computed as logits inside the loss;
- z = mean + exp(0.5 * log_var) * eps;
- loss per image = binary cross-entropy summed over pixels + beta * KL(q(z|x) || N(0, I)) summed over
  latent dimensions; the batch loss is the mean over images;
- initialisation as Keras: Glorot-uniform kernels with Keras fans, zero biases;
- Adam (lr 1e-3, betas 0.9/0.999, eps 1e-7 as Keras), batch 128, the last short batch of each epoch
  kept (469 steps per epoch), a fresh shuffle every epoch.

After every epoch it prints the mean training loss and the test set's negative ELBO in nats per
image (mean over the 10,000 test images of summed BCE + KL, one z sample per image) with its
reconstruction and KL terms, as one JSON line.

Usage: /tmp/gen-anchors/bin/python Tools/vae_reference.py [--epochs 10] [--threads 2] [--seed 1]
       [--data /usr/share/datasets/fashion-mnist] [--latent-dim 2] [--beta 1]
"""
import argparse
import gzip
import json
import math
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def read_idx(path):
    for cand in (path, path + ".gz"):
        if os.path.exists(cand):
            raw = open(cand, "rb").read()
            if raw[:2] == b"\x1f\x8b":
                raw = gzip.decompress(raw)
            ndim = raw[3]
            shape = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
            return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)
    raise FileNotFoundError(path)


def load(data, split):
    prefix = "train" if split == "train" else "t10k"
    x = read_idx(os.path.join(data, f"{prefix}-images-idx3-ubyte")).astype(np.float32) / 255.0
    return torch.from_numpy(x[:, None, :, :].copy())  # NCHW


def glorot_(w, fan_in, fan_out):
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    with torch.no_grad():
        w.uniform_(-limit, limit)


class SameConv(nn.Module):
    """Conv2D 3x3 with TensorFlow 'same' padding (extra row/column at the bottom/right)."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, stride=stride, padding=0)
        self.stride = stride
        glorot_(self.conv.weight, 9 * cin, 9 * cout)
        nn.init.zeros_(self.conv.bias)

    def forward(self, x):
        h = x.shape[-1]
        out = (h + self.stride - 1) // self.stride
        total = max((out - 1) * self.stride + 3 - h, 0)
        before = total // 2
        return self.conv(F.pad(x, (before, total - before, before, total - before)))


class SameConvT(nn.Module):
    """Conv2DTranspose 3x3 with TensorFlow 'same' padding: output = input * stride."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv = nn.ConvTranspose2d(cin, cout, 3, stride=stride, padding=0)
        self.stride = stride
        glorot_(self.conv.weight, 9 * cout, 9 * cin)
        nn.init.zeros_(self.conv.bias)

    def forward(self, x):
        h = x.shape[-1]
        y = self.conv(x)  # (h-1)*s + 3
        out = h * self.stride
        top = max(3 - self.stride, 0) // 2
        return y[:, :, top:top + out, top:top + out]


def dense(i, o):
    d = nn.Linear(i, o)
    glorot_(d.weight, i, o)
    nn.init.zeros_(d.bias)
    return d


class VAE(nn.Module):
    """The book's VAE; `filters`, `dense_units`, `size` and `channels` default to the book's model
    (Tools/make_vae_fixture.py builds a smaller one of the same structure)."""

    def __init__(self, latent, filters=(32, 64), dense_units=16, size=28, channels=1):
        super().__init__()
        f0, f1 = filters
        self.d = size // 4
        self.f1 = f1
        self.c1 = SameConv(channels, f0, 2)
        self.c2 = SameConv(f0, f1, 2)
        self.d1 = dense(self.d * self.d * f1, dense_units)
        self.mean = dense(dense_units, latent)
        self.logvar = dense(dense_units, latent)
        self.d2 = dense(latent, self.d * self.d * f1)
        self.t1 = SameConvT(f1, f1, 2)
        self.t2 = SameConvT(f1, f0, 2)
        self.t3 = SameConvT(f0, channels, 1)

    def encode(self, x):
        h = F.relu(self.c2(F.relu(self.c1(x))))
        h = h.permute(0, 2, 3, 1).reshape(x.shape[0], -1)  # flatten in NHWC order, as Keras
        h = F.relu(self.d1(h))
        return self.mean(h), self.logvar(h)

    def decode_logits(self, z):
        h = F.relu(self.d2(z)).reshape(z.shape[0], self.d, self.d, self.f1).permute(0, 3, 1, 2)
        h = F.relu(self.t2(F.relu(self.t1(h))))
        return self.t3(h)

    def losses(self, x, eps=None):
        """Per-image reconstruction (BCE summed over pixels) and KL terms; `eps` is the
        reparameterisation noise ([N, latent], drawn from torch's generator when None)."""
        mean, logvar = self.encode(x)
        if eps is None:
            eps = torch.randn_like(mean)
        z = mean + torch.exp(0.5 * logvar) * eps
        logits = self.decode_logits(z)
        rec = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(dim=(1, 2, 3))
        kl = -0.5 * (1 + logvar - mean.pow(2) - logvar.exp()).sum(dim=1)
        return rec, kl


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--latent-dim", type=int, default=2)
    p.add_argument("--beta", type=float, default=1.0)
    p.add_argument("--batch-size", type=int, default=128)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    train, test = load(args.data, "train"), load(args.data, "test")
    model = VAE(args.latent_dim)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-7)
    print(json.dumps({"framework": "torch", "version": torch.__version__, "threads": args.threads,
                      "parameters": sum(p.numel() for p in model.parameters())}), flush=True)
    B = args.batch_size
    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        t0 = time.perf_counter()
        model.train()
        order = rng.permutation(len(train))
        total, count = 0.0, 0
        for s in range(0, len(train), B):
            x = train[order[s:s + B]]
            rec, kl = model.losses(x)
            loss = (rec + args.beta * kl).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(x)
            count += len(x)
        train_time = time.perf_counter() - t0
        model.eval()
        r_sum, k_sum = 0.0, 0.0
        with torch.no_grad():
            for s in range(0, len(test), 500):
                rec, kl = model.losses(test[s:s + 500])
                r_sum += rec.sum().item()
                k_sum += kl.sum().item()
        n = len(test)
        print(json.dumps({"epoch": epoch, "train_loss": round(total / count, 3),
                          "test_neg_elbo": round((r_sum + k_sum) / n, 3), "test_reconstruction": round(r_sum / n, 3),
                          "test_kl": round(k_sum / n, 3), "epoch_train_s": round(train_time, 1),
                          "train_samples_per_s": round(len(train) / train_time, 1),
                          "elapsed_s": round(time.perf_counter() - start, 1)}), flush=True)


if __name__ == "__main__":
    main()
