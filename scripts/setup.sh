#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian machine: system packages, the Rust toolchain,
# the project virtualenv with PyTorch 2.11.0 (the libtorch tch 0.24 links) and the
# Python peers used by tests. scripts/run.sh and scripts/test.sh source it to get the
# build environment; run on its own (`bash scripts/setup.sh`) it just installs.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
say() { printf '\033[1;34m[setup]\033[0m %s\n' "$*"; }

# 1. Debian packages: Open MPI and libclang (for the MPI backend's bindings), a C
#    toolchain, Python with venv, curl for rustup.
APT_PKGS=(openmpi-bin libopenmpi-dev libclang-dev pkg-config build-essential curl ca-certificates git iproute2)
# Debian's python3-venv is only needed when the interpreter lacks ensurepip (pyenv's has it).
python3 -c 'import ensurepip, venv' 2>/dev/null || APT_PKGS+=(python3 python3-venv python3-pip)
installed() { [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]; }
missing=()
for p in "${APT_PKGS[@]}"; do installed "$p" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then SUDO=(); elif command -v sudo >/dev/null; then SUDO=(sudo -n); else
    echo "error: missing Debian packages (${missing[*]}) and no root or sudo to install them" >&2; exit 1
  fi
  say "installing Debian packages: ${missing[*]}"
  "${SUDO[@]}" apt-get update -qq
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# 2. Rust toolchain: rustup when cargo is absent or older than the workspace's rust-version.
[ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
rust_ok() { command -v rustc >/dev/null && [ "$(rustc --version | awk '{split($2, v, "."); print (v[1] > 1 || v[2] >= 80)}')" = 1 ]; }
if ! rust_ok; then
  say "installing the Rust toolchain with rustup (need rustc >= 1.80)"
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal >/dev/null
  export PATH="$HOME/.cargo/bin:$PATH"
fi

# 3. Project virtualenv with the pinned Python packages (re-installed only when requirements.txt changes).
VENV="$ROOT/.venv"
if [ ! -x "$VENV/bin/python" ]; then
  say "creating virtualenv $VENV"
  python3 -m venv "$VENV"
fi
REQ_HASH=$(sha256sum "$ROOT/requirements.txt" | cut -d' ' -f1)
if [ "$(cat "$VENV/.requirements.sha256" 2>/dev/null)" != "$REQ_HASH" ]; then
  say "installing Python packages from requirements.txt (PyTorch is large: a few minutes the first time)"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$ROOT/requirements.txt"
  echo "$REQ_HASH" > "$VENV/.requirements.sha256"
fi

# 4. Build environment: tch reads libtorch from the venv's torch (LIBTORCH_USE_PYTORCH).
export LIBTORCH_USE_PYTORCH=1
export PATH="$VENV/bin:$PATH"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
