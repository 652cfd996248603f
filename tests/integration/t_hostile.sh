# t_hostile.sh - clients that misbehave on the local API socket (partial
# frames, a 1 GiB frame header, garbage, wrong version, abrupt disconnects,
# 50 connections at once) do not disturb quipud.

qp_case hostile_clients
case_hostile_clients() {
	local ORG
	NODE=$QP_CASE_DIR/node
	node_init "$NODE"
	qpd_start "$NODE"
	ORG=$(add org '{"ruc":"'"$(ruc 2060123456)"'","name":"Cooperativa Paciente","type":"cooperative"}')

	timeout 120 python3 "$QP_PY" hostile "$NODE/quipud.sock" "$ORG" ||
		fail "hostile client checks"
	qpd_alive "$NODE" || fail "quipud died"

	add producer '{"org":"'"$ORG"'","dni":"40123456","name":"Después del Abuso","sex":"F"}' >/dev/null
	q -d "$NODE" status >/dev/null
	q -d "$NODE" verify >/dev/null
	# Twice more, to catch state left behind by the first pass.
	timeout 120 python3 "$QP_PY" hostile "$NODE/quipud.sock" ||
		fail "hostile client checks, second pass"
	timeout 120 python3 "$QP_PY" hostile "$NODE/quipud.sock" ||
		fail "hostile client checks, third pass"
	add producer '{"org":"'"$ORG"'","dni":"40123457","name":"Otra Vez","sex":"M"}' >/dev/null
	q -d "$NODE" status >/dev/null
	qpd_stop "$NODE"
	assert_eq "$QPD_STATUS" 0 "quipud exit status"
}
