#!/usr/bin/env bash
# Side-by-side speed of one DeepDream gradient step (objective forward + backward to the image +
# normalised update) at the three octave sizes of ../shared/bench `deepdream` (350x467, 490x653,
# 686x915; random weights, no tiling): gen with InceptionV3 and SqueezeNet 1.0, then Keras and
# PyTorch with InceptionV3 (each in its default and its faster variant), in the same session.
# Prints per-size ratios gen/faster reference (target: below 1.0 for InceptionV3).
# Usage: bench/deepdream.sh [THREADS]   (build first: swift build -c release; GEN=path/to/gen to override,
# GEN_ANCHORS=venv of ../shared/bench/setup.sh, default /tmp/gen-anchors)
set -u
HERE="$(cd "$(dirname "$0")/.." && pwd)"
TH="${1:-2}"
GEN="${GEN:-$HERE/.build/release/gen}"
SHARED="${GEN_SHARED:-$HERE/../shared}/bench"
V="${GEN_ANCHORS:-/tmp/gen-anchors}"
[ -x "$GEN" ] || { echo "no gen binary at $GEN (swift build -c release, or set GEN)" >&2; exit 2; }
LOG="$(mktemp)"
trap 'rm -f "$LOG"' EXIT
echo "### load average before: $(cat /proc/loadavg 2>/dev/null)"
echo "### gen deepdream ($TH threads)"
"$GEN" bench deepdream --threads "$TH" | tee -a "$LOG"
"$SHARED/run.sh" deepdream "$TH" "$V" | tee -a "$LOG"
echo "### load average after: $(cat /proc/loadavg 2>/dev/null)"
python3 - "$LOG" <<'PY'
import json, re, sys
rows = []
for line in open(sys.argv[1]):
    m = re.search(r'RESULT (\{.*\})', line)
    if m:
        try: rows.append(json.loads(m.group(1)))
        except Exception: pass
gen, ref = {}, {}
for r in rows:
    if r.get("framework") == "gen":
        m = re.match(r'deepdream_(.+)_(\d+)$', r["workload"])
        if m: gen[(m.group(1), int(m.group(2)))] = float(r["value"])
    else:
        m = re.match(r'deepdream_(\d+)x(\d+)$', str(r.get("workload", "")))
        if not m: continue
        variant = r["framework"] + "".join(f" {k}={r[k]}" for k in ("onednn", "channels_last", "memory_format") if k in r)
        ref.setdefault(int(m.group(1)), []).append((float(r["value"]), variant))
if not gen:
    print("no gen result"); sys.exit(1)
heights = sorted({h for _, h in gen} | set(ref))
nets = sorted({n for n, _ in gen})
print("\nseconds per gradient step (lower is better)")
print(f"{'size':>10} " + " ".join(f"{'gen ' + n:>22}" for n in nets) + f" {'faster reference':>30}  gen/ref")
for h in heights:
    best = min(ref.get(h, []), default=None)
    cols = " ".join(f"{gen.get((n, h), float('nan')):>22.3f}" for n in nets)
    ratios = ""
    if best:
        ratios = "  " + ", ".join(f"{n}: {gen[(n, h)] / best[0]:.2f}x" for n in nets if (n, h) in gen)
        bs = f"{best[0]:.3f} ({best[1]})"
    else:
        bs = "-"
    print(f"{h:>10} {cols} {bs:>30}{ratios}")
for h in heights:
    for v, name in sorted(ref.get(h, [])):
        print(f"  ref {h}: {name}: {v:.3f} s/step")
iv3 = [gen[("inception_v3", h)] / min(ref[h])[0] for h in heights if ("inception_v3", h) in gen and ref.get(h)]
if iv3:
    print(f"InceptionV3 gen/faster reference: {', '.join(f'{x:.2f}x' for x in iv3)} (target: below 1.00x at each size)")
PY
