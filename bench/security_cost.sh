#!/bin/sh
# What the secured broker costs (issue 16): bench/intake.py, bench/projector.py and
# bench/escalation.py against a PLAINTEXT broker and against the secured one (SASL/SCRAM-SHA-512,
# ACLs), in one session, alternating (round 1 PLAINTEXT first, round 2 secured first, ...), each
# printing its figures beside the ceilings of the same run (docs/security.md has the table).
#
#     flock /tmp/muster-heavy.lock sh bench/security_cost.sh [ROUNDS] [PLAINTEXT_PORT]
#
# Uses the running secured broker and database of the environment (`muster dev up` with the
# default settings); starts a PLAINTEXT broker of its own beside it (its own home under
# $MUSTER_HOME, on PLAINTEXT_PORT and the next port, default 29392) and stops it at the end, so
# both run during every measurement. Both share the database.
set -eu
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="$ROOT/.venv/bin/python"
ROUNDS="${1:-2}"
PLAIN_PORT="${2:-29392}"
HOME_DIR="${MUSTER_HOME:-$ROOT/.muster}"
export MUSTER_CACHE_DIR="${MUSTER_CACHE_DIR:-$ROOT/.muster/cache}"
PLAIN="MUSTER_HOME=$HOME_DIR/plaintext-bench MUSTER_KAFKA_BOOTSTRAP=127.0.0.1:$PLAIN_PORT MUSTER_KAFKA_SECURITY_PROTOCOL=PLAINTEXT"
cd "$ROOT"

broker() {  # up | down: the PLAINTEXT broker of this measurement
    env $PLAIN "$PY" -c "import sys; from services.dev import LocalKafka; from services.shared.settings import Settings
k = LocalKafka(Settings()); print(k.up() if sys.argv[1] == 'up' else k.down())" "$1"
}
trap 'broker down' EXIT
broker up
env $PLAIN "$PY" -m services.cli topics apply >/dev/null

run() {  # mode bench args...
    mode="$1"; bench="$2"; shift 2
    echo "== $bench.py, $mode broker: $*"
    if [ "$mode" = PLAINTEXT ]; then
        env $PLAIN timeout 900 "$PY" "bench/$bench.py" "$@"
    else
        timeout 900 "$PY" "bench/$bench.py" "$@"
    fi
}

round="${FIRST_ROUND:-1}"  # FIRST_ROUND=2: begin with the secured broker
last=$((round + ROUNDS - 1))
while [ "$round" -le "$last" ]; do
    if [ $((round % 2)) -eq 1 ]; then order="PLAINTEXT SASL"; else order="SASL PLAINTEXT"; fi
    echo "=== round $round: $order"
    for mode in $order; do run "$mode" intake --duration 15; done
    for mode in $order; do run "$mode" projector --events 100000 --workers 1 --single 1000 --seconds 15; done
    for mode in $order; do run "$mode" escalation --events 60000 --seconds 15; done
    round=$((round + 1))
done
