#!/usr/bin/env bash
# Long reliability runs, kept out of `cargo test --workspace`: the full-size load
# test, a 60 s stuck engine, 100,000-input fuzzing, and repeated engine-loss chaos. Release
# build; each run's full output goes to target/reliability/<what>.log and the figure lines
# are printed.
#
#   scripts/reliability.sh [load|stuck|fuzz [N]|chaos [N]|all]     (default: all)
#
# RELIABILITY_SEED=N replays the random choices of a chaos run (printed in its log).
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/reliability
mkdir -p "$out"

run() { # name, test binary, extra env..., -- test args
    local name=$1
    shift 2
    echo "== $name: $*"
    if ! env "$@" 2>&1 | tee "$out/$name.log" | grep -E \
        'inputs tried|rejected;|hostile messages|then [0-9]|round [0-9]|client [0-9]:|RSS|killed|retries=|busy engine|abort stopped|SEED|test result|panicked|FAILED'; then
        :
    fi
    if grep -qE 'test result: FAILED|panicked' "$out/$name.log"; then
        echo "!! $name failed; see $out/$name.log"
        return 1
    fi
}

load() {
    run load reliability_load cargo test --release --test reliability_load -- \
        --ignored --nocapture --test-threads=1
}

stuck() {
    run stuck reliability_engines STUCK_SECS="${STUCK_SECS:-60}" cargo test --release \
        --test reliability_engines a_60_second -- --ignored --nocapture
}

fuzz() {
    local n=${1:-100000}
    run fuzz-decoder decoder_fuzz FUZZ_CASES="$n" cargo test --release -p protocol \
        --test decoder_fuzz -- --nocapture
    run fuzz-sockets reliability_hostile FUZZ_CASES="$n" cargo test --release \
        --test reliability_hostile -- --nocapture
}

chaos() {
    local n=${1:-10} i
    for i in $(seq 1 "$n"); do
        run "chaos-$i" reliability_engines cargo test --release --test reliability_engines \
            engine_loss -- --nocapture --test-threads=1
    done
}

cargo build --release --tests -q
case "${1:-all}" in
load) load ;;
stuck) stuck ;;
fuzz) fuzz "${2:-100000}" ;;
chaos) chaos "${2:-10}" ;;
all)
    load
    stuck
    fuzz 100000
    chaos 5
    ;;
*)
    echo "usage: $0 [load|stuck|fuzz [N]|chaos [N]|all]" >&2
    exit 2
    ;;
esac
