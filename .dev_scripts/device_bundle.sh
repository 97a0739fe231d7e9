#!/usr/bin/env bash
# Collect the wheel bundle the GPU check needs on the lent GPU machine (CPython 3.12,
# manylinux x86-64, torch 2.11 preinstalled, no package registry reachable): download the
# registry's wheels, copy the ones built here (mmcv with CUDA ops), check that the bundle and
# the project fit the 64 MiB a device call carries, and print the install line that starts
# the remote command.
#
# Usage: .dev_scripts/device_bundle.sh [options] [DEST]
#   DEST               folder for the wheels (default: build/device-wheels, which .gitignore
#                      ignores; name it in the device call's carry)
#   --requirements F   pinned wheels, one NAME==VERSION a line; a line whose comment starts
#                      with `local` names a wheel built here, not downloaded
#                      (default: .dev_scripts/device_requirements.txt)
#   --find-links DIR   where the local wheels are (default: device_mmcv_wheel.sh's output,
#                      $DEVICE_CACHE/mmcv-cuda/wheel, else cache/device-wheels/mmcv-cuda/wheel
#                      in the folder that holds this checkout)
#   --cache DIR        download into DIR (kept between runs) and copy the pinned wheels to DEST
#   --target DIR       where the printed install line installs them (default: /tmp/site)
#   --limit-mib N      the carry limit (default: 64)
#   --margin-mib N     room kept free under it beside the bundle and the project (default: 8)
#   --check-only       download nothing: check DEST's wheels against the pins and the size
#   --dry-run          print the pip command and the install line, download and check nothing
#
# Every registry wheel is fetched with --no-deps (the machine has most dependencies; the file
# names each missing one), so DEST holds exactly one wheel per pin; other wheels there are
# removed.
# Exits non-zero with a one-line reason when a pin is malformed, a wheel is missing or the
# total is over the limit.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
requirements="$root/.dev_scripts/device_requirements.txt"
dest="$root/build/device-wheels"
cache=""
find_links="${DEVICE_CACHE:-$(dirname "$root")/cache/device-wheels}/mmcv-cuda/wheel"
target="/tmp/site"
limit_mib=64
margin_mib=8
mode="download"
python="${PYTHON:-python3}"

die() { printf 'device_bundle: error: %s\n' "$*" >&2; exit 1; }
log() { printf '[device_bundle] %s\n' "$*"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --requirements) requirements="${2:?--requirements needs a file}"; shift 2 ;;
    --cache) cache="${2:?--cache needs a folder}"; shift 2 ;;
    --find-links) find_links="${2:?--find-links needs a folder}"; shift 2 ;;
    --target) target="${2:?--target needs a folder}"; shift 2 ;;
    --limit-mib) limit_mib="${2:?--limit-mib needs a number}"; shift 2 ;;
    --margin-mib) margin_mib="${2:?--margin-mib needs a number}"; shift 2 ;;
    --check-only) mode="check"; shift ;;
    --dry-run) mode="dry-run"; shift ;;
    -h|--help) sed -n '2,28p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) dest="$1"; shift ;;
  esac
done
for number in "$limit_mib" "$margin_mib"; do
  [[ "$number" =~ ^[0-9]+$ ]] || die "--limit-mib and --margin-mib take whole MiB, got '$number'"
done
[ -f "$requirements" ] || die "requirements file $requirements not found"

# The pins: NAME==VERSION lines, comments and blank lines skipped; those whose comment
# starts with `local` are built here (local_pins), the others come from the registry.
pins=()
registry_pins=()
local_pins=()
line_number=0
while IFS= read -r line || [ -n "$line" ]; do
  line_number=$((line_number + 1))
  comment=""
  [[ "$line" == *"#"* ]] && comment="${line#*#}"
  line="${line%%#*}"
  line="${line//[[:space:]]/}"
  [ -z "$line" ] && continue
  [[ "$line" =~ ^[A-Za-z0-9][A-Za-z0-9._-]*==[A-Za-z0-9][A-Za-z0-9.+!_-]*$ ]] ||
    die "$requirements:$line_number: '$line' is not NAME==VERSION (pin one version of each wheel)"
  pins+=("$line")
  if [[ "$comment" =~ ^[[:space:]]*local([^A-Za-z0-9_]|$) ]]; then
    local_pins+=("$line")
  else
    registry_pins+=("$line")
  fi
done < "$requirements"
[ "${#pins[@]}" -gt 0 ] || die "$requirements names no wheels"

# A wheel's file name starts with its name (normalized: runs of -_. become _, any case) and
# version: the key both sides are compared by.
normalize() { printf '%s' "$1" | tr 'A-Z' 'a-z' | sed -E 's/[-_.]+/_/g'; }
pin_key() { printf '%s-%s' "$(normalize "${1%%==*}")" "${1#*==}"; }
wheel_key() {
  local base name rest
  base="$(basename "$1" .whl)"
  name="${base%%-*}"
  rest="${base#*-}"
  printf '%s-%s' "$(normalize "$name")" "${rest%%-*}"
}

platforms=(manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64
  manylinux1_x86_64)
download_dir="${cache:-$dest}"
pip_command=("$python" -m pip download --no-deps --only-binary=:all: --python-version 3.12
  --implementation cp)
for platform in "${platforms[@]}"; do pip_command+=(--platform "$platform"); done
pip_command+=(-d "$download_dir" "${registry_pins[@]}")

case "$dest" in
  "$root"/*) dest_shown="${dest#"$root"/}" ;;
  /*) dest_shown="$dest" ;;
  *) dest_shown="$dest"; dest="$PWD/$dest" ;;
esac
install_line="python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
--upgrade --target $target $dest_shown/*.whl && export PYTHONPATH=$target:\$PWD || exit;"

if [ "$mode" = "dry-run" ]; then
  if [ "${#registry_pins[@]}" -gt 0 ]; then printf '%q ' "${pip_command[@]}"; printf '\n'; fi
  [ -n "$cache" ] && log "then copy the ${#registry_pins[@]} registry wheels from $cache to $dest"
  [ "${#local_pins[@]}" -gt 0 ] && log "copy the local wheels ${local_pins[*]} from $find_links to $dest"
  log "install line: $install_line"
  exit 0
fi

if [ "$mode" = "download" ]; then
  mkdir -p "$download_dir" "$dest"
  if [ "${#registry_pins[@]}" -gt 0 ]; then
    log "downloading ${#registry_pins[@]} wheels into $download_dir"
    "${pip_command[@]}" -q
  fi
  # A local wheel must be for CPython 3.12 (or any Python) on Linux x86-64, as the machine.
  for pin in "${local_pins[@]}"; do
    chosen=""
    for wheel in "$find_links"/*.whl; do
      [ -e "$wheel" ] || continue
      [ "$(wheel_key "$wheel")" = "$(pin_key "$pin")" ] || continue
      [[ "$(basename "$wheel")" =~ -(cp312-cp312|cp312-abi3|py3-none)-(linux|manylinux[0-9_]*)_x86_64\.whl$|-py3-none-any\.whl$ ]] ||
        continue
      [ -z "$chosen" ] || die "two wheels for $pin in $find_links: $(basename "$chosen") and $(basename "$wheel") (keep one)"
      chosen="$wheel"
    done
    [ -n "$chosen" ] || die "no CPython 3.12 x86-64 wheel for $pin in $find_links (a local wheel: build it with .dev_scripts/device_mmcv_wheel.sh, or name its folder with --find-links)"
    log "local wheel for $pin: $chosen"
    cp -p "$chosen" "$dest/"
  done
fi

# DEST must hold exactly the pinned wheels: copy them from the cache, drop any others.
[ -d "$dest" ] || die "bundle folder $dest does not exist (run without --check-only first)"
declare -A wanted=()
for pin in "${pins[@]}"; do wanted["$(pin_key "$pin")"]="$pin"; done
if [ -n "$cache" ] && [ "$mode" = "download" ]; then
  for wheel in "$cache"/*.whl; do
    [ -e "$wheel" ] || continue
    if [ -n "${wanted[$(wheel_key "$wheel")]:-}" ]; then cp -p "$wheel" "$dest/"; fi
  done
fi
declare -A found=()
for wheel in "$dest"/*.whl; do
  [ -e "$wheel" ] || continue
  key="$(wheel_key "$wheel")"
  if [ -z "${wanted[$key]:-}" ]; then
    if [ "$mode" = "check" ]; then
      die "$wheel is not pinned in $requirements (one version of each: remove it)"
    fi
    log "removing $(basename "$wheel") (not pinned in $requirements)"
    rm -f "$wheel"
    continue
  fi
  [ -z "${found[$key]:-}" ] || die "two wheels for ${wanted[$key]} in $dest: $(basename "$wheel") and ${found[$key]}"
  found["$key"]="$(basename "$wheel")"
done
for pin in "${pins[@]}"; do
  [ -n "${found[$(pin_key "$pin")]:-}" ] || die "no wheel for $pin in $dest"
done

# The size check: the bundle plus what else travels (tracked and untracked-not-ignored files,
# the bundle itself left out when it is not ignored), with the margin free.
bundle_bytes=$(find "$dest" -maxdepth 1 -name '*.whl' -printf '%s\n' | awk '{s += $1} END {print s + 0}')
project_bytes=0
if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  project_bytes=$(cd "$root" && git ls-files -z --cached --others --exclude-standard |
    { grep -zv "^${dest_shown}/" || true; } | xargs -0 -r stat -c '%s' 2>/dev/null | awk '{s += $1} END {print s + 0}')
fi
mib() { awk -v b="$1" 'BEGIN {printf "%.1f", b / 1048576}'; }
total_bytes=$((bundle_bytes + project_bytes))
allowed_bytes=$(((limit_mib - margin_mib) * 1048576))
summary="bundle $(mib "$bundle_bytes") MiB (${#pins[@]} wheels) + project $(mib "$project_bytes") MiB = $(mib "$total_bytes") MiB"
if [ "$total_bytes" -gt "$allowed_bytes" ]; then
  die "$summary: over the $limit_mib MiB carry limit less the $margin_mib MiB margin; drop wheels the machine has, or carry less"
fi
log "$summary, within the $limit_mib MiB carry limit (margin $margin_mib MiB kept free)"
log "carry: $dest_shown"
log "install line: $install_line"
