#!/usr/bin/env bash
# Fresh machine to running dashboard: create .venv, install, start Streamlit.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m streamlit run streamlit_app.py "$@"
