#!/usr/bin/env bash
# tests/deps.sh — install the Debian packages divert's build, tests and demo
# need, only those missing. Runs `apt-get update` once, and only if something
# is missing. Needs root (or sudo) when it has something to install.
set -euo pipefail

DIVERT_PACKAGES=(
  cmake ninja-build g++ clang libclang-rt-14-dev clang-format-14 pkg-config
  libasio-dev libboost1.81-dev libfmt-dev catch2 libssl-dev libxxhash-dev libidn2-dev libhttp-parser-dev
  haproxy nginx-light curl openssl iproute2 nftables python3
  python3-prometheus-client
  libyaml-cpp-dev
)

missing=()
for p in "${DIVERT_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  echo "divert: installing missing packages: ${missing[*]}" >&2
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
fi
