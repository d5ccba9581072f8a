#!/usr/bin/env bash
# Side-by-side speed of the book's text model: gen, then Keras and PyTorch (../shared/bench), same session.
# Usage: bench/text.sh [THREADS]   (needs a release build: swift build -c release)
set -eu
here="$(cd "$(dirname "$0")/.." && pwd)"
th="${1:-2}"
shared="${GEN_SHARED:-$here/../shared}"
gen="$here/.build/release/gen"
[ -x "$gen" ] || { echo "build first: swift build -c release" >&2; exit 2; }
out=$(mktemp)
"$gen" bench text --threads "$th" | tee -a "$out"
"$shared/bench/run.sh" charlstm_train "$th" | tee -a "$out"
"$shared/bench/run.sh" charlstm_gen "$th" | tee -a "$out"
python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(l.split("RESULT", 1)[1]) for l in open(sys.argv[1]) if l.startswith("RESULT")]
def best(workload, fw):
    v = [r["value"] for r in rows if r["workload"] == workload and r["framework"] == fw]
    return max(v) if v else None
for w in ["charlstm_train", "charlstm_gen_stateful_step"]:
    g = best(w, "gen"); k = best(w, "keras"); t = best(w, "torch")
    ref = max(x for x in [k, t] if x) if (k or t) else None
    print(f"{w}: gen {g}  keras {k}  torch {t}  gen/keras {g/k:.2f}x  gen/best {g/ref:.2f}x" if g and k and ref else f"{w}: gen {g} keras {k} torch {t}")
PY
rm -f "$out"
