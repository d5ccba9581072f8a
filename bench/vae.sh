#!/usr/bin/env bash
# Side-by-side training speed of the book's convolutional VAE (28x28x1, latent 2, batch 128, Adam):
# gen, then Keras and PyTorch (../shared/bench run.sh vae: default and fastest variants), same session.
# Usage: bench/vae.sh [THREADS]   (needs a release build: swift build -c release; GEN_BINARY overrides the binary)
set -eu
here="$(cd "$(dirname "$0")/.." && pwd)"
th="${1:-2}"
shared="${GEN_SHARED:-$here/../shared}"
gen="${GEN_BINARY:-$here/.build/release/gen}"
[ -x "$gen" ] || { echo "build first: swift build -c release (or set GEN_BINARY)" >&2; exit 2; }
out=$(mktemp)
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$gen" bench vae --threads "$th" | tee -a "$out"
"$shared/bench/run.sh" vae "$th" | tee -a "$out"
"$gen" bench vae --threads "$th" | tee -a "$out"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(l.split("RESULT", 1)[1]) for l in open(sys.argv[1]) if l.startswith("RESULT")]
def vals(fw):
    return [r["value"] for r in rows if r["workload"] == "vae_train" and r["framework"] == fw]
g, k, t = vals("gen"), vals("keras"), vals("torch")
if not (g and k and t):
    print(f"vae_train: gen {g} keras {k} torch {t}"); sys.exit(0)
gm, km, tm = max(g), max(k), max(t)
print(f"vae_train samples/s: gen {gm:.0f} (runs {', '.join(f'{v:.0f}' for v in g)})  keras {km:.0f} (default/oneDNN {', '.join(f'{v:.0f}' for v in k)})"
      f"  torch {tm:.0f} (default/channels_last {', '.join(f'{v:.0f}' for v in t)})")
print(f"gen/keras {gm/km:.2f}x  gen/torch {gm/tm:.2f}x  gen/best {gm/max(km, tm):.2f}x  (target: 2x keras)")
PY
rm -f "$out"
