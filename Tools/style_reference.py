"""PyTorch reference for `gen style` (L-BFGS comparison).

Same network (torchvision squeezenet1_0 with /work/shared/data/weights/squeezenet1_0.pth), same layers,
same loss definition and weights as Sources/GenStudio/Style/StyleLoss.swift, same initial image (the
content), same image size, optimised with torch.optim.LBFGS(line_search_fn="strong_wolfe",
history_size=100) for N function evaluations. Prints the loss after every evaluation and the end values.

Give it images already at the working size (e.g. `gen image convert IN OUT.png --size 256`) so both
sides see identical pixels (no resampling differences); gen is then run with the same files and no --size.

Loss (images x in [0,1], NHWC in gen / NCHW here; ImageNet mean/std normalisation inside the network):
  content = mean((F - P)^2) summed over content layers
  style   = sum over style layers of mean((G - A)^2), G = F^T F / (H W C)   (weighted by style_weight / L)
  tv      = mean over (H-1)(W-1)C of ((x[i,j]-x[i+1,j])^2 + (x[i,j]-x[i,j+1])^2)^1.25
Layer names: conv1 = ReLU after features[0], pool1 = features[2], fireK = the Fire module's output.

Usage: /tmp/gen-anchors/bin/python Tools/style_reference.py CONTENT.png STYLE.png --evals 100
"""
import argparse, json, time
import numpy as np
import torch
import torchvision
from PIL import Image

p = argparse.ArgumentParser()
p.add_argument("content"); p.add_argument("style")
p.add_argument("--weights", default="/work/shared/data/weights/squeezenet1_0.pth")
p.add_argument("--evals", type=int, default=100)
p.add_argument("--content-layers", default="fire7")
p.add_argument("--style-layers", default="conv1,fire2,fire3,fire5,fire7")
p.add_argument("--content-weight", type=float, default=1.0)
p.add_argument("--style-weight", type=float, default=100.0)
p.add_argument("--tv-weight", type=float, default=1000.0)
p.add_argument("--history", type=int, default=100)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--json", help="write the curve here")
a = p.parse_args()
torch.set_num_threads(a.threads)

INDEX = {"conv1": 1, "pool1": 2, "fire2": 3, "fire3": 4, "fire4": 5, "pool4": 6, "fire5": 7, "fire6": 8,
         "fire7": 9, "fire8": 10, "pool8": 11, "fire9": 12}
net = torchvision.models.squeezenet1_0()
net.load_state_dict(torch.load(a.weights, map_location="cpu"))
feats = net.features.eval()
for q in feats.parameters():
    q.requires_grad_(False)
for m in feats.modules():
    if isinstance(m, torch.nn.ReLU):
        m.inplace = False
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
cl = a.content_layers.split(","); sl = a.style_layers.split(",")
deepest = max(INDEX[l] for l in cl + sl)

def load(path):
    im = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(im).permute(2, 0, 1).unsqueeze(0).contiguous()

def activations(x, layers):
    out = {}
    h = (x - MEAN) / STD
    want = {INDEX[l]: l for l in layers}
    for i, m in enumerate(feats):
        h = m(h)
        if i in want: out[want[i]] = h
        if i >= max(want): break
    return out

def gram(f):  # f: (1, C, H, W)
    c = f.shape[1]
    m = f.reshape(c, -1)
    return (m @ m.t()) / f.numel()

def tv(x):  # x: (1, 3, H, W)
    a_ = (x[:, :, :-1, :-1] - x[:, :, 1:, :-1]).square()
    b_ = (x[:, :, :-1, :-1] - x[:, :, :-1, 1:]).square()
    return (a_ + b_).pow(1.25).mean()

content = load(a.content); style = load(a.style)
with torch.no_grad():
    P = {l: t.detach() for l, t in activations(content, cl).items()}
    A = {l: gram(t).detach() for l, t in activations(style, sl).items()}

x = content.clone().requires_grad_(True)
opt = torch.optim.LBFGS([x], lr=1, max_iter=100000, max_eval=a.evals, history_size=a.history,
                        tolerance_grad=0, tolerance_change=1e-9, line_search_fn="strong_wolfe")
curve = []
def closure():
    opt.zero_grad()
    acts = activations(x, cl + sl)
    c = sum((acts[l] - P[l]).square().mean() for l in cl) * a.content_weight
    s = sum((gram(acts[l]) - A[l]).square().mean() for l in sl) * (a.style_weight / len(sl))
    t = tv(x) * a.tv_weight
    loss = c + s + t
    loss.backward()
    curve.append(float(loss.detach()))
    return loss
t0 = time.time()
opt.step(closure)
el = time.time() - t0
final = float(closure().detach()); curve.pop()   # loss at the accepted iterate (extra evaluation not counted)
st = opt.state[x]
print("curve:", " ".join(f"{v:.6g}" for v in curve))
n = a.evals
print(f"torch LBFGS: {st['func_evals']} evaluations, {st['n_iter']} iterations, final loss {final:.6g}, "
      f"min over first {n} evaluations {min(curve[:n]):.6g}, {el / max(1, len(curve)):.3f} s/evaluation")
if a.json:
    json.dump({"curve": curve, "final": final, "evaluations": st["func_evals"], "iterations": st["n_iter"]}, open(a.json, "w"))
