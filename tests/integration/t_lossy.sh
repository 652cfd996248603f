# t_lossy.sh - sync over a bad rural link: a hub and a tablet in two
# network namespaces joined by a veth pair shaped with netem (256 kbit/s,
# 300 ms each way, 3% loss), the link taken down twice during the sync.
# Needs root and `ip netns`.  Where the kernel has no sch_netem qdisc, the
# same link is made in user space: tests/integration/impair.py relays the
# tablet's connection inside its namespace with the same rate, delay and
# loss (a lost segment stalls the stream for a retransmission timeout), and
# the link drops reset the relayed connections too.  Without namespaces the
# case says SKIP with the reason.  The namespaces and their addresses (10.254.N.0/30,
# only inside the namespaces) are the test's own and are removed at exit.

lossy_cleanup() {
	local d
	for d in "${LOSSY_DIRS[@]}"; do
		[ -f "$d.qpd.pid" ] && qpd_kill9 "$d"
	done
	[ -n "${RELAY_PID:-}" ] && kill "$RELAY_PID" 2>/dev/null
	ip netns del "$NS_H" 2>/dev/null || true
	ip netns del "$NS_D" 2>/dev/null || true
}

# netns_wrapper NS: a quipud that runs inside network namespace NS (ip
# netns exec execs in place, so the recorded pid is quipud's).
netns_wrapper() {
	local w=$QP_CASE_DIR/quipud-$1
	printf '#!/bin/sh\nexec ip netns exec %s %s "$@"\n' "$1" "$QP_BIN/quipud" >"$w"
	chmod +x "$w"
	printf '%s\n' "$w"
}

qp_case sync_lossy
case_sync_lossy() {
	local HUB D net tag vh vd out qh qd tok t0 t1 tries rc ok spid i flap ns
	[ "$(id -u)" -eq 0 ] || skip "needs root (network namespaces, netem)"
	command -v ip >/dev/null 2>&1 || skip "no ip command (iproute2)"
	command -v tc >/dev/null 2>&1 || skip "no tc command (iproute2)"
	tag=$$$RANDOM
	tag=${tag:0:8}
	NS_H=qpH$tag
	NS_D=qpD$tag
	vh=qh$tag
	vd=qd$tag
	net=10.254.$(($$ % 250 + 1))
	LOSSY_DIRS=()
	trap lossy_cleanup EXIT
	out=$(ip netns add "$NS_H" 2>&1 && ip netns add "$NS_D" 2>&1) ||
		skip "cannot create network namespaces: $out"
	ip link add "$vh" netns "$NS_H" type veth peer name "$vd" netns "$NS_D"
	ip -n "$NS_H" addr add "$net.1/30" dev "$vh"
	ip -n "$NS_D" addr add "$net.2/30" dev "$vd"
	for ns in "$NS_H" "$NS_D"; do ip -n "$ns" link set lo up; done
	ip -n "$NS_H" link set "$vh" up
	ip -n "$NS_D" link set "$vd" up
	RELAY_PID=""
	HUB_DIAL=$net.1:7420
	if out=$(tc -n "$NS_H" qdisc add dev "$vh" root netem rate 256kbit delay 300ms loss 3% 2>&1); then
		tc -n "$NS_D" qdisc add dev "$vd" root netem rate 256kbit delay 300ms loss 3%
	else
		note "netem unavailable ($out): shaping in user space (impair.py)"
		ip netns exec "$NS_D" python3 "$QP_HERE/impair.py" 127.0.0.1:7421 \
			"$net.1:7420" 256 300 3 >relay.out 2>relay.err &
		RELAY_PID=$!
		for i in $(seq 1 50); do
			grep -q ready relay.out 2>/dev/null && break
			sleep 0.1
		done
		grep -q ready relay.out || fail "impair.py did not start: $(cat relay.err)"
		HUB_DIAL=127.0.0.1:7421
	fi

	HUB=$QP_CASE_DIR/hub
	D=$QP_CASE_DIR/tablet
	LOSSY_DIRS=("$HUB" "$D")
	qh=$(netns_wrapper "$NS_H")
	qd=$(netns_wrapper "$NS_D")
	q -d "$HUB" init --role hub --listen "$net.1:7420" >/dev/null
	# The local API is a Unix socket in the file system: the CLI reaches
	# a daemon in another network namespace.
	QUIPUD=$qh qpd_start "$HUB"
	NODE=$HUB
	ORG=$(add org '{"ruc":"'"$(ruc 2060123456)"'","name":"Cooperativa de Altura","type":"cooperative"}')
	node_init "$D"
	QUIPUD=$qd qpd_start "$D"
	tok=$(q -d "$HUB" enroll --pubkey "$(q -d "$D" id)" --org "$ORG" --name altura --address "$HUB_DIAL")
	q -d "$D" join "$tok" >/dev/null
	q -d "$D" sync --wait --timeout 120 >/dev/null
	for i in $(seq 1 300); do
		timeout 5 "$QUIPU" -d "$D" get "$ORG" >/dev/null 2>&1 && break
		sleep 0.5
	done
	timeout 5 "$QUIPU" -d "$D" get "$ORG" >/dev/null 2>&1 || fail "the org did not reach the tablet"

	# 5,000 records written one by one with the link down (5,000 deltas,
	# as a tablet writes them over weeks), then synced while the link
	# drops twice.
	ip -n "$NS_D" link set "$vd" down
	py gen-producers 5000 "$ORG" 46000000 >many.jsonl
	q -d "$D" import many.jsonl --kind producer --batch 1 >/dev/null
	ip -n "$NS_D" link set "$vd" up
	t0=$(date +%s)
	(
		rc=0
		timeout 700 "$QUIPU" -d "$D" sync --wait --timeout 600 >sync.out 2>&1 || rc=$?
		date +%s >sync.end
		exit "$rc"
	) &
	spid=$!
	for flap in 1 2; do
		sleep 6
		note "link down ($flap)"
		ip -n "$NS_D" link set "$vd" down
		[ -n "$RELAY_PID" ] && kill -USR1 "$RELAY_PID"
		sleep 4
		ip -n "$NS_D" link set "$vd" up
		[ -n "$RELAY_PID" ] && kill -USR2 "$RELAY_PID"
	done
	rc=0
	wait "$spid" || rc=$?
	tries=1
	# A sync cut by the link may end with an error; the tablet retries
	# when asked again, and must finish.
	while [ "$rc" -ne 0 ] && [ "$tries" -lt 3 ]; do
		note "sync attempt $tries: exit $rc: $(cat sync.out)"
		tries=$((tries + 1))
		rc=0
		timeout 700 "$QUIPU" -d "$D" sync --wait --timeout 300 >sync.out 2>&1 || rc=$?
	done
	t1=$(date +%s)
	[ "$tries" -gt 1 ] || t1=$(cat sync.end)
	[ "$rc" -eq 0 ] || fail "sync over the lossy link: exit $rc: $(cat sync.out)"
	note "synced 5000 records over the lossy link in $((t1 - t0)) s, $tries attempt(s)"
	echo "lossy: $((t1 - t0)) s, $tries attempt(s)"
	NODE=$HUB
	assert_eq "$(count producer)" 5000 "hub producers"
	ok=0
	for i in $(seq 1 240); do
		if [ "$(state_digest "$HUB")" = "$(state_digest "$D")" ]; then
			ok=1
			break
		fi
		sleep 0.5
	done
	[ "$ok" -eq 1 ] || fail "digests differ after the lossy sync"
	q -d "$D" status --json >st.json
	python3 - st.json <<'PY' || fail "resent deltas after ack"
import json, sys
s = json.load(open(sys.argv[1]))
r = sum(p["counters"]["deltas_resent_after_ack"] for p in s["peers"])
assert r == 0, r
PY
}
