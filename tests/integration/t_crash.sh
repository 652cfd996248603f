# t_crash.sh - crash safety: concurrent writers, quipud killed with SIGKILL
# at a random moment, restarted; every write that was acknowledged (quipu
# exited 0 and printed its id) must be there, and the log must verify.

QP_CRASH_ROUNDS=${QP_CRASH_ROUNDS:-20}
QP_CRASH_WRITERS=${QP_CRASH_WRITERS:-8}

# crash_writer W ROUND: add producers one by one until quipu fails; append
# each id to acked.W only after quipu exited 0.
crash_writer() {
	local w=$1 r=$2 i=0 id
	while :; do
		i=$((i + 1))
		id=$(printf '{"org":"%s","dni":"%d%02d%05d","name":"Escritor %d","sex":"X"}\n' \
			"$ORG" "$w" "$r" "$i" "$w" |
			timeout 30 "$QUIPU" -d "$NODE" add producer 2>>"writer.$w.err") || break
		echo "$id" >>"acked.$w"
	done
}

qp_case crash_kill9
case_crash_kill9() {
	local r w ms pids total=0 n missing last
	NODE=$QP_CASE_DIR/node
	node_init "$NODE"
	qpd_start "$NODE"
	ORG=$(add org '{"ruc":"'"$(ruc 2060123456)"'","name":"Cooperativa Resistente","type":"cooperative"}')
	for w in $(seq 1 "$QP_CRASH_WRITERS"); do : >"acked.$w"; done

	for r in $(seq 1 "$QP_CRASH_ROUNDS"); do
		pids=""
		for w in $(seq 1 "$QP_CRASH_WRITERS"); do
			crash_writer "$w" "$r" &
			pids="$pids $!"
		done
		ms=$((200 + RANDOM % 801))
		sleep "$((ms / 1000)).$(printf '%03d' $((ms % 1000)))"
		qpd_kill9 "$NODE"
		for w in $pids; do
			wait "$w" || true
		done

		qpd_start "$NODE"
		cat acked.[0-9]* | sort >all-acked
		n=$(grep -c . all-acked || true)
		q -d "$NODE" list producer | py jsonl /dev/stdin producer | sort >listed
		missing=$(comm -23 all-acked listed | head -n 5)
		[ -z "$missing" ] || fail "round $r (killed after ${ms} ms): acknowledged but lost: $missing"
		# quipu get on the newest acknowledged id of each writer.
		for w in $(seq 1 "$QP_CRASH_WRITERS"); do
			last=$(tail -n 1 "acked.$w")
			[ -z "$last" ] || q -d "$NODE" get "$last" >/dev/null
		done
		qrun -d "$NODE" verify
		assert_rc 0 "verify after round $r"
		echo "--- round $r: killed after ${ms} ms, $n acknowledged so far" >&2
		total=$n
	done
	[ "$total" -ge "$QP_CRASH_ROUNDS" ] ||
		fail "only $total writes acknowledged in $QP_CRASH_ROUNDS rounds"
	assert_eq "$(status_num "$NODE" records producer)" "$(grep -c . listed)" "status records.producer"
	qpd_stop "$NODE"
	assert_eq "$QPD_STATUS" 0 "quipud exit status"
	echo "+ quipud -d $NODE --verify" >&2
	timeout 120 "$QUIPUD" -d "$NODE" --verify >verify.out 2>verify.err ||
		fail "quipud --verify failed: $(cat verify.err)"
}
