# t_import.sh - `quipu import` of JSON lines and CSV: batches, a refused
# batch named by file:line, earlier batches kept and counted.

import_setup() {
	NODE=$QP_CASE_DIR/node
	node_init "$NODE"
	qpd_start "$NODE"
	ORG=$(add org '{"ruc":"'"$(ruc 2060123456)"'","name":"Cooperativa Importadora","type":"cooperative"}')
}

qp_case import_jsonl
case_import_jsonl() {
	local n
	import_setup
	# 30 records in batches of 10; line 17 repeats the DNI of a producer
	# already held, which only quipud can see: batch 1 is kept (10), batch 2
	# is refused whole, batch 3 is never sent.
	add producer '{"org":"'"$ORG"'","dni":"40000000","name":"Ya Registrado","sex":"F"}' >/dev/null
	py gen-producers 30 "$ORG" 40000000 --dup 17 >producers.jsonl
	qrun -d "$NODE" import producers.jsonl --kind producer --batch 10
	assert_rc 1 "import with a duplicate DNI on line 17"
	assert_err_one_line
	assert_err_has "producers.jsonl:17: producer.dni"
	grep -qw 10 err || fail "import error does not report the 10 records committed: $(cat err)"
	assert_eq "$(count producer)" 11 "producers after the refused import"

	# A malformed DNI on line 17: the client may catch it before sending
	# anything, or quipud refuses batch 2; either way the message names the
	# line and the number committed is the number that was written.
	py gen-producers 30 "$ORG" 40100000 --bad 17 >bad.jsonl
	qrun -d "$NODE" import bad.jsonl --kind producer --batch 10
	assert_rc 1 "import with a 7-digit DNI on line 17"
	assert_err_one_line
	assert_err_has "bad.jsonl:17: producer.dni"
	n=$(($(count producer) - 11))
	[ "$n" -eq 0 ] || [ "$n" -eq 10 ] || fail "$n records of bad.jsonl written"
	grep -qw "$n" err || { [ "$n" -eq 0 ] && grep -Eqi 'no records|nothing' err; } ||
		fail "import error does not report the $n records committed: $(cat err)"

	# A good file: default batch size 500, several batches.
	n=$(count producer)
	py gen-producers 1200 "$ORG" 41000000 >good.jsonl
	qrun -d "$NODE" import good.jsonl --kind producer
	assert_rc 0 "import of 1200"
	assert_out_has "imported 1200 records"
	n=$((n + 1200))
	assert_eq "$(count producer)" "$n" "producers after the good import"

	# Each line names its kind: no --kind needed.
	py gen-producers 5 "$ORG" 42000000 --kind producer >kinds.jsonl
	qrun -d "$NODE" import kinds.jsonl
	assert_rc 0 "import with kind per line"
	assert_out_has "imported 5 records"
	n=$((n + 5))
	assert_eq "$(count producer)" "$n" "producers after the kind-per-line import"

	# Re-importing the same DNIs is refused at the first batch.
	qrun -d "$NODE" import kinds.jsonl
	assert_rc 1 "import of duplicates"
	assert_err_has "kinds.jsonl:1: producer.dni"
	assert_eq "$(count producer)" "$n" "producers after the duplicate import"

	q -d "$NODE" verify >/dev/null
	qpd_stop "$NODE"
	assert_eq "$QPD_STATUS" 0 "quipud exit status"
}

qp_case import_csv
case_import_csv() {
	local name n
	import_setup
	# Header on line 1, data from line 2; batches of 5 are lines 2-6, 7-11,
	# 12-16, 17-21: the duplicate DNI on line 17 refuses batch 4, 15 records
	# are kept.
	add producer '{"org":"'"$ORG"'","dni":"43000000","name":"Ya Registrado","sex":"F"}' >/dev/null
	py gen-producers-csv 40 "$ORG" 43000000 --dup 17 >producers.csv
	qrun -d "$NODE" import producers.csv --kind producer --batch 5
	assert_rc 1 "CSV import with a duplicate DNI on line 17"
	assert_err_one_line
	assert_err_has "producers.csv:17: producer.dni"
	grep -qw 15 err || fail "import error does not report the 15 records committed: $(cat err)"
	assert_eq "$(count producer)" 16 "producers after the refused CSV import"

	# A malformed DNI on line 17 (see import_jsonl).
	py gen-producers-csv 40 "$ORG" 43100000 --bad 17 >bad.csv
	qrun -d "$NODE" import bad.csv --kind producer --batch 5
	assert_rc 1 "CSV import with a 7-digit DNI on line 17"
	assert_err_one_line
	assert_err_has "bad.csv:17: producer.dni"
	n=$(($(count producer) - 16))
	[ "$n" -eq 0 ] || [ "$n" -eq 15 ] || fail "$n records of bad.csv written"
	grep -qw "$n" err || { [ "$n" -eq 0 ] && grep -Eqi 'no records|nothing' err; } ||
		fail "import error does not report the $n records committed: $(cat err)"

	# A good CSV, with a quoted cell holding a comma and quotes.
	py gen-producers-csv 25 "$ORG" 44000000 >good.csv
	qrun -d "$NODE" import good.csv --kind producer
	assert_rc 0 "CSV import of 25"
	assert_out_has "imported 25 records"
	assert_eq "$(count producer)" $((16 + n + 25)) "producers after the good CSV import"
	q -d "$NODE" list producer >all.jsonl
	name=$(py pick all.jsonl dni 44000003 name)
	assert_eq "$name" 'Huamán, "Chicho" Rosa' "quoted CSV cell"

	# A kind column instead of --kind, and typed cells (birth_year).
	printf 'kind,org,dni,name,sex,birth_year\r\nproducer,%s,45000001,Luz Ccahuana,F,1985\r\nproducer,%s,45000002,Percy Soto,M,\r\n' \
		"$ORG" "$ORG" >kindcol.csv
	qrun -d "$NODE" import kindcol.csv
	assert_rc 0 "CSV import with a kind column"
	assert_out_has "imported 2 records"
	q -d "$NODE" list producer >all.jsonl
	assert_eq "$(py pick all.jsonl dni 45000001 birth_year)" 1985 "integer cell"

	q -d "$NODE" verify >/dev/null
	qpd_stop "$NODE"
	assert_eq "$QPD_STATUS" 0 "quipud exit status"
}

# What import --help and the README say is what import does: which files
# are CSV, what is checked before anything is sent, and that only a batch
# (a run of records of one kind) is all-or-nothing.
qp_case import_rules
case_import_rules() {
	local np ns
	qrun import --help
	assert_rc 0 "import --help"
	assert_out_has "is read as CSV when its name ends in .csv (any case), or when"
	assert_out_has "kind (a change of kind starts a new batch)."
	assert_out_has "only a batch is all-or-nothing."
	grep -q "The whole file is checked first" out &&
		fail "import --help still says the whole file is checked first"

	import_setup
	# CSV by content: only with --kind.
	printf 'org,dni,name,sex\r\n%s,46000001,Luz Ccahuana,F\r\n%s,46000002,Percy Soto,M\r\n' \
		"$ORG" "$ORG" >socios.txt
	qrun -d "$NODE" import socios.txt
	assert_rc 1 "CSV content in a .txt file without --kind (read as JSON)"
	assert_err_one_line
	assert_err_has "socios.txt:1: JSON"
	qrun -d "$NODE" import socios.txt --kind producer
	assert_rc 0 "CSV content in a .txt file with --kind"
	assert_out_has "imported 2 records"
	# CSV by name, any case, with a kind column.
	printf 'kind,org,dni,name,sex\r\nproducer,%s,46000003,Ana Poma,F\r\n' "$ORG" >SOCIOS.CSV
	qrun -d "$NODE" import SOCIOS.CSV
	assert_rc 0 "a .CSV file"
	assert_out_has "imported 1 records"
	# JSON after a byte-order mark and blank lines, even with --kind.
	printf '\xef\xbb\xbf\n  {"org":"%s","dni":"46000004","name":"Rosa Layme","sex":"F"}\n' "$ORG" >uno.txt
	qrun -d "$NODE" import uno.txt --kind producer
	assert_rc 0 "JSON after a BOM with --kind"
	assert_out_has "imported 1 records"

	# A file that alternates kinds is one batch per run of one kind: the
	# DNI repeated on line 3 refuses only the third batch (quipud's check),
	# the first two stay committed.
	np=$(count producer)
	ns=$(count service)
	{
		printf '{"kind":"producer","org":"%s","dni":"46000005","name":"Eva Quispe","sex":"F"}\n' "$ORG"
		printf '{"kind":"service","org":"%s","title":"Poda","area":"production","provider":"Técnico"}\n' "$ORG"
		printf '{"kind":"producer","org":"%s","dni":"46000005","name":"Eva Repetida","sex":"F"}\n' "$ORG"
	} >mix.jsonl
	qrun -d "$NODE" import mix.jsonl
	assert_rc 1 "import of alternating kinds with a duplicate on line 3"
	assert_err_one_line
	assert_err_has "mix.jsonl:3: producer.dni"
	assert_err_has "2 records of earlier batches were committed"
	assert_err_has "resume with --from-line 3"
	assert_eq "$(count producer)" $((np + 1)) "producers after the mixed import"
	assert_eq "$(count service)" $((ns + 1)) "services after the mixed import"
	# The whole file again is refused at its first line: held already.
	qrun -d "$NODE" import mix.jsonl
	assert_rc 1 "the same file again"
	assert_err_has "mix.jsonl:1: producer.dni: 46000005 is already registered"
	# Fixed, and resumed where it stopped: lines 1-2 are left out.
	sed -i '3s/46000005/46000006/' mix.jsonl
	qrun -d "$NODE" import mix.jsonl --from-line 3
	assert_rc 0 "resumed import"
	assert_out_has "imported 1 records (producer: 1); 2 records before line 3 left out"
	assert_eq "$(count producer)" $((np + 2)) "producers after the resumed import"
	assert_eq "$(count service)" $((ns + 1)) "services after the resumed import"
	qrun -d "$NODE" import mix.jsonl --from-line 0
	assert_rc 2 "--from-line 0"
	assert_err_has "--from-line wants a line number"
	qpd_stop "$NODE"
	assert_eq "$QPD_STATUS" 0 "quipud exit status"
}
