#!/usr/bin/env bash
# Server CPU per request at one fixed open-loop rate, models in back-to-back rounds.
#
# An independent cross-check of the bench's `fixed-rate` workload, which C11 ("a
# single reactor performs very well for IO-bound work") is judged on (`c10k bench
# --profile beyond --workloads fixed-rate` reruns that alone): the same load, but
# outside the bench runner, with the server's CPU read from /proc instead of its
# cgroup. Every model gets one offered load below its capacity, so each does the
# same work per second and its CPU per request is its own cost (in the
# closed-loop cells most models are client-bound, and a server's CPU per request
# depends on how many requests each wake-up finds); the rounds run the models
# back to back (A, B, C, A, B, C, ...).
#
#   scripts/fixed-rate.sh                       # defaults below
#   RATE=50000 CONNS=1000 ROUNDS=9 MODELS="reactor uring multi-reactor tokio thread" OUT_DIR=DIR scripts/fixed-rate.sh
#
# Each run: `c10k serve --model M` on SERVER_CPU, `c10k load --conns CONNS --rate
# RATE --warmup 1s --duration WINDOW` on CLIENT_CPU; the server's CPU (utime +
# stime of its process, all threads: single-process models only) is read from
# /proc at the start and the end of the load generator's window. A run whose
# load generator did not complete 99% of RATE x WINDOW, or that reported an error,
# is printed as failed and left out. The load generator's JSON reports stay in
# OUT_DIR, gzipped.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

C10K=${C10K_BIN:-target/release/c10k}
RATE=${RATE:-50000}
CONNS=${CONNS:-1000}
ROUNDS=${ROUNDS:-9}
WINDOW=${WINDOW:-3}
MODELS=${MODELS:-"reactor uring multi-reactor tokio thread"}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
OUT_DIR=${OUT_DIR:-$(mktemp -d /tmp/fixed-rate.XXXXXX)}
mkdir -p "$OUT_DIR"
[ -x "$C10K" ] || { echo "fixed-rate: $C10K not built (cargo build --release)" >&2; exit 2; }
ulimit -n "$(ulimit -Hn)"
TICK=$(getconf CLK_TCK)
cpu_s() { awk -v t="$TICK" '{ print ($14 + $15) / t }' "/proc/$1/stat"; }

echo "# fixed-rate: $RATE req/s over $CONNS connections, ${WINDOW}s windows after 1s of warm-up, $ROUNDS rounds;" \
    "server on CPU $SERVER_CPU, load on CPU $CLIENT_CPU; $(uname -r), load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# models: $MODELS; raw outputs in $OUT_DIR"
printf '%-5s %-16s %12s %12s\n' round model cpu_us_req requests
: >"$OUT_DIR/rows.txt"
for round in $(seq 1 "$ROUNDS"); do
    for model in $MODELS; do
        log="$OUT_DIR/serve-$model-$round.txt"
        taskset -c "$SERVER_CPU" "$C10K" serve --model "$model" --addr 127.0.0.1:0 >"$log" 2>&1 &
        pid=$!
        port=$(ready_port "$log")
        if [ -z "$port" ]; then
            echo "fixed-rate: $model did not start: $(head -3 "$log")" >&2
            kill "$pid" 2>/dev/null || true
            continue
        fi
        json="$OUT_DIR/load-$model-$round.json"
        taskset -c "$CLIENT_CPU" "$C10K" load --addr "127.0.0.1:$port" --conns "$CONNS" --rate "$RATE" --threads 1 \
            --warmup 1s --duration "${WINDOW}s" --quiet --json "$json" >/dev/null 2>&1 &
        lp=$!
        # The window opens once every connection is up and the warm-up is over; read the
        # server's CPU from its first to its last second (1.5 s in, WINDOW - 0.5 s later).
        sleep 1.5
        c0=$(cpu_s "$pid")
        sleep "$(awk -v w="$WINDOW" 'BEGIN { print w - 0.5 }')"
        c1=$(cpu_s "$pid")
        wait "$lp" || true
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        n=$(sed -n 's/.*"requests": *\([0-9][0-9]*\).*/\1/p' "$json" | head -1)
        errs=$(sed -n 's/.*"total": *\([0-9][0-9]*\).*/\1/p' "$json" | head -1)
        want=$(awk -v r="$RATE" -v w="$WINDOW" 'BEGIN { printf "%d", 0.99 * r * w }')
        if [ -z "$n" ] || [ "$n" -lt "$want" ] || [ "${errs:-0}" -gt 0 ]; then
            printf '%-5s %-16s %12s %12s\n' "$round" "$model" failed "${n:-none}"
            [ -f "$json" ] && gzip -f "$json"
            continue
        fi
        us=$(awk -v a="$c0" -v b="$c1" -v r="$RATE" -v w="$WINDOW" 'BEGIN { printf "%.2f", (b - a) * 1e6 / (r * (w - 0.5)) }')
        printf '%-5s %-16s %12s %12s\n' "$round" "$model" "$us" "$n"
        echo "$round $model $us" >>"$OUT_DIR/rows.txt"
        gzip -f "$json"
    done
done

echo
echo "# per model: median server CPU per request (min-max over rounds); the first model's requests per"
echo "# server CPU-second over each other's, per round (median, min-max): below 1, the first costs more"
first=${MODELS%% *}
printf '%-16s %20s %26s\n' model cpu_us_req "$first/model per round"
for model in $MODELS; do
    med=$(awk -v m="$model" '$2 == m { print $3 }' "$OUT_DIR/rows.txt" | sort -g |
        awk '{ v[NR] = $1 } END { if (NR) printf "%.2f (%.2f-%.2f, n=%d)", (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2), v[1], v[NR], NR; else print "none" }')
    pair=$(awk -v a="$first" -v m="$model" '$2 == a { x[$1] = $3 } $2 == m { y[$1] = $3 }
        END { for (r in x) if (r in y && x[r] > 0) print y[r] / x[r] }' "$OUT_DIR/rows.txt" | sort -g |
        awk '{ v[NR] = $1 } END { if (NR) printf "%.2f (%.2f-%.2f, n=%d)", (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2), v[1], v[NR], NR; else print "-" }')
    printf '%-16s %20s %26s\n' "$model" "$med" "$pair"
done
