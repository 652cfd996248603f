# t_lots.sh - lot mass balance: a tablet refuses a custody step that takes
# more of a lot than it holds or puts out more than the yield allows; two
# tablets that each take most of one lot offline are each fine alone, and
# the hub flags the lot after they sync (`quipu check lots`).  Uses the
# sync helpers of t_sync.sh.

# lot_add CODE PRODUCT KG: a lot of $ORG on $NODE; prints its id.
lot_add() {
	add lot '{"org":"'"$ORG"'","code":"'"$1"'","product":"'"$2"'","kg":'"$3"'}'
}

# lot_take DEV IN KG OUT OUTKG TYPE: a merge/split/transform event.
lot_take() {
	printf '{"org":"%s","lot":"%s","type":"%s","inputs":[{"lot":"%s","kg":%s}],"outputs":[{"lot":"%s","kg":%s}]}\n' \
		"$ORG" "$4" "$6" "$2" "$3" "$4" "$5" >"$QP_CASE_DIR/ev.json"
	qrun -d "$1" add lot_event --file "$QP_CASE_DIR/ev.json"
}

qp_case lots_balance
case_lots_balance() {
	local HUB T1 T2 A P1 P2 n
	HUB=$QP_CASE_DIR/hub
	T1=$QP_CASE_DIR/tablet1
	T2=$QP_CASE_DIR/tablet2
	hub_init "$HUB"
	qpd_start "$HUB"
	hub_org "$HUB" "Cooperativa Balanza" 2060555123
	A=$(NODE=$HUB lot_add CHERRY-1 coffee-cherry 1000)
	P1=$(NODE=$HUB lot_add PARCH-1 coffee-parchment 170)
	P2=$(NODE=$HUB lot_add PARCH-2 coffee-parchment 170)
	dev_new "$HUB" "$T1" tablet1 "$ORG"
	dev_new "$HUB" "$T2" tablet2 "$ORG"
	sync_ok "$T1"
	sync_ok "$T2"
	wait_for 30 "tablet1 receives the lots" has_record "$T1" "$P2"
	wait_for 30 "tablet2 receives the lots" has_record "$T2" "$P2"

	# On a tablet: more out than the yield allows is refused, one line,
	# and nothing is written.
	lot_take "$T1" "$A" 700 "$P1" 180 transform
	assert_rc 1
	assert_err_one_line
	assert_err_has "lot_event.outputs: 180 kg out of 700 kg in exceeds the yield: at most 178.5 kg of coffee-parchment"
	assert_eq "$(n_of "$T1" lot_event)" 0 "events after a refusal"

	# Offline, each tablet takes 700 kg of the 1000 kg lot: fine alone.
	qpd_stop "$HUB"
	lot_take "$T1" "$A" 700 "$P1" 170 transform
	assert_rc 0
	lot_take "$T2" "$A" 700 "$P2" 170 transform
	assert_rc 0
	# A second take on the same tablet sees the first.
	lot_take "$T1" "$A" 400 "$P1" 10 transform
	assert_rc 1
	assert_err_has "lot_event.inputs[0].kg: lot CHERRY-1 holds 1000 kg and 700 kg of it is already used; 400 kg more is too much"
	# The lot those events take from keeps its kg and product, and is
	# not voided under them.
	echo '{"kg":10}' >"$QP_CASE_DIR/chg.json"
	qrun -d "$T1" update "$A" --file "$QP_CASE_DIR/chg.json"
	assert_rc 1 "shrinking a lot in use"
	assert_err_one_line
	assert_err_has "lot.kg: lot CHERRY-1 already gives 700 kg to custody events; it cannot hold only 10 kg"
	qrun -d "$T1" void "$A" --reason "error"
	assert_rc 1 "voiding a lot in use"
	assert_err_has "void: lot CHERRY-1 is an input of event"

	qpd_start "$HUB"
	sync_ok "$T1"
	sync_ok "$T2"
	wait_for 30 "the hub holds both events" test "$(n_of "$HUB" lot_event)" = 2
	qrun -d "$HUB" check lots
	assert_rc 0
	assert_out_has "overconsumed: lot CHERRY-1 ($A) holds 1000 kg; events take 1400 kg:"
	q -d "$HUB" check lots --json >"$QP_CASE_DIR/lots.json"
	python3 - "$QP_CASE_DIR/lots.json" "$A" <<'PY' || fail "check lots --json"
import json, sys
f = json.load(open(sys.argv[1]))
assert len(f) == 1, f
f = f[0]
assert f["type"] == "overconsumed" and f["lot"] == sys.argv[2], f
assert f["code"] == "CHERRY-1" and f["kg"] == 1000 and f["consumed"] == 1400, f
assert len(f["events"]) == 2, f
PY
	# On the hub (which now holds both), a third take is refused too.
	NODE=$HUB
	lot_take "$HUB" "$A" 1 "$P1" 0.2 transform
	assert_rc 1
	assert_err_has "1400 kg of it is already used"
	wait_for 30 "tablet1 receives tablet2's event" test "$(n_of "$T1" lot_event)" = 2
	n=$(q -d "$T1" check lots --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
	assert_eq "$n" 1 "findings on tablet1 once it has synced"
	for D in "$T1" "$T2" "$HUB"; do
		qpd_stop "$D"
	done
}

# A node's own yields and tolerance (node.json "lots"): they decide what
# its users may record; a bad value stops quipud naming the key, and
# `check lots` reads the same settings.
qp_case lots_config
case_lots_config() {
	local A P
	NODE=$QP_CASE_DIR/node
	node_init "$NODE"
	qpd_start "$NODE"
	ORG=$(add org '{"ruc":"'"$(ruc 2060555124)"'","name":"Cooperativa Secadora","type":"cooperative"}')
	A=$(lot_add CHERRY-9 coffee-cherry 1000)
	P=$(lot_add PARCH-9 coffee-parchment 300)
	# 300 kg of parchment from 1000 kg of cherry: over the built-in 0.25.
	lot_take "$NODE" "$A" 1000 "$P" 300 transform
	assert_rc 1
	assert_err_has "at most 255 kg of coffee-parchment"
	qpd_stop "$NODE"
	python3 - "$NODE/node.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["lots"] = {"tolerance_pct": 0, "yields": {"coffee-cherry>coffee-parchment": 0.3}}
json.dump(c, open(sys.argv[1], "w"))
PY
	qpd_start "$NODE"
	lot_take "$NODE" "$A" 1000 "$P" 301 transform
	assert_rc 1
	assert_err_has "at most 300 kg of coffee-parchment"
	lot_take "$NODE" "$A" 1000 "$P" 300 transform
	assert_rc 0
	qrun -d "$NODE" check lots
	assert_rc 0
	assert_out_has "no findings (2 lots, 1 events)"
	qpd_stop "$NODE"
	python3 - "$NODE/node.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["lots"] = {"yields": {"coffee-cherry>tea": 0.3}}
json.dump(c, open(sys.argv[1], "w"))
PY
	timeout 10 "$QUIPUD" -d "$NODE" >"$QP_CASE_DIR/qpd.out" 2>&1 && fail "quipud started with a bad yield"
	grep -qF 'node.json: lots.yields.coffee-cherry>tea: must be "PRODUCT>PRODUCT" with lot products' "$QP_CASE_DIR/qpd.out" ||
		fail "quipud's message: $(cat "$QP_CASE_DIR/qpd.out")"
	qrun -d "$NODE" check lots
	assert_rc 1
	assert_err_one_line
	assert_err_has "lots.yields.coffee-cherry>tea: must be"
}

# Lots that come out of their own descendants: refused within one event,
# found by `check lots` across events.
qp_case lots_cycle
case_lots_cycle() {
	local A B
	NODE=$QP_CASE_DIR/node
	node_init "$NODE"
	qpd_start "$NODE"
	ORG=$(add org '{"ruc":"'"$(ruc 2060555125)"'","name":"Cooperativa Circular","type":"cooperative"}')
	A=$(lot_add GREEN-1 coffee-green 500)
	B=$(lot_add GREEN-2 coffee-green 500)
	printf '{"org":"%s","lot":"%s","type":"merge","inputs":[{"lot":"%s","kg":10}],"outputs":[{"lot":"%s","kg":10}]}\n' \
		"$ORG" "$A" "$A" "$A" >"$QP_CASE_DIR/ev.json"
	qrun -d "$NODE" add lot_event --file "$QP_CASE_DIR/ev.json"
	assert_rc 1 "a lot in and out of one event"
	assert_err_has "lot_event.outputs[0].lot: lot $A is also an input of this event"
	lot_take "$NODE" "$A" 100 "$B" 100 split
	assert_rc 0
	lot_take "$NODE" "$B" 50 "$A" 50 split
	assert_rc 0
	qrun -d "$NODE" check lots
	assert_rc 0 "check lots with a cycle (findings are a report)"
	assert_out_has "cycle: lot GREEN-1 ($A) comes out of its own descendants; events:"
	qpd_stop "$NODE"
}
