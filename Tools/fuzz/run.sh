#!/usr/bin/env bash
# Builds the CImageCodecs libFuzzer harness and runs it for SECONDS (default 60) with the
# shared test images as seed corpus. Usage: Tools/fuzz/run.sh SECONDS [extra libFuzzer flags]
# Output: Tools/fuzz/out/ (binary, corpus, crash/leak artifacts, log). Exit code: libFuzzer's.
set -euo pipefail
SECONDS_TO_RUN="${1:-60}"
shift || true
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
OUT="$HERE/out"
CASES="${GEN_DATA_CASES:-$ROOT/../shared/cases}"
DATA="${GEN_DATA:-$ROOT/../shared/data}"
CC="${CC:-clang}"
mkdir -p "$OUT/corpus" "$OUT/seeds" "$OUT/artifacts"

"$CC" -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -I"$ROOT/Sources/CImageCodecs/include" -I"$ROOT/Sources/CImageCodecs" \
    "$HERE/fuzz_decode.c" "$ROOT"/Sources/CImageCodecs/*.c \
    -lpng -ljpeg -lz -lm -o "$OUT/fuzz_decode" 2> >(grep -v "Cannot export local symbol" >&2)

# Seed corpus: every case input plus a few real photos (small ones only).
if [ -d "$CASES/inputs" ]; then
    find "$CASES/inputs" -type f \( -name '*.png' -o -name '*.jpg' -o -name '*ubyte' \) -size -200k \
        -exec cp -f {} "$OUT/seeds/" \; 2>/dev/null || true
    for f in "$CASES"/inputs/case17_mixed_dataset/* "$CASES"/inputs/case19_mnist_gzipped/*; do
        [ -f "$f" ] && cp -f "$f" "$OUT/seeds/$(basename "$(dirname "$f")")_$(basename "$f")"
    done
fi
if [ -d "$DATA/images/cifar10-frogs" ]; then
    for f in "$DATA"/images/cifar10-frogs/00[01]?.jpg; do [ -f "$f" ] && cp -f "$f" "$OUT/seeds/frog_$(basename "$f")"; done
fi
[ -d "$HERE/seeds" ] && cp -f "$HERE"/seeds/* "$OUT/seeds/" 2>/dev/null || true

cd "$OUT"
ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}" \
"$OUT/fuzz_decode" -max_total_time="$SECONDS_TO_RUN" -rss_limit_mb=2048 -max_len=65536 \
    -artifact_prefix="$OUT/artifacts/" -print_final_stats=1 "$@" \
    "$OUT/corpus" "$OUT/seeds" 2>&1 | tee "$OUT/fuzz.log"
status=${PIPESTATUS[0]}
echo "fuzz_decode finished with status $status; artifacts: $(ls "$OUT/artifacts" | wc -l)"
exit "$status"
