# t_diskfull.sh - a tablet whose storage fills up: writes are refused with
# one line that says the disk is full (no record is blamed), nothing
# refused is written, every acknowledged record stays, quipud keeps
# serving, and once space is freed writes go on and verify passes.
# The data directory is a small tmpfs of the test's own (needs root and
# mount), unmounted at exit; without them the case says SKIP.

diskfull_cleanup() {
	[ -f "$FULL_NODE.qpd.pid" ] && qpd_kill9 "$FULL_NODE"
	umount "$FULL_MNT" 2>/dev/null || true
}

qp_case disk_full
case_disk_full() {
	local ORG out i rc acked=0 refused=0
	[ "$(id -u)" -eq 0 ] || skip "needs root (mounts a small tmpfs)"
	# The data directory is the mount itself, so quipud's log (next to
	# it) stays off the full disk.
	FULL_MNT=$QP_CASE_DIR/node
	FULL_NODE=$FULL_MNT
	mkdir -p "$FULL_MNT"
	trap diskfull_cleanup EXIT
	out=$(mount -t tmpfs -o size=2m tmpfs "$FULL_MNT" 2>&1) ||
		skip "cannot mount a tmpfs: $out"
	NODE=$FULL_NODE
	node_init "$NODE"
	qpd_start "$NODE"
	ORG=$(add org '{"ruc":"'"$(ruc 2060123456)"'","name":"Cooperativa Llena","type":"cooperative"}')
	python3 - "$ORG" <<'PY' >prods.jsonl
import json, sys
for i in range(6000):
    print(json.dumps({"org": sys.argv[1], "dni": "%08d" % (41000000 + i),
                      "name": "Productora %d de la comunidad de Pampa Alta" % i,
                      "sex": "F", "community": "Anexo %d" % (i % 40)}))
PY
	# Batches of 250 until the disk is full (the first ones fit).
	for i in $(seq 0 23); do
		sed -n "$((i * 250 + 1)),$((i * 250 + 250))p" prods.jsonl >batch.jsonl
		qrun -d "$NODE" add producer --file batch.jsonl
		rc=$RC
		if [ "$rc" -eq 0 ]; then
			[ "$refused" -eq 0 ] || note "batch $i accepted after a refusal"
			acked=$((acked + 250))
			cat "$QP_CASE_DIR/out" >>acked.ids
			continue
		fi
		assert_rc 1 "batch $i on a full disk"
		assert_err_one_line
		assert_err_has "quipu: store: the disk is full ("
		assert_err_has "nothing was written; free some space and retry"
		refused=$((refused + 1))
		[ "$refused" -ge 2 ] && break
	done
	[ "$refused" -ge 1 ] || fail "the disk never filled ($acked records written)"
	[ "$acked" -ge 250 ] || fail "nothing fitted before the disk was full"
	note "$acked records acknowledged before the disk was full"
	# quipud still serves, and holds exactly what it acknowledged.
	q -d "$NODE" status >/dev/null
	assert_eq "$(count producer)" "$acked" "producers after the refusals"
	q -d "$NODE" list producer --format jsonl | python3 -c '
import json, sys
got = {json.loads(l)["id"] for l in sys.stdin if l.strip()}
want = {l.strip() for l in open("acked.ids") if l.strip()}
assert got == want, (len(got), len(want))' || fail "listed ids differ from the acknowledged ones"
	# Space freed: the refused batch goes in, and the store verifies.
	mount -o remount,size=64m "$FULL_MNT" || fail "cannot grow the tmpfs"
	q -d "$NODE" add producer --file batch.jsonl >more.ids
	assert_eq "$(grep -c . more.ids)" 250 "ids after space was freed"
	assert_eq "$(count producer)" "$((acked + 250))" "producers after space was freed"
	q -d "$NODE" verify >/dev/null
	grep -q "quipud error: commit of 1 requests failed: " "$NODE.qpd.log" ||
		fail "quipud logged no failed commit: $(tail -n 5 "$NODE.qpd.log")"
	qpd_stop "$NODE"
}
