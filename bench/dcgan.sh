#!/usr/bin/env bash
# Side-by-side speed of one full step of the book's DCGAN (32x32x3, latent 32, batch 20:
# discriminator on 20 real + 20 generated images, then the adversarial step), gen vs Keras and
# PyTorch (../shared/bench `dcgan`), plus the sgemm ceiling measured in the same session.
# Usage: bench/dcgan.sh [THREADS]   (build first: swift build -c release; GEN=path/to/gen to override)
set -u
HERE="$(cd "$(dirname "$0")/.." && pwd)"
TH="${1:-2}"
GEN="${GEN:-$HERE/.build/release/gen}"
SHARED="$HERE/../shared/bench"
V="${GEN_ANCHORS:-/tmp/gen-anchors}"
[ -x "$GEN" ] || { echo "no gen binary at $GEN (swift build -c release, or set GEN)" >&2; exit 2; }
LOG="$(mktemp)"
echo "### gen dcgan ($TH threads)"
"$GEN" bench dcgan --threads "$TH" | tee -a "$LOG"
"$SHARED/run.sh" dcgan "$TH" "$V" | tee -a "$LOG"
echo "### sgemm ceiling (numpy OpenBLAS, $TH threads)"
if [ -x "$V/bin/python" ]; then
  OPENBLAS_NUM_THREADS="$TH" OMP_NUM_THREADS="$TH" "$V/bin/python" "$SHARED/sgemm_numpy.py" 2>&1 | tail -5 | tee -a "$LOG"
fi
python3 - "$LOG" <<'PY'
import json, re, sys
rows = []
for line in open(sys.argv[1]):
    m = re.search(r'RESULT (\{.*\})', line)
    if m:
        try: rows.append(json.loads(m.group(1)))
        except Exception: pass
ours = [r for r in rows if r.get("framework") == "gen"]
refs = [r for r in rows if r.get("framework") != "gen" and "steps" in str(r.get("unit", ""))]
if not ours:
    print("no gen result"); sys.exit(1)
g = ours[0]
rate = float(g.get("steps_per_s", g["value"]))
print(f"\ngen: {rate:.4f} steps/s ({1/rate:.2f} s/step), effective {g.get('eff_gflops')} GFLOP/s at {g.get('gflop_per_call')} GFLOP/step")
best = None
for r in refs:
    v = float(r["value"]); print(f"{r['framework']:>6} {r.get('workload')}: {v:.4f} steps/s -> gen/ref = {rate / v:.2f}x"
                                  + (f", {r['eff_gflops']} GFLOP/s" if 'eff_gflops' in r else ""))
    best = v if best is None or v > best else best
if best: print(f"gen vs the faster reference: {rate / best:.2f}x (target 1.15x)")
PY
rm -f "$LOG"
