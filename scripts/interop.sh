#!/usr/bin/env bash
# Drive every server model with real outside HTTP clients and fail on any error
# or non-2xx answer:
#   wrk     keep-alive connections,
#   h2load  HTTP/1.1 pipelining (--h1 -m 8),
#   ab      HTTP/1.0, a connection per request.
# Connection counts are ones each model can serve at once: one for iterative,
# no more than the workers for pool and prefork.
#
#   scripts/interop.sh [BIN [VARIANT...]]   (default: every variant below)
set -uo pipefail

BIN=${1:-target/release/c10k}
shift || true
ONLY=("$@")
for tool in wrk h2load ab; do
    command -v "$tool" >/dev/null || { echo "interop: $tool not found (apt-get install wrk nghttp2-client apache2-utils)"; exit 2; }
done
[ -x "$BIN" ] || { echo "interop: $BIN not built (make release)"; exit 2; }

WORK=$(mktemp -d)
SERVER_PID=
cleanup() {
    [ -n "$SERVER_PID" ] && kill -TERM "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

# name | serve arguments | connections it serves at once
VARIANTS=(
    "iterative|--model iterative|1"
    "fork|--model fork|32"
    "thread|--model thread|32"
    "pool|--model pool --workers 16|16"
    "prefork|--model prefork --procs 3 --threads-per-proc 4|12"
    "reactor|--model reactor|32"
    "reactor-level|--model reactor --trigger level|32"
    "reactor-poll|--model reactor --backend poll|32"
    "reactor-select|--model reactor --backend select|32"
    "reactor-task|--model reactor-task|32"
    "reactor-conn-thread|--model reactor-conn-thread|32"
    "reactor-pool|--model reactor-pool --workers 4|32"
    "reactor-pool-rayon|--model reactor-pool --workers 4 --pool rayon|32"
    "multi-reactor|--model multi-reactor --threads 2|32"
    "multi-reactor-pool|--model multi-reactor-pool --threads 2 --workers 4|32"
    "multi-reactor-pool-rayon|--model multi-reactor-pool --threads 2 --workers 4 --pool rayon|32"
    "reuseport|--model reuseport --procs 2|32"
    "reuseport-shared|--model reuseport --procs 2 --shared-listener|32"
    "tokio|--model tokio --threads 2|32"
    "uring|--model uring --threads 2|32"
    # The timeouts on (a timing wheel, socket timeouts, tokio's timer) change no answer.
    "reactor-timeouts|--model reactor --idle-timeout 10s --header-timeout 5s|32"
    "thread-timeouts|--model thread --idle-timeout 10s --header-timeout 5s|32"
    "tokio-timeouts|--model tokio --threads 2 --idle-timeout 10s --header-timeout 5s|32"
)

# A model added to the registry without a variant here would go untested.
for model in $("$BIN" models | awk 'NR > 1 && NF == 0 {exit} NR > 1 {print $1}'); do
    printf '%s\n' "${VARIANTS[@]}" | grep -qE -- "--model $model( |\|)" ||
        { echo "interop: model $model has no variant in scripts/interop.sh"; exit 2; }
done

failures=0
fail() { echo "  FAIL $*"; failures=$((failures + 1)); }

start_server() {
    # shellcheck disable=SC2086
    "$BIN" serve --addr 127.0.0.1:0 $1 >"$WORK/server.out" 2>"$WORK/server.err" &
    SERVER_PID=$!
    for _ in $(seq 1 100); do
        grep -q '^listening ' "$WORK/server.out" 2>/dev/null && break
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.05
    done
    ADDR=$(awk '/^listening /{print $2; exit}' "$WORK/server.out")
    [ -n "$ADDR" ]
}

stop_server() {
    kill -TERM "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null
    SERVER_PID=
}

for variant in "${VARIANTS[@]}"; do
    IFS='|' read -r name args conns <<<"$variant"
    if [ "${#ONLY[@]}" -gt 0 ] && ! printf '%s\n' "${ONLY[@]}" | grep -qx -- "$name"; then
        continue
    fi
    echo "== $name ($args), $conns connections"
    if ! start_server "$args"; then
        if grep -q "cannot run here" "$WORK/server.err"; then
            echo "  skipped: $(cat "$WORK/server.err")"
        else
            fail "$name: server did not start: $(cat "$WORK/server.err")"
        fi
        stop_server
        continue
    fi

    out=$(timeout 30 wrk -t1 -c"$conns" -d2s "http://$ADDR/" 2>&1)
    reqs=$(awk '/requests in/{print $1}' <<<"$out")
    if grep -qE 'Non-2xx|Socket errors' <<<"$out" || [ -z "$reqs" ] || [ "$reqs" -eq 0 ]; then
        fail "$name: wrk: $out"
    else
        echo "  wrk     $reqs requests, no errors"
    fi

    out=$(timeout 30 h2load --h1 -n 4000 -c "$conns" -m 8 "http://$ADDR/" 2>&1)
    if grep -q 'requests: 4000 total, 4000 started, 4000 done, 4000 succeeded, 0 failed, 0 errored, 0 timeout' <<<"$out" &&
        grep -q 'status codes: 4000 2xx' <<<"$out"; then
        echo "  h2load  4000 pipelined requests (depth 8), all 2xx"
    else
        fail "$name: h2load: $(grep -E 'requests:|status codes:' <<<"$out" || echo "$out")"
    fi

    out=$(timeout 30 ab -q -n 2000 -c "$conns" "http://$ADDR/" 2>&1)
    if grep -q 'Complete requests:      2000' <<<"$out" && grep -q 'Failed requests:        0' <<<"$out" &&
        ! grep -q 'Non-2xx' <<<"$out"; then
        echo "  ab      2000 HTTP/1.0 requests, a connection each, all 2xx"
    else
        fail "$name: ab: $(grep -E 'Complete|Failed|Non-2xx' <<<"$out" || echo "$out")"
    fi
    stop_server
done

if [ "$failures" -gt 0 ]; then
    echo "interop: $failures failure(s)"
    exit 1
fi
echo "interop: every model answered wrk, h2load and ab without an error"
