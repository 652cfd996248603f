#!/bin/bash
# run.sh - quipu's benchmarks (`make bench`, which builds them first).
#
# Usage: tests/bench/run.sh BINDIR
# Prints one JSON object per line on stdout, e.g.
#   {"bench":"write_1_inflight","value":812.5,"unit":"records/s",...}
# Progress goes to stderr.  Data lives in a temporary directory under
# $QUIPU_BENCH_DIR (default /var/tmp: /tmp may be tmpfs, where fsync costs
# nothing and the numbers would mean little), removed at exit.
# QUIPU_BENCH_SECONDS sets the length of each rate run (default 2).
set -u

if [ $# -ne 1 ] || [ ! -d "$1" ]; then
	echo "usage: $0 BINDIR" >&2
	exit 2
fi
BIN=$(cd "$1" && pwd)
SECS=${QUIPU_BENCH_SECONDS:-2}
for b in quipu quipud bench_lmdb_fsync bench_writes; do
	if [ ! -x "$BIN/$b" ]; then
		echo "bench: $BIN/$b missing (run make bench)" >&2
		exit 2
	fi
done

TMP=$(mktemp -d "${QUIPU_BENCH_DIR:-/var/tmp}/quipu-bench.XXXXXX") || exit 1
QPD_PID=""
cleanup() {
	if [ -n "$QPD_PID" ] && kill -0 "$QPD_PID" 2>/dev/null; then
		kill -TERM "$QPD_PID" 2>/dev/null
		for _ in $(seq 1 100); do
			kill -0 "$QPD_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$QPD_PID" 2>/dev/null
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() {
	echo "bench: $*" >&2
}

die() {
	log "$*"
	if [ -f "$TMP/quipud.log" ]; then
		tail -n 20 "$TMP/quipud.log" | sed 's/^/bench: quipud: /' >&2
	fi
	exit 1
}

export LC_ALL=C
unset QUIPU_DATA
NODE="$TMP/node"
failed=0

log "baseline: one durable LMDB commit per record, $SECS s"
line=$("$BIN/bench_lmdb_fsync" "$TMP" "$SECS") || die "bench_lmdb_fsync failed"
echo "$line"
baseline=$(printf '%s' "$line" | sed -n 's/.*"value":\([0-9.]*\).*/\1/p')

log "starting quipud in $NODE"
"$BIN/quipu" -d "$NODE" init >/dev/null || die "quipu init failed"
"$BIN/quipud" -d "$NODE" >"$TMP/quipud.log" 2>&1 &
QPD_PID=$!
for _ in $(seq 1 200); do
	kill -0 "$QPD_PID" 2>/dev/null || die "quipud exited during start-up"
	if [ -S "$NODE/quipud.sock" ] &&
		"$BIN/quipu" -d "$NODE" status >/dev/null 2>&1; then
		break
	fi
	sleep 0.05
done
"$BIN/quipu" -d "$NODE" status >/dev/null 2>&1 || die "quipud does not answer"

"$BIN/bench_writes" "$NODE/quipud.sock" rate --seconds "$SECS" \
	--baseline "${baseline:-0}" || failed=1
"$BIN/bench_writes" "$NODE/quipud.sock" logbytes --records 10000 \
	--batch 500 || failed=1
"$BIN/bench_writes" "$NODE/quipud.sock" logbytes --records 1000 \
	--batch 1 || failed=1

log "verifying the log"
t0=$(date +%s%N)
"$BIN/quipu" -d "$NODE" verify >&2 || failed=1
t1=$(date +%s%N)
"$BIN/quipu" -d "$NODE" status --json >"$TMP/status.json" || failed=1
python3 - "$TMP/status.json" $(((t1 - t0) / 1000)) <<'PY' || failed=1
import json, sys
def find(o, k):
    q = [o]
    while q:
        o = q.pop(0)
        if isinstance(o, dict):
            if k in o:
                return o[k]
            q.extend(o.values())
    return None
s = json.load(open(sys.argv[1]))
us = max(int(sys.argv[2]), 1)
n = sum(find(s, "records").values())
print(json.dumps({"bench": "verify", "value": round(n / (us / 1e6), 1),
                  "unit": "records/s", "records": n,
                  "deltas": find(s, "deltas"), "seconds": us / 1e6},
                 separators=(",", ":")))
PY

kill -TERM "$QPD_PID"
wait "$QPD_PID" || { log "quipud exited non-zero on SIGTERM"; failed=1; }
QPD_PID=""
[ "$failed" -eq 0 ] || die "a benchmark failed"
