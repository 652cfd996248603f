# t_sync.sh - sync between real quipud processes on loopback: a hub and
# field nodes converge, org scope, conflicts, a hub killed mid-sync,
# refusals (wrong hub key, expired certificate, revoked key), hostile
# peers (tests/tools/qp_evil.c) and bundles.  The spec is
# /work/notes/sync.md (issue 3).

# ---------------------------------------------------------------------------
# Helpers

# free_port: a TCP port on 127.0.0.1 that was free a moment ago.
free_port() {
	python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# hub_init DIR: a hub listening on a free loopback port; sets HUB_ADDR.
hub_init() {
	local key port
	port=$(free_port)
	key=$(q -d "$1" init --role hub --listen "127.0.0.1:$port")
	printf '%s' "$key" | grep -Eq '^[0-9a-f]{64}$' || fail "hub init printed '$key'"
	HUB_ADDR=127.0.0.1:$port
}

# hub_org HUB NAME RUCBASE: an org on the hub with a service and a session
# (attendance refers to a session); sets ORG, SVC, SES.
hub_org() {
	local hub=$1
	ORG=$(NODE=$hub add org '{"ruc":"'"$(ruc "$3")"'","name":"'"$2"'","type":"cooperative"}')
	SVC=$(NODE=$hub add service '{"org":"'"$ORG"'","title":"Manejo integrado de la roya","area":"production","provider":"Equipo técnico"}')
	SES=$(NODE=$hub add session '{"org":"'"$ORG"'","service":"'"$SVC"'","starts_at":"2026-11-23T09:00:00-05:00"}')
}

# enroll HUB DEV NAME ORG... [-- EXTRA ARGS]: print DEV's join token.
enroll() {
	local hub=$1 dev=$2 name=$3 key
	local -a args=()
	shift 3
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		args+=(--org "$1")
		shift
	done
	[ $# -gt 0 ] && shift
	key=$(q -d "$dev" id)
	q -d "$hub" enroll --pubkey "$key" "${args[@]}" --name "$name" "$@"
}

# dev_new HUB DEV NAME ORG...: a field node, started, enrolled and joined.
dev_new() {
	local hub=$1 dev=$2 name=$3 tok
	shift 3
	node_init "$dev"
	qpd_start "$dev"
	tok=$(enroll "$hub" "$dev" "$name" "$@")
	case $tok in quipu1:*) ;; *) fail "enroll printed '$tok', not a token" ;; esac
	q -d "$dev" join "$tok" >/dev/null
}

# sync_ok DEV [TIMEOUT]: `quipu sync --wait` must succeed.
sync_ok() {
	q -d "$1" sync --wait --timeout "${2:-30}" >/dev/null
}

# wait_for SECS WHAT CMD...: poll CMD (quietly) until it succeeds.
wait_for() {
	local secs=$1 what=$2 i
	shift 2
	for i in $(seq 1 $((secs * 5))); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	fail "$what: not within $secs s"
}

# deviation TEXT: a failure the case records and reports at its end, so
# that the checks after it still run.
deviation() {
	echo "DEVIATION: $*" >&2
	echo "$*" >>"$QP_CASE_DIR/deviations"
}

has_record() {
	timeout 5 "$QUIPU" -d "$1" get "$2"
}

digest() {
	state_digest "$1"
}

# n_of DIR KIND [ARGS]: records of KIND listed on DIR.
n_of() {
	local dir=$1
	shift
	q -d "$dir" list "$@" >"$QP_CASE_DIR/n_of.out"
	grep -c . "$QP_CASE_DIR/n_of.out" || true
}

# same_digests DIR...: all nodes report the same state digest.
same_digests() {
	local d0 d dir
	d0=$(state_digest "$1") || return 1
	for dir in "$@"; do
		d=$(state_digest "$dir") || return 1
		[ "$d" = "$d0" ] || return 1
	done
}

# peer_field DIR EXPR: a Python expression over p (the first peer of
# `status --json`) and s (the whole status), printed.
peer_field() {
	q -d "$1" status --json >"$QP_CASE_DIR/st.json"
	python3 - "$QP_CASE_DIR/st.json" "$2" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
peers = s.get("peers") or []
p = peers[0] if peers else {}
v = eval(sys.argv[2])
print(v if isinstance(v, (str, int)) and not isinstance(v, bool) else json.dumps(v))
PY
}

# dev_write DEV N DNI0 [TAG]: N producers of $ORG (DNIs DNI0+1...) and one
# attendance each at $SES, as two requests.
dev_write() {
	local dev=$1 n=$2 dni0=$3 p
	py gen-producers "$n" "$ORG" "$dni0" >"$QP_CASE_DIR/w.jsonl"
	q -d "$dev" add producer --file "$QP_CASE_DIR/w.jsonl" >"$QP_CASE_DIR/w.ids"
	: >"$QP_CASE_DIR/a.jsonl"
	while read -r p; do
		printf '{"org":"%s","session":"%s","producer":"%s","status":"present"}\n' \
			"$ORG" "$SES" "$p" >>"$QP_CASE_DIR/a.jsonl"
	done <"$QP_CASE_DIR/w.ids"
	q -d "$dev" add attendance --file "$QP_CASE_DIR/a.jsonl" >/dev/null
}

# evil_build: compile tests/tools/qp_evil.c once per run into $QP_ROOT
# against the build directory next to BINDIR (or $QP_BUILD); sets EVIL.
evil_build() {
	local build=${QP_BUILD:-$QP_BIN/../build} top mp
	top=$(cd "$QP_HERE/../.." && pwd)
	EVIL=$QP_ROOT/qp_evil
	# make check builds it next to quipu, with the same flags.
	if [ -x "$QP_BIN/qp_evil" ]; then
		EVIL=$QP_BIN/qp_evil
		return 0
	fi
	[ -x "$EVIL" ] && return 0
	[ -f "$build/libquipu.a" ] || fail "no $build/libquipu.a to build qp_evil (set QP_BUILD)"
	mp=msgpack
	pkg-config --exists msgpack-c 2>/dev/null && mp=msgpack-c
	# shellcheck disable=SC2046
	cc -std=c11 -D_GNU_SOURCE -O1 -g -Wall -Wextra -Werror -Wshadow \
		-Wno-missing-field-initializers -I"$top/proto" \
		$(pkg-config --cflags libsodium "$mp" jansson libzstd) \
		"$top/tests/tools/qp_evil.c" "$build/libquipu.a" \
		$(pkg-config --libs lmdb libsodium "$mp" libuv jansson libzstd geos proj) \
		-lm -o "$EVIL.tmp" || fail "qp_evil does not build"
	mv "$EVIL.tmp" "$EVIL"
}

# ---------------------------------------------------------------------------

qp_case sync_converge
case_sync_converge() {
	local HUB D i n d dirs round
	HUB=$QP_CASE_DIR/hub
	hub_init "$HUB"
	qpd_start "$HUB"
	hub_org "$HUB" "Cooperativa Convergente" 2060123456
	dirs="$HUB"
	for i in 1 2 3; do
		D=$QP_CASE_DIR/tablet$i
		dev_new "$HUB" "$D" "tablet$i" "$ORG"
		sync_ok "$D"
		# The org, service and session reach every tablet.
		wait_for 30 "tablet$i receives the session" has_record "$D" "$SES"
		has_record "$D" "$ORG" >/dev/null || fail "tablet$i lacks the org record"
		dirs="$dirs $D"
	done

	# Offline: the hub is down while every tablet records its own work.
	qpd_stop "$HUB"
	for i in 1 2 3; do
		dev_write "$QP_CASE_DIR/tablet$i" 20 "4${i}000000"
		# A sync with the hub down fails with a reason, at once.
		qrun -d "$QP_CASE_DIR/tablet$i" sync --wait --timeout 5
		[ "$RC" -ne 0 ] || fail "sync --wait with the hub down succeeded"
		assert_err_one_line
		assert_err_has "quipu: sync: "
	done
	for i in 1 2 3; do
		assert_eq "$(n_of "$QP_CASE_DIR/tablet$i" producer)" 20 "tablet$i producers"
	done

	qpd_start "$HUB"
	for round in 1 2; do
		for i in 1 2 3; do
			sync_ok "$QP_CASE_DIR/tablet$i"
		done
	done
	n=$(n_of "$HUB" producer)
	assert_eq "$n" 60 "hub producers after the sync"
	# shellcheck disable=SC2086
	wait_for 30 "all four nodes reach the same state digest" same_digests $dirs
	for D in $dirs; do
		assert_eq "$(n_of "$D" producer)" 60 "producers on $D"
		assert_eq "$(n_of "$D" attendance)" 60 "attendance on $D"
		assert_eq "$(n_of "$D" session)" 1 "sessions on $D"
	done
	d=$(digest "$HUB")
	note "digest $d"
	q -d "$HUB" verify >/dev/null
	q -d "$QP_CASE_DIR/tablet2" verify >/dev/null
	# The hub knows its three tablets.
	q -d "$HUB" peers --json >peers.json
	python3 - peers.json <<'PY' || fail "hub peers"
import json, sys
p = json.load(open(sys.argv[1]))
p = p.get("peers", p) if isinstance(p, dict) else p
names = sorted(x.get("name") for x in p)
assert names == ["tablet1", "tablet2", "tablet3"], names
PY
	for D in $dirs; do
		qpd_stop "$D"
		assert_eq "$QPD_STATUS" 0 "quipud exit status on $D"
	done
}

qp_case sync_scope
case_sync_scope() {
	local HUB DA DB ORG_A ORG_B SES_A SES_B
	HUB=$QP_CASE_DIR/hub
	hub_init "$HUB"
	qpd_start "$HUB"
	hub_org "$HUB" "Cooperativa Alfa" 2060123456
	ORG_A=$ORG SES_A=$SES
	hub_org "$HUB" "Asociación Beta" 2060765432
	ORG_B=$ORG SES_B=$SES

	DA=$QP_CASE_DIR/alfa
	DB=$QP_CASE_DIR/beta
	dev_new "$HUB" "$DA" alfa1 "$ORG_A"
	dev_new "$HUB" "$DB" beta1 "$ORG_B"
	sync_ok "$DA"
	sync_ok "$DB"
	wait_for 30 "alfa receives its session" has_record "$DA" "$SES_A"
	wait_for 30 "beta receives its session" has_record "$DB" "$SES_B"
	# A full exchange is a success at once (the session may stay open).
	[ "$(peer_field "$DA" 'p.get("last_success")')" != never ] ||
		fail "alfa: last_success still never after sync --wait: $(cat "$QP_CASE_DIR/st.json")"
	ORG=$ORG_A SES=$SES_A dev_write "$DA" 10 44000000
	ORG=$ORG_B SES=$SES_B dev_write "$DB" 7 45000000
	# A tablet writes only for the orgs of its certificate: anything
	# else would never reach the hub.
	qrun -d "$DA" add org --file <(echo '{"ruc":"'"$(ruc 2060111222)"'","name":"Nueva","type":"association"}')
	assert_rc 1 "alfa: a new org"
	assert_err_one_line
	assert_err_has "org.org: this node is enrolled for 1 other org, not "
	qrun -d "$DA" add producer --file <(echo '{"org":"'"$ORG_B"'","dni":"44999999","name":"X","sex":"F"}')
	assert_rc 1 "alfa: a producer of org B"
	assert_err_one_line
	for r in 1 2; do
		sync_ok "$DA"
		sync_ok "$DB"
	done
	sleep 2 # what the hub pushes after the acks has time to arrive

	assert_eq "$(n_of "$HUB" producer --org "$ORG_A")" 10 "hub: org A producers"
	assert_eq "$(n_of "$HUB" producer --org "$ORG_B")" 7 "hub: org B producers"
	# beta holds org B only: nothing of org A, not even the org record.
	# (a listing by an org the node does not hold is refused)
	qrun -d "$DB" list producer --org "$ORG_A"
	assert_rc 1 "beta: list --org A"
	assert_err_has "no org with id $ORG_A on this node"
	assert_eq "$(n_of "$DB" producer)" 7 "beta: producers"
	assert_eq "$(n_of "$DB" org)" 1 "beta: orgs"
	has_record "$DB" "$ORG_A" >/dev/null 2>&1 && fail "beta holds the org A record"
	has_record "$DB" "$SES_A" >/dev/null 2>&1 && fail "beta holds the org A session"
	assert_eq "$(n_of "$DB" attendance)" 7 "beta: attendance"
	# ... and alfa nothing of org B.
	assert_eq "$(n_of "$DA" producer)" 10 "alfa: producers"
	assert_eq "$(n_of "$DA" org)" 1 "alfa: orgs"
	[ "$(digest "$DB")" != "$(digest "$HUB")" ] || fail "beta's digest equals the hub's"
	[ "$(digest "$DA")" != "$(digest "$DB")" ] || fail "alfa's digest equals beta's"
	# peers is a hub's listing.
	qrun -d "$DB" peers
	assert_rc 1 "peers on a tablet"
	assert_err_one_line
	assert_err_has "peers: only a hub lists the devices it enrolled"
	# Hub gone, nothing local waiting: the timeout says what is missing.
	qpd_stop "$HUB"
	qrun -d "$DB" sync --wait --timeout 2
	assert_rc 1 "sync --wait with the hub down"
	assert_err_one_line
	assert_err_has "sync: no full exchange with the hub before the timeout (nothing local is waiting)"
}

# two_tablets: a hub ($HUB) with an org ($ORG) and one producer ($P),
# and two tablets of the org ($D1, $D2) that have received her.
two_tablets() {
	HUB=$QP_CASE_DIR/hub
	hub_init "$HUB"
	qpd_start "$HUB"
	hub_org "$HUB" "Cooperativa Discordia" 2060123456
	P=$(NODE=$HUB add producer '{"org":"'"$ORG"'","dni":"40123456","name":"Rosa Huamán","sex":"F","community":"Anexo 1"}')
	D1=$QP_CASE_DIR/t1
	D2=$QP_CASE_DIR/t2
	dev_new "$HUB" "$D1" t1 "$ORG"
	dev_new "$HUB" "$D2" t2 "$ORG"
	sync_ok "$D1"
	sync_ok "$D2"
	wait_for 30 "t1 receives the producer" has_record "$D1" "$P"
	wait_for 30 "t2 receives the producer" has_record "$D2" "$P"
}

qp_case sync_conflict
case_sync_conflict() {
	local HUB D1 D2 P win
	two_tablets
	qpd_stop "$HUB"
	printf '{"community":"Anexo Uno"}\n' | q -d "$D1" update "$P" >/dev/null
	printf '{"community":"Anexo Dos"}\n' | q -d "$D2" update "$P" >/dev/null
	qpd_start "$HUB"
	for r in 1 2; do
		sync_ok "$D1"
		sync_ok "$D2"
	done

	q -d "$HUB" conflicts --json >conflicts.json
	python3 - conflicts.json "$P" <<'PY' || fail "hub conflicts: $(head -c 1500 conflicts.json)"
import json, sys
text = open(sys.argv[1]).read()
try:
    c = json.loads(text)
except ValueError:
    c = [json.loads(l) for l in text.splitlines() if l.strip()]
if isinstance(c, dict):
    c = c["conflicts"]
assert len(c) == 1, "%d conflicts, want 1" % len(c)
c = c[0]
assert c["id"] == sys.argv[2], c
assert c["kind"] == "producer", c
assert c["field"] == "community", c
vals = sorted(v["value"] for v in c["values"])
assert vals == ["Anexo Dos", "Anexo Uno"], vals
for v in c["values"]:
    # The spec does not say how long "author" is; full keys (64 hex) would
    # let a script match them with `quipu id`.
    assert len(v["author"]) >= 16 and v["hlc"], v
    if len(v["author"]) != 64:
        print("note: conflict author is %r, not a full key" % v["author"])
assert len({v["author"] for v in c["values"]}) == 2, "both authors"
PY
	# Every node ends with the same state (whichever value wins).
	wait_for 30 "the three nodes converge" same_digests "$HUB" "$D1" "$D2"
	# Giving the winning value again is a choice: it resolves the
	# conflict everywhere.
	win=$(q -d "$D1" get "$P" | python3 -c 'import json,sys; print(json.load(sys.stdin)["community"])')
	echo '{"community":"'"$win"'"}' | q -d "$D1" update "$P" >/dev/null
	assert_eq "$(q -d "$D1" conflicts --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" 0 "t1 conflicts after choosing"
	sync_ok "$D1"
	wait_for 30 "the hub sees the choice" test "$(q -d "$HUB" conflicts --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 0
	wait_for 30 "the three nodes converge again" same_digests "$HUB" "$D1" "$D2"
}

# A void and an edit made offline on two tablets: the record stays voided
# everywhere, the edit is listed against the void, and voiding again
# confirms the void and settles it on every node.
qp_case sync_void_conflict
case_sync_void_conflict() {
	local HUB D1 D2 P
	two_tablets
	qpd_stop "$HUB"
	q -d "$D1" void "$P" --reason "registro duplicado" >/dev/null
	printf '{"name":"Rosa Huamán Quispe"}\n' | q -d "$D2" update "$P" >/dev/null
	# Nothing is kept against a void on one node alone.
	qrun -d "$D1" void "$P" --reason "otra vez"
	assert_rc 1 "a second void with nothing kept against the first"
	assert_err_has "is already voided"
	qpd_start "$HUB"
	for r in 1 2; do
		sync_ok "$D1"
		sync_ok "$D2"
	done
	for n in "$HUB" "$D1" "$D2"; do
		q -d "$n" conflicts --json >vc.json
		python3 - vc.json "$P" <<'PY' || fail "void conflict on $n: $(head -c 1500 vc.json)"
import json, sys
c = json.load(open(sys.argv[1]))
assert len(c) == 1, c
c = c[0]
assert c["id"] == sys.argv[2] and c["field"] == "name" and c["void"] is True, c
v, e = c["values"]
assert v["void"] == "registro duplicado" and v["hlc"] > 0, v
assert e["value"] == "Rosa Huamán Quispe" and e["hlc"] > 0, e
assert v["author"] != e["author"], c
PY
	done
	q -d "$HUB" conflicts >vc.txt
	grep -q 'voided: "registro duplicado"' vc.txt || fail "conflicts text: $(cat vc.txt)"
	qrun -d "$HUB" get "$P"
	assert_err_has "voided"
	wait_for 30 "the three nodes converge" same_digests "$HUB" "$D1" "$D2"
	# The coordinator reviews it and confirms the void.
	q -d "$HUB" void "$P" --reason "duplicado, confirmado" >/dev/null
	assert_eq "$(q -d "$HUB" conflicts --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" 0 "hub conflicts after the confirmation"
	for r in 1 2; do
		sync_ok "$D1"
		sync_ok "$D2"
	done
	assert_eq "$(q -d "$D2" conflicts --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" 0 "t2 conflicts after the confirmation"
	wait_for 30 "the three nodes converge again" same_digests "$HUB" "$D1" "$D2"
}

qp_case sync_hub_kill
case_sync_hub_kill() {
	local HUB D n resent spid
	HUB=$QP_CASE_DIR/hub
	D=$QP_CASE_DIR/tablet
	hub_init "$HUB"
	qpd_start "$HUB"
	hub_org "$HUB" "Cooperativa Interrumpida" 2060123456
	dev_new "$HUB" "$D" tablet "$ORG"
	sync_ok "$D"
	wait_for 30 "the tablet receives the org" has_record "$D" "$ORG"

	# 5,000 records written offline in 500 deltas.
	qpd_stop "$HUB"
	py gen-producers 5000 "$ORG" 46000000 >many.jsonl
	q -d "$D" import many.jsonl --kind producer --batch 10 >/dev/null
	assert_eq "$(n_of "$D" producer)" 5000 "tablet producers"

	qpd_start "$HUB"
	timeout 120 "$QUIPU" -d "$D" sync --wait --timeout 60 >sync1.out 2>&1 &
	spid=$!
	sleep 0.5
	qpd_kill9 "$HUB"
	wait "$spid" || true
	note "first sync: $(cat sync1.out)"
	qpd_start "$HUB"
	n=$(n_of "$HUB" producer)
	note "hub held $n of 5000 producers after the crash"
	sync_ok "$D" 60
	assert_eq "$(n_of "$HUB" producer)" 5000 "hub producers"
	resent=$(peer_field "$D" 'sum(x["counters"]["deltas_resent_after_ack"] for x in s["peers"])')
	assert_eq "$resent" 0 "deltas_resent_after_ack on the tablet"
	assert_eq "$(peer_field "$D" 'p["pending"]')" 0 "pending on the tablet"
	wait_for 30 "hub and tablet converge" same_digests "$HUB" "$D"
	q -d "$HUB" verify >/dev/null
}

# What enroll and revoke refuse at the hub, each in one line with nothing
# written.

# checks_hub: a hub on loopback with an org ($ORG) and a field node ($D,
# key $KEY) that is not enrolled; sets HUB too.
checks_hub() {
	HUB=$QP_CASE_DIR/hub
	hub_init "$HUB"
	qpd_start "$HUB"
	hub_org "$HUB" "Cooperativa Registrada" 2060123456
	D=$QP_CASE_DIR/tablet
	node_init "$D"
	KEY=$(q -d "$D" id)
}

# no_cert HUB KEY: the hub holds no certificate of KEY.
no_cert() {
	q -d "$1" peers --json >"$QP_CASE_DIR/peers.json"
	if grep -q "$2" "$QP_CASE_DIR/peers.json"; then
		fail "a refused command left a certificate of $2: $(head -c 300 "$QP_CASE_DIR/peers.json")"
	fi
}

# Each --org must be an org record the hub holds, not voided: not an
# unknown id, not another kind's id.
qp_case sync_enroll_org
case_sync_enroll_org() {
	local HUB D KEY P V bogus
	checks_hub
	P=$(NODE=$HUB add producer '{"org":"'"$ORG"'","dni":"40123456","name":"Rosa Huamán","sex":"F"}')
	V=$(NODE=$HUB add org '{"ruc":"'"$(ruc 2060765432)"'","name":"Cooperativa Disuelta","type":"cooperative"}')
	q -d "$HUB" void "$V" --reason "disuelta" >/dev/null
	bogus=01a2b3c4-d5e6-7f80-9a1b-2c3d4e5f6a7b
	qrun -d "$HUB" enroll --pubkey "$KEY" --org "$bogus" --name x
	assert_rc 1
	assert_err_one_line
	assert_err_has "enroll: org $bogus is not an organisation this hub holds"
	qrun -d "$HUB" enroll --pubkey "$KEY" --org "$ORG" --org "$bogus" --name x
	assert_rc 1
	assert_err_has "enroll: org $bogus is not an organisation this hub holds"
	qrun -d "$HUB" enroll --pubkey "$KEY" --org "$P" --name x
	assert_rc 1
	assert_err_one_line
	assert_err_has "enroll: $P is a producer record, not an org"
	qrun -d "$HUB" enroll --pubkey "$KEY" --org "$V" --name x
	assert_rc 1
	assert_err_one_line
	assert_err_has "enroll: org $V is voided"
	no_cert "$HUB" "$KEY"
	# The org the hub holds is fine.
	enroll "$HUB" "$D" tablet "$ORG" >/dev/null
}

qp_case sync_enroll_own_key
case_sync_enroll_own_key() {
	local HUB D KEY hubkey
	checks_hub
	hubkey=$(q -d "$HUB" id)
	qrun -d "$HUB" enroll --pubkey "$hubkey" --org "$ORG" --name self
	assert_rc 1
	assert_err_one_line
	assert_err_has "enroll: $hubkey is this hub's own key"
}

# A hub listening on every interface (0.0.0.0, [::]): a token with that
# address cannot be dialled, so enroll wants --address.
qp_case sync_enroll_any_address
case_sync_enroll_any_address() {
	local H0 H6 KEY port tok org
	node_init "$QP_CASE_DIR/tablet"
	KEY=$(q -d "$QP_CASE_DIR/tablet" id)
	H0=$QP_CASE_DIR/hub-any
	port=$(free_port)
	q -d "$H0" init --role hub --listen "0.0.0.0:$port" >/dev/null
	qpd_start "$H0"
	org=$(NODE=$H0 add org '{"ruc":"'"$(ruc 2060111222)"'","name":"Cooperativa Abierta","type":"cooperative"}')
	qrun -d "$H0" enroll --pubkey "$KEY" --org "$org" --name x
	assert_rc 1
	assert_err_one_line
	assert_err_has "enroll: this hub listens on 0.0.0.0:$port; give --address HOST:PORT that devices can dial"
	qrun -d "$H0" enroll --pubkey "$KEY" --org "$org" --name x --address "0.0.0.0:$port"
	assert_rc 1
	assert_err_one_line
	assert_err_has "give --address HOST:PORT that devices can dial"
	no_cert "$H0" "$KEY"
	tok=$(q -d "$H0" enroll --pubkey "$KEY" --org "$org" --name x --address "127.0.0.1:$port")
	case $tok in quipu1:*) ;; *) fail "enroll with --address printed '$tok'" ;; esac
	# The same for IPv6's [::], where this machine has IPv6.
	if ! python3 -c 'import socket; socket.socket(socket.AF_INET6).bind(("::", 0))' 2>/dev/null; then
		note "no IPv6 here: [::] not checked"
		return 0
	fi
	H6=$QP_CASE_DIR/hub-any6
	port=$(free_port)
	q -d "$H6" init --role hub --listen "[::]:$port" >/dev/null
	qpd_start "$H6"
	org=$(NODE=$H6 add org '{"ruc":"'"$(ruc 2060111222)"'","name":"Cooperativa Abierta","type":"cooperative"}')
	qrun -d "$H6" enroll --pubkey "$KEY" --org "$org" --name x
	assert_rc 1
	assert_err_one_line
	assert_err_has "enroll: this hub listens on [::]:$port; give --address HOST:PORT that devices can dial"
}

# Revoking a key the hub never enrolled (nor holds deltas of) is refused,
# and so is revoking the hub's own key; an enrolled key can be revoked.
qp_case sync_revoke_unknown
case_sync_revoke_unknown() {
	local HUB D KEY hubkey
	checks_hub
	qrun -d "$HUB" revoke "$KEY"
	assert_rc 1
	assert_err_one_line
	assert_err_has "revoke: no device with key $KEY is enrolled here"
	hubkey=$(q -d "$HUB" id)
	qrun -d "$HUB" revoke "$hubkey"
	assert_rc 1
	assert_err_one_line
	assert_err_has "revoke: $hubkey is this hub's own key"
	# Once enrolled, the key is not revoked (the refusal stored nothing),
	# and revoke takes it.
	enroll "$HUB" "$D" tablet "$ORG" >/dev/null
	q -d "$HUB" peers --json >peers.json
	python3 - peers.json "$KEY" <<'PY' || fail "after a refused revoke: $(head -c 400 peers.json)"
import json, sys
p = json.load(open(sys.argv[1]))
p = p.get("peers", p) if isinstance(p, dict) else p
mine = [x for x in p if x["key"] == sys.argv[2]]
assert len(mine) == 1 and mine[0]["revoked"] is False, mine
PY
	q -d "$HUB" revoke "$KEY" >revoke.out
	grep -q "^revoked $KEY" revoke.out || fail "revoke printed: $(cat revoke.out)"
}

qp_case sync_refusals
case_sync_refusals() {
	local HUB H2 OK DW DX DR tok fake fpid key err exp p0 p1 p2 n addr1 org2
	HUB=$QP_CASE_DIR/hub
	H2=$QP_CASE_DIR/hub2
	hub_init "$HUB"
	addr1=$HUB_ADDR
	qpd_start "$HUB"
	hub_org "$HUB" "Cooperativa Rechazadora" 2060123456
	OK=$QP_CASE_DIR/ok
	dev_new "$HUB" "$OK" ok "$ORG"
	sync_ok "$OK"
	wait_for 30 "ok receives the org" has_record "$OK" "$ORG"
	n=0
	still_serving() {
		n=$((n + 1))
		add_one "$OK" "$((47000000 + n))" >/dev/null
		sync_ok "$OK" 20
	}
	add_one() {
		printf '{"org":"%s","dni":"%s","name":"Productor %s","sex":"M"}\n' \
			"$ORG" "$2" "$2" | q -d "$1" add producer
	}

	# 1. A token of another hub pointing at this hub's address: the hub
	#    does not know the certificate's issuer.  (hub2 enrols for an org
	#    of its own: a hub enrols only for orgs it holds.)
	hub_init "$H2"
	qpd_start "$H2"
	org2=$(NODE=$H2 add org '{"ruc":"'"$(ruc 2060654321)"'","name":"Cooperativa Ajena","type":"cooperative"}')
	DW=$QP_CASE_DIR/wrong
	node_init "$DW"
	qpd_start "$DW"
	tok=$(enroll "$H2" "$DW" wrong "$org2" -- --address "$addr1")
	q -d "$DW" join "$tok" >/dev/null
	qrun -d "$DW" sync --wait --timeout 10
	[ "$RC" -ne 0 ] || fail "sync with another hub's token succeeded"
	assert_err_one_line
	err=$(peer_field "$DW" 'p.get("last_error", "")')
	note "another hub's token: exit $RC, $(cat err); last_error: $err"
	[ -n "$err" ] || fail "no last_error after a refused sync"
	still_serving

	# 2. The right token with its address changed to an impostor that
	#    answers with its own key: "hub key does not match".
	evil_build
	fake=$(free_port)
	"$EVIL" fakehub "$fake" >fakehub.out 2>&1 &
	fpid=$!
	DX=$QP_CASE_DIR/mitm
	node_init "$DX"
	qpd_start "$DX"
	tok=$(enroll "$HUB" "$DX" mitm "$ORG")
	tok=$(python3 - "$tok" "127.0.0.1:$fake" <<'PY'
import base64, sys
t, addr = sys.argv[1], sys.argv[2].encode()
b = t[len("quipu1:"):]
raw = base64.urlsafe_b64decode(b + "=" * (-len(b) % 4))
raw = bytes([len(addr)]) + addr + raw[1 + raw[0]:]
print("quipu1:" + base64.urlsafe_b64encode(raw).decode().rstrip("="))
PY
)
	q -d "$DX" join "$tok" >/dev/null
	qrun -d "$DX" sync --wait --timeout 10
	kill "$fpid" 2>/dev/null || true
	wait "$fpid" 2>/dev/null || true
	[ "$RC" -ne 0 ] || fail "sync with an impostor hub succeeded"
	err=$(peer_field "$DX" 'p.get("last_error", "")')
	note "impostor: $(cat err); last_error: $err; fakehub: $(cat fakehub.out)"
	grep -q "welcomed" fakehub.out || fail "the tablet never reached the impostor"
	# (A here-string, not a pipe: grep -q stopping early must not fail the
	# writer under pipefail.)
	grep -q "hub key does not match" <<<"$err
$(cat err)" ||
		fail "impostor hub: 'hub key does not match' not reported: $err / $(cat err)"
	still_serving

	# 3. An expired certificate.
	DR=$QP_CASE_DIR/expiring
	node_init "$DR"
	qpd_start "$DR"
	exp=$(date -u -d '+12 seconds' +%Y-%m-%dT%H:%M:%SZ)
	qrun -d "$HUB" enroll --pubkey "$(q -d "$DR" id)" --org "$ORG" --name expiring \
		--expires "$(date -u -d '-1 day' +%Y-%m-%d)"
	[ "$RC" -ne 0 ] || fail "enroll with an expiry in the past succeeded"
	assert_err_one_line
	tok=$(enroll "$HUB" "$DR" expiring "$ORG" -- --expires "$exp")
	q -d "$DR" join "$tok" >/dev/null
	sync_ok "$DR"
	wait_for 20 "expiring receives the org" has_record "$DR" "$ORG"
	while [ "$(date -u +%s)" -le "$(date -u -d "$exp" +%s)" ]; do sleep 0.5; done
	sleep 1
	# The session opened before the expiry may still be up: the hub must
	# not take what the device writes after it anyway.
	p0=$(add_one "$DR" 48000001)
	qrun -d "$DR" sync --wait --timeout 10
	note "expired, session opened before: exit $RC: $(cat err)"
	[ "$RC" -ne 0 ] || deviation "sync --wait after the certificate expired succeeded (over a session opened before the expiry)"
	has_record "$HUB" "$p0" >/dev/null 2>&1 &&
		deviation "the hub took a record written after the device's certificate expired (session opened before the expiry)"
	# A new handshake with the expired certificate is refused.
	qpd_stop "$DR"
	qpd_start "$DR"
	add_one "$DR" 48000002 >/dev/null
	qrun -d "$DR" sync --wait --timeout 10
	[ "$RC" -ne 0 ] || fail "sync with an expired certificate succeeded"
	assert_err_one_line
	err=$(peer_field "$DR" 'p.get("last_error", "")')
	note "expired: $(cat err); last_error: $err"
	grep -q "certificate expired" <<<"$err" ||
		fail "last_error '$err' does not mention 'certificate expired'"
	still_serving

	# 4. A revoked key: what it wrote before stays, later deltas are
	#    refused or quarantined.
	DR=$QP_CASE_DIR/revoked
	dev_new "$HUB" "$DR" revoked "$ORG"
	sync_ok "$DR"
	wait_for 20 "revoked receives the org" has_record "$DR" "$ORG"
	p1=$(add_one "$DR" 49000001)
	sync_ok "$DR"
	has_record "$HUB" "$p1" >/dev/null || fail "the hub lacks the record written before revocation"
	key=$(q -d "$DR" id)
	q -d "$HUB" revoke "$key" >revoke.out
	p2=$(add_one "$DR" 49000002)
	# The spec allows either: the hub refuses the session (then the
	# device's last_error says revoked) or it takes the delta and
	# quarantines its ops ("key revoked after seq N").
	qrun -d "$DR" sync --wait --timeout 10
	err=$(peer_field "$DR" 'p.get("last_error", "")')
	note "revoked: exit $RC: $(cat err); last_error: $err"
	has_record "$HUB" "$p2" >/dev/null 2>&1 && fail "the hub applied a record written after revocation"
	has_record "$HUB" "$p1" >/dev/null || fail "the record written before revocation was lost"
	q -d "$HUB" quarantine --json >quarantine.json
	if [ "$RC" -eq 0 ]; then
		python3 - quarantine.json "$key" <<'PY' || fail "quarantine after revocation: $(head -c 800 quarantine.json)"
import json, sys
q = json.load(open(sys.argv[1]))
q = q.get("quarantine", q) if isinstance(q, dict) else q
mine = [x for x in q if x["author"] == sys.argv[2]]
assert len(mine) == 1, "%d quarantined ops of the revoked key, want 1" % len(mine)
x = mine[0]
assert x["seq"] == 2 and "revoked after seq 1" in x["reason"], x
assert x["op"]["fields"]["dni"] == "49000002", x
PY
	else
		grep -qi "revoked" <<<"$err
$(cat err)" ||
			fail "revoked key refused without saying so: $err / $(cat err)"
		# Carried on a stick instead, the delta is quarantined.
		q -d "$DR" bundle export "$QP_CASE_DIR/revoked.qpb" >/dev/null
		qrun -d "$HUB" bundle import "$QP_CASE_DIR/revoked.qpb"
		note "bundle import of the revoked key: $(cat out) $(cat err)"
		# Quarantined is not applied: the import says so and fails.
		assert_rc 1 "import of a revoked key's delta"
		assert_err_has "1 op of these deltas went to quarantine (see quipu quarantine)"
		q -d "$HUB" quarantine --json >quarantine.json
		has_record "$HUB" "$p2" >/dev/null 2>&1 && fail "the hub applied a revoked key's delta from a bundle"
		grep -qi "revoked" quarantine.json || grep -qi revoked out ||
			fail "neither the quarantine nor the import names the revocation: $(head -c 600 quarantine.json) / $(cat out)"
	fi
	# The hub's peer list says the key is revoked.
	q -d "$HUB" peers --json >peers.json
	python3 - peers.json "$key" <<'PY' || deviation "peers --json: $(head -c 300 peers.json)"
import json, sys
p = json.load(open(sys.argv[1]))
p = p.get("peers", p) if isinstance(p, dict) else p
mine = [x for x in p if sys.argv[2] in (x.get("key"), x.get("device"))]
assert mine, "revoked key not listed"
for k in ("key", "name", "role", "orgs", "last_contact", "lag", "acked", "pending", "last_error"):
    if k not in mine[0]:
        print("peers entry lacks %r" % k)
assert mine[0].get("revoked"), "no revoked: true"
PY
	still_serving
	qpd_alive "$HUB" || fail "the hub died"
	[ ! -s deviations ] || fail "$(tr '\n' ';' <deviations)"
}

qp_case sync_hostile
case_sync_hostile() {
	local HUB OK E tok before after res forks ORG_A spid n fut
	evil_build
	HUB=$QP_CASE_DIR/hub
	hub_init "$HUB"
	qpd_start "$HUB"
	hub_org "$HUB" "Cooperativa Asediada" 2060765432
	local ORG_B=$ORG
	hub_org "$HUB" "Cooperativa Atacada" 2060123456
	ORG_A=$ORG
	OK=$QP_CASE_DIR/ok
	dev_new "$HUB" "$OK" ok "$ORG"
	sync_ok "$OK"
	wait_for 30 "ok receives the org" has_record "$OK" "$ORG"
	E=$QP_CASE_DIR/evil
	node_init "$E"
	tok=$(enroll "$HUB" "$E" evil "$ORG_A")
	n=0
	serves() {
		n=$((n + 1))
		printf '{"org":"%s","dni":"%08d","name":"Vecino %s","sex":"M"}\n' \
			"$ORG_A" "$((47100000 + n))" "$n" | q -d "$OK" add producer >/dev/null
		sync_ok "$OK" 20 || fail "after $1 the hub no longer serves"
		qpd_alive "$HUB" || fail "the hub died after $1"
	}
	evil() {
		before=$(digest "$HUB")
		res=$(timeout 90 "$EVIL" "$1" "$HUB_ADDR" "$E/key" "$tok" "$ORG_A" "${2:-}") ||
			fail "qp_evil $1 failed: $res"
		after=$(digest "$HUB")
		note "qp_evil $1: $res"
		echo "$1: $res" >>evil.results
	}

	evil good
	case $res in "result: ack received=2") ;; *) fail "good deltas: $res" ;; esac
	[ "$before" != "$after" ] || fail "good deltas did not change the hub's state"
	serves good

	evil replay
	assert_eq "$after" "$before" "digest after a replay"
	serves replay

	evil forged
	assert_eq "$after" "$before" "digest after a forged signature"
	case $res in *"ack received"*) note "forged delta answered with an ACK" ;; esac
	serves forged

	evil flip
	assert_eq "$after" "$before" "digest after a flipped byte"
	serves flip

	evil wrongorg "$ORG_B"
	assert_eq "$after" "$before" "digest after a delta of an org not in the certificate"
	serves wrongorg
	[ "$(n_of "$HUB" producer --org "$ORG_B")" -eq 0 ] || fail "the hub took a producer of org B"

	# A device whose date is 30 days ahead: its delta is taken, the hub's
	# clock stays right, the hub says which device to fix, and an edit
	# made at the hub of that record still takes effect.
	evil future
	case $res in "result: ack received=1") ;; *) fail "future-stamped delta: $res" ;; esac
	[ "$before" != "$after" ] || fail "the future-stamped delta changed nothing"
	q -d "$HUB" status --json >hubst.json
	python3 - hubst.json <<'PY' || fail "hub clock after a future stamp: $(cat hubst.json)"
import json, sys
c = json.load(open(sys.argv[1]))["daemon"]["clock"]
assert c["wrong"] is False and c["behind_s"] == 0, c
PY
	q -d "$HUB" peers --json >peers.json
	python3 - peers.json <<'PY' || fail "peers after a future stamp: $(head -c 1500 peers.json)"
import json, sys
rows = [r for r in json.load(open(sys.argv[1])) if r.get("name") == "evil"]
assert len(rows) == 1, rows
assert 29 * 86400 <= rows[0]["clock_ahead_s"] <= 31 * 86400, rows[0]
PY
	q -d "$HUB" peers | grep -q "clock 30 days ahead: set its date" ||
		fail "peers table lacks the clock: $(q -d "$HUB" peers)"
	grep -q "quipud warn: deltas of evil (.*) are stamped 30 days ahead of this clock: that device's date is wrong" "$HUB.qpd.log" ||
		fail "the hub logged no wrong date: $(tail -n 5 "$HUB.qpd.log")"
	fut=$(q -d "$HUB" list producer --format jsonl | python3 -c '
import json, sys
print(next(r["id"] for r in map(json.loads, sys.stdin) if r["name"] == "Reloj Adelantado"))')
	echo '{"name":"Reloj Corregido"}' | q -d "$HUB" update "$fut" >/dev/null
	assert_eq "$(q -d "$HUB" get "$fut" | python3 -c 'import json,sys; print(json.load(sys.stdin)["name"])')" \
		"Reloj Corregido" "an edit at the hub of the future-stamped record"
	serves future

	evil fork
	forks=$(status_num "$HUB" forks)
	[ "$forks" -ge 1 ] || fail "store.forks is $forks after a fork"
	serves fork
	# The fork is there to review: the other bytes held at the same seq,
	# and what the kept delta would have done.
	q -d "$HUB" forks --json >forks.json
	python3 - forks.json "$forks" <<'PY' || fail "forks listing: $(head -c 600 forks.json)"
import json, sys
rows, n = json.load(open(sys.argv[1])), int(sys.argv[2])
assert len(rows) == n, (len(rows), n)
forks = [r for r in rows if r["what"] == "fork"]
assert forks, rows
for r in forks:
    assert r["held_hash"] and r["held_hash"] != r["hash"], r
    assert len(r["author"]) == 64 and r["seq"] >= 1 and r["bytes"] > 0, r
    assert r["nops"] >= 1 and r["ops"] and r["ops"][0]["type"] in ("create", "update", "void"), r
PY
	q -d "$HUB" forks >forks.txt
	grep -q "^AUTHOR  *ORG  *SEQ  *WHAT  *OPS" forks.txt || fail "forks table header: $(head -c 300 forks.txt)"
	grep -q " fork " forks.txt || fail "forks table lacks the fork: $(head -c 300 forks.txt)"

	evil oversize
	case $res in "result: closed") ;; *) fail "oversize frame: $res" ;; esac
	assert_eq "$after" "$before" "digest after an oversize frame"
	serves oversize

	evil oversize_pre
	case $res in "result: closed" | "result: refused"*) ;; *) fail "oversize frame before HELLO: $res" ;; esac
	serves oversize_pre

	evil random
	case $res in "result: closed") ;; *) fail "random bytes: $res" ;; esac
	serves random

	# A peer that stalls mid-handshake is dropped at the handshake
	# timeout, and others are served meanwhile.
	timeout 90 "$EVIL" stall "$HUB_ADDR" "$E/key" "$tok" "$ORG_A" >stall.out 2>&1 &
	spid=$!
	sleep 1
	serves "a stalled handshake (meanwhile)"
	wait "$spid" || fail "qp_evil stall failed: $(cat stall.out)"
	note "stall: $(cat stall.out)"
	echo "stall: $(cat stall.out)" >>evil.results
	python3 - stall.out <<'PY' || fail "stalled peer: $(cat stall.out)"
import re, sys
m = re.match(r"result: closed after ([0-9.]+) s", open(sys.argv[1]).read())
assert m and float(m.group(1)) <= 40, "not closed within 40 s"
PY
	serves stall
	q -d "$HUB" verify >/dev/null
	cat evil.results
}

# A large bundle goes in a batch per turn of quipud's loop: the hub
# answers other requests meanwhile and `status` shows how far it got.
# Stopped midway, quipud answers with what was stored; the same bundle
# imported again finishes the job.
qp_case bundle_import_large
case_bundle_import_large() {
	local HUB A ipid rc seen=0 polls=0 out
	HUB=$QP_CASE_DIR/hub
	hub_init "$HUB"
	qpd_start "$HUB"
	hub_org "$HUB" "Cooperativa Caudalosa" 2060123456
	A=$QP_CASE_DIR/a
	dev_new "$HUB" "$A" a "$ORG"
	sync_ok "$A"
	qpd_stop "$HUB"
	py gen-producers 100000 "$ORG" 50000000 >big.jsonl
	q -d "$A" import --kind producer big.jsonl >/dev/null
	q -d "$A" bundle export "$QP_CASE_DIR/big.qpb" >a.out
	note "A exported: $(cat a.out)"
	qpd_stop "$A"
	qpd_start "$HUB"
	timeout 120 "$QUIPU" -d "$HUB" bundle import "$QP_CASE_DIR/big.qpb" >imp.out 2>imp.err &
	ipid=$!
	# Status is answered while the import goes on.
	while [ "$seen" -lt 2 ] && kill -0 "$ipid" 2>/dev/null && [ "$polls" -lt 2000 ]; do
		polls=$((polls + 1))
		out=$(timeout 10 "$QUIPU" -d "$HUB" status 2>&1) || fail "status during the import: $out"
		case $out in *"importing    $QP_CASE_DIR/big.qpb: "*" deltas stored"*)
			seen=$((seen + 1)) ;;
		esac
	done
	[ "$seen" -ge 1 ] || fail "status never showed the import under way ($polls polls)"
	# Stopped now, quipud answers the import with how far it got.
	qpd_stop "$HUB"
	rc=0
	wait "$ipid" || rc=$?
	note "import stopped (exit $rc): $(cat imp.err)"
	assert_eq "$rc" 1 "exit status of an import cut by a stop"
	grep -q "^quipu: bundle import: quipud is stopping: [0-9]* of [0-9]* deltas of $QP_CASE_DIR/big.qpb were stored; import it again to finish (what is here already is skipped)$" imp.err ||
		fail "the stopped import says: $(cat imp.err)"
	qpd_start "$HUB"
	q -d "$HUB" bundle import "$QP_CASE_DIR/big.qpb" >imp.out
	note "hub imported: $(cat imp.out)"
	assert_eq "$(n_of "$HUB" producer)" 100000 "hub producers after the import"
	q -d "$HUB" status --json >st.json
	python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))["bundle_imports"] == []' st.json ||
		fail "an import still listed after it ended"
	q -d "$HUB" verify >/dev/null
}

qp_case bundle_roundtrip
case_bundle_roundtrip() {
	local HUB A B C nb before out
	HUB=$QP_CASE_DIR/hub
	hub_init "$HUB"
	qpd_start "$HUB"
	hub_org "$HUB" "Cooperativa Andariega" 2060123456
	A=$QP_CASE_DIR/a
	B=$QP_CASE_DIR/b
	C=$QP_CASE_DIR/c
	for d in "$A" "$B" "$C"; do
		dev_new "$HUB" "$d" "$(basename "$d")" "$ORG"
		sync_ok "$d"
		wait_for 30 "$(basename "$d") receives the session" has_record "$d" "$SES"
	done
	# No network from here on: only sticks.
	for d in "$HUB" "$A" "$B" "$C"; do qpd_stop "$d"; done
	for d in "$A" "$B" "$C"; do qpd_start "$d"; done

	dev_write "$A" 12 50000000
	q -d "$A" bundle export "$QP_CASE_DIR/a.qpb" >a.out
	note "A exported: $(cat a.out)"
	[ -s a.qpb ] || fail "empty bundle"
	nb=$(n_of "$B" producer)
	q -d "$B" bundle import "$QP_CASE_DIR/a.qpb" >b.out
	note "B imported: $(cat b.out)"
	assert_eq "$(n_of "$B" producer)" $((nb + 12)) "B's producers after the import"
	assert_eq "$(n_of "$B" attendance)" 12 "B's attendance after the import"
	# Importing it again changes nothing.
	before=$(digest "$B")
	q -d "$B" bundle import "$QP_CASE_DIR/a.qpb" >/dev/null
	assert_eq "$(digest "$B")" "$before" "B's digest after a second import"

	# Relayed: A -> C -> hub.
	q -d "$C" bundle import "$QP_CASE_DIR/a.qpb" >/dev/null
	assert_eq "$(n_of "$C" producer)" 12 "C's producers after the import"
	q -d "$C" bundle export "$QP_CASE_DIR/c.qpb" >c.out
	note "C exported: $(cat c.out)"
	for d in "$A" "$B" "$C"; do qpd_stop "$d"; done
	qpd_start "$HUB"

	# A truncated bundle: a clean one-line error, nothing applied.
	head -c $(($(stat -c %s c.qpb) * 2 / 3)) c.qpb >cut.qpb
	before=$(digest "$HUB")
	qrun -d "$HUB" bundle import "$QP_CASE_DIR/cut.qpb"
	assert_rc 1 "import of a truncated bundle"
	assert_err_one_line
	grep -qi "truncat" err || fail "the error does not say truncated: $(cat err)"
	assert_eq "$(digest "$HUB")" "$before" "hub digest after a truncated bundle"
	assert_eq "$(n_of "$HUB" producer)" 0 "hub producers after a truncated bundle"
	# Garbage is refused the same way.
	head -c 5000 /dev/urandom >junk.qpb
	qrun -d "$HUB" bundle import "$QP_CASE_DIR/junk.qpb"
	assert_rc 1 "import of garbage"
	assert_err_one_line

	q -d "$HUB" bundle import "$QP_CASE_DIR/c.qpb" >hub.out
	note "hub imported: $(cat hub.out)"
	assert_eq "$(n_of "$HUB" producer)" 12 "hub producers from the relayed bundle"
	assert_eq "$(n_of "$HUB" attendance)" 12 "hub attendance from the relayed bundle"
	q -d "$HUB" verify >/dev/null

	# --for KEY: only what that device has not acknowledged.  Every device
	# acknowledged the hub's setup records when it synced; none has seen
	# A's new deltas through the hub.
	q -d "$HUB" bundle export "$QP_CASE_DIR/all.qpb" >all.out
	q -d "$HUB" bundle export "$QP_CASE_DIR/forb.qpb" --for "$(q -d "$B" id)" >forb.out
	python3 - all.out forb.out <<'PY' || fail "bundle --for: $(cat all.out) / $(cat forb.out)"
import re, sys
n = [int(re.search(r"wrote (\d+) deltas", open(f).read()).group(1)) for f in sys.argv[1:]]
assert 0 < n[1] < n[0], n
PY
	# A key enrolled nowhere here gets nothing (a typo must not carry
	# every org's records away); a tablet's own hub gets all it lacks.
	qrun -d "$HUB" bundle export "$QP_CASE_DIR/typo.qpb" --for 0000000000000000000000000000000000000000000000000000000000000001
	assert_rc 1 "bundle export --for an unknown key"
	assert_err_one_line
	assert_err_has "no device with key 0000000000000000000000000000000000000000000000000000000000000001 is enrolled here"
	[ ! -e "$QP_CASE_DIR/typo.qpb" ] || fail "a refused export left a file"
	qpd_start "$B"
	q -d "$B" bundle export "$QP_CASE_DIR/tohub.qpb" --for "$(q -d "$HUB" id)" >/dev/null
	qpd_stop "$B"
}

# A tablet restored from a backup must not sign again a seq it signed
# after the backup (a fork of its own log): quipud sees that its data file
# is a copy, refuses local writes with the reason until a sync with the hub
# has brought back its later deltas, then writes on from the right seq.
# The restore happens out of the hub's reach (with the hub up, the tablet
# syncs at start-up and is settled within milliseconds, which the log
# shows).
qp_case bundle_refused
case_bundle_refused() {
	local A=$QP_CASE_DIR/a B=$QP_CASE_DIR/b i n key
	node_init "$A"
	node_init "$B"
	qpd_start "$A"
	qpd_start "$B"
	for i in 1 2 3; do
		NODE=$A add org '{"ruc":"'"$(ruc 206012345$i)"'","name":"Cooperativa '"$i"'","type":"cooperative"}' >/dev/null
	done
	q -d "$A" bundle export "$QP_CASE_DIR/a.qpb" >/dev/null
	key=$(q -d "$A" id)
	# B has joined no hub: it trusts no author, so every delta is refused.
	qrun -d "$B" bundle import "$QP_CASE_DIR/a.qpb"
	assert_rc 1 "import of a bundle whose deltas are all refused"
	assert_out_has "imported 3 deltas: 0 applied, 0 already held, 3 refused"
	# One line per distinct reason, with its count.
	assert_err_one_line
	assert_err_has "quipu: refused 3 deltas: author ${key:0:8} is not trusted: this node has not joined a hub"
	n=$(n_of "$B" org)
	assert_eq "$n" 0 "B's orgs after the refused import"
	# Nothing refused: exit 0, nothing on stderr.
	qrun -d "$A" bundle import "$QP_CASE_DIR/a.qpb"
	assert_rc 0 "import of a bundle this node already holds"
	assert_out_has "imported 3 deltas: 0 applied, 3 already held, 0 refused"
	[ -s err ] && fail "a clean import wrote to stderr: $(head -c 300 err)"
	return 0
}

# Enrolled again (other orgs, a new expiry), a device must use the newest
# certificate: the older one no longer opens a session.
qp_case sync_enroll_again
case_sync_enroll_again() {
	local HUB D tok1 tok2
	HUB=$QP_CASE_DIR/hub
	D=$QP_CASE_DIR/d
	hub_init "$HUB"
	qpd_start "$HUB"
	hub_org "$HUB" "Cooperativa Primera" 2060123456
	node_init "$D"
	qpd_start "$D"
	tok1=$(enroll "$HUB" "$D" tablet "$ORG")
	sleep 0.01
	tok2=$(enroll "$HUB" "$D" tablet "$ORG" -- --expires 2099-01-01)
	q -d "$D" join "$tok1" >/dev/null
	qrun -d "$D" sync --wait --timeout 10
	assert_rc 1 "sync with the superseded certificate"
	assert_err_has "certificate superseded by a newer enrolment; join again with the newest token"
	q -d "$D" join "$tok2" >/dev/null
	sync_ok "$D"
}

# A tablet enrolled after a colleague, that never reached the hub, gets
# the colleague's records on a USB stick: the bundle carries the
# certificates that make the colleague's deltas trusted.
qp_case bundle_carries_trust
case_bundle_carries_trust() {
	local HUB A E tok n
	HUB=$QP_CASE_DIR/hub
	A=$QP_CASE_DIR/a
	E=$QP_CASE_DIR/e
	hub_init "$HUB"
	qpd_start "$HUB"
	hub_org "$HUB" "Cooperativa Memoria" 2060123456
	dev_new "$HUB" "$A" tablet-a "$ORG"
	sync_ok "$A"
	dev_write "$A" 5 46000000
	sync_ok "$A"
	wait_for 30 "the hub holds A's producers" test "$(n_of "$HUB" producer)" = 5
	node_init "$E"
	qpd_start "$E"
	tok=$(enroll "$HUB" "$E" tablet-e "$ORG")
	q -d "$HUB" bundle export "$QP_CASE_DIR/forE.qpb" --for "$(q -d "$E" id)" >/dev/null
	qpd_stop "$HUB"
	q -d "$E" join "$tok" >/dev/null
	qrun -d "$E" bundle import "$QP_CASE_DIR/forE.qpb"
	assert_rc 0 "import of the hub's bundle on a tablet that never synced"
	assert_out_has " 0 refused"
	n=$(n_of "$E" producer)
	assert_eq "$n" 5 "E's producers from the bundle"
	q -d "$E" verify >/dev/null
}

# A top hub restored from a backup holds its local writes: what it wrote
# after the backup is with the tablets, which bring it back as they sync;
# then its operator settles it and it writes on, with no fork anywhere.
qp_case sync_restored_hub
case_sync_restored_hub() {
	local HUB=$QP_CASE_DIR/hub DEV=$QP_CASE_DIR/tablet BAK=$QP_CASE_DIR/hub-backup
	local h1 h2 h3 n
	hub_init "$HUB"
	qpd_start "$HUB"
	hub_org "$HUB" "Cooperativa Central" 2060333445
	dev_new "$HUB" "$DEV" "tableta" "$ORG"
	h1=$(NODE=$HUB add producer '{"org":"'"$ORG"'","dni":"46100001","name":"Antes Del Respaldo","sex":"F"}')
	sync_ok "$DEV"
	qpd_stop "$HUB"
	cp -a "$HUB" "$BAK" # the hub's backup
	qpd_start "$HUB"
	h2=$(NODE=$HUB add producer '{"org":"'"$ORG"'","dni":"46100002","name":"Despues Del Respaldo","sex":"M"}')
	sync_ok "$DEV"
	wait_for 30 "the tablet receives the later record" has_record "$DEV" "$h2"
	# The hub's disk fails; yesterday's backup is restored.
	qpd_stop "$HUB"
	rm -rf "$HUB"
	cp -a "$BAK" "$HUB"
	qpd_start "$HUB"
	assert_eq "$(status_num "$HUB" restored_copy)" true "restored_copy on the restored hub"
	q -d "$HUB" status >"$QP_CASE_DIR/status.txt"
	grep -q "^restored .*quipu settle" "$QP_CASE_DIR/status.txt" || fail "status does not say how the hub settles: $(cat "$QP_CASE_DIR/status.txt")"
	printf '%s\n' '{"org":"'"$ORG"'","dni":"46100003","name":"Muy Pronto","sex":"F"}' >"$QP_CASE_DIR/p3.json"
	qrun -d "$HUB" add producer --file "$QP_CASE_DIR/p3.json"
	assert_rc 1 "add on a restored hub before it settles"
	assert_err_one_line
	assert_err_has "this hub's data directory is a restored copy"
	assert_err_has "quipu settle"
	# The tablet syncs and gives the hub back what it wrote.
	sync_ok "$DEV"
	wait_for 30 "the hub gets its own later record back" has_record "$HUB" "$h2"
	assert_eq "$(status_num "$HUB" restored_copy)" true "still held until the operator settles"
	q -d "$HUB" settle >settle.out
	assert_eq "$(cat settle.out)" "settled: local writes open again" "settle output"
	assert_eq "$(status_num "$HUB" restored_copy)" false "restored_copy after settle"
	assert_eq "$(q -d "$HUB" settle)" "nothing to settle: this data directory is not a restored copy" "settle again"
	grep -q "restored copy settled by the operator" "$HUB.qpd.log" || fail "no settle in the hub's log"
	h3=$(NODE=$HUB add producer '{"org":"'"$ORG"'","dni":"46100003","name":"Despues De Restaurar","sex":"F"}')
	sync_ok "$DEV"
	wait_for 30 "the tablet receives the record written after the restore" has_record "$DEV" "$h3"
	has_record "$HUB" "$h1" >/dev/null || fail "the hub lost the first record"
	for n in "$HUB" "$DEV"; do
		assert_eq "$(status_num "$n" forks)" 0 "forks on $n"
		assert_eq "$(status_num "$n" quarantine)" 0 "quarantine on $n"
	done
	wait_for 30 "hub and tablet converge" same_digests "$HUB" "$DEV"
	# A tablet cannot settle by hand: its hub does it.
	qrun -d "$DEV" settle
	assert_rc 1 "settle on a tablet"
	assert_err_has "settles by itself when \`quipu sync --wait\` reaches its hub"
}

qp_case sync_restored_copy
case_sync_restored_copy() {
	local HUB=$QP_CASE_DIR/hub DEV=$QP_CASE_DIR/tablet BAK=$QP_CASE_DIR/backup
	local r1 r2 r3 n
	hub_init "$HUB"
	qpd_start "$HUB"
	hub_org "$HUB" "Cooperativa Restaurada" 2060333444
	dev_new "$HUB" "$DEV" "tableta de respaldo" "$ORG"
	sync_ok "$DEV"
	r1=$(NODE=$DEV add producer '{"org":"'"$ORG"'","dni":"46000001","name":"Antes Del Respaldo","sex":"F"}')
	sync_ok "$DEV"
	q -d "$DEV" backup "$BAK" >/dev/null # the backup, taken while it runs
	qpd_stop "$DEV"
	qpd_start "$DEV"
	# A plain restart is not a copy: writes go on.
	assert_eq "$(status_num "$DEV" restored_copy)" false "restored_copy after a restart"
	r2=$(NODE=$DEV add producer '{"org":"'"$ORG"'","dni":"46000002","name":"Despues Del Respaldo","sex":"M"}')
	sync_ok "$DEV"
	qpd_stop "$DEV"
	# The tablet breaks; its backup is restored, far from any signal.
	qpd_stop "$HUB"
	q -d "$DEV" restore "$BAK" >/dev/null
	qpd_start "$DEV"
	assert_eq "$(status_num "$DEV" restored_copy)" true "restored_copy after the restore"
	q -d "$DEV" status >"$QP_CASE_DIR/status.txt"
	grep -q "^restored " "$QP_CASE_DIR/status.txt" || fail "status does not say the store is a copy"
	has_record "$DEV" "$r2" >/dev/null && fail "the backup already holds the later record"
	printf '%s\n' '{"org":"'"$ORG"'","dni":"46000003","name":"Muy Pronto","sex":"F"}' >"$QP_CASE_DIR/p3.json"
	qrun -d "$DEV" add producer --file "$QP_CASE_DIR/p3.json"
	assert_rc 1 "add on a restored copy before any sync"
	assert_err_one_line
	assert_err_has "restored copy"
	assert_err_has "quipu sync --wait"
	# Signal again: one sync brings the later record back and opens
	# writes again.
	qpd_start "$HUB"
	sync_ok "$DEV" || fail "sync of the restored tablet"
	has_record "$DEV" "$r2" >/dev/null || fail "the later record did not come back"
	assert_eq "$(status_num "$DEV" restored_copy)" false "restored_copy after the sync"
	r3=$(NODE=$DEV add producer '{"org":"'"$ORG"'","dni":"46000003","name":"Despues De Restaurar","sex":"F"}')
	sync_ok "$DEV" || fail "sync after the restore"
	has_record "$HUB" "$r3" >/dev/null || fail "hub lacks the record written after the restore"
	for n in "$HUB" "$DEV"; do
		assert_eq "$(status_num "$n" forks)" 0 "forks on $n"
		assert_eq "$(status_num "$n" quarantine)" 0 "quarantine on $n"
	done
	same_digests "$HUB" "$DEV" || fail "digests differ after the restore"
	# It stays settled across a restart.
	qpd_stop "$DEV"
	qpd_start "$DEV"
	assert_eq "$(status_num "$DEV" restored_copy)" false "restored_copy after a restart"
	has_record "$DEV" "$r1" >/dev/null || fail "lost the first record"
	# Restored again with the hub in reach: quipud asks it at start-up
	# and opens writes by itself.
	qpd_stop "$DEV"
	rm -rf "$DEV"
	cp -a "$BAK" "$DEV"
	qpd_start "$DEV"
	wait_for 20 "restored copy settled with the hub up" \
		python3 -c 'import json,subprocess,sys
s = json.loads(subprocess.run([sys.argv[1], "-d", sys.argv[2], "status", "--json"],
    capture_output=True, check=True).stdout)
sys.exit(0 if s["daemon"]["restored_copy"] is False else 1)' "$QUIPU" "$DEV"
	has_record "$DEV" "$r3" >/dev/null || fail "the restored copy lacks the hub's records"
	NODE=$DEV add producer '{"org":"'"$ORG"'","dni":"46000004","name":"Otra Vez","sex":"M"}' >/dev/null
}
