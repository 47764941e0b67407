#!/usr/bin/env bash
# The original connector for side-by-side benchmarks (bench/bench_flyte_inprocess.py --original):
# flytekitplugins-airflow 1.16.31 with the Airflow 2 it supports, in .bench-venv/, pinned by
# bench/original-constraints.txt (its `pip freeze`).
set -euo pipefail
cd "$(dirname "$0")/.."
python3.11 -m venv .bench-venv
.bench-venv/bin/pip install --quiet -c bench/original-constraints.txt flytekitplugins-airflow==1.16.31 apache-airflow
echo "ready: .bench-venv/bin/python -P bench/bench_flyte_inprocess.py --original"
