#!/usr/bin/env bash
# Fresh machine to test results: system packages (Chromium for the browser tests,
# PostgreSQL for the shared-study tests, nginx for the replicas test), .venv with dev
# tools, then pytest.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k gd`.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null || need+=(nginx)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${need[@]}"
fi
bash scripts/setup.sh dev
exec .venv/bin/python -m pytest "$@"
