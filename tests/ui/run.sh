#!/usr/bin/env bash
# Browser tests of the Ship JupyterLab extension: Galata (Playwright) in the system Chromium.
#
#   tests/ui/run.sh [playwright test arguments…]
#
# Needs the package installed in the virtual environment with its lab extension built
# (`make install`). Installs what else is missing: chromium (apt-get, as root) and this
# folder's npm packages (never a Playwright browser). Playwright starts `jupyter-lab` on
# 127.0.0.1:${SHIP_UI_PORT:-8876} in a fresh temporary root and stops it at the end.
# Screenshots and the 1,000-run render figures land in tests/ui/screenshots/.
# Exits non-zero when a test fails.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
VENV="${VENV:-$REPO/.venv}"
case "$VENV" in /*) ;; *) VENV="$REPO/$VENV" ;; esac

export PATH="$VENV/bin:$PATH"
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
export MLFLOW_DISABLE_TELEMETRY=true
export SHIP_PYTHON="$VENV/bin/python"
export SHIP_UI_CHROMIUM="${SHIP_UI_CHROMIUM:-/usr/bin/chromium}"

if [ ! -x "$VENV/bin/jupyter-lab" ]; then
  echo "error: $VENV/bin/jupyter-lab not found; run \`make install\` first." >&2
  exit 1
fi
if ! "$VENV/bin/jupyter" labextension list 2>&1 | grep -q "kernel-magics.*enabled.*OK"; then
  echo "error: the kernel-magics lab extension is not installed in $VENV; run \`make install\`." >&2
  exit 1
fi

# The editable install copies the lab extension: copy it again if a newer build exists.
BUILT="$REPO/kernel_magics/labextension/package.json"
INSTALLED="$VENV/share/jupyter/labextensions/kernel-magics/package.json"
if [ -f "$BUILT" ] && [ ! -L "$VENV/share/jupyter/labextensions/kernel-magics" ] \
    && ! cmp -s "$BUILT" "$INSTALLED"; then
  echo "Installing the newer lab extension build into $VENV…"
  (cd "$REPO" && "$VENV/bin/pip" install -q -c constraints.txt --no-build-isolation --no-deps -e .)
fi

if [ ! -x "$SHIP_UI_CHROMIUM" ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
    echo "Installing chromium (apt-get)…"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium
  else
    echo "error: no browser at $SHIP_UI_CHROMIUM; install chromium (apt-get install chromium)" \
      "or point SHIP_UI_CHROMIUM at one." >&2
    exit 1
  fi
fi

cd "$HERE"
if [ ! -d node_modules/@jupyterlab/galata ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi

mkdir -p screenshots
# A fresh server root per run (Galata's tests create their files inside it).
SHIP_UI_ROOT="$(mktemp -d "${TMPDIR:-/tmp}/ship-ui-XXXXXX")"
export SHIP_UI_ROOT
cleanup() { rm -rf "$SHIP_UI_ROOT"; }
trap cleanup EXIT

npx playwright test "$@"
