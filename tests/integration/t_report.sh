# t_report.sh - quipu report attendance over a small programme added
# through the CLI: exact JSON numbers by org (planned vs held, committed vs
# attended, rates, hours, women's share, a duplicate merged), CSV header and
# TOTAL row, --by month and --by org,sex, text output, usage errors.

# report_same WANT GOT: GOT (a report's JSON) equals WANT exactly: "by",
# "duplicates_merged", "totals", and the rows (the same set, in any
# order; numbers compared as parsed doubles, so 2/3 must print as the
# double nearest 2/3).
report_same() {
	python3 - "$1" "$2" <<'EOF'
import json, sys
want, got = (json.load(open(p, encoding="utf-8")) for p in sys.argv[1:3])
def die(msg):
    print("report differs: " + msg, file=sys.stderr)
    sys.exit(1)
for k in ("by", "duplicates_merged", "totals"):
    if want[k] != got.get(k):
        die("%s: got %r, want %r" % (k, got.get(k), want[k]))
if set(got) != set(want):
    die("members %r, want %r" % (sorted(got), sorted(want)))
keys = lambda r: tuple(r.get(k) for k in want["by"])
wrows = {keys(r): r for r in want["rows"]}
grows = {keys(r): r for r in got["rows"]}
if len(grows) != len(got["rows"]) or set(wrows) != set(grows):
    die("row keys %r, want %r" % (sorted(map(str, grows)), sorted(map(str, wrows))))
for k, r in wrows.items():
    if r != grows[k]:
        die("row %r: got %r, want %r" % (k, grows[k], r))
if [keys(r) for r in got["rows"]] != sorted(keys(r) for r in got["rows"]):
    die("rows not sorted by key")
EOF
}

# The programme: two orgs, a man and a woman in each, two services of one
# provider and one of another; O1 accepted SVC1 and SVC2, O2 accepted SVC1
# and declined SVC2.  Sessions: S1 (SVC1, 09:00-13:00 = 4 h), S2 (SVC1, no
# ends_at: 12 h / 3 sessions = 4 h), S3 (SVC2, 08:00-09:30 = 1.5 h).
# NODE is the hub, where the report runs; a tablet of O1 (TAB) records one
# attendance the hub also recorded, the two not having seen each other.
report_programme() {
	NODE=$QP_CASE_DIR/node
	TAB=$QP_CASE_DIR/tablet
	hub_init "$NODE"
	qpd_start "$NODE"
	O1=$(add org '{"ruc":"'"$(ruc 2060123456)"'","name":"Cooperativa Agraria Pangoa","type":"cooperative","region":"Junín"}')
	O2=$(add org '{"ruc":"'"$(ruc 2049876543)"'","name":"Asociación Cacao Piura","type":"association","region":"Piura"}')
	P1=$(add producer '{"org":"'"$O1"'","dni":"40123456","name":"María Quispe","sex":"F"}')
	P2=$(add producer '{"org":"'"$O1"'","dni":"41234567","name":"José Ccori","sex":"M"}')
	P3=$(add producer '{"org":"'"$O2"'","dni":"42345678","name":"Rosa Layme","sex":"F"}')
	P4=$(add producer '{"org":"'"$O2"'","dni":"43456789","name":"Luis Chávez","sex":"M"}')
	SVC1=$(add service '{"org":"'"$O1"'","title":"Manejo de la roya","area":"production","provider":"Sierra Productiva","sessions_planned":3,"hours":12}')
	SVC2=$(add service '{"org":"'"$O1"'","title":"Comercio exterior","area":"foreign-trade","provider":"PromPerú","sessions_planned":2,"hours":6}')
	add commitment '{"org":"'"$O1"'","service":"'"$SVC1"'","accepted":true,"signed_at":"2026-10-01"}' >/dev/null
	add commitment '{"org":"'"$O1"'","service":"'"$SVC2"'","accepted":true}' >/dev/null
	add commitment '{"org":"'"$O2"'","service":"'"$SVC1"'","accepted":true}' >/dev/null
	add commitment '{"org":"'"$O2"'","service":"'"$SVC2"'","accepted":false}' >/dev/null
	S1=$(add session '{"org":"'"$O1"'","service":"'"$SVC1"'","starts_at":"2026-11-03T09:00:00-05:00","ends_at":"2026-11-03T13:00:00-05:00"}')
	S2=$(add session '{"org":"'"$O1"'","service":"'"$SVC1"'","starts_at":"2026-12-01T09:00:00-05:00"}')
	S3=$(add session '{"org":"'"$O1"'","service":"'"$SVC2"'","starts_at":"2026-11-10T08:00:00-05:00","ends_at":"2026-11-10T09:30:00-05:00"}')
	dev_new "$NODE" "$TAB" "tableta Pangoa" "$O1"
	sync_ok "$TAB"
	qpd_stop "$TAB"
	# TAB2 (when the case sets it): a second tablet that leaves with the
	# same lists and then stays out of reach.
	if [ -n "${TAB2:-}" ]; then
		dev_new "$NODE" "$TAB2" "tableta Pangoa 2" "$O1"
		sync_ok "$TAB2"
		qpd_stop "$TAB2"
	fi
	# P1 at S1 twice (two devices): present and left-early; present counts.
	# Juan is not registered: known by DNI only, sex unknown.
	{
		echo '{"org":"'"$O1"'","session":"'"$S1"'","producer":"'"$P1"'","status":"present"}'
		echo '{"org":"'"$O1"'","session":"'"$S1"'","producer":"'"$P2"'","status":"absent"}'
		echo '{"org":"'"$O1"'","session":"'"$S1"'","dni":"45678901","name":"Juan Ccori Layme","status":"present"}'
		echo '{"org":"'"$O1"'","session":"'"$S2"'","producer":"'"$P1"'","status":"left-early"}'
		echo '{"org":"'"$O1"'","session":"'"$S3"'","producer":"'"$P2"'","status":"present"}'
		echo '{"org":"'"$O2"'","session":"'"$S1"'","producer":"'"$P3"'","status":"proxy"}'
		echo '{"org":"'"$O2"'","session":"'"$S2"'","producer":"'"$P4"'","status":"absent"}'
		echo '{"org":"'"$O2"'","session":"'"$S2"'","producer":"'"$P3"'","status":"present"}'
	} >att.jsonl
	q -d "$NODE" add attendance --file att.jsonl >att.ids
	assert_eq "$(grep -c . att.ids)" 8 "attendance ids"
	# One device refuses the same person twice at one session.
	qrun -d "$NODE" add attendance <<<'{"org":"'"$O1"'","session":"'"$S1"'","producer":"'"$P1"'","status":"left-early"}'
	assert_rc 1 "a second attendance of P1 at S1"
	assert_err_has "attendance.producer: $P1 is already registered for this session as $(head -n 1 att.ids)"
	# Twice in one file: the refusal names both lines, and nothing of
	# the batch is written.
	{
		echo '{"org":"'"$O2"'","session":"'"$S1"'","dni":"40000001","name":"Ana Puma","status":"present"}'
		echo '{"org":"'"$O2"'","session":"'"$S1"'","dni":"40000002","name":"Eva Ccama","status":"present"}'
		echo '{"org":"'"$O2"'","session":"'"$S1"'","dni":"40000001","name":"Ana Puma","status":"absent"}'
	} >twice.jsonl
	qrun -d "$NODE" import --kind attendance twice.jsonl
	assert_rc 1 "one person twice in one import"
	assert_err_has "twice.jsonl:3: attendance.dni: 40000001 is given twice (also line 1)"
	qrun -d "$NODE" add attendance --file twice.jsonl
	assert_rc 1 "one person twice in one add"
	assert_err_has "quipu: line 3: attendance.dni: 40000001 is given twice (also line 1)"
	assert_eq "$(NODE=$NODE count attendance)" 8 "attendance after the refusals"
	# The tablet, which has not seen the hub's list, records P1 there
	# too while the hub is out of reach.
	qpd_stop "$NODE"
	qpd_start "$TAB"
	NODE=$TAB add attendance '{"org":"'"$O1"'","session":"'"$S1"'","producer":"'"$P1"'","status":"left-early"}' >>att.ids
	qpd_start "$NODE"
	sync_ok "$TAB"
	assert_eq "$(NODE=$NODE count attendance)" 9 "attendance at the hub"
}

# Totals over the 8 attendances kept: 6 attended (P1 S1 4 h, Juan S1 4 h,
# P1 S2 left-early 2 h, P2 S3 1.5 h, P3 S1 proxy 4 h, P3 S2 4 h = 19.5 h);
# persons P1 P2 P3 Juan, women P1 P3 of the 3 with a known sex.
TOTALS_COMMON='"attendances":8,"attended":6,"absent":2,"attendance_rate":0.75,"persons":4,"women":2,"women_share":0.6666666666666666,"sessions_held":3,"hours":19.5'

qp_case report_attendance
case_report_attendance() {
	local O1 O2 P1 P2 P3 P4 SVC1 SVC2 S1 S2 S3
	report_programme

	# By org (the default), JSON.
	q -d "$NODE" report attendance --format json >rep.json
	cat >want.json <<EOF
{"by":["org"],"duplicates_merged":1,
 "totals":{$TOTALS_COMMON,"sessions_planned":8,"committed_services":3,"attended_services":3},
 "rows":[
  {"org":"$O1","org_name":"Cooperativa Agraria Pangoa","attendances":5,"attended":4,"absent":1,"attendance_rate":0.8,"persons":3,"women":1,"women_share":0.5,"sessions_held":3,"sessions_planned":5,"hours":11.5,"committed_services":2,"attended_services":2},
  {"org":"$O2","org_name":"Asociación Cacao Piura","attendances":3,"attended":2,"absent":1,"attendance_rate":0.6666666666666666,"persons":1,"women":1,"women_share":1.0,"sessions_held":2,"sessions_planned":3,"hours":8.0,"committed_services":1,"attended_services":1}]}
EOF
	report_same want.json rep.json || fail "report --format json"
	[ "$(grep -c . rep.json)" -eq 1 ] || fail "JSON report is not one line"

	# --by month: planned sessions and committed services are null.
	q -d "$NODE" report attendance --by month --format json >rep.json
	cat >want.json <<EOF
{"by":["month"],"duplicates_merged":1,
 "totals":{$TOTALS_COMMON,"sessions_planned":null,"committed_services":null,"attended_services":null},
 "rows":[
  {"month":"2026-11","attendances":5,"attended":4,"absent":1,"attendance_rate":0.8,"persons":4,"women":2,"women_share":0.6666666666666666,"sessions_held":2,"sessions_planned":null,"hours":13.5,"committed_services":null,"attended_services":null},
  {"month":"2026-12","attendances":3,"attended":2,"absent":1,"attendance_rate":0.6666666666666666,"persons":2,"women":2,"women_share":1.0,"sessions_held":1,"sessions_planned":null,"hours":6.0,"committed_services":null,"attended_services":null}]}
EOF
	report_same want.json rep.json || fail "report --by month"

	# --by org,sex: Juan is "unknown"; P4 only absent.
	q -d "$NODE" report attendance --by org,sex --format json >rep.json
	cat >want.json <<EOF
{"by":["org","sex"],"duplicates_merged":1,
 "totals":{$TOTALS_COMMON,"sessions_planned":null,"committed_services":null,"attended_services":null},
 "rows":[
  {"org":"$O1","org_name":"Cooperativa Agraria Pangoa","sex":"F","attendances":2,"attended":2,"absent":0,"attendance_rate":1.0,"persons":1,"women":1,"women_share":1.0,"sessions_held":2,"sessions_planned":null,"hours":6.0,"committed_services":null,"attended_services":null},
  {"org":"$O1","org_name":"Cooperativa Agraria Pangoa","sex":"M","attendances":2,"attended":1,"absent":1,"attendance_rate":0.5,"persons":1,"women":0,"women_share":0.0,"sessions_held":1,"sessions_planned":null,"hours":1.5,"committed_services":null,"attended_services":null},
  {"org":"$O1","org_name":"Cooperativa Agraria Pangoa","sex":"unknown","attendances":1,"attended":1,"absent":0,"attendance_rate":1.0,"persons":1,"women":0,"women_share":0.0,"sessions_held":1,"sessions_planned":null,"hours":4.0,"committed_services":null,"attended_services":null},
  {"org":"$O2","org_name":"Asociación Cacao Piura","sex":"F","attendances":2,"attended":2,"absent":0,"attendance_rate":1.0,"persons":1,"women":1,"women_share":1.0,"sessions_held":2,"sessions_planned":null,"hours":8.0,"committed_services":null,"attended_services":null},
  {"org":"$O2","org_name":"Asociación Cacao Piura","sex":"M","attendances":1,"attended":0,"absent":1,"attendance_rate":0.0,"persons":0,"women":0,"women_share":0.0,"sessions_held":0,"sessions_planned":null,"hours":0.0,"committed_services":null,"attended_services":null}]}
EOF
	report_same want.json rep.json || fail "report --by org,sex"

	# --by service,provider: planned is each service's own.
	q -d "$NODE" report attendance --by provider,service --format json >rep.json
	py find rep.json totals sessions_planned >planned
	assert_eq "$(cat planned)" 5 "by provider,service: totals.sessions_planned"
	assert_eq "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["rows"]))' rep.json)" 2 "by provider,service: rows"

	# CSV: header, one row per org (sorted by id), then TOTAL.
	q -d "$NODE" report attendance --format csv >rep.csv
	assert_eq "$(grep -c '' rep.csv)" 4 "CSV lines"
	assert_eq "$(head -n 1 rep.csv | tr -d '\r')" \
		"org,org_name,attendances,attended,absent,attendance_rate,persons,women,women_share,sessions_held,sessions_planned,hours,committed_services,attended_services" \
		"CSV header"
	assert_eq "$(tail -n 1 rep.csv | tr -d '\r')" \
		"TOTAL,TOTAL,8,6,2,0.75,4,2,0.6666666666666666,3,8,19.5,3,3" "CSV TOTAL row"
	first=$(printf '%s\n%s\n' "$O1" "$O2" | sort | head -n 1)
	grep -q "^$first," <<<"$(sed -n 2p rep.csv)" || fail "CSV rows not sorted by org id"
	grep -q "^$O2,Asociación Cacao Piura,3,2,1,0.6666666666666666,1,1,1,2,3,8,1,1" rep.csv ||
		fail "CSV row of O2: $(grep "^$O2" rep.csv)"
	q -d "$NODE" report attendance --by month --format csv >rep.csv
	assert_eq "$(tail -n 1 rep.csv | tr -d '\r')" \
		"TOTAL,8,6,2,0.75,4,2,0.6666666666666666,3,,19.5,," "CSV TOTAL row by month"

	# Text: an aligned table with names, a TOTAL line, the merge count.
	q -d "$NODE" report attendance >rep.txt
	grep -q '^org  *attendances  *attended  *absent  *rate ' <<<"$(head -n 1 rep.txt)" ||
		fail "text header: $(head -n 1 rep.txt)"
	grep -q '^Cooperativa Agraria Pangoa  *5  *4  *1  *80.0%  *3  *1  *50.0%  *3  *5  *11.5  *2  *2$' rep.txt ||
		fail "text row of O1: $(cat rep.txt)"
	grep -q '^TOTAL  *8  *6  *2  *75.0%  *4  *2  *66.7%  *3  *8  *19.5  *3  *3$' rep.txt ||
		fail "text TOTAL: $(cat rep.txt)"
	assert_eq "$(tail -n 1 rep.txt)" "duplicates merged: 1" "text merge count"
	# Columns line up: every table line (header, 2 orgs, TOTAL) has the
	# same width in characters.
	python3 -c 'import sys
lines = open(sys.argv[1], encoding="utf-8").read().split("\n")[:4]
sys.exit(len({len(l) for l in lines}) != 1)' rep.txt ||
		fail "text columns not aligned: $(cat rep.txt)"
}

qp_case report_usage
case_report_usage() {
	local O1 O2 P1 P2 P3 P4 SVC1 SVC2 S1 S2 S3
	NODE=$QP_CASE_DIR/node
	node_init "$NODE"

	# Usage errors need no daemon: exit 2, one line.
	qrun -d "$NODE" report attendance --by org,region
	assert_rc 2
	assert_err_one_line
	assert_err_has "quipu: report: --by: unknown group key 'region' (org, service, provider, sex or month)"
	qrun -d "$NODE" report attendance --by org,org
	assert_rc 2
	assert_err_one_line
	assert_err_has "group key 'org' given twice"
	qrun -d "$NODE" report attendance --format xml
	assert_rc 2
	assert_err_one_line
	assert_err_has "unknown format 'xml'"
	qrun -d "$NODE" report hours
	assert_rc 2
	assert_err_one_line
	assert_err_has "unknown report 'hours' (attendance)"
	qrun -d "$NODE" report
	assert_rc 2
	assert_err_one_line
	qrun -d "$NODE" report attendance extra
	assert_rc 2
	assert_err_one_line
	qrun -d "$NODE" report attendance --help
	assert_rc 0
	assert_out_has "usage: quipu [-d DIR] report attendance"

	# No daemon: exit 3.
	qrun -d "$NODE" report attendance
	assert_rc 3
	assert_err_one_line

	# An empty store: a TOTAL row of zeros.
	qpd_start "$NODE"
	q -d "$NODE" report attendance --format csv >rep.csv
	assert_eq "$(grep -c '' rep.csv)" 2 "empty CSV lines"
	assert_eq "$(tail -n 1 rep.csv | tr -d '\r')" "TOTAL,TOTAL,0,0,0,0,0,0,0,0,0,0,0,0" "empty TOTAL"
	q -d "$NODE" report attendance --format json --by sex >rep.json
	assert_eq "$(py find rep.json duplicates_merged)" 0 "empty merged"
}

# A registered producer recorded once from the list and once by DNI and
# name is one person: the report merges the two, and `check duplicates`
# shows both records in one group.
qp_case report_dni_person
case_report_dni_person() {
	local O1 O2 P1 P2 P3 P4 SVC1 SVC2 S1 S2 S3 S4 dup
	local TAB2=$QP_CASE_DIR/tablet2
	report_programme
	# P2 given by his DNI is P2: one device refuses him at S3 again.
	qrun -d "$NODE" add attendance <<<'{"org":"'"$O1"'","session":"'"$S3"'","dni":"41234567","name":"José Ccori","status":"left-early"}'
	assert_rc 1 "P2 by DNI at S3, where he is recorded by id"
	assert_err_has "attendance.dni: 41234567 is producer $P2's DNI, already registered for this session as $(sed -n 5p att.ids)"
	# The second tablet, which has not seen the hub's list, records him
	# there by DNI.
	qpd_stop "$NODE"
	qpd_start "$TAB2"
	dup=$(NODE=$TAB2 add attendance '{"org":"'"$O1"'","session":"'"$S3"'","dni":"41234567","name":"José Ccori","status":"left-early"}')
	qpd_start "$NODE"
	sync_ok "$TAB2"
	q -d "$NODE" report attendance --format json >rep.json
	assert_eq "$(py find rep.json duplicates_merged)" 2 "duplicates merged"
	q -d "$NODE" check duplicates --json >dups.json
	python3 - dups.json "$P2" "$dup" "$S3" <<'PY' || fail "check duplicates: $(cat dups.json)"
import json, sys
f = json.load(open(sys.argv[1]))
g = [x for x in f if x["kind"] == "attendance" and x.get("session") == sys.argv[4]]
assert len(g) == 1, g
assert g[0]["value"] == sys.argv[2], g
assert sys.argv[3] in g[0]["ids"] and len(g[0]["ids"]) == 2, g
PY
	# Text rounds halves up: 19.5 h + 0.75 h (half of a 1.5 h session)
	# is 20.25 h, shown as 20.3 (printf alone would print 20.2).
	S4=$(add session '{"org":"'"$O1"'","service":"'"$SVC2"'","starts_at":"2026-11-17T08:00:00-05:00","ends_at":"2026-11-17T09:30:00-05:00"}')
	add attendance '{"org":"'"$O1"'","session":"'"$S4"'","producer":"'"$P1"'","status":"left-early"}' >/dev/null
	q -d "$NODE" report attendance --format json >rep.json
	assert_eq "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["totals"]["hours"])' rep.json)" 20.25 "hours"
	q -d "$NODE" report attendance >rep.txt
	grep -E '^TOTAL' rep.txt | grep -qw '20.3' || fail "text TOTAL: $(grep -E '^TOTAL' rep.txt)"
}
