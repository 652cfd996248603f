# t_programme.sh - a realistic synthetic programme (tests/gen/programme.py:
# ~150 organisations in Junín, San Martín, Piura, Cusco and Puno, their
# producers, plots, services, sessions, attendance and lots) spread over
# three field nodes and a hub on loopback, in phases with syncs between
# them; then at the hub, `trace`, `dds`, `report attendance`, `check
# plots`, `check lots` and `check duplicates` are checked against what the
# generator knows to be true (tests/gen/progcheck.py), including what was
# planted across devices: duplicate attendance, duplicate producers and
# plots, overlapping plots and lots over-consumed only after merge.  An
# observer tablet enrolled for every org must reach the hub's state
# digest.  Uses the helpers of t_sync.sh.
#
# QP_PROGRAMME_SEED sets the seed (default 7); QP_PROGRAMME_ARGS the
# generator's options (default: its full scale, 150 orgs, 1,500 producers,
# about 20,000 records, with 8 organisations shipping; the case takes
# about 20 s, under AddressSanitizer about 45 s).

QP_GEN=$QP_HERE/../gen

# prog_py ARGS...: the checker.
prog_py() {
	python3 "$QP_GEN/progcheck.py" "$@"
}

# prog_counts DIR WHO PHASE: DIR holds exactly the records the generator
# expects of WHO (hub or node index) after PHASE.
prog_counts() {
	local f=$QP_CASE_DIR/st.$$.$RANDOM.json
	timeout 10 "$QUIPU" -d "$1" status --json >"$f" 2>/dev/null || return 1
	prog_py counts "$f" "$QP_CASE_DIR/expect-$2-$3.json" >"$f.diff" || {
		cp "$f.diff" "$QP_CASE_DIR/last-diff-$2"
		rm -f "$f" "$f.diff"
		return 1
	}
	rm -f "$f" "$f.diff"
}

# prog_wait_counts DIR WHO PHASE: wait until prog_counts holds.
prog_wait_counts() {
	local i
	for i in $(seq 1 300); do
		prog_counts "$@" && return 0
		sleep 0.2
	done
	fail "$1 does not hold the records of phase $3: $(cat "$QP_CASE_DIR/last-diff-$2" 2>/dev/null)"
}

# prog_import DIR FILE...: import the files on several nodes at once
# (DIR FILE pairs); each must succeed.
prog_import() {
	local -a pids=() names=()
	local i rc=0
	while [ $# -gt 0 ]; do
		echo "+ quipu -d $1 import $2" >&2
		timeout "$QP_TIMEOUT" "$QUIPU" -d "$1" import "$2" --batch 500 \
			>"$1.import.out" 2>"$1.import.err" &
		pids+=($!)
		names+=("$1")
		shift 2
	done
	for i in "${!pids[@]}"; do
		if ! wait "${pids[$i]}"; then
			rc=1
			echo "import on ${names[$i]} failed: $(head -c 600 "${names[$i]}.import.err")" >&2
		fi
		head -c 300 "${names[$i]}.import.out" >&2
	done
	[ "$rc" -eq 0 ] || fail "an import failed"
}

# prog_sync DIR...: sync --wait every node at once.
prog_sync() {
	local -a pids=()
	local d i rc=0
	for d in "$@"; do
		timeout "$QP_TIMEOUT" "$QUIPU" -d "$d" sync --wait --timeout 50 \
			>/dev/null 2>"$d.sync.err" &
		pids+=($!)
	done
	for i in "${!pids[@]}"; do
		d=${*:$((i + 1)):1}
		wait "${pids[$i]}" || { rc=1; echo "sync on $d: $(cat "$d.sync.err")" >&2; }
	done
	[ "$rc" -eq 0 ] || fail "sync --wait failed"
}

qp_case programme
case_programme() {
	local gen=$QP_CASE_DIR/gen HUB=$QP_CASE_DIR/hub OBS=$QP_CASE_DIR/observer
	local -a nodes=() orgs=() all=() phase_files=()
	local i ph d line code t0
	t0=$(date +%s)
	# shellcheck disable=SC2086
	python3 "$QP_GEN/programme.py" --out "$gen" --seed "${QP_PROGRAMME_SEED:-7}" \
		${QP_PROGRAMME_ARGS:---ship-orgs 8}
	prog_py expect "$gen" hub 3 >"$QP_CASE_DIR/expect-hub-3.json"
	for i in 0 1 2; do
		for ph in 0 1 2 3; do
			prog_py expect "$gen" "$i" "$ph" >"$QP_CASE_DIR/expect-$i-$ph.json"
		done
	done

	hub_init "$HUB"
	qpd_start "$HUB"
	# Phase 0 at the hub: organisations, services, commitments.
	prog_import "$HUB" "$gen/hub.jsonl"

	for i in 0 1 2; do
		d=$QP_CASE_DIR/node$((i + 1))
		nodes+=("$d")
		mapfile -t orgs < <(prog_py orgs "$gen" "$i")
		dev_new "$HUB" "$d" "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["nodes"][int(sys.argv[2])]["name"])' "$gen/nodes.json" "$i")" "${orgs[@]}"
	done
	# The observer (a supervisor's tablet) serves every org.
	mapfile -t all < <(python3 -c 'import json,sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r["kind"] == "org": print(r["id"])' "$gen/hub.jsonl")
	dev_new "$HUB" "$OBS" supervisor "${all[@]}"
	prog_sync "${nodes[@]}"
	for i in 0 1 2; do
		prog_wait_counts "${nodes[$i]}" "$i" 0
	done
	note "phase 0 on the tablets after $(($(date +%s) - t0)) s"

	# Phases 1-3: each tablet imports its day's work, then syncs; the
	# next phase starts when every tablet holds what the others wrote in
	# its orgs (attendance refers to sessions another tablet made; the
	# second tablet of a shared org consumes lots the first received).
	for ph in 1 2 3; do
		phase_files=()
		for i in 0 1 2; do
			phase_files+=("${nodes[$i]}" "$gen/node$((i + 1))-$ph.jsonl")
		done
		# Each day's work happens with the hub down, as in the field:
		# the two tablets of a shared org cannot see each other's
		# registrations (phase 1: one DNI twice), attendance (phase 2:
		# one person twice) or consumption (phase 3: one lot twice).
		# With the hub up, one tablet's push could reach the other
		# before its own import, which would then rightly refuse it.
		qpd_stop "$HUB"
		prog_import "${phase_files[@]}"
		if [ "$ph" -eq 3 ]; then
			# Each tablet accepted its own 70% of the shared lot; a
			# further 40% on the same tablet breaks the balance there
			# and is refused at write time.
			prog_py refusal "$gen" 0 >refuse.json 2>refuse.code
			code=$(cat refuse.code)
			qrun -d "${nodes[0]}" add lot_event --file refuse.json
			if [ "$RC" -ne 1 ]; then
				deviation "tablet 1 accepted a lot_event taking 140% of lot $code (exit $RC)"
			else
				assert_err_one_line
				assert_err_has "lot_event.inputs[0].kg: lot $code "
			fi
		fi
		qpd_start "$HUB"
		# After the hub's restart the observer dials at once too.
		prog_sync "${nodes[@]}" "$OBS"
		for i in 0 1 2; do
			prog_wait_counts "${nodes[$i]}" "$i" "$ph"
		done
		note "phase $ph synced after $(($(date +%s) - t0)) s"
	done
	prog_wait_counts "$HUB" hub 3
	prog_wait_counts "$OBS" hub 3
	wait_for 30 "the observer reaches the hub's state digest" same_digests "$HUB" "$OBS"
	note "digest $(digest "$HUB") after $(($(date +%s) - t0)) s"
	q -d "$HUB" verify >/dev/null

	# Every check at the hub against the generator's truth.
	mkdir -p "$QP_CASE_DIR/checks"
	if ! prog_py hub "$QUIPU" "$HUB" "$gen" "$QP_CASE_DIR/checks" "${nodes[@]}" >progcheck.out 2>&1; then
		while read -r line; do
			deviation "$line"
		done < <(grep -v '^progcheck:' progcheck.out)
	fi
	cat progcheck.out >&2
	note "checks done after $(($(date +%s) - t0)) s"
	if [ -s "$QP_CASE_DIR/deviations" ]; then
		fail "$(grep -c . "$QP_CASE_DIR/deviations") mismatches with the generator's truth (see the log)"
	fi
	for d in "${nodes[@]}" "$OBS" "$HUB"; do
		qpd_stop "$d"
		assert_eq "$QPD_STATUS" 0 "quipud exit status on $d"
	done
}
