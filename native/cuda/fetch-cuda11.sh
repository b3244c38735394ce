#!/usr/bin/env bash
# CUDA 11.8's nvcc, headers and static runtime, from Debian bookworm's non-free packages, for the
# compatibility build of the CUDA engine (native/build-cuda/cuda11): the main build links CUDA 13,
# whose runtime needs driver R580+; CUDA 11.8's runs on drivers from R450 (R520 natively) and
# still compiles sm_80/sm_90 machine code. Downloaded with a temporary sources list (non-free is
# not enabled here), unpacked without installing, only what the build and its tests need kept:
#   native/cuda/fetch-cuda11.sh DIR      then: CPT_CUDA11_ROOT=DIR npm run build:native
# The host compiler is g++-11 (apt-get install g++-11): CUDA 11.8 does not take GCC 12's headers.
set -euo pipefail
dir=${1:?usage: native/cuda/fetch-cuda11.sh DIR}
[ -x "$dir/usr/lib/nvidia-cuda-toolkit/bin/nvcc" ] && [ -s "$dir/usr/lib/x86_64-linux-gnu/libcublasLt.so.11" ] && exit 0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm non-free" >"$tmp/sources.list"
mkdir -p "$tmp/lists/partial" "$tmp/debs" "$tmp/x"
apt=(-o Dir::Etc::sourcelist="$tmp/sources.list" -o Dir::Etc::sourceparts=- -o Dir::State::Lists="$tmp/lists" -o Debug::NoLocking=1 -o APT::Sandbox::User=root)
apt-get "${apt[@]}" update -q >/dev/null
(cd "$tmp/debs" && apt-get "${apt[@]}" download -q nvidia-cuda-toolkit nvidia-cuda-dev libnvvm4 libcublaslt11 >/dev/null 2>&1)
for d in "$tmp"/debs/*.deb; do dpkg -x "$d" "$tmp/x"; done
mkdir -p "$dir/usr/bin" "$dir/usr/lib/x86_64-linux-gnu"
cp -a "$tmp/x/usr/lib/nvidia-cuda-toolkit" "$dir/usr/lib/"
cp -a "$tmp/x/usr/include" "$dir/usr/"
for f in ptxas fatbinary cudafe++ nvlink bin2c; do cp -a "$tmp/x/usr/bin/$f" "$dir/usr/bin/"; done
cp -a "$tmp"/x/usr/lib/x86_64-linux-gnu/{libcudart_static.a,libcudadevrt.a,libculibos.a,stubs} "$dir/usr/lib/x86_64-linux-gnu/"
cp -a "$tmp"/x/usr/lib/x86_64-linux-gnu/libnvvm.so* "$tmp"/x/usr/lib/x86_64-linux-gnu/libcublasLt.so.11* "$dir/usr/lib/x86_64-linux-gnu/"
# nvcc reads nvcc.profile beside itself; Debian's points at /usr: paths relative to it instead.
rm -f "$dir/usr/lib/nvidia-cuda-toolkit/bin/nvcc.profile"
cat >"$dir/usr/lib/nvidia-cuda-toolkit/bin/nvcc.profile" <<'PROFILE'
TOP = $(_HERE_)/../../../..
NVVMIR_LIBRARY_DIR = $(TOP)/usr/lib/nvidia-cuda-toolkit/libdevice
PATH += $(_HERE_):$(TOP)/usr/bin:
INCLUDES += "-I$(TOP)/usr/include" $(_SPACE_)
LIBRARIES =+ $(_SPACE_) "-L$(TOP)/usr/lib/x86_64-linux-gnu/stubs" "-L$(TOP)/usr/lib/x86_64-linux-gnu"
PROFILE
echo "CUDA 11.8 in $dir: $("$dir/usr/lib/nvidia-cuda-toolkit/bin/nvcc" --version | tail -1)"
