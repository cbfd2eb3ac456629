#!/bin/sh
# The script-quantlib benchmark's valuation script: BENCH_PYTHON runs BENCH_PRICER_MODULE from the project
# root (both passed through VNAS_SCRIPT_ENV; the script's own PATH has no virtualenv).
cd "$(dirname "$0")/.." || exit 70
exec "$BENCH_PYTHON" -m "$BENCH_PRICER_MODULE" "$@"
