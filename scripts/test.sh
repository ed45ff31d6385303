#!/usr/bin/env bash
# Install everything (system services, a virtualenv with the project) and run the whole
# test suite: unit tests, and end-to-end tests on real Dovecot, Postfix and PostgreSQL.
# Run as root on Debian 12 (Dovecot and Postfix need it). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-system-deps.sh

PYTHON="${PYTHON:-python3}"
if [[ ! -x .venv/bin/python ]]; then
    echo "test: creating the virtualenv .venv"
    "$PYTHON" -m venv .venv
fi
echo "test: installing triage-daemon and its test tools into .venv"
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[dev]'

echo "test: running the test suite"
exec .venv/bin/python -m pytest "$@"
