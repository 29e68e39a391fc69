#!/usr/bin/env bash
# c10k load from several hosts over ssh: shard i of N on the i-th host, one
# common start, then the exact merge here.
#
#   deploy/ssh/run-shards.sh http://10.0.0.5:8080/ "host-a host-b host-c" --conns 30000 --duration 60s
#
# Needs: c10k on PATH on every host (and here), clocks in sync (NTP/chrony: the
# shared window is as exact as the clocks), ssh without a password prompt.
# Writes shard-I.hlog and shard-I.txt (each host's summary) in OUT (default
# ./c10k-shards), then merged.json; prints the merged summary.
set -euo pipefail
if [ $# -lt 2 ]; then
    echo "usage: $0 URL \"HOST ...\" [c10k load options]" >&2
    exit 2
fi
URL=$1
read -r -a HOSTS <<<"$2"
shift 2
N=${#HOSTS[@]}
OUT=${OUT:-c10k-shards}
LEAD_MS=${LEAD_MS:-20000} # time for every host to connect before the window
mkdir -p "$OUT"
START_AT=$(( $(date +%s%3N) + LEAD_MS ))
echo "# $N shards of $URL, window at $START_AT (Unix ms); outputs in $OUT" >&2
pids=()
for i in "${!HOSTS[@]}"; do
    # shellcheck disable=SC2029 # the options are expanded here, on purpose
    ssh "${HOSTS[$i]}" "c10k load '$URL' --shard $i/$N --start-at $START_AT --hlog - $*" \
        >"$OUT/shard-$i.hlog" 2>"$OUT/shard-$i.txt" &
    pids+=($!)
done
status=0
for i in "${!pids[@]}"; do
    if ! wait "${pids[$i]}"; then
        echo "shard $i on ${HOSTS[$i]} failed: see $OUT/shard-$i.txt" >&2
        status=1
    fi
done
c10k merge "$OUT"/shard-*.hlog --json "$OUT/merged.json"
exit $status
