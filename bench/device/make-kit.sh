#!/usr/bin/env bash
# Builds bench-out/device-kit/: what `bench/device/run.sh` needs on a bare GPU machine that has
# no Node, no npm and no network (the `device` tool's machines): the benchmark bundled into one
# file, this machine's `node` and npm `webgpu`'s Linux x64 dawn.node (both xz-compressed), and
# Debian's Vulkan loader. About 30 MB; carry it with the call:
#   bash bench/device/make-kit.sh
#   device run: carry ["bench-out/device-kit"], command "bash bench/device/run.sh"
set -euo pipefail
cd "$(dirname "$0")/../.."
kit=bench-out/device-kit
rm -rf "$kit"
mkdir -p "$kit/webgpu" "$kit/debs"
npx tsx bench/bundle-node.ts "$kit/bench-node.mjs" >/dev/null
xz -T0 -6 -c "$(command -v node)" >"$kit/node.xz"
cp node_modules/webgpu/index.js node_modules/webgpu/package.json "$kit/webgpu/"
xz -T0 -6 -c node_modules/webgpu/dist/linux-x64/dawn.node >"$kit/webgpu/dawn.node.xz"
# The Vulkan loader (dawn.node opens libvulkan.so.1); the GPU's own driver is the machine's.
(cd "$kit/debs" && apt-get download -q libvulkan1 >/dev/null)
node -e 'console.log(process.version)' >"$kit/node-version"
du -sh "$kit"
