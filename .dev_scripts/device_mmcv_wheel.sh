#!/usr/bin/env bash
# Build mmcv 2.1.0 with CUDA ops as a wheel for the lent GPU machine's image (CPython 3.12,
# torch 2.11.0+cu130, H100 / H200: sm_90), on a machine without a GPU, so that the GPU
# check's bundle can carry it (detection and segmentation need mmcv.ops).
#
# Usage: .dev_scripts/device_mmcv_wheel.sh [WORK]
#   WORK        the build environment, the source tree, the wheel and the log (default:
#               $DEVICE_CACHE/mmcv-cuda, else cache/device-wheels/mmcv-cuda in the folder
#               that holds this checkout)
#   PYTHON312   the interpreter of the build environment (default: python3.12)
#   TORCH_CUDA_ARCH_LIST  default 9.0 (the machine's H100 / H200)
#   MAX_JOBS    parallel compile jobs (default: 2)
#   -h, --help  print this help
#
# Resumable: the source is unpacked once into WORK/src and built in place (pip builds a local
# folder in-tree), so a stopped build keeps its finished objects in WORK/src/mmcv-2.1.0/build
# and ninja compiles only the rest when the script runs again. The compile runs under
# nice 19. Everything is appended to WORK/build.log with the start, the end and the elapsed
# seconds of each run; the wheel lands in WORK/wheel and is then checked: `from mmcv.ops
# import nms, RoIAlign` on the CPU, the CUDA version it was compiled with, and its CUDA archs
# (cuobjdump --list-elf), plus its size.
#
# The build follows tools/misc/install_env.sh's CUDA route: the CUDA 13.0 compiler from the
# package registry (requirements/cuda.txt; the CUDA headers come with torch's CUDA wheels),
# tools/misc/cxx20 and tools/misc/nvcc20, copied into WORK/bin (mmcv asks for C++17, torch's
# headers want C++20), a libcudart.so link for -lcudart, no build isolation and
# setuptools<81 (mmcv's setup.py imports pkg_resources).
set -euo pipefail

case "${1:-}" in
  -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  -*) printf 'device_mmcv_wheel: error: unknown option %s (see --help)\n' "$1" >&2; exit 2 ;;
esac
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="${1:-${DEVICE_CACHE:-$(dirname "$root")/cache/device-wheels}/mmcv-cuda}"
python312="${PYTHON312:-python3.12}"
archs="${TORCH_CUDA_ARCH_LIST:-9.0}"
# The image's torch (.dev_scripts/device_image_requirements.txt), the mmcv the stack pins.
torch_pin="$(grep -E '^torch==' "$root/.dev_scripts/device_image_requirements.txt")"
mmcv_pin="$(grep -E '^mmcv==' "$root/requirements/mminstall.txt")"
# cuobjdump is not part of the compiler pins: this one lists CUDA 13.0 cubins.
cuobjdump_pin=nvidia-cuda-cuobjdump==13.2.86

die() { printf 'device_mmcv_wheel: error: %s\n' "$*" >&2; exit 1; }
log() { printf '[device_mmcv_wheel] %s\n' "$*"; }

command -v "$python312" >/dev/null ||
  die "no $python312 (set PYTHON312 to a Python 3.12 interpreter, the machine's version)"
# (a pyenv shim exists for every installed version but runs only the selected ones)
version_check='import sys; assert sys.version_info[:2] == (3, 12), sys.version'
version_error="$("$python312" -c "$version_check" 2>&1)" ||
  die "$python312 does not run as Python 3.12, the lent machine's version" \
    "($(printf '%s\n' "$version_error" | grep -m 1 -E 'not found|Error'));" \
    "set PYTHON312 to a Python 3.12 interpreter"
[ -n "$torch_pin" ] || die "no torch==... line in .dev_scripts/device_image_requirements.txt"
[ -n "$mmcv_pin" ] || die "no mmcv==... line in requirements/mminstall.txt"

mkdir -p "$work"
exec > >(tee -a "$work/build.log") 2>&1
trap 'log "failed (exit $?) at line $LINENO of ${BASH_SOURCE[0]}; run it again to resume"' ERR
start=$(date +%s)
log "start $(date -Is): $mmcv_pin for $torch_pin, TORCH_CUDA_ARCH_LIST=\"$archs\", in $work"

venv="$work/venv"
if [ ! -x "$venv/bin/python" ]; then
  log "creating the build environment $venv ($("$python312" -V))"
  "$python312" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check)
mmengine_pin="$(grep -E '^mmengine==' "$root/requirements/mminstall.txt")"
log "installing $torch_pin, the build tools, the CUDA compiler (requirements/cuda.txt) and" \
  "$mmengine_pin (for the check of the wheel)"
"${pip[@]}" install -q "$torch_pin" 'setuptools>=77.0.3,<81' wheel ninja \
  -r "$root/requirements/cuda.txt" "$cuobjdump_pin" "$mmengine_pin"
torch_cuda="$("$venv/bin/python" -c 'import torch; print(torch.version.cuda or "")')"
pinned="$(sed -n "s/.*torch.version.cuda == '\([0-9.]*\)'.*/\1/p" "$root/requirements/cuda.txt")"
[ "$torch_cuda" = "$pinned" ] ||
  die "$torch_pin is built with CUDA '${torch_cuda:-none}', requirements/cuda.txt pins the CUDA $pinned compiler"

site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
export CUDA_HOME="$site/nvidia/cu${torch_cuda%%.*}"
[ -x "$CUDA_HOME/bin/nvcc" ] || die "no nvcc in $CUDA_HOME after installing requirements/cuda.txt"
mkdir -p "$venv/cuda-link"
ln -sf "$(ls "$CUDA_HOME"/lib*/libcudart.so.[0-9]* | head -n 1)" "$venv/cuda-link/libcudart.so"
export LIBRARY_PATH="$venv/cuda-link${LIBRARY_PATH:+:$LIBRARY_PATH}"
# Copies of the C++20 wrappers in WORK: the compile commands, which ninja compares to decide
# what to rebuild, then stay the same when the build is resumed from another checkout.
mkdir -p "$work/bin"
install -m 755 "$root/tools/misc/cxx20" "$root/tools/misc/nvcc20" "$work/bin/"
export CXX="$work/bin/cxx20" PYTORCH_NVCC="$work/bin/nvcc20"
export MMCV_WITH_OPS=1 FORCE_CUDA=1 TORCH_CUDA_ARCH_LIST="$archs" MAX_JOBS="${MAX_JOBS:-2}"
export CFLAGS="${CFLAGS:--g0}"
log "CUDA compiler: $CUDA_HOME/bin/nvcc ($("$CUDA_HOME/bin/nvcc" --version | grep -o 'release [0-9.]*'))"

src="$work/src/mmcv-${mmcv_pin#*==}"
if [ ! -f "$src/setup.py" ]; then
  log "unpacking the $mmcv_pin source into $work/src"
  mkdir -p "$work/src"
  # (no build isolation: pip reads the metadata by running setup.py, which needs pkg_resources)
  "${pip[@]}" download -q --no-deps --no-binary :all: --no-build-isolation -d "$work/src" \
    "$mmcv_pin"
  tar -xzf "$work/src/mmcv-${mmcv_pin#*==}.tar.gz" -C "$work/src"
fi
objects=0
[ -d "$src/build" ] && objects="$(find "$src/build" -name '*.o' | wc -l)"
log "compiling (nice 19, MAX_JOBS=$MAX_JOBS; $objects objects kept from earlier runs)"
rm -rf "$work/wheel"
nice -n 19 "${pip[@]}" wheel -v --no-build-isolation --no-deps "$src" -w "$work/wheel"
wheel="$(ls "$work/wheel"/mmcv-*.whl)"

log "checking $(basename "$wheel") on the CPU"
rm -rf "$work/check"
"${pip[@]}" install -q --no-deps --target "$work/check" "$wheel"
CUDA_VISIBLE_DEVICES= PYTHONPATH="$work/check" "$venv/bin/python" -c '
from mmcv.ops import RoIAlign, get_compiling_cuda_version, nms  # noqa: F401
print("[device_mmcv_wheel] mmcv.ops imports; compiled with CUDA", get_compiling_cuda_version())'
ext="$(ls "$work/check"/mmcv/_ext*.so)"
log "CUDA archs in $(basename "$ext"): $("$CUDA_HOME/bin/cuobjdump" --list-elf "$ext" |
  grep -o 'sm_[0-9a-z]*' | sort | uniq -c | awk '{printf "%s (%s cubins) ", $2, $1}')"
log "wheel: $wheel, $(du -b "$wheel" | awk '{printf "%.1f MiB", $1 / 1048576}')" \
  "(_ext: $(du -b "$ext" | awk '{printf "%.1f MiB", $1 / 1048576}') unpacked)"
log "end $(date -Is), elapsed $(( $(date +%s) - start )) s"
