#!/usr/bin/env bash
# Install triage-daemon into a virtualenv and run the demo: embedded IMAP and SMTP servers,
# sample mail in the six helpdesk mailboxes, a live table of what happens. Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
[[ -x .venv/bin/python ]] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet -e .
exec .venv/bin/triage-daemon demo "$@"
