# t_records.sh - every kind added, read back with get, listed as JSON lines
# and CSV, exported as GeoJSON; update and void.

# check_get ID JSON: `quipu get ID` holds every field of JSON.
check_get() {
	printf '%s\n' "$2" >want.json
	q -d "$NODE" get "$1" >got.json
	py same want.json got.json || fail "get $1 differs from what was added"
	assert_eq "$(py find got.json id)" "$1" "get $1: id"
}

# add_check KIND JSON: add, get back, compare; prints the id.
add_check() {
	local id
	id=$(add "$1" "$2")
	check_get "$id" "$2"
	assert_eq "$(py find got.json kind)" "$1" "get $id: kind"
	printf '%s\n' "$id"
}

qp_case records_every_kind
case_records_every_kind() {
	local ORG ORG2 P1 P2 P3 PLOT1 SVC SES LOT k n
	NODE=$QP_CASE_DIR/node
	node_init "$NODE"
	qpd_start "$NODE"

	ORG=$(add_check org '{"ruc":"'"$(ruc 2060123456)"'","name":"Cooperativa Agraria Prueba","type":"cooperative","region":"Junín","province":"Satipo","district":"Pichanaki"}')
	assert_eq "$(py find got.json org)" "$ORG" "an org's org is its own id"
	ORG2=$(add_check org '{"ruc":"'"$(ruc 2049876543)"'","name":"Asociación de Productores Otra","type":"association"}')

	P1=$(add_check producer '{"org":"'"$ORG"'","dni":"40123456","name":"María Quispe Huamán","sex":"F","community":"San Juan de Cheni","phone":"+51 964 123 456","birth_year":1978}')
	P2=$(add_check producer '{"org":"'"$ORG"'","dni":"41234567","name":"José Ccori Mamani","sex":"M"}')
	P3=$(add_check producer '{"org":"'"$ORG2"'","dni":"40123456","name":"Rosa Layme","sex":"F"}')

	PLOT1=$(add_check plot '{"org":"'"$ORG"'","producer":"'"$P1"'","crop":"coffee","geometry":{"type":"Polygon","coordinates":[[[-76.123456,-11.987654],[-76.123389,-11.989955],[-76.121301,-11.989912],[-76.121234,-11.987601],[-76.123456,-11.987654]]]},"accuracy_m":3.5,"altitude_m":1450,"captured_at":"2026-11-23T09:30:00-05:00"}')
	add_check plot '{"org":"'"$ORG"'","producer":"'"$P2"'","crop":"coffee","geometry":{"type":"Point","coordinates":[-76.134567,-11.976543]},"area_ha":1.5}' >/dev/null

	SVC=$(add_check service '{"org":"'"$ORG"'","title":"Manejo integrado de la roya","area":"production","provider":"Programa Sierra Productiva","sessions_planned":3,"hours":12}')
	SES=$(add_check session '{"org":"'"$ORG"'","service":"'"$SVC"'","starts_at":"2026-11-23T09:00:00-05:00","ends_at":"2026-11-23T13:00:00-05:00","place":{"type":"Point","coordinates":[-76.125678,-11.981234]},"mode":"in-person","facilitator":"Ing. Rosa Mamani"}')

	add_check attendance '{"org":"'"$ORG"'","session":"'"$SES"'","producer":"'"$P1"'","status":"present"}' >/dev/null
	add_check attendance '{"org":"'"$ORG"'","session":"'"$SES"'","producer":"'"$P2"'","status":"absent"}' >/dev/null
	add_check attendance '{"org":"'"$ORG"'","session":"'"$SES"'","dni":"45678901","name":"Juan Ccori Layme","status":"present"}' >/dev/null

	add_check commitment '{"org":"'"$ORG"'","service":"'"$SVC"'","accepted":true,"signed_by":"Presidente del consejo de administración","signed_at":"2026-11-20"}' >/dev/null

	LOT=$(add_check lot '{"org":"'"$ORG"'","code":"LOT-2026-0001","product":"coffee-parchment","kg":1250.5,"producer":"'"$P1"'","plots":["'"$PLOT1"'"],"quality":{"humidity_pct":11.5,"defects":12}}')
	add_check lot_event '{"org":"'"$ORG"'","lot":"'"$LOT"'","type":"receive"}' >/dev/null
	add_check verification '{"org":"'"$ORG"'","target":"'"$PLOT1"'","method":"field visit","result":"confirmed","notes":"Linderos recorridos con GPS"}' >/dev/null

	# get --meta
	q -d "$NODE" get "$P1" --meta >meta.json
	py find meta.json record >/dev/null
	py find meta.json created >/dev/null
	assert_eq "$(py find meta.json author)" "$(q -d "$NODE" id)" "meta.author"

	# list as JSON lines and CSV, per kind.
	for k in org:2 producer:3 plot:2 service:1 session:1 attendance:3 commitment:1 lot:1 lot_event:1 verification:1; do
		n=${k#*:}
		k=${k%:*}
		q -d "$NODE" list "$k" >list.jsonl
		py jsonl list.jsonl "$k" "$n" >ids || fail "list $k"
		q -d "$NODE" list "$k" --format csv >list.csv
		# shellcheck disable=SC2046
		py csv list.csv "$k" "$n" $(cat ids) >/dev/null || fail "list $k --format csv"
		assert_eq "$(status_num "$NODE" records "$k")" "$n" "status records.$k"
	done
	q -d "$NODE" list producer --format csv >list.csv
	grep -q '^id,kind,org,dni,' <<<"$(head -n 1 list.csv)" ||
		fail "producer CSV header: $(head -n 1 list.csv)"

	# --org restricts to one organisation.
	q -d "$NODE" list producer --org "$ORG2" >list.jsonl
	assert_eq "$(py jsonl list.jsonl producer 1)" "$P3" "list --org"
	q -d "$NODE" list producer --org "$ORG" >list.jsonl
	py jsonl list.jsonl producer 2 >/dev/null || fail "list --org ORG"
	# An --org that names no org held here is refused, not an empty list;
	# a refused export prints nothing (no CSV header).
	qrun -d "$NODE" list producer --org "not-an-id"
	assert_rc 1 "list --org not-an-id"
	assert_err_one_line
	assert_err_has "org: 'not-an-id' is not a record id"
	qrun -d "$NODE" export producer --format csv --org "$P1"
	assert_rc 1 "export --org PRODUCER"
	assert_err_has "org: $P1 is a producer record, not an org"
	[ ! -s "$QP_CASE_DIR/out" ] || fail "refused export wrote: $(head -c 200 "$QP_CASE_DIR/out")"
	qrun -d "$NODE" list producer --org "01234567-89ab-7cde-8f01-23456789abcd"
	assert_rc 1 "list --org of an unknown id"
	assert_err_has "no org with id 01234567-89ab-7cde-8f01-23456789abcd on this node"

	# export: JSON lines and CSV to files, GeoJSON for plots and sessions.
	q -d "$NODE" export producer --format jsonl -o exp.jsonl
	py jsonl exp.jsonl producer 3 >/dev/null || fail "export jsonl"
	q -d "$NODE" export producer --format csv -o exp.csv
	py csv exp.csv producer 3 "$P1" "$P2" "$P3" >/dev/null || fail "export csv"
	q -d "$NODE" export plot --format geojson -o plots.geojson
	py geojson plots.geojson 2 -76.123456 || fail "export plot geojson"
	py geojson plots.geojson 2 -11.989955 || fail "export plot geojson"
	q -d "$NODE" export plot --format geojson >plots2.geojson
	py geojson plots2.geojson 2 -76.134567 || fail "export plot geojson to stdout"
	q -d "$NODE" export session --format geojson -o ses.geojson
	py geojson ses.geojson 1 -76.125678 || fail "export session geojson"
	q -d "$NODE" export plot --format geojson --org "$ORG2" -o none.geojson
	py geojson none.geojson 0 - || fail "export of an org without plots"

	# status shows the clock, right on this machine, and the stamps
	# follow it.
	q -d "$NODE" status --json >st.json
	python3 - st.json <<'EOF' || fail "status clock: $(cat st.json)"
import json, sys
c = json.load(open(sys.argv[1]))["daemon"]["clock"]
assert c["wrong"] is False and c["behind_s"] == 0, c
assert c["now"].endswith("Z") and c["last_stamp"] <= c["now"], c
EOF
	q -d "$NODE" status | grep -q '^clock  *20[0-9-]*T[0-9:.]*Z$' ||
		fail "no clock line in status"

	qpd_stop "$NODE"
	assert_eq "$QPD_STATUS" 0 "quipud exit status"
}

qp_case records_update_void
case_records_update_void() {
	local ORG P A v1 v2
	NODE=$QP_CASE_DIR/node
	node_init "$NODE"
	qpd_start "$NODE"
	ORG=$(add org '{"ruc":"'"$(ruc 2060123456)"'","name":"Cooperativa Edita","type":"cooperative"}')
	P=$(add producer '{"org":"'"$ORG"'","dni":"40123456","name":"Ana Poma","sex":"F"}')

	q -d "$NODE" get "$P" --meta >m1.json
	v1=$(py find m1.json version)
	echo '{"phone":"964 555 123","community":"Alto Kimiriki"}' | q -d "$NODE" update "$P" >out.txt
	assert_eq "$(cat out.txt)" "$P" "update prints the id"
	q -d "$NODE" get "$P" --meta >m2.json
	assert_eq "$(py find m2.json phone)" "964 555 123" "updated phone"
	assert_eq "$(py find m2.json name)" "Ana Poma" "unchanged name"
	v2=$(py find m2.json version)
	[ "$v1" != "$v2" ] || fail "version did not change on update"

	# A null value removes an optional field.
	echo '{"phone":null}' | q -d "$NODE" update "$P" >/dev/null
	q -d "$NODE" get "$P" >g.json
	py find g.json phone >/dev/null 2>&1 && fail "phone not removed by null"

	# Attendance is append-only: never updated, only voided.
	SVC=$(add service '{"org":"'"$ORG"'","title":"Poda","area":"production","provider":"Técnico"}')
	SES=$(add session '{"org":"'"$ORG"'","service":"'"$SVC"'","starts_at":"2026-11-23T09:00:00-05:00"}')
	A=$(add attendance '{"org":"'"$ORG"'","session":"'"$SES"'","producer":"'"$P"'","status":"present"}')
	echo '{"status":"absent"}' >chg.json
	qrun -d "$NODE" update "$A" --file chg.json
	assert_rc 1 "update of an attendance"
	assert_err_one_line

	q -d "$NODE" void "$A" --reason "registrada por error" >out.txt
	assert_eq "$(cat out.txt)" "$A" "void prints the id"
	q -d "$NODE" get "$A" --meta >m3.json
	assert_eq "$(py find m3.json voided)" "registrada por error" "meta.voided"
	assert_eq "$(count attendance)" 0 "voided record listed"
	assert_eq "$(count attendance --voided)" 1 "list --voided"
	# A voided record is told apart: its reason in the listing, a note
	# on stderr from get.
	q -d "$NODE" list attendance --voided >lv.jsonl
	assert_eq "$(py find lv.jsonl voided)" "registrada por error" "list --voided marks it"
	q -d "$NODE" list attendance --voided --format csv >lv.csv
	assert_eq "$(head -n 1 lv.csv | tr -d '\r')" "id,kind,org,session,status,producer,dni,name,voided" "CSV header with --voided"
	grep -q ',registrada por error' lv.csv || fail "CSV row lacks the void reason: $(cat lv.csv)"
	qrun -d "$NODE" get "$A"
	assert_rc 0 "get of a voided record"
	assert_err_has "quipu: note: $A is voided: registrada por error"

	qrun -d "$NODE" void "$P"
	assert_rc 2 "void without --reason"
	qrun -d "$NODE" get 01890000-0000-7000-8000-000000000000
	assert_rc 1 "get of an unknown id"
	assert_err_one_line
	qrun -d "$NODE" update 01890000-0000-7000-8000-000000000000 --file chg.json
	assert_rc 1 "update of an unknown id"
	qpd_stop "$NODE"
	assert_eq "$QPD_STATUS" 0 "quipud exit status"
}

qp_case records_geojson_decimals
case_records_geojson_decimals() {
	local ORG P
	NODE=$QP_CASE_DIR/node
	node_init "$NODE"
	qpd_start "$NODE"
	ORG=$(add org '{"ruc":"'"$(ruc 2060123456)"'","name":"Cooperativa Decimal","type":"cooperative"}')
	P=$(add producer '{"org":"'"$ORG"'","dni":"40123456","name":"Ana Poma","sex":"F"}')
	# Coordinates typed with few decimals, and with more than six.
	add plot '{"org":"'"$ORG"'","producer":"'"$P"'","crop":"cacao","geometry":{"type":"Point","coordinates":[-76.5,-11.25]}}' >/dev/null
	add plot '{"org":"'"$ORG"'","producer":"'"$P"'","crop":"cacao","geometry":{"type":"Point","coordinates":[-76.1234567891,-11.000001]}}' >/dev/null
	q -d "$NODE" export plot --format geojson -o plots.geojson
	py geojson plots.geojson 2 -76.1234567891 || fail "more than 6 decimals not preserved"
	py geojson plots.geojson 2 -11.000001 || fail "-11.000001 not preserved"
	# The EUDR wants at least 6 decimals written (cli.md: "coordinates
	# written with at least 6 decimals").
	grep -q -- '-76\.500000' plots.geojson ||
		fail "-76.5 not written with 6 decimals: $(grep -o 'coordinates[^]]*]' plots.geojson | head -n 1)"
	grep -q -- '-11\.250000' plots.geojson || fail "-11.25 not written with 6 decimals"
	qpd_stop "$NODE"
	assert_eq "$QPD_STATUS" 0 "quipud exit status"
}

# export's messages: a bad -o names the file the user gave (not the
# temporary file beside it), and GeoJSON says how many records it left out
# for lacking a geometry.
qp_case records_export_messages
case_records_export_messages() {
	local ORG SVC f
	NODE=$QP_CASE_DIR/node
	node_init "$NODE"
	qpd_start "$NODE"
	ORG=$(add org '{"ruc":"'"$(ruc 2060123456)"'","name":"Cooperativa Mensaje","type":"cooperative"}')
	SVC=$(add service '{"org":"'"$ORG"'","title":"Poda","area":"production","provider":"Técnico"}')
	add session '{"org":"'"$ORG"'","service":"'"$SVC"'","starts_at":"2026-11-23T09:00:00-05:00","place":{"type":"Point","coordinates":[-76.125678,-11.981234]}}' >/dev/null
	for f in 24 25 26; do
		add session '{"org":"'"$ORG"'","service":"'"$SVC"'","starts_at":"2026-11-'"$f"'T09:00:00-05:00"}' >/dev/null
	done

	f=$QP_CASE_DIR/nodir/x.csv
	qrun -d "$NODE" export producer --format csv -o "$f"
	assert_rc 1 "export into a directory that does not exist"
	assert_err_one_line
	assert_err_has "quipu: $f: No such file or directory"
	grep -q '\.tmp' err && fail "the error names the temporary file: $(cat err)"

	qrun -d "$NODE" export session --format geojson -o ses.geojson
	assert_rc 0 "export session geojson"
	assert_eq "$(cat out)" "exported 1 session records to ses.geojson (3 without place left out)" "export summary"
	[ -s err ] && fail "export to a file wrote to stderr: $(cat err)"
	py geojson ses.geojson 1 -76.125678 || fail "export session geojson"
	# To stdout: the Features on stdout, the note on stderr.
	qrun -d "$NODE" export session --format geojson
	assert_rc 0 "export session geojson to stdout"
	assert_err_one_line
	assert_err_has "quipu: note: 3 session records without place were left out of the GeoJSON"
	py geojson out 1 -76.125678 || fail "export session geojson to stdout"
	# Nothing left out: no note.
	qrun -d "$NODE" export plot --format geojson
	assert_rc 0 "export plot geojson to stdout"
	[ -s err ] && fail "an export that left nothing out wrote to stderr: $(cat err)"
	py geojson out 0 - || fail "export of no plots"
	qpd_stop "$NODE"
	assert_eq "$QPD_STATUS" 0 "quipud exit status"
}
