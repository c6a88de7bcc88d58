#!/usr/bin/env bash
# Runs the GPU benchmarks on a bare machine from the kit of `bench/device/make-kit.sh` (carried
# as bench-out/device-kit): installs the Vulkan loader if the machine lacks one, points Vulkan at
# the NVIDIA driver when it is there, unpacks node and dawn.node under /tmp, then runs each group
# of sections as its own process with its own time limit, so one that runs long loses only its
# own figures. Writes $OUT/<group>.json (or bench-out/device-out/ without $OUT) and bench.log.
#   bash bench/device/run.sh                     # the default groups below
#   bash bench/device/run.sh 'kernels|q4matvec,attention||120'   # name|sections|e2e models|seconds
set -uo pipefail
cd "$(dirname "$0")/../.."
kit=$PWD/bench-out/device-kit
out=${OUT:-$PWD/bench-out/device-out}
mkdir -p "$out"
log=$out/bench.log
say() { echo "$*" | tee -a "$log"; }
[[ -f $kit/bench-node.mjs ]] || { say "no kit at $kit: run bench/device/make-kit.sh and carry bench-out/device-kit"; exit 2; }

export PATH=$PATH:/sbin:/usr/sbin
if ! ldconfig -p | grep -q 'libvulkan\.so\.1'; then
  for f in "$kit"/debs/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
for icd in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json; do
  if [[ -z ${VK_ICD_FILENAMES:-} && -f $icd ]]; then export VK_ICD_FILENAMES=$icd VK_DRIVER_FILES=$icd; fi
done
say "VK_ICD_FILENAMES=${VK_ICD_FILENAMES:-unset}"
command -v nvidia-smi >/dev/null && nvidia-smi -L 2>&1 | tee -a "$log"

# xz, or Python's lzma where the machine has no xz.
unxz() { if command -v xz >/dev/null; then xz -dc "$1"; else python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), sys.stdout.buffer)' "$1"; fi; }
run=/tmp/pixtral-bench
mkdir -p "$run/node_modules/webgpu/dist/linux-x64"
unxz "$kit/node.xz" >"$run/node" && chmod +x "$run/node"
cp "$kit/webgpu/index.js" "$kit/webgpu/package.json" "$run/node_modules/webgpu/"
unxz "$kit/webgpu/dawn.node.xz" >"$run/node_modules/webgpu/dist/linux-x64/dawn.node"
cp "$kit/bench-node.mjs" "$run/"
say "node $("$run/node" --version)"

# name|sections|e2e models|seconds, most wanted first: the issue's GPU targets (end-to-end decode
# as a fraction of the bandwidth limit, ttft, prefill against the matmul peak, memory), then the
# kernels behind them.
groups=("$@")
if [[ ${#groups[@]} -eq 0 ]]; then
  groups=(
    'e2e|copy,e2e|pixtral-12b,tiny-screens|180'
    'e2e-q4km|copy,e2e|pixtral-12b-q4_k_m|100'
    'kernels|copy,q4matvec,attention,gguf||110'
    'prefill|copy,matmul,q4matmul||60'
    'tune|copy,q4tune||80'
  )
fi
status=0
for g in "${groups[@]}"; do
  IFS='|' read -r name only models secs <<<"$g"
  # The embedded model (tiny-screens) is read from this tree in place.
  args=(--only "$only" --out "$out/$name.json" --tiny-model "$PWD/public/models/pixtral-tiny-screens-q4")
  [[ -n $models ]] && args+=(--models "$models")
  say "== $name: --only $only ${models:+--models $models} (limit ${secs}s)"
  t0=$(date +%s)
  (cd "$run" && timeout "$secs" ./node bench-node.mjs "${args[@]}") >"$out/$name.stdout" 2>&1
  rc=$?
  # The progress lines and any error; the JSON (indented, between braces) is in $name.json.
  grep -vE '^(\s|\{|\})' "$out/$name.stdout" | tail -n 60 >>"$log" || true
  rm -f "$out/$name.stdout"
  say "== $name: rc $rc in $(( $(date +%s) - t0 )) s"
  [[ $rc -ne 0 ]] && status=1
done
exit $status
