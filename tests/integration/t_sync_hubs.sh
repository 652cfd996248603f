# t_sync_hubs.sh - hub-to-hub: a regional hub enrolled at a national hub
# syncs the same way as a device; a record written on a tablet of the
# regional hub reaches the national hub, and the national hub's devices
# for that org receive it; a record of a national tablet reaches the
# regional hub's tablet, which trusts the national hub through the
# regional hub's own certificate.  Three levels (national, regional,
# district hub) carry records both ways the same.  Uses the helpers of
# t_sync.sh.

qp_case sync_hub_to_hub
case_sync_hub_to_hub() {
	local NAT=$QP_CASE_DIR/national REG=$QP_CASE_DIR/regional
	local DEV=$QP_CASE_DIR/tablet DEV2=$QP_CASE_DIR/tablet2 tok rid rid2 nat_addr p
	hub_init "$NAT"
	nat_addr=$HUB_ADDR
	qpd_start "$NAT"
	hub_init "$REG"
	qpd_start "$REG"
	# The org is registered at the top and flows down: a hub enrols only
	# for orgs it holds, so the regional hub receives it before it
	# enrols its tablet.
	hub_org "$NAT" "Cooperativa Regional Junín" 2060987654
	tok=$(enroll "$NAT" "$REG" "hub regional Junín" "$ORG" -- --role hub)
	case $tok in quipu1:*) ;; *) fail "enroll printed '$tok'" ;; esac
	q -d "$REG" join "$tok" >/dev/null
	sync_ok "$REG"
	wait_for 30 "the regional hub receives the org" has_record "$REG" "$ORG"
	# The regional hub does not certify the hub it joined.
	qrun -d "$REG" enroll --pubkey "$(q -d "$NAT" id)" --org "$ORG" --name up
	assert_rc 1
	assert_err_one_line
	assert_err_has "is the key of the hub this hub joined"
	dev_new "$REG" "$DEV" "tableta regional" "$ORG"
	# A tablet of the national hub for the same org.
	HUB_ADDR=$nat_addr dev_new "$NAT" "$DEV2" "tableta nacional" "$ORG"

	sync_ok "$DEV"
	rid=$(NODE=$DEV add producer '{"org":"'"$ORG"'","dni":"44556677","name":"Rosa Quispe","sex":"F"}')
	sync_ok "$DEV" || fail "tablet -> regional sync"
	sync_ok "$REG" || fail "regional -> national sync"
	has_record "$NAT" "$rid" >/dev/null || fail "national hub lacks the tablet's record"
	sync_ok "$DEV2" || fail "national tablet sync"
	has_record "$DEV2" "$rid" >/dev/null || fail "national tablet lacks the regional tablet's record"
	same_digests "$NAT" "$REG" "$DEV" "$DEV2" || fail "digests differ across the two hubs and tablets"
	p=$(peer_field "$REG" 'p["counters"]["deltas_resent_after_ack"]')
	assert_eq "$p" 0 "regional hub re-sent deltas after an ack"

	# The other way: the national tablet's record reaches the regional
	# hub and its tablet, and nobody quarantines it.
	rid2=$(NODE=$DEV2 add producer '{"org":"'"$ORG"'","dni":"44556688","name":"Pedro Huamán","sex":"M"}')
	sync_ok "$DEV2" || fail "national tablet push"
	sync_ok "$REG" || fail "regional <- national sync"
	has_record "$REG" "$rid2" >/dev/null || fail "regional hub lacks the national tablet's record"
	sync_ok "$DEV" || fail "regional tablet pull"
	has_record "$DEV" "$rid2" >/dev/null || fail "regional tablet lacks the national tablet's record"
	for n in "$NAT" "$REG" "$DEV" "$DEV2"; do
		assert_eq "$(status_num "$n" quarantine)" 0 "quarantine of $n"
	done
	same_digests "$NAT" "$REG" "$DEV" "$DEV2" || fail "digests differ after the national tablet's record"
}

# Three levels: a district hub enrolled at a regional hub enrolled at the
# national hub.  The national hub trusts the district tablet through two
# hub certificates; the district tablet trusts the national tablet through
# the certificates its hub and the regional hub handed down.
qp_case sync_hub_three_levels
case_sync_hub_three_levels() {
	local NAT=$QP_CASE_DIR/national REG=$QP_CASE_DIR/regional
	local DIS=$QP_CASE_DIR/district DT=$QP_CASE_DIR/district-tablet
	local NT=$QP_CASE_DIR/national-tablet nat_addr reg_addr tok r1 r2 n
	hub_init "$NAT"
	nat_addr=$HUB_ADDR
	qpd_start "$NAT"
	hub_init "$REG"
	reg_addr=$HUB_ADDR
	qpd_start "$REG"
	hub_init "$DIS"
	qpd_start "$DIS"
	# Registered at the top, the org flows down to each hub before that
	# hub enrols for it.
	hub_org "$NAT" "Cooperativa Distrital Pangoa" 2060555444
	tok=$(enroll "$NAT" "$REG" "hub regional" "$ORG" -- --role hub)
	q -d "$REG" join "$tok" >/dev/null
	sync_ok "$REG"
	wait_for 30 "the regional hub receives the org" has_record "$REG" "$ORG"
	tok=$(HUB_ADDR=$reg_addr enroll "$REG" "$DIS" "hub distrital" "$ORG" -- --role hub)
	q -d "$DIS" join "$tok" >/dev/null
	sync_ok "$DIS"
	wait_for 30 "the district hub receives the org" has_record "$DIS" "$ORG"
	dev_new "$DIS" "$DT" "tableta distrital" "$ORG"
	HUB_ADDR=$nat_addr dev_new "$NAT" "$NT" "tableta nacional" "$ORG"

	# Up: district tablet -> district -> regional -> national -> tablet.
	sync_ok "$DT"
	r1=$(NODE=$DT add producer '{"org":"'"$ORG"'","dni":"45112233","name":"Lucía Condori","sex":"F"}')
	for n in "$DT" "$DIS" "$REG" "$NT"; do
		sync_ok "$n" || fail "sync of $n (up)"
	done
	has_record "$NAT" "$r1" >/dev/null || fail "national hub lacks the district tablet's record"
	has_record "$NT" "$r1" >/dev/null || fail "national tablet lacks the district tablet's record"

	# Down: national tablet -> national -> regional -> district -> tablet.
	r2=$(NODE=$NT add producer '{"org":"'"$ORG"'","dni":"45112244","name":"Mario Quispe","sex":"M"}')
	for n in "$NT" "$REG" "$DIS" "$DT"; do
		sync_ok "$n" || fail "sync of $n (down)"
	done
	has_record "$DIS" "$r2" >/dev/null || fail "district hub lacks the national tablet's record"
	has_record "$DT" "$r2" >/dev/null || fail "district tablet lacks the national tablet's record"
	for n in "$NAT" "$REG" "$DIS" "$DT" "$NT"; do
		assert_eq "$(status_num "$n" quarantine)" 0 "quarantine of $n"
	done
	same_digests "$NAT" "$REG" "$DIS" "$DT" "$NT" || fail "digests differ across three levels"
}

# Two tablets that never saw each other register the same producer (same
# DNI, same org): each is valid on its own tablet; after sync the hub
# holds both and `quipu check duplicates` finds them.
qp_case sync_duplicates
case_sync_duplicates() {
	local HUB=$QP_CASE_DIR/hub A=$QP_CASE_DIR/a B=$QP_CASE_DIR/b ra rb out
	hub_init "$HUB"
	qpd_start "$HUB"
	hub_org "$HUB" "Cooperativa Duplicada" 2060111222
	dev_new "$HUB" "$A" "tableta A" "$ORG"
	dev_new "$HUB" "$B" "tableta B" "$ORG"
	sync_ok "$A"
	sync_ok "$B"
	q -d "$HUB" check duplicates >"$QP_CASE_DIR/none.out"
	assert_eq "$(cat "$QP_CASE_DIR/none.out")" "no duplicates" "before"
	# The hub is out of reach while both tablets register the producer.
	qpd_stop "$HUB"
	ra=$(NODE=$A add producer '{"org":"'"$ORG"'","dni":"47112233","name":"Juana Mamani","sex":"F"}')
	rb=$(NODE=$B add producer '{"org":"'"$ORG"'","dni":"47112233","name":"Juana Mamani Q.","sex":"F"}')
	qpd_start "$HUB"
	sync_ok "$A" || fail "tablet A sync"
	sync_ok "$B" || fail "tablet B sync"
	out=$(q -d "$HUB" check duplicates --json)
	python3 - "$out" "$ra" "$rb" "$ORG" <<'PY' || fail "check duplicates: $out"
import json, sys
found, ra, rb, org = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
assert len(found) == 1, found
f = found[0]
assert f["kind"] == "producer" and f["field"] == "dni" and f["value"] == "47112233", f
assert f["org"] == org, f
assert sorted(f["ids"]) == sorted([ra, rb]), f
PY
	q -d "$HUB" check duplicates >"$QP_CASE_DIR/dups.txt"
	grep -q "producer dni 47112233" "$QP_CASE_DIR/dups.txt" ||
		fail "human output lacks the finding"
}
