# t_sync_hubs.sh - hub-to-hub: a regional hub enrolled at a national hub
# syncs the same way as a device; a record written on a tablet of the
# regional hub reaches the national hub, and the national hub's devices
# for that org receive it.  Uses the helpers of t_sync.sh.

qp_case sync_hub_to_hub
case_sync_hub_to_hub() {
	local NAT=$QP_CASE_DIR/national REG=$QP_CASE_DIR/regional
	local DEV=$QP_CASE_DIR/tablet DEV2=$QP_CASE_DIR/tablet2 tok rid nat_addr p
	hub_init "$NAT"
	nat_addr=$HUB_ADDR
	qpd_start "$NAT"
	hub_init "$REG"
	qpd_start "$REG"
	# The org belongs to the regional hub's programme.
	hub_org "$REG" "Cooperativa Regional Junín" 2060987654
	tok=$(enroll "$NAT" "$REG" "hub regional Junín" "$ORG" -- --role hub)
	case $tok in quipu1:*) ;; *) fail "enroll printed '$tok'" ;; esac
	q -d "$REG" join "$tok" >/dev/null
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
}
