#!/usr/bin/env bash
# Prove the GPU check's device command here, before any device time is spent: a fresh
# Python 3.12 environment holding only stand-ins for the lent machine's image
# (.dev_scripts/device_image_requirements.txt: torch 2.11.0, torchvision 0.26.0, the
# packages the image lists), the carried bundle installed by the exact line the device
# command starts with (.dev_scripts/device_bundle.sh), then `gpu_check.py --dry-run` on the
# CPU. If this passes, the device call can fail only for GPU reasons.
#
# Usage: .dev_scripts/device_check_local.sh [CACHE]
#   CACHE  downloads, the environment and the results (default: $DEVICE_CACHE, else
#          cache/device-wheels in the folder that holds this checkout); downloads are reused
#   PYTHON312  the interpreter for the environment (default: python3.12)
#   FRESH=1    rebuild the image environment even when its pins have not changed
#   -h, --help print this help
#
# The image environment (2 GB of torch and CUDA libraries) is rebuilt whenever
# .dev_scripts/device_image_requirements.txt or the interpreter changes (a stamp holds their
# hash) and holds nothing else; the bundle is installed afresh into an empty folder on every run, by the
# device command's own line, and only PYTHONPATH makes it visible, as on the machine.
#
# The registry has no CPU build of torch 2.11.0 for Linux: its wheel is the CUDA 13 build,
# which imports on a machine without a GPU once the CUDA libraries it links are installed
# (the image holds them too).
set -euo pipefail

case "${1:-}" in
  -h|--help) sed -n '2,23p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
esac
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
image_requirements="$root/.dev_scripts/device_image_requirements.txt"
cache="${1:-${DEVICE_CACHE:-$(dirname "$root")/cache/device-wheels}}"
python312="${PYTHON312:-python3.12}"
venv="$cache/venv-py312"
site="$cache/site"
results="$cache/dry-run"

log() { printf '[device_check_local] %s\n' "$*"; }
die() { printf 'device_check_local: error: %s\n' "$*" >&2; exit 1; }

command -v "$python312" >/dev/null || die "no $python312 (set PYTHON312 to a Python 3.12 interpreter)"
"$python312" -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null ||
  die "$python312 is not Python 3.12 (the lent machine's version); set PYTHON312"
start=$(date +%s)

log "the bundle (cached in $cache/bundle)"
PYTHON="$python312" "$root/.dev_scripts/device_bundle.sh" --cache "$cache/bundle" \
  --target "$site" "$root/build/device-wheels" | tee "$cache/bundle.log"
install_line="$(sed -n 's/^\[device_bundle\] install line: //p' "$cache/bundle.log" | tail -1)"
[ -n "$install_line" ] || die "device_bundle.sh printed no install line"

log "stand-ins for the machine's image (cached in $cache/image)"
mkdir -p "$cache/image"
"$python312" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
  --platform manylinux_2_25_x86_64 --platform manylinux_2_24_x86_64 \
  --platform manylinux_2_18_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux_2_12_x86_64 \
  --platform manylinux2010_x86_64 --platform manylinux_2_5_x86_64 \
  --platform manylinux1_x86_64 -d "$cache/image" -r "$image_requirements"

stamp="$(cat "$image_requirements" <("$python312" -VV) | sha256sum | cut -c1-16)"
if [ "${FRESH:-0}" = 1 ] || [ "$(cat "$venv/.image-stamp" 2>/dev/null)" != "$stamp" ]; then
  log "a fresh image environment: $venv"
  rm -rf "$venv"
  "$python312" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --no-index --no-deps --no-compile \
    --find-links "$cache/image" -r "$image_requirements"
  echo "$stamp" > "$venv/.image-stamp"
else
  log "the image environment $venv is current (stamp $stamp; FRESH=1 rebuilds it)"
fi
rm -rf "$site" "$results"

log "the device command's install line, in $root: $install_line"
cd "$root"
# The line ends in `|| exit;`: run it as the device command does, then the check.
PATH="$venv/bin:$PATH" CUDA_VISIBLE_DEVICES="" bash -c "set -e; $install_line
python3 -c 'import mmcv, mmengine, mmpretrain, open_clip, torch
from mmengine.utils.dl_utils import mmcv_full_available
print(\"[device_check_local] python\", __import__(\"sys\").version.split()[0], \"torch\",
      torch.__version__, \"mmcv\", mmcv.__version__, \"compiled ops:\", mmcv_full_available())'
python3 tools/benchmarks/gpu_check.py --dry-run --out-dir '$results'"
log "results: $results/gpu_check.json, $results/gpu_check.md"
log "wall time $(( $(date +%s) - start )) s"
