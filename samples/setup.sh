#!/usr/bin/env bash
# Installs what gen needs on Debian (build dependencies and the data packages the examples use),
# then, when the machine has internet access, downloads the public inputs the README mentions
# into samples/downloads/ (SHA-256 verified). Offline, the downloads are skipped with a message.
# Usage: samples/setup.sh [--no-apt] [--no-download]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
apt=1; download=1
for a in "$@"; do
  case "$a" in
    --no-apt) apt=0 ;;
    --no-download) download=0 ;;
    *) echo "usage: $0 [--no-apt] [--no-download]" >&2; exit 2 ;;
  esac
done

packages=(libopenblas-dev libpng-dev libjpeg-dev zlib1g-dev pkg-config fortunes dataset-fashion-mnist)
if [ "$apt" = 1 ]; then
  missing=()
  for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ "${#missing[@]}" -gt 0 ]; then
    sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
  fi
  echo "system packages: ok (${packages[*]})"
fi

[ "$download" = 1 ] || exit 0
dest="$here/downloads"; mkdir -p "$dest"
# name|url|sha256
files=(
  "tinyshakespeare.txt|https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt|86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
  "nietzsche.txt|https://s3.amazonaws.com/text-datasets/nietzsche.txt|23cf69874ab69d3d256099ab530ea4be24d47d9675b673bcc67cbcd6298ec647"
)
for entry in "${files[@]}"; do
  IFS='|' read -r name url sum <<<"$entry"
  out="$dest/$name"
  if [ -f "$out" ] && echo "$sum  $out" | sha256sum -c --quiet 2>/dev/null; then echo "$name: present"; continue; fi
  if ! curl -fsSL --max-time 60 -o "$out.part" "$url" 2>/dev/null; then
    rm -f "$out.part"; echo "$name: skipped (no network access to $url)"; continue
  fi
  if echo "$sum  $out.part" | sha256sum -c --quiet 2>/dev/null; then
    mv "$out.part" "$out"; echo "$name: downloaded"
  else
    rm -f "$out.part"; echo "$name: checksum mismatch for $url, discarded" >&2
  fi
done
