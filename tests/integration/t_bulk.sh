# t_bulk.sh - 10,000 writes (imports in batches plus single adds), then the
# log verifies, online (`quipu verify`) and offline (`quipud --verify`).

qp_case bulk_10k
case_bulk_10k() {
	local ORG i d
	NODE=$QP_CASE_DIR/node
	node_init "$NODE"
	qpd_start "$NODE"
	ORG=$(add org '{"ruc":"'"$(ruc 2060123456)"'","name":"Cooperativa Grande","type":"cooperative"}')

	py gen-producers 10000 "$ORG" 30000000 >p.jsonl
	qrun -d "$NODE" import p.jsonl --kind producer --batch 500
	assert_rc 0 "import of 10000"
	assert_out_has "imported 10000 records"
	for i in $(seq 1 50); do
		add producer '{"org":"'"$ORG"'","dni":"'"$((31000000 + i))"'","name":"Suelto '"$i"'","sex":"X"}' >/dev/null
	done

	assert_eq "$(status_num "$NODE" records producer)" 10050 "status records.producer"
	# Status reads kept counts; the digest, which reads every record,
	# only when asked for.
	q -d "$NODE" status --json >st.json
	python3 -c 'import json,sys; s=json.load(open("st.json"))["store"]; sys.exit("digest" in s or s["log_bytes"] <= 0)' ||
		fail "status without --digest: $(cat st.json)"
	qrun -d "$NODE" status
	assert_rc 0 "status"
	grep -q "^digest" "$QP_CASE_DIR/out" && fail "status printed a digest unasked"
	d=$(state_digest "$NODE")
	qrun -d "$NODE" status --digest
	assert_out_has "digest       $d"
	# The 51 single adds run one after another, so each is its own commit
	# and delta; import batches in flight together may share one.
	d=$(status_num "$NODE" deltas)
	[ "$d" -ge 52 ] || fail "only $d deltas for 20 batches + 51 single writes"
	# Listing pages over the API (1000 per page).
	q -d "$NODE" list producer >all.jsonl
	py jsonl all.jsonl producer 10050 >/dev/null || fail "list of 10050"

	qrun -d "$NODE" verify
	assert_rc 0 "quipu verify"
	assert_out_has "verified"
	assert_out_has "matches"

	qpd_stop "$NODE"
	assert_eq "$QPD_STATUS" 0 "quipud exit status"
	echo "+ quipud -d $NODE --verify" >&2
	timeout 120 "$QUIPUD" -d "$NODE" --verify >verify.out 2>verify.err ||
		fail "quipud --verify failed: $(cat verify.err)"
}
