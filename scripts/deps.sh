#!/usr/bin/env bash
# Installs what the test suite needs beyond Rust: Debian's postgresql package
# (the PostgreSQL backend's tests start a private server from it) and the
# Python packages in tests/requirements.txt (pinned). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/postgres.sh install
if grep -qv '^\s*\(#\|$\)' tests/requirements.txt 2>/dev/null; then
    python3 -m pip install -q --disable-pip-version-check -r tests/requirements.txt
fi
