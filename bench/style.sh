#!/usr/bin/env bash
# Side-by-side speed of one style-transfer loss+gradient evaluation (targets cached, 400x533):
# gen (VGG19 and SqueezeNet, random weights), then Keras and PyTorch (../shared/bench style_cached, VGG19).
# Usage: bench/style.sh [THREADS]   (needs a release build: swift build -c release)
set -eu
here="$(cd "$(dirname "$0")/.." && pwd)"
th="${1:-2}"
shared="${GEN_SHARED:-$here/../shared}"
gen="${GEN_BINARY:-$here/.build/release/gen}"
[ -x "$gen" ] || { echo "build first: swift build -c release" >&2; exit 2; }
out=$(mktemp)
"$gen" bench style --threads "$th" | tee -a "$out"
"$shared/bench/run.sh" style_cached "$th" | tee -a "$out"
python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(l.split("RESULT", 1)[1]) for l in open(sys.argv[1]) if l.startswith("RESULT")]
gen = {r["workload"]: float(r.get("s_per_evaluation", r["value"])) for r in rows if r["framework"] == "gen"}
ref = {}
for r in rows:
    if r["framework"] != "gen":
        ref.setdefault(r["framework"], []).append(r["value"])
best = {k: min(v) for k, v in ref.items()}
for w, v in gen.items():
    print(f"gen {w}: {v:.3f} s/evaluation")
for k, v in best.items():
    print(f"{k} style_cached (VGG19, best variant): {v:.3f} s/evaluation")
vgg = next((v for w, v in gen.items() if "vgg19" in w), None)
if vgg and best:
    b = min(best.values())
    print(f"gen VGG19 / best reference: {vgg / b:.2f}x the time (target: at most 1.7 s)")
PY
rm -f "$out"
