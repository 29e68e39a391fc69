#!/usr/bin/env bash
# Compare `c10k load` with wrk, side by side in one run, against nginx.
#
# nginx (Debian's nginx-light) runs with 1 worker pinned to SERVER_CPU and
# answers `return 200 "Hello, World!"`; wrk (1 thread) and `c10k load
# --threads 1` are both pinned to CLIENT_CPU and alternate, REPS times, at each
# connection count. Prints requests/s of each run, then the medians and the
# ratio c10k/wrk (of the medians, and the median of the per-pair ratios),
# the CPU time each client spent per request (user + sys, from `time`), and the
# time c10k took to establish all connections, and nginx's CPU per request
# (times the rate, nginx's share of its core: near 1, nginx and not the client
# sets the pace, and no client can go faster).
# c10k runs once per engine in ENGINES (`--engine mio`, `--engine uring`).
#
# CLIENT_QUOTA=0.5 runs every client in a cpu cgroup capped at that share of a
# core (cgroup v1 cpu.cfs_quota_us or v2 cpu.max, CAP_PERIOD_US = 2 ms periods, so
# that a client runs in slices of 1 ms and not 50 ms at full speed; root). With a
# whole core each, a client that is cheaper than wrk per request can be held back
# by nginx, whose one core saturates first (nginx_core near 1): the rate then
# measures nginx, and a client's CPU per request the price of waiting for it.
# Capped, the clients set the pace and nginx has room, so a client's CPU per
# request is its own cost; the ratio of rates says the same as far as each
# client used its whole cap (client_core in the medians).
#
#   scripts/compare-wrk.sh                      # defaults below
#   C10K_BIN=target/loadgen-dev/release/c10k REPS=5 CONNS="100 10000" ENGINES="mio uring" scripts/compare-wrk.sh
#
#   scripts/compare-wrk.sh reactor              # wrk (1 thread, CLIENT_CPU) against nginx and against
#                                               # `c10k serve --model reactor`, both on SERVER_CPU
#
#   scripts/compare-wrk.sh profile              # where each client's CPU goes at PROFILE_CONNS (100):
#                                               # system calls per request (perf stat) and top symbols (perf record)
#
#   OUT_DIR=DIR/raw-load scripts/compare-wrk.sh summary
#                                               # the medians and pairs of an earlier comparison, from its
#                                               # rows (CLIENT_QUOTA as it ran, for the header); no nginx needed
#
#   scripts/compare-wrk.sh many                 # c10k alone: MANY_CONNS (30,000) connections
#                                               # over MANY_PROCS (2) processes against nginx
#                                               # with MANY_WORKERS (2) workers (reuseport)
#
# Needs: nginx (nginx-light), wrk, taskset; root or enough RLIMIT_NOFILE for
# 10,000 connections (the hard limit is used). Raw outputs stay in OUT_DIR.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

C10K=${C10K_BIN:-${C10K:-target/release/c10k}}
REPS=${REPS:-3}
DURATION=${DURATION:-10}
CONNS=${CONNS:-"100 10000"}
ENGINES=${ENGINES:-"mio uring"}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
OUT_DIR=${OUT_DIR:-$(mktemp -d /tmp/compare-wrk.XXXXXX)}
mkdir -p "$OUT_DIR"
OUT_DIR=$(cd "$OUT_DIR" && pwd) # nginx -p needs an absolute prefix
MODE=${1:-compare}
CLIENT_QUOTA=${CLIENT_QUOTA:-}
CAP_PERIOD_US=${CAP_PERIOD_US:-2000}
MANY_CONNS=${MANY_CONNS:-30000}
MANY_PROCS=${MANY_PROCS:-2}
MANY_WORKERS=${MANY_WORKERS:-2}
if [ "$MODE" = many ]; then
    WORKERS=$MANY_WORKERS
    AFFINITY=""
    REUSEPORT=" reuseport"
else
    WORKERS=1
    AFFINITY="worker_cpu_affinity $(awk -v c="$SERVER_CPU" 'BEGIN { s = "1"; for (i = 0; i < c; i++) s = s "0"; print s }');"
    REUSEPORT=""
fi

rps() { awk '/^Requests\/sec:/ { print $2 }' "$1"; }
requests() { awk '/ requests in / { print $1 }' "$1" | head -1; }
# CPU seconds (user + sys) from the `time -f` line appended to an output file.
cpu() { awk '/^cpu / { print $2 + $3 }' "$1"; }
# The user and the system part of it, apart: on loopback the client's system time includes the
# kernel's TCP work for both ends of each segment it sends, which no client can avoid.
user_cpu() { awk '/^cpu / { print $2 }' "$1"; }
sys_cpu() { awk '/^cpu / { print $3 }' "$1"; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "nan" }'; }
# "426.77ms" / "1.32s" / "318.94us" -> seconds
to_seconds() { awk -v t="$1" 'BEGIN { v = t + 0; if (t ~ /us$/) v /= 1e6; else if (t ~ /ms$/) v /= 1e3; print v }'; }
per_request_us() { awk -v c="$1" -v n="$2" 'BEGIN { if (n > 0 && c != "") printf "%.2f", c * 1e6 / n; else print "nan" }'; }

# The medians of a comparison's runs ($OUT_DIR/rows.txt, one line per run: conns tool rps vs_wrk incl_ramp cpu_us
# cs_per_req nginx_us load1 user_us sys_us), their pair ratios, and how many pairs meet the bar.
summarize() {
    echo "# medians over the reps; pair ratios are the medians of each rep's c10k/wrk (the runs of a rep ran back to back),"
    echo "# with the lowest and highest pair in brackets; nginx_core: nginx's CPU per request x the rate, the share of its"
    echo "# core it used (near 1: nginx set the pace, and the rate says more about nginx than about the client);"
    echo "# client_core: the client's CPU per request x the rate, the share of a core it used (near its cap of"
    echo "# ${CLIENT_QUOTA:-1}: the client set the pace)"
    printf '%-6s %-11s %11s %18s %14s %7s %18s %7s %10s %7s %10s %8s %10s %11s\n' conns tool rps pair_ratio incl_ramp_ratio \
        cpu_us cpu_ratio user_us user_ratio sys_us cs_per_req nginx_us nginx_core client_core
    for conns in $CONNS; do
        for tool in wrk $(printf 'c10k-%s ' $ENGINES); do
            col() { awk -v n="$conns" -v t="$tool" -v k="$1" '$1 == n && $2 == t { print $k }' "$OUT_DIR/rows.txt" | median; }
            # Per rep, this tool's column k over wrk's in the same rep.
            pairs() {
                awk -v n="$conns" -v t="$tool" -v k="$1" '$1 == n && $2 == "wrk" { w[++i] = $k } $1 == n && $2 == t { c[++j] = $k }
                    END { for (r = 1; r <= j; r++) if (w[r] > 0) printf "%.3f\n", c[r] / w[r] }' "$OUT_DIR/rows.txt"
            }
            # The median of the pairs, and their range: "1.141 (1.066-1.244)".
            pair() {
                local all
                all=$(pairs "$1" | sort -g)
                [ -n "$all" ] || { echo nan; return; }
                printf '%s (%s-%s)' "$(echo "$all" | median)" "$(echo "$all" | head -1)" "$(echo "$all" | tail -1)"
            }
            # Column k (a CPU time per request in us) x the rate: the share of a core it stands for.
            share() {
                awk -v n="$conns" -v t="$tool" -v k="$1" '$1 == n && $2 == t && $3 > 0 { printf "%.3f\n", $3 * $k / 1e6 }' \
                    "$OUT_DIR/rows.txt" | median
            }
            core=$(share 8)
            client=$(share 6)
            if [ "$tool" = wrk ]; then
                printf '%-6s %-11s %11s %18s %14s %7s %18s %7s %10s %7s %10s %8s %10s %11s\n' "$conns" "$tool" "$(col 3)" - - \
                    "$(col 6)" - "$(col 10)" - "$(col 11)" "$(col 7)" "$(col 8)" "$core" "$client"
            else
                incl_pair=$(awk -v n="$conns" -v t="$tool" '$1 == n && $2 == "wrk" { w[++i] = $3 } $1 == n && $2 == t { c[++j] = $5 }
                    END { for (r = 1; r <= j; r++) if (w[r] > 0) printf "%.3f\n", c[r] / w[r] }' "$OUT_DIR/rows.txt" | median)
                printf '%-6s %-11s %11s %18s %14s %7s %18s %7s %10s %7s %10s %8s %10s %11s\n' "$conns" "$tool" "$(col 3)" \
                    "$(pair 3)" "$incl_pair" "$(col 6)" "$(pair 6)" "$(col 10)" "$(pair 10)" "$(col 11)" "$(col 7)" \
                    "$(col 8)" "$core" "$client"
            fi
        done
    done

    # Issue 11's bar: at least TARGET x wrk's requests/s, i.e. at most 1/TARGET of its CPU per request.
    TARGET=${TARGET:-1.25}
    echo
    echo "# against the bar of ${TARGET}x wrk: pairs whose requests/s were at least ${TARGET}x wrk's, and pairs whose"
    echo "# client CPU per request was at most 1/${TARGET} of wrk's (${TARGET}x its requests per client CPU-second), of all pairs"
    for conns in $CONNS; do
        for tool in $(printf 'c10k-%s ' $ENGINES); do
            awk -v n="$conns" -v t="$tool" -v b="$TARGET" '$1 == n && $2 == "wrk" { w[++i] = $3; wc[i] = $6 }
                $1 == n && $2 == t { c[++j] = $3; cc[j] = $6 }
                END { k = 0; q = 0; m = 0
                      for (r = 1; r <= j; r++) if (w[r] > 0 && cc[r] > 0) { m++; if (c[r] / w[r] >= b) k++; if (cc[r] / wc[r] <= 1 / b) q++ }
                      printf "%-6s %-11s rate %d of %d pairs, CPU per request %d of %d pairs\n", n, t, k, m, q, m }' \
                "$OUT_DIR/rows.txt"
        done
    done
}

if [ "$MODE" = summary ]; then
    # Re-print the summary of an earlier comparison from its raw outputs (OUT_DIR=.../raw-load).
    [ -s "$OUT_DIR/rows.txt" ] || { echo "compare-wrk: no $OUT_DIR/rows.txt: OUT_DIR must be a comparison's raw folder" >&2; exit 2; }
    CONNS=$(awk '{ print $1 }' "$OUT_DIR/rows.txt" | awk '!seen[$0]++' | tr '\n' ' ')
    ENGINES=$(awk '$2 ~ /^c10k-/ { sub("c10k-", "", $2); print $2 }' "$OUT_DIR/rows.txt" | awk '!seen[$0]++' | tr '\n' ' ')
    summarize
    exit 0
fi

for tool in nginx wrk taskset; do
    command -v "$tool" >/dev/null || { echo "compare-wrk: $tool not found (apt-get install -y nginx-light wrk util-linux)" >&2; exit 2; }
done
[ -x "$C10K" ] || { echo "compare-wrk: $C10K not built (cargo build --release, or set C10K=path)" >&2; exit 2; }
ulimit -n "$(ulimit -Hn)"

# CAP: the prefix that starts a client inside the capped cgroup (empty: no cap).
CAP=()
CAP_DIR=""
if [ -n "$CLIENT_QUOTA" ]; then
    quota_us=$(awk -v q="$CLIENT_QUOTA" -v p="$CAP_PERIOD_US" 'BEGIN { if (q > 0 && q <= 1) printf "%d", q * p }')
    [ -n "$quota_us" ] || { echo "compare-wrk: CLIENT_QUOTA=$CLIENT_QUOTA: a share of one core, in (0, 1]" >&2; exit 2; }
    if [ -w /sys/fs/cgroup/cpu/cpu.cfs_quota_us ]; then
        CAP_DIR=/sys/fs/cgroup/cpu/c10k-compare-$$
        mkdir "$CAP_DIR"
        echo "$CAP_PERIOD_US" >"$CAP_DIR/cpu.cfs_period_us"
        echo "$quota_us" >"$CAP_DIR/cpu.cfs_quota_us"
    elif grep -qw cpu /sys/fs/cgroup/cgroup.controllers 2>/dev/null; then
        echo +cpu >/sys/fs/cgroup/cgroup.subtree_control 2>/dev/null || true
        CAP_DIR=/sys/fs/cgroup/c10k-compare-$$
        mkdir "$CAP_DIR"
        echo "$quota_us $CAP_PERIOD_US" >"$CAP_DIR/cpu.max"
    else
        echo "compare-wrk: CLIENT_QUOTA needs a writable cpu cgroup (v1 cpu.cfs_quota_us or v2 cpu.max): run as root" >&2
        exit 2
    fi
    # shellcheck disable=SC2016 # $$ and $@ belong to the inner shell
    CAP=(sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$CAP_DIR")
fi

free_port() {
    local port
    for _ in $(seq 1 50); do
        port=$((20000 + RANDOM % 20000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return
        fi
    done
    echo "compare-wrk: no free port found" >&2
    exit 2
}

PORT=$(free_port)
NGINX_DIR="$OUT_DIR/nginx"
mkdir -p "$NGINX_DIR/logs"
cat >"$NGINX_DIR/nginx.conf" <<EOF
worker_processes $WORKERS;
$AFFINITY
worker_rlimit_nofile 65536;
pid $NGINX_DIR/nginx.pid;
error_log $NGINX_DIR/logs/error.log warn;
daemon off;
events {
    worker_connections 65536;
}
http {
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    client_body_temp_path $NGINX_DIR/body;
    server {
        listen 127.0.0.1:$PORT backlog=4096$REUSEPORT;
        location / {
            return 200 "Hello, World!";
        }
    }
}
EOF

nginx -p "$NGINX_DIR" -c "$NGINX_DIR/nginx.conf" -e "$NGINX_DIR/logs/error.log" &
NGINX_PID=$!
cleanup() {
    kill "$NGINX_PID" 2>/dev/null || true
    wait "$NGINX_PID" 2>/dev/null || true
    [ -z "$CAP_DIR" ] || rmdir "$CAP_DIR" 2>/dev/null || true
}
trap cleanup EXIT INT TERM
UP=""
for _ in $(seq 1 50); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
        UP=1
        break
    fi
    sleep 0.1
done
if [ -z "$UP" ]; then
    echo "compare-wrk: nginx did not start on port $PORT (see $NGINX_DIR/logs/error.log)" >&2
    exit 2
fi

if [ "$MODE" = reactor ]; then
    "$C10K" serve --model reactor --addr 127.0.0.1:0 >"$OUT_DIR/reactor.out" 2>&1 &
    REACTOR_PID=$!
    taskset -pc "$SERVER_CPU" "$REACTOR_PID" >/dev/null
    trap 'kill "$REACTOR_PID" 2>/dev/null || true; wait "$REACTOR_PID" 2>/dev/null || true; cleanup' EXIT INT TERM
    RPORT=$(ready_port "$OUT_DIR/reactor.out")
    [ -n "$RPORT" ] || { echo "compare-wrk: the reactor did not start: $(cat "$OUT_DIR/reactor.out")" >&2; exit 2; }
    echo "# reactor vs nginx: wrk -t1 on CPU $CLIENT_CPU; nginx $(nginx -v 2>&1 | sed 's/.*\///') (1 worker) and" \
        "c10k reactor both on CPU $SERVER_CPU; ${DURATION}s per run, $REPS reps"
    echo "# $(uname -r), $(nproc) cores, load average: $(cut -d' ' -f1-3 /proc/loadavg); raw outputs in $OUT_DIR"
    printf '%-8s %-4s %12s %12s %7s\n' conns rep nginx_rps reactor_rps ratio
    : >"$OUT_DIR/reactor-rows.txt"
    for rep in $(seq 1 "$REPS"); do
        for conns in $CONNS; do
            n="$OUT_DIR/wrk-nginx-$conns-$rep.txt"
            r="$OUT_DIR/wrk-reactor-$conns-$rep.txt"
            taskset -c "$CLIENT_CPU" wrk -t1 -c"$conns" -d"${DURATION}s" "http://127.0.0.1:$PORT/" >"$n" 2>&1 || true
            sleep 1
            taskset -c "$CLIENT_CPU" wrk -t1 -c"$conns" -d"${DURATION}s" "http://127.0.0.1:$RPORT/" >"$r" 2>&1 || true
            sleep 1
            nr=$(rps "$n")
            rr=$(rps "$r")
            errs=$(cat "$n" "$r" | grep -E "Socket errors|Non-2xx" | tr '\n' ' ' || true)
            printf '%-8s %-4s %12s %12s %7s %s\n' "$conns" "$rep" "${nr:-fail}" "${rr:-fail}" \
                "$(ratio "${rr:-0}" "${nr:-0}")" "$errs"
            echo "$conns ${nr:-0} ${rr:-0}" >>"$OUT_DIR/reactor-rows.txt"
        done
    done
    echo
    echo "# medians"
    printf '%-8s %12s %12s %7s\n' conns nginx_rps reactor_rps ratio
    for conns in $CONNS; do
        med() { awk -v n="$conns" -v k="$1" '$1 == n { print $k }' "$OUT_DIR/reactor-rows.txt" | median; }
        nm=$(med 2)
        rm_=$(med 3)
        printf '%-8s %12s %12s %7s\n' "$conns" "$nm" "$rm_" "$(ratio "$rm_" "$nm")"
    done
    exit 0
fi

if [ "$MODE" = profile ]; then
    # Where each client's time goes at PROFILE_CONNS connections: system calls per
    # request as the kernel counts them (perf's syscalls tracepoints, no slowdown of
    # the calls), and the top symbols of a cpu-clock profile (kernel included).
    PCONNS=${PROFILE_CONNS:-100}
    PDUR=${PROFILE_DURATION:-5}
    command -v perf >/dev/null || { echo "compare-wrk: perf not found (apt-get install -y linux-perf)" >&2; exit 2; }
    echo "# profile: nginx $(nginx -v 2>&1 | sed 's/.*\///') (1 worker) on CPU $SERVER_CPU, each client alone on CPU $CLIENT_CPU," \
        "$PCONNS connections, ${PDUR}s; $(uname -r), load average: $(cut -d' ' -f1-3 /proc/loadavg)"
    for tool in wrk $(printf 'c10k-%s ' $ENGINES); do
        if [ "$tool" = wrk ]; then
            cmd=(taskset -c "$CLIENT_CPU" wrk -t1 -c"$PCONNS" -d"${PDUR}s" "http://127.0.0.1:$PORT/")
        else
            cmd=(taskset -c "$CLIENT_CPU" "$C10K" load --addr "127.0.0.1:$PORT" --conns "$PCONNS" --threads 1
                --engine "${tool#c10k-}" --duration "${PDUR}s")
        fi
        f="$OUT_DIR/$tool-syscalls.txt"
        perf stat -x, -e 'syscalls:sys_enter_*' -o "$f.perf" "${cmd[@]}" >"$f" 2>&1 || true
        n=$(awk '/ requests in / { print $1 }' "$f" | head -1)
        echo
        echo "## $tool: $n requests; system calls per request (perf stat, syscalls tracepoints)"
        # Calls made at least once per 1,000 requests; "all" counts every call.
        awk -F, -v n="$n" '$1 ~ /^[0-9]+$/ && n > 0 { sub("syscalls:sys_enter_", "", $3); t += $1;
            if ($1 / n >= 0.001) printf "  %-18s %8.3f\n", $3, $1 / n }
            END { if (n > 0) printf "  %-18s %8.3f\n", "all", t / n }' "$f.perf" | sort -k2 -g -r || true
        sleep 1
        p="$OUT_DIR/$tool.perf.data"
        perf record -q -e cpu-clock -F 4999 -o "$p" "${cmd[@]}" >/dev/null 2>&1 || true
        echo "## $tool: its cpu-clock samples by object (the kernel, the client's own code, libraries)"
        perf report -i "$p" --no-children --sort dso --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -6 || true
        echo "## $tool: top symbols (self, kernel included)"
        perf report -i "$p" --no-children --sort symbol --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -15 |
            sed 's/ *- *- *$//' || true
        rm -f "$p" "$p.old"
        sleep 1
    done
    exit 0
fi

if [ "$MODE" = many ]; then
    echo "# many: nginx $(nginx -v 2>&1 | sed 's/.*\///'), $WORKERS workers (reuseport); $(uname -r), $(nproc) cores," \
        "load average: $(cut -d' ' -f1-3 /proc/loadavg); JSON in $OUT_DIR/many.json"
    echo "\$ c10k load --addr 127.0.0.1:PORT --conns $MANY_CONNS --procs $MANY_PROCS --warmup 2s --duration ${DURATION}s"
    "$C10K" load --addr "127.0.0.1:$PORT" --conns "$MANY_CONNS" --procs "$MANY_PROCS" --warmup 2s \
        --duration "${DURATION}s" --json "$OUT_DIR/many.json" || true
    exit 0
fi

TIME=$(command -v time 2>/dev/null | grep / || true)
[ -x /usr/bin/time ] && TIME=/usr/bin/time
# GNU time's line: user and system CPU seconds, voluntary and involuntary context switches.
timed() {
    local out=$1
    shift
    if [ -n "$TIME" ]; then
        "$TIME" -f "cpu %U %S %w %c" -a -o "$out" "$@" >>"$out" 2>&1 || true
    else
        "$@" >>"$out" 2>&1 || true
    fi
}
# Context switches (voluntary + involuntary) from the `time` line, per request.
switches() { awk '/^cpu / { print $4 + $5 }' "$1"; }
per_request() { awk -v c="$1" -v n="$2" 'BEGIN { if (n > 0 && c != "") printf "%.3f", c / n; else print "nan" }'; }
# CPU seconds nginx's worker spent so far (utime + stime), from /proc.
NGINX_WORKER=$(pgrep -P "$NGINX_PID" | head -1)
TICK=$(getconf CLK_TCK)
nginx_cpu() { awk -v t="$TICK" '{ print ($14 + $15) / t }' "/proc/$NGINX_WORKER/stat" 2>/dev/null || echo 0; }

echo "# compare-wrk: nginx $(nginx -v 2>&1 | sed 's/.*\///') on CPU $SERVER_CPU, clients on CPU $CLIENT_CPU" \
    "(${CLIENT_QUOTA:-1} of it each), ${DURATION}s per run, $REPS reps; c10k engines: $ENGINES"
echo "# $(uname -r), $(nproc) cores; raw outputs in $OUT_DIR"
# One row per run, in the order they ran (wrk, then c10k with each engine).
# vs_wrk: this run's rate over the wrk run just before it; incl_ramp: c10k's
# requests over its connection ramp plus the window (wrk's 10 s include its
# ramp); cpu_us and cs_per_req: the client process's user + system CPU and
# context switches (`time`) per completed request; user_us and sys_us: the two
# parts of cpu_us; nginx_us: nginx's CPU (/proc) per request over the run;
# load1: the 1-minute load average after it.
printf '%-6s %-3s %-11s %11s %7s %11s %7s %7s %7s %10s %8s %6s %10s\n' conns rep tool rps vs_wrk incl_ramp cpu_us \
    user_us sys_us cs_per_req nginx_us load1 connect
: >"$OUT_DIR/rows.txt"
for rep in $(seq 1 "$REPS"); do
    for conns in $CONNS; do
        wr=""
        for tool in wrk $(printf 'c10k-%s ' $ENGINES); do
            f="$OUT_DIR/$tool-$conns-$rep.txt"
            : >"$f"
            n0=$(nginx_cpu)
            if [ "$tool" = wrk ]; then
                timed "$f" "${CAP[@]}" taskset -c "$CLIENT_CPU" wrk -t1 -c"$conns" -d"${DURATION}s" --latency "http://127.0.0.1:$PORT/"
            else
                timed "$f" "${CAP[@]}" taskset -c "$CLIENT_CPU" "$C10K" load --addr "127.0.0.1:$PORT" --conns "$conns" --threads 1 \
                    --engine "${tool#c10k-}" --duration "${DURATION}s" --json "$OUT_DIR/$tool-$conns-$rep.json"
            fi
            n1=$(nginx_cpu)
            r=$(rps "$f")
            n=$(requests "$f")
            connect=$(sed -n 's/.*all established in \([^ ;]*\).*/\1/p' "$f")
            if [ "$tool" = wrk ]; then
                wr=$r
                vs="-"
                incl="-"
            else
                vs=$(ratio "$r" "$wr")
                incl=$(awk -v n="$n" -v d="$DURATION" -v r="$(to_seconds "${connect:-0}")" \
                    'BEGIN { if (n > 0) printf "%.2f", n / (d + r); else print "nan" }')
            fi
            cpu_us=$(per_request_us "$(cpu "$f")" "$n")
            user_us=$(per_request_us "$(user_cpu "$f")" "$n")
            sys_us=$(per_request_us "$(sys_cpu "$f")" "$n")
            cs=$(per_request "$(switches "$f")" "$n")
            ngx=$(awk -v a="$n0" -v b="$n1" -v n="$n" 'BEGIN { if (n > 0) printf "%.2f", (b - a) * 1e6 / n; else print "nan" }')
            load1=$(cut -d' ' -f1 /proc/loadavg)
            printf '%-6s %-3s %-11s %11s %7s %11s %7s %7s %7s %10s %8s %6s %10s\n' "$conns" "$rep" "$tool" "${r:-fail}" \
                "$vs" "$incl" "$cpu_us" "$user_us" "$sys_us" "$cs" "$ngx" "$load1" "${connect:--}"
            echo "$conns $tool ${r:-0} $vs $incl $cpu_us $cs $ngx $load1 $user_us $sys_us" >>"$OUT_DIR/rows.txt"
            sleep 1
        done
    done
done

echo
summarize
