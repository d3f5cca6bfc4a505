#!/usr/bin/env bash
# The README's second command (and CI's): set everything up, then run lint, types and tests.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$here/tools/setup.sh" --dev
cd "$here"
venv="$here/.venv/bin"
echo "[test] ruff"; "$venv/ruff" check edged tools tests
echo "[test] mypy"; "$venv/mypy" edged tools
# One worker per core (pytest-xdist), each taking whole test files: most tests wait on real
# services and real-time video, so two workers halve the wall time on a 2-core box.
echo "[test] pytest"; exec "$venv/python" -m pytest -q -n "${EDGED_TEST_WORKERS:-auto}" --dist loadfile "$@"
