# t_invalid.sh - invalid records are refused with the field named, exit 1,
# and nothing is written (record counts and the delta count unchanged).

# refuse KIND FIELD JSON: adding JSON must fail naming FIELD.
refuse() {
	printf '%s\n' "$3" >bad.json
	qrun -d "$NODE" add "$1" --file bad.json
	assert_rc 1 "add $1 expecting refusal on $2"
	assert_err_one_line
	assert_err_has "$2"
}

qp_case invalid_refused
case_invalid_refused() {
	local ORG P SVC SES LOT d0 c0 k
	NODE=$QP_CASE_DIR/node
	node_init "$NODE"
	qpd_start "$NODE"
	ORG=$(add org '{"ruc":"'"$(ruc 2060123456)"'","name":"Cooperativa Valida","type":"cooperative"}')
	P=$(add producer '{"org":"'"$ORG"'","dni":"40123456","name":"Ana Poma","sex":"F"}')
	SVC=$(add service '{"org":"'"$ORG"'","title":"Poda","area":"production","provider":"Técnico"}')
	SES=$(add session '{"org":"'"$ORG"'","service":"'"$SVC"'","starts_at":"2026-11-23T09:00:00-05:00"}')
	LOT=$(add lot '{"org":"'"$ORG"'","code":"L-1","product":"coffee-cherry","kg":100}')
	d0=$(status_num "$NODE" deltas)
	q -d "$NODE" status --json >s0.json
	c0=$(py find s0.json durable_commits)
	# Five accepted writes, each its own durable commit, and the time spent.
	[ "$c0" -ge 5 ] || fail "durable_commits $c0 after five writes"
	[ "$(py find s0.json commit_us)" -gt 0 ] || fail "no commit time reported"
	[ "$(py find s0.json write_us)" -ge "$(py find s0.json commit_us)" ] ||
		fail "store write time below its commit time"

	local ring_open='[[[-76.123456,-11.987654],[-76.121234,-11.987601],[-76.121301,-11.989912],[-76.123389,-11.989955]]]'
	local wrong_digit
	wrong_digit=$(ruc 2060123457)
	wrong_digit=${wrong_digit%?}$(((${wrong_digit: -1} + 1) % 10))

	# The brief's example first.
	refuse producer producer.dni '{"org":"'"$ORG"'","dni":"4012345","name":"Siete Dígitos","sex":"M"}'
	refuse producer producer.dni '{"org":"'"$ORG"'","dni":"4012345a","name":"Letra","sex":"M"}'
	refuse producer producer.dni '{"org":"'"$ORG"'","dni":"40123456","name":"Mismo DNI","sex":"F"}'
	refuse producer producer.sex '{"org":"'"$ORG"'","dni":"40123457","name":"Sexo Raro","sex":"Q"}'
	refuse producer producer.name '{"org":"'"$ORG"'","dni":"40123458","sex":"F"}'
	refuse producer producer.color '{"org":"'"$ORG"'","dni":"40123459","name":"Campo Extra","sex":"F","color":"azul"}'
	refuse producer producer.org '{"org":"01890000-0000-7000-8000-000000000000","dni":"40123460","name":"Sin Org","sex":"F"}'
	refuse producer producer.birth_year '{"org":"'"$ORG"'","dni":"40123461","name":"Año Texto","sex":"F","birth_year":"mil"}'
	refuse org org.ruc '{"ruc":"'"$wrong_digit"'","name":"Dígito Malo","type":"cooperative"}'
	refuse org org.ruc '{"ruc":"2060123456","name":"Diez Dígitos","type":"cooperative"}'
	refuse org org.type '{"ruc":"'"$(ruc 2049876543)"'","name":"Club","type":"club"}'
	refuse org org.ruc '{"ruc":"'"$(ruc 2060123456)"'","name":"RUC repetido","type":"cooperative"}'
	refuse plot plot.geometry '{"org":"'"$ORG"'","producer":"'"$P"'","crop":"coffee","geometry":{"type":"Polygon","coordinates":'"$ring_open"'}}'
	refuse plot plot.geometry '{"org":"'"$ORG"'","producer":"'"$P"'","crop":"coffee","geometry":{"type":"Point","coordinates":[-196.123456,-11.987654]}}'
	refuse plot plot.geometry '{"org":"'"$ORG"'","producer":"'"$P"'","crop":"coffee","geometry":{"type":"LineString","coordinates":[[-76.123456,-11.987654],[-76.121234,-11.987601]]}}'
	refuse plot plot.producer '{"org":"'"$ORG"'","producer":"'"$SVC"'","crop":"coffee","geometry":{"type":"Point","coordinates":[-76.123456,-11.987654]}}'
	refuse plot plot.producer '{"org":"'"$ORG"'","producer":"not-an-id","crop":"coffee","geometry":{"type":"Point","coordinates":[-76.123456,-11.987654]}}'
	refuse session session.starts_at '{"org":"'"$ORG"'","service":"'"$SVC"'","starts_at":"mañana temprano"}'
	refuse attendance attendance.status '{"org":"'"$ORG"'","session":"'"$SES"'","producer":"'"$P"'","status":"dormido"}'
	refuse attendance attendance '{"org":"'"$ORG"'","session":"'"$SES"'","status":"present"}'
	refuse commitment commitment.accepted '{"org":"'"$ORG"'","service":"'"$SVC"'","accepted":"sí"}'
	refuse lot lot.kg '{"org":"'"$ORG"'","code":"L-2","product":"coffee-green","kg":0}'
	refuse lot lot.kg '{"org":"'"$ORG"'","code":"L-3","product":"coffee-green","kg":-5}'
	refuse lot lot.code '{"org":"'"$ORG"'","code":"L-1","product":"coffee-green","kg":5}'
	refuse lot_event lot_event.type '{"org":"'"$ORG"'","lot":"'"$LOT"'","type":"teleport"}'
	refuse lot_event lot_event.lot '{"org":"'"$ORG"'","lot":"'"$P"'","type":"receive"}'
	refuse verification verification.result '{"org":"'"$ORG"'","target":"'"$P"'","method":"visita","result":"quizás"}'

	# Not JSON, and an unknown kind.
	echo '{"org": "'"$ORG"'", "dni": ' >bad.json
	qrun -d "$NODE" add producer --file bad.json
	assert_rc 1 "add of broken JSON"
	assert_err_one_line
	echo '{"org":"'"$ORG"'"}' >bad.json
	qrun -d "$NODE" add tractor --file bad.json
	[ "$RC" -eq 1 ] || [ "$RC" -eq 2 ] || fail "add of an unknown kind exited $RC"
	assert_err_one_line

	# All or nothing: line 3 of three is bad, none is written.
	{
		echo '{"org":"'"$ORG"'","dni":"40200001","name":"Uno","sex":"F"}'
		echo '{"org":"'"$ORG"'","dni":"40200002","name":"Dos","sex":"M"}'
		echo '{"org":"'"$ORG"'","dni":"4020003","name":"Tres","sex":"F"}'
	} >three.jsonl
	qrun -d "$NODE" add producer --file three.jsonl
	assert_rc 1 "add of three with a bad third"
	assert_err_one_line
	assert_err_has "line 3: producer.dni"
	# The same through stdin.
	echo "+ quipu add producer <three.jsonl" >&2
	RC=0
	timeout "$QP_TIMEOUT" "$QUIPU" -d "$NODE" add producer <three.jsonl >out 2>err || RC=$?
	assert_rc 1 "add from stdin"
	assert_err_has "line 3: producer.dni"

	# An invalid update is refused and changes nothing.
	echo '{"dni":"123"}' >chg.json
	qrun -d "$NODE" update "$P" --file chg.json
	assert_rc 1 "invalid update"
	assert_err_has "producer.dni"
	q -d "$NODE" get "$P" >g.json
	assert_eq "$(py find g.json dni)" 40123456 "dni after refused update"

	# Nothing was written, and no refusal cost an fsync.
	assert_eq "$(status_num "$NODE" deltas)" "$d0" "delta count"
	assert_eq "$(py find "$QP_CASE_DIR/status.json" durable_commits)" "$c0" "durable commits"
	# The refused writes were write batches all the same.
	[ "$(py find "$QP_CASE_DIR/status.json" write_batches)" -gt "$(py find s0.json write_batches)" ] ||
		fail "refused writes not counted as write batches"
	for k in org producer service session lot plot attendance commitment lot_event verification; do
		assert_eq "$(status_num "$NODE" records "$k")" "$(py find s0.json records "$k")" "records.$k"
	done
	assert_eq "$(count producer)" 1 "listed producers"
	assert_eq "$(count plot)" 0 "listed plots"
	assert_eq "$(count lot)" 1 "listed lots"
	qpd_stop "$NODE"
	assert_eq "$QPD_STATUS" 0 "quipud exit status"
}
