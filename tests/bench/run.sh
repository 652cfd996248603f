#!/bin/bash
# run.sh - quipu's benchmarks (`make bench`, which builds them first).
#
# Usage: tests/bench/run.sh BINDIR
# (writes, log bytes, verify and status_ms / status_digest_ms run on one
# node; sync and domain benchmarks follow)
# Prints one JSON object per line on stdout, e.g.
#   {"bench":"write_1_inflight","value":812.5,"unit":"records/s",...}
# Progress goes to stderr.  Data lives in a temporary directory under
# $QUIPU_BENCH_DIR (default /var/tmp: /tmp may be tmpfs, where fsync costs
# nothing and the numbers would mean little), removed at exit.
# QUIPU_BENCH_SECONDS sets the length of each rate run (default 2).
# Sync benchmarks (a hub and field nodes on loopback): sync_throughput,
# sync_wire_bytes_per_record, local_rebuild, hub_ingest_50.
# QUIPU_BENCH_SYNC_RECORDS (default 100000) and QUIPU_BENCH_DEVICES (default
# 50, 2,000 records each) size them; QUIPU_BENCH_SYNC=0 skips them.
# Field-domain benchmarks (data from tests/gen/programme.py; time and peak
# RSS of the quipu process): dds_2000_plots, check_plots_20k,
# report_attendance_100k; QUIPU_BENCH_DOMAIN=0 skips them.
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
SYNC_PIDS=""
cleanup() {
	local p
	for p in $SYNC_PIDS; do
		# Only a quipud of ours (pids are reused).
		case $(cat "/proc/$p/comm" 2>/dev/null) in
		quipud*) kill -KILL "$p" 2>/dev/null ;;
		esac
	done
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

log "status of the node, without and with the digest"
python3 - "$BIN/quipu" "$NODE" <<'PY' || failed=1
import json, subprocess, sys, time
q, node = sys.argv[1], sys.argv[2]
def best(extra):
    """Fastest of 5 `quipu status --json` calls (process start included)."""
    top, out = None, None
    for _ in range(5):
        t0 = time.perf_counter()
        r = subprocess.run([q, "-d", node, "status", "--json"] + extra,
                           capture_output=True, check=True)
        dt = time.perf_counter() - t0
        if top is None or dt < top:
            top, out = dt, json.loads(r.stdout)
    return top, out
plain, st = best([])
digest, sd = best(["--digest"])
n = sum(st["store"]["records"].values())
assert "digest" not in st["store"] and "digest" in sd["store"]
for name, secs in (("status_ms", plain), ("status_digest_ms", digest)):
    print(json.dumps({"bench": name, "value": round(secs * 1000, 1),
                      "unit": "ms", "records": n, "calls": 5},
                     separators=(",", ":")))
PY

log "a backup of the node while it runs"
t0=$(date +%s%N)
"$BIN/quipu" -d "$NODE" backup "$TMP/backup" >"$TMP/backup.out" || failed=1
t1=$(date +%s%N)
python3 - "$TMP/backup.out" $(((t1 - t0) / 1000)) "$NODE/store/data.mdb" <<'PY' || failed=1
import json, os, re, sys
m = re.search(r": (\d+) deltas, (\d+) records, ([\d.]+) MiB$", open(sys.argv[1]).read().strip())
secs = int(sys.argv[2]) / 1e6
print(json.dumps({"bench": "backup", "value": round(secs, 3), "unit": "s",
                  "deltas": int(m.group(1)), "records": int(m.group(2)),
                  "backup_mib": float(m.group(3)),
                  "data_file_mib": round(os.path.getsize(sys.argv[3]) / 2**20, 1)},
                 separators=(",", ":")))
PY
rm -rf "$TMP/backup"

kill -TERM "$QPD_PID"
wait "$QPD_PID" || { log "quipud exited non-zero on SIGTERM"; failed=1; }
QPD_PID=""

# ---------------------------------------------------------------------------
# Sync: a hub and field nodes on loopback.

Q="$BIN/quipu"

free_port() {
	python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# sd_start DIR: start quipud on DIR (log DIR.log, pid in DIR.pid) and wait
# until it answers.
sd_start() {
	local pid
	"$BIN/quipud" -d "$1" >>"$1.log" 2>&1 &
	pid=$!
	echo "$pid" >"$1.pid"
	SYNC_PIDS="$SYNC_PIDS $pid"
	for _ in $(seq 1 400); do
		kill -0 "$pid" 2>/dev/null || { tail -n 20 "$1.log" >&2; return 1; }
		if [ -S "$1/quipud.sock" ] && "$Q" -d "$1" status >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.05
	done
	return 1
}

# sd_stop DIR: SIGTERM and wait.
sd_stop() {
	local pid
	pid=$(cat "$1.pid")
	kill -TERM "$pid" 2>/dev/null
	for _ in $(seq 1 200); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.05
	done
	kill -KILL "$pid" 2>/dev/null
}

add1() { # DIR KIND JSON: print the id
	printf '%s\n' "$3" | "$Q" -d "$1" add "$2"
}

# Sessions of the sync benchmarks: attendance names a person once per
# session, so 100,000 records need some 1,250 sessions of 80 people.
S_NSES=1300

# sync_setup HUB: a hub with an org, a service, S_NSES sessions and 64
# producers; sets S_ORG and S_SES (the first session) and writes the
# producer ids to HUB.producers, the session ids to HUB.sessions.
sync_setup() {
	local hub=$1 port
	port=$(free_port)
	"$Q" -d "$hub" init --role hub --listen "127.0.0.1:$port" >/dev/null || return 1
	sd_start "$hub" || return 1
	S_ORG=$(add1 "$hub" org '{"ruc":"20601234565","name":"Cooperativa Agraria de Prueba de Sincronía","type":"cooperative","region":"Junín"}') || return 1
	local svc
	svc=$(add1 "$hub" service '{"org":"'"$S_ORG"'","title":"Manejo integrado de la roya","area":"production","provider":"Programa de prueba"}') || return 1
	python3 - "$S_ORG" "$svc" "$S_NSES" <<'PY' >"$hub.s.jsonl"
import json, sys
for i in range(int(sys.argv[3])):
    # One a day from 2026-01-01, morning or afternoon.
    day = i // 2
    print(json.dumps({"org": sys.argv[1], "service": sys.argv[2],
                      "starts_at": "2026-%02d-%02dT%s:00:00-05:00"
                      % (1 + day // 28 % 12, 1 + day % 28,
                         "14" if i % 2 else "09")}))
PY
	"$Q" -d "$hub" add session --file "$hub.s.jsonl" >"$hub.sessions" || return 1
	S_SES=$(head -n 1 "$hub.sessions")
	python3 - "$S_ORG" <<'PY' >"$hub.p.jsonl"
import json, sys
for i in range(64):
    print(json.dumps({"org": sys.argv[1], "dni": "%08d" % (47000000 + i),
                      "name": "Productor de Carga %d" % i,
                      "sex": "MF"[i % 2], "community": "Anexo %d" % (i % 7)},
                     ensure_ascii=False))
PY
	"$Q" -d "$hub" add producer --file "$hub.p.jsonl" >"$hub.producers"
}

# sync_device HUB DEV NAME: a field node enrolled for S_ORG, joined and
# holding the sessions (so its attendance can refer to them).
sync_device() {
	local hub=$1 dev=$2 tok
	"$Q" -d "$dev" init >/dev/null || return 1
	sd_start "$dev" || return 1
	tok=$("$Q" -d "$hub" enroll --pubkey "$("$Q" -d "$dev" id)" --org "$S_ORG" --name "$3") || return 1
	"$Q" -d "$dev" join "$tok" >/dev/null || return 1
	"$Q" -d "$dev" sync --wait --timeout 60 >/dev/null 2>&1 || true
	for _ in $(seq 1 300); do
		[ "$("$Q" -d "$dev" list session 2>/dev/null | grep -c .)" -eq "$S_NSES" ] &&
			[ "$("$Q" -d "$dev" list producer | grep -c .)" -eq 64 ] && return 0
		sleep 0.2
	done
	log "$dev did not receive the sessions and producers"
	return 1
}

# gen_attendance N SEED PRODUCERS SESSIONS FIRST: N attendance JSON lines,
# session after session from the FIRST-th block of 80 on: the 64 producers
# in a random order, then 16 neighbours who are not registered.
gen_attendance() {
	python3 - "$1" "$2" "$S_ORG" "$3" "$4" "$5" <<'PY'
import json, random, sys
n, seed, org = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
prods = [l.strip() for l in open(sys.argv[4]) if l.strip()]
sess = [l.strip() for l in open(sys.argv[5]) if l.strip()]
first = int(sys.argv[6])
rnd = random.Random(seed)
st = ["present"] * 6 + ["left-early", "absent"]
block = len(prods) + 16
if first + (n + block - 1) // block > len(sess):
    sys.exit("gen_attendance: %d records need more than %d sessions"
             % (n, len(sess) - first))
order = []
for i in range(n):
    b, j = divmod(i, block)
    if j == 0:
        order = prods[:]
        rnd.shuffle(order)
    r = {"org": org, "session": sess[first + b], "status": rnd.choice(st)}
    if j >= len(prods):  # a neighbour who is not registered
        r["dni"] = "%08d" % (20000000 + (first + b) * 16 + j - len(prods))
        r["name"] = "Vecino %d Mamani" % i
    else:
        r["producer"] = order[j]
    print(json.dumps(r, ensure_ascii=False))
PY
}

# peer_counters DIR: "bytes_in bytes_out deltas_resent" summed over peers.
peer_counters() {
	"$Q" -d "$1" status --json | python3 -c 'import json, sys
s = json.load(sys.stdin)
c = [p.get("counters", {}) for p in s.get("peers", [])]
print(sum(x.get("bytes_in", 0) for x in c), sum(x.get("bytes_out", 0) for x in c),
      sum(x.get("deltas_resent_after_ack", 0) for x in c))'
}

now_us() {
	echo $(($(date +%s%N) / 1000))
}

sync_benches() {
	local N=${QUIPU_BENCH_SYNC_RECORDS:-100000} ND=${QUIPU_BENCH_DEVICES:-50}
	local PER=2000 hub="$TMP/s-hub" dev="$TMP/s-dev" t0 t1 us din dout
	local i hpid hwm rs d job hub_us

	log "sync: hub and one device; $N attendance records imported offline"
	sync_setup "$hub" || { log "sync setup failed"; return 1; }
	sync_device "$hub" "$dev" bench-tablet || return 1
	sd_stop "$hub"
	gen_attendance "$N" 1 "$hub.producers" "$hub.sessions" 0 >"$TMP/att.jsonl" ||
		{ log "cannot generate the attendance"; return 1; }
	"$Q" -d "$dev" import "$TMP/att.jsonl" --kind attendance --batch 500 >&2 ||
		{ log "import failed"; return 1; }
	# The tablet comes into coverage: the hub is up, the tablet's quipud
	# starts (it dials at once, having deltas to send) and the clock runs
	# from its start until the hub has acknowledged every delta.
	sd_stop "$dev"
	sd_start "$hub" || return 1
	t0=$(now_us)
	sd_start "$dev" || return 1
	"$Q" -d "$dev" sync --wait --timeout 900 >&2 || { log "sync --wait failed"; return 1; }
	t1=$(now_us)
	us=$((t1 - t0))
	[ "$us" -gt 0 ] || us=1
	rs=$("$Q" -d "$hub" list attendance | grep -c .)
	[ "$rs" -eq "$N" ] || { log "the hub holds $rs of $N attendance records"; return 1; }
	# Both directions at the device's socket are the whole wire.  quipud
	# adds a session's bytes to the counters when the session ends: stop
	# the hub so the device's session closes, then read them.  The
	# counters start with each quipud, and the device's started after the
	# setup (the sessions and producers it received), so only this sync
	# counts.
	sd_stop "$hub"
	sleep 1
	read -r din dout _ < <(peer_counters "$dev")
	python3 - "$N" "$us" "$din" "$dout" <<'PY'
import json, sys
n, us, din, dout = map(int, sys.argv[1:])
print(json.dumps({"bench": "sync_throughput", "value": round(n / (us / 1e6), 1),
                  "unit": "records/s", "records": n, "seconds": us / 1e6},
                 separators=(",", ":")))
print(json.dumps({"bench": "sync_wire_bytes_per_record",
                  "value": round((din + dout) / n, 2), "unit": "bytes/record",
                  "records": n, "bytes_in": din, "bytes_out": dout},
                 separators=(",", ":")))
PY
	# The same records applied in one process: quipud --verify re-checks
	# every signature and rebuilds the state from the log.
	sd_stop "$dev"
	t0=$(now_us)
	"$BIN/quipud" -d "$dev" --verify >&2 || { log "quipud --verify failed"; return 1; }
	t1=$(now_us)
	python3 - "$N" "$((t1 - t0))" "$us" <<'PY'
import json, sys
n, vus, sus = map(int, sys.argv[1:])
print(json.dumps({"bench": "local_rebuild", "value": round(n / (vus / 1e6), 1),
                  "unit": "records/s", "records": n, "seconds": vus / 1e6,
                  "sync_slower_by": round(sus / max(vus, 1), 2)},
                 separators=(",", ":")))
PY

	log "sync: hub ingest from $ND devices at once, $PER records each"
	hub="$TMP/m-hub"
	sync_setup "$hub" || return 1
	for i in $(seq 1 "$ND"); do
		sync_device "$hub" "$TMP/m-dev$i" "tablet$i" || return 1
	done
	sd_stop "$hub"
	for i in $(seq 1 "$ND"); do
		gen_attendance "$PER" "$((i + 100))" "$hub.producers" "$hub.sessions" \
			"$(((i - 1) * ((PER + 79) / 80)))" >"$TMP/m-att.jsonl" ||
			{ log "cannot generate device $i's attendance"; return 1; }
		"$Q" -d "$TMP/m-dev$i" import "$TMP/m-att.jsonl" --kind attendance \
			--batch 500 >/dev/null || { log "import on device $i failed"; return 1; }
	done
	sd_start "$hub" || return 1
	hpid=$(cat "$hub.pid")
	t0=$(now_us)
	for i in $(seq 1 "$ND"); do
		"$Q" -d "$TMP/m-dev$i" sync --wait --timeout 900 >"$TMP/m-sync$i.out" 2>&1 &
	done
	# When the hub holds every device's records (its ingest), apart from
	# when every device has also received the others' (the fan-out).
	python3 - "$Q" "$hub" "$((ND * PER))" "$t0" >"$TMP/m-ingest" <<'PY' &
import json, subprocess, sys, time
q, hub, n, t0 = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
end = time.time() + 900
while time.time() < end:
    r = subprocess.run([q, "-d", hub, "status", "--json"], capture_output=True)
    try:
        if json.loads(r.stdout)["store"]["records"]["attendance"] >= n:
            print(time.time_ns() // 1000 - t0)
            break
    except (ValueError, KeyError):
        pass
    time.sleep(0.1)
PY
	rs=0
	for job in $(jobs -p); do
		# Only the sync clients and the poller, not the daemons.
		case " $SYNC_PIDS " in *" $job "*) continue ;; esac
		wait "$job" || rs=1
	done
	t1=$(now_us)
	hub_us=$(cat "$TMP/m-ingest")
	[ -n "$hub_us" ] || hub_us=$((t1 - t0))
	[ "$rs" -eq 0 ] || { log "a device's sync failed: $(cat "$TMP"/m-sync*.out | sort | uniq -c | head -5)"; return 1; }
	hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$hpid/status")
	rs=$("$Q" -d "$hub" list attendance | grep -c .)
	[ "$rs" -eq $((ND * PER)) ] || { log "the hub holds $rs of $((ND * PER)) records"; return 1; }
	python3 - "$((ND * PER))" "$hub_us" "$((t1 - t0))" "$ND" "$hwm" <<'PY'
import json, sys
n, hus, us, nd, hwm = map(int, sys.argv[1:])
# Every device is in the same org, so while it ingests the hub also
# forwards each device's records to the nd-1 others ("fanout_records"),
# and all of them share this machine's cores.  value: until the hub held
# every record; all_synced_seconds: until every device's sync --wait
# returned (each device then also holds the others' records).
print(json.dumps({"bench": "hub_ingest_%d" % nd, "value": round(n / (hus / 1e6), 1),
                  "unit": "records/s", "records": n, "devices": nd,
                  "seconds": hus / 1e6, "all_synced_seconds": us / 1e6,
                  "peak_rss_kb": hwm, "fanout_records": n * (nd - 1)},
                 separators=(",", ":")))
PY
	for d in "$TMP"/m-dev* "$hub"; do
		[ -f "$d.pid" ] && sd_stop "$d"
	done
	return 0
}

if [ "${QUIPU_BENCH_SYNC:-1}" != 0 ]; then
	sync_benches || failed=1
fi

# ---------------------------------------------------------------------------
# Field domain at programme scale: data from tests/gen/programme.py
# imported into one node, then the client-side analyses timed with the
# peak RSS of the quipu process: dds_2000_plots (a shipment drawing on
# 2,000 plots, among 20,000), check_plots_20k (20,000 plots) and
# report_attendance_100k (100,000 attendance records).  Sizes:
# QUIPU_BENCH_DDS_PLOTS, QUIPU_BENCH_PLOTS, QUIPU_BENCH_ATTENDANCE;
# QUIPU_BENCH_DOMAIN=0 skips them.

GEN="$(cd "$(dirname "$0")/../gen" && pwd)/programme.py"

# measure NAME EXTRA_JSON CMD...: run CMD once; print one JSON line with
# its wall time (s) and the peak RSS of that process (getrusage of the
# only child of a fresh python), plus what its output says (findings,
# rows, plots written).
measure() {
	python3 - "$@" <<'PY'
import json, re, resource, subprocess, sys, time
name, extra, cmd = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3:]
t0 = time.monotonic()
p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
dt = time.monotonic() - t0
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
if p.returncode != 0:
    sys.stderr.write("bench: %s: exit %d: %s\n" % (
        name, p.returncode, p.stderr.decode("utf-8", "replace")[:300]))
    sys.exit(1)
out = {"bench": name, "value": round(dt, 3), "unit": "s",
       "peak_rss_mb": round(rss, 1)}
out.update(extra)
text = p.stdout.decode("utf-8", "replace")
try:
    v = json.loads(text)
    if isinstance(v, list):
        out["findings"] = len(v)
    elif isinstance(v, dict) and "rows" in v:
        out["rows"] = len(v["rows"])
        out["attendances"] = (v.get("totals") or {}).get("attendances")
        out["duplicates_merged"] = v.get("duplicates_merged")
except ValueError:
    w = re.findall(r"wrote .*: (\d+) plots, (\d+) bytes", text)
    if w:
        out["plots_written"] = sum(int(a) for a, _ in w)
        out["bytes"] = sum(int(b) for _, b in w)
        out["files"] = len(w)
print(json.dumps(out, separators=(",", ":")))
PY
}

# domain_node DIR FILE: a node holding FILE's records (import timed on
# stderr only).
domain_node() {
	local t0
	"$Q" -d "$1" init >/dev/null || return 1
	sd_start "$1" || return 1
	t0=$(now_us)
	"$Q" -d "$1" import "$2" --batch 1000 >&2 || { log "import of $2 failed"; return 1; }
	log "imported $2 in $((($(now_us) - t0) / 1000)) ms"
}

domain_benches() {
	local np=${QUIPU_BENCH_PLOTS:-20000} nd=${QUIPU_BENCH_DDS_PLOTS:-2000}
	local na=${QUIPU_BENCH_ATTENDANCE:-100000} code rc=0
	local node="$TMP/d-plots" anode="$TMP/d-att"

	log "domain: $np plots, a shipment drawing on $nd of them"
	python3 "$GEN" --out "$TMP/gen-plots" --seed 11 --single --plots "$np" \
		--dds-plots "$nd" --kinds org,producer,plot,lot,lot_event ||
		{ log "generator failed"; return 1; }
	domain_node "$node" "$TMP/gen-plots/all.jsonl" || return 1
	code=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["dds_bench"]["code"])' \
		"$TMP/gen-plots/truth.json")
	measure "dds_${nd}_plots" '{"plots":'"$nd"',"store_plots":'"$np"'}' \
		"$Q" -d "$node" dds "$code" -o "$TMP/dds.geojson" || rc=1
	measure "check_plots_$((np / 1000))k" '{"plots":'"$np"'}' \
		"$Q" -d "$node" check plots --json || rc=1
	sd_stop "$node"

	log "domain: $na attendance records"
	python3 "$GEN" --out "$TMP/gen-att" --seed 12 --single --attendance "$na" \
		--kinds org,producer,service,session,commitment,attendance ||
		{ log "generator failed"; return 1; }
	domain_node "$anode" "$TMP/gen-att/all.jsonl" || return 1
	measure "report_attendance_$((na / 1000))k" '{"records":'"$na"',"by":"org"}' \
		"$Q" -d "$anode" report attendance --format json || rc=1
	measure "report_attendance_$((na / 1000))k_by_month_sex" '{"records":'"$na"',"by":"org,month,sex"}' \
		"$Q" -d "$anode" report attendance --by org,month,sex --format json || rc=1
	sd_stop "$anode"
	return "$rc"
}

if [ "${QUIPU_BENCH_DOMAIN:-1}" != 0 ]; then
	domain_benches || failed=1
fi
[ "$failed" -eq 0 ] || die "a benchmark failed"
