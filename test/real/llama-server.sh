#!/usr/bin/env bash
# Builds the real llama-server (CPU only, no network) from the llama.cpp source that the npm
# package node-llama-cpp ships as a git bundle, plus a tiny random-weight model, and caches both
# outside the repo, keyed by that release. Only the first run on a machine pays the build
# (about 10 minutes on 2 cores). Prints the cache directory on its last line.
#
#   test/real/llama-server.sh            # build or reuse; prints e.g. ~/.cache/club-provider/llama-b1-80fb11a
#   CLUB_LLAMA_CACHE=/some/dir test/real/llama-server.sh
set -euo pipefail

PACKAGE="node-llama-cpp@3.21.1"
here="$(cd "$(dirname "$0")" && pwd)"
root="${CLUB_LLAMA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/club-provider}"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
npm pack --silent "$PACKAGE" >/dev/null 2>&1
tar xzf node-llama-cpp-*.tgz package/llama/gitRelease.bundle package/llama/llama.cpp.info.json
tag="$(node -e 'const i=require("./package/llama/llama.cpp.info.json"); process.stdout.write(i.tag)')"
cache="$root/llama-$tag"
if [ -x "$cache/llama-server" ] && [ -f "$cache/tiny-qwen2-chat.gguf" ]; then
  echo "$cache"
  exit 0
fi

echo "building llama-server $tag into $cache (first run on this machine: ~10 minutes)" >&2
git clone --quiet package/llama/gitRelease.bundle llama.cpp >&2
git -C llama.cpp -c advice.detachedHead=false checkout --quiet "$tag" 2>/dev/null || true
cmake -S llama.cpp -B build -DCMAKE_BUILD_TYPE=Release \
  -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DGGML_NATIVE=OFF -DBUILD_SHARED_LIBS=OFF \
  -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF >&2
cmake --build build --target llama-server -j "$(nproc)" >&2

mkdir -p "$cache.tmp"
cp build/bin/llama-server "$cache.tmp/"
PYTHONPATH=llama.cpp/gguf-py python3 "$here/make-tiny-gguf.py" "$cache.tmp/tiny-qwen2-chat.gguf" \
  --vocab llama.cpp/models/ggml-vocab-qwen2.gguf \
  --template llama.cpp/models/templates/Qwen-Qwen2.5-7B-Instruct.jinja >&2
"$cache.tmp/llama-server" --version >&2
rm -rf "$cache" && mv "$cache.tmp" "$cache"
echo "$cache"
