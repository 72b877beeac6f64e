#!/usr/bin/env bash
# Set up a virtual environment and start the Streamlit app on http://localhost:8501
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"

[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install --disable-pip-version-check -q -r requirements.txt
exec "$VENV/bin/python" -m streamlit run streamlit_app.py "$@"
