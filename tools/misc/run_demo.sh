#!/usr/bin/env bash
# What `make demo` runs: pretrain a small iTPN on generated centred objects
# on the CPU, draw and score its reconstructions of held-out images, probe its
# frozen features against the same network at random initialisation, and
# close with the numbers and the wall and CPU times. Nothing is downloaded.
#
# Usage: tools/misc/run_demo.sh [WORK_DIR]   (default: work_dirs/demo_objects)
# DEMO_DATA, DEMO_TRAIN, DEMO_TEST: where the images go and how many
# (data/objects, 20000, 1000); DEMO_HELD_OUT: test images scored (256);
# DEMO_PROBE_TRAIN: training images of the probe (10000). Smaller values
# make a quick check (the test suite's), not the demo.
# PYTHON: the interpreter (default: the repository's .venv/bin/python);
# INSTALL_STAMP: the file holding the install's seconds (make passes it).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
case "${1:-}" in
  -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
esac
work_dir="${1:-work_dirs/demo_objects}"
python="${PYTHON:-$root/.venv/bin/python}"
config=configs/pretrain/demo/itpn-pixel_hivit-demo_1xb128-coslr-3e_objects-64px.py
data="${DEMO_DATA:-data/objects}"
train_images="${DEMO_TRAIN:-20000}"
test_images="${DEMO_TEST:-1000}"
held_out="${DEMO_HELD_OUT:-256}"
probe_train="${DEMO_PROBE_TRAIN:-10000}"

now() { date +%s; }
# CPU seconds (user + system) of the finished child processes: `times` must
# run in this shell (a subshell would count only its own children).
times_file="$(mktemp)"
trap 'rm -f "$times_file"' EXIT
children_cpu() {
  awk 'END { total = 0
    for (i = 1; i <= 2; i++) { split($i, t, /[ms]/); total += 60 * t[1] + t[2] }
    printf "%.0f", total }' "$times_file"
}
step() { printf '\n[make demo] %s\n' "$*"; }

step "1/4 generating $data ($train_images training and $test_images test images, 64 px)"
start=$(now); times > "$times_file"; cpu0=$(children_cpu)
"$python" tools/dataset_converters/make_objects_cls.py "$data" \
  --train "$train_images" --test "$test_images"
data_s=$(( $(now) - start )); times > "$times_file"; data_cpu=$(( $(children_cpu) - cpu0 ))

step "2/4 pretraining iTPN pixel on the CPU for 3 epochs (log: loss, lr, ETA)"
start=$(now); times > "$times_file"; cpu0=$(children_cpu)
"$python" tools/train.py "$config" --work-dir "$work_dir" \
  --cfg-options train_dataloader.dataset.data_root="$data"
train_s=$(( $(now) - start )); times > "$times_file"; train_cpu=$(( $(children_cpu) - cpu0 ))
checkpoint="$(cat "$work_dir/last_checkpoint")"

step "3/4 reconstructions of $held_out held-out test images (4 drawn)"
start=$(now); times > "$times_file"; cpu0=$(children_cpu)
mapfile -t images < <(ls "$data"/test/*.png | head -n "$held_out")
"$python" tools/visualization/vis_reconstruction.py "$config" "$checkpoint" \
  "${images[@]}" --draw 4 --out-dir "$work_dir/reconstructions" \
  --montage "$work_dir/reconstructions/held_out.png" | tee "$work_dir/pattern_r2.txt"
pictures_s=$(( $(now) - start )); times > "$times_file"; pictures_cpu=$(( $(children_cpu) - cpu0 ))

step "4/4 converged linear probe of the frozen features, and of the same network at random init"
start=$(now); times > "$times_file"; cpu0=$(children_cpu)
"$python" tools/analysis_tools/feature_probe.py "$config" "$checkpoint" \
  --data configs/cls/demo/_base_/objects_64px.py --baselines random --method ridge \
  --train-images "$probe_train" --data-options \
  train_dataloader.dataset.data_root="$data" test_dataloader.dataset.data_root="$data" \
  --out "$work_dir/probe.json" 2>&1 | tee "$work_dir/probe.txt"
probe_s=$(( $(now) - start )); times > "$times_file"; probe_cpu=$(( $(children_cpu) - cpu0 ))

install_s="$(cat "${INSTALL_STAMP:-$root/.venv/.mmitpn-installed}" 2>/dev/null || true)"
step "what it showed"
grep 'pattern R2' "$work_dir/pattern_r2.txt"
grep -E 'top-1 .*\(ridge' "$work_dir/probe.txt" | sed 's/^.* - INFO - /probe: /'
echo "picture: $work_dir/reconstructions/held_out.png (input | masked | prediction | pattern)"
echo "wall times: install ${install_s:-?} s (when .venv was made), data ${data_s} s," \
  "training ${train_s} s, pictures ${pictures_s} s, probe ${probe_s} s"
echo "CPU times (user + system): data ${data_cpu} s, training ${train_cpu} s," \
  "pictures ${pictures_cpu} s, probe ${probe_cpu} s"
