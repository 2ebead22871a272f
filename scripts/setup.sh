#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian machine: system packages, the Rust toolchain,
# the project virtualenv with PyTorch 2.11.0 (the libtorch tch 0.24 links) and the
# Python peers used by tests. Source it (`. scripts/setup.sh`) to get the build
# environment exported; running it plainly just installs.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
say() { printf '\033[1;34m[setup]\033[0m %s\n' "$*"; }

# 1. Debian packages: Open MPI (rsmpi), libclang (bindgen), a C toolchain, Python venv.
APT_PKGS=(openmpi-bin libopenmpi-dev libclang-dev pkg-config build-essential python3 python3-venv python3-pip curl ca-certificates git)
missing=()
for p in "${APT_PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
# python3-venv is only needed when the interpreter lacks ensurepip (Debian's does; pyenv's has it built in).
if [ ${#missing[@]} -gt 0 ] && command -v python3 >/dev/null && python3 -c 'import ensurepip, venv' 2>/dev/null; then
  missing=("${missing[@]/python3-venv}"); missing=("${missing[@]/python3-pip}"); missing=("${missing[@]/python3}")
  read -r -a missing <<<"${missing[*]}"
fi
if [ ${#missing[@]} -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# 2. Rust toolchain (rustup when cargo is absent).
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then export PATH="$HOME/.cargo/bin:$PATH"; fi
if ! command -v cargo >/dev/null 2>&1; then
  say "installing the Rust toolchain with rustup"
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
