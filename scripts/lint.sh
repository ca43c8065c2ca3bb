#!/usr/bin/env bash
# Lint, format check and type check: what `make lint`, the pre-commit hooks and CI run.
# Settings live in pyproject.toml ([tool.ruff], [tool.mypy]). All three run even when one
# fails, so one pass shows every problem; the exit status is non-zero if any failed.
#   bash scripts/lint.sh            (uses .venv/bin/python, or $PY)
#   ruff format . && ruff check --fix .   fixes most of what it reports
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
failed=()
echo "== ruff check";         "$PY" -m ruff check .          || failed+=("ruff check")
echo "== ruff format --check"; "$PY" -m ruff format --check . || failed+=("ruff format")
echo "== mypy";               "$PY" -m mypy                  || failed+=("mypy")
if ((${#failed[@]})); then
  echo "lint failed: ${failed[*]}" >&2
  exit 1
fi
echo "lint passed"
