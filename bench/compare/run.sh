#!/bin/sh
# The side-by-side comparison: cluster, IPython Parallel and Dask, same workloads, same
# engine count. Makes a virtualenv (bench/compare/.venv, or $VENV) with ipyparallel,
# dask[distributed] and numpy from PyPI, builds cluster in release mode, and prints one
# table. Usage: bench/compare/run.sh [-n ENGINES] [--repeats R] [--json PATH]
# [--only-shared] [--skip-cluster | --cluster-json PATH] (with either of the last two,
# cluster is not built: its figures are not needed or come from the file).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
venv=${VENV:-$here/.venv}
python=${PYTHON:-python3}
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet -r "$here/requirements.txt"
build=yes
for arg in "$@"; do
    case $arg in
    --skip-cluster | --cluster-json | --cluster-json=*) build=no ;;
    esac
done
if [ "$build" = yes ]; then
    cargo build --release --quiet --manifest-path "$root/Cargo.toml" --bin cluster
fi
exec "$venv/bin/python" "$here/compare.py" --cluster "$root/target/release/cluster" "$@"
