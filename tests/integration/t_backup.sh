# t_backup.sh - quipu backup: a copy of the data directory taken while
# quipud serves writers, restored and checked; the refusals; an interrupted
# backup leaves nothing behind.

# backup_writer W: add producers one by one until the file `stop` appears
# or quipu fails; each id goes to acked.W only after quipu exited 0.
backup_writer() {
	local w=$1 i=0 id
	while [ ! -e stop ]; do
		i=$((i + 1))
		id=$(printf '{"org":"%s","dni":"7%d%06d","name":"Respaldo %d","sex":"F"}\n' \
			"$ORG" "$w" "$i" "$w" |
			timeout 30 "$QUIPU" -d "$NODE" add producer 2>>"writer.$w.err") || break
		echo "$id" >>"acked.$w"
	done
}

# acked_at_least N: the writers have N acknowledged ids between them.
acked_at_least() {
	[ "$(cat acked.* | grep -c . || true)" -ge "$1" ]
}

qp_case backup_hot
case_backup_hot() {
	local BK=$QP_CASE_DIR/backup w pids="" before after n out
	NODE=$QP_CASE_DIR/node
	node_init "$NODE"
	qpd_start "$NODE"
	ORG=$(add org '{"ruc":"'"$(ruc 2060777111)"'","name":"Cooperativa Respaldada","type":"cooperative"}')
	cat >loss.geojson <<'EOF'
{"type":"FeatureCollection","features":[{"type":"Feature","properties":{},"geometry":{"type":"Polygon","coordinates":[[[-74.902,-10.902],[-74.900,-10.902],[-74.900,-10.900],[-74.902,-10.900],[-74.902,-10.902]]]}}]}
EOF
	q -d "$NODE" layer load loss2021 loss.geojson >/dev/null
	for w in 1 2 3 4; do
		: >"acked.$w"
		backup_writer "$w" &
		pids="$pids $!"
	done
	wait_for 20 "the writers have written" acked_at_least 40
	cat acked.* | sort >before
	qrun -d "$NODE" backup "$BK"
	assert_rc 0 "backup while four writers write"
	cat acked.* | sort >after
	# quipud serves on once the backup is done (it left no reader or lock
	# holding the writers): they get further acknowledgements.
	wait_for 20 "writes acknowledged after the backup" \
		acked_at_least $(($(grep -c . after) + 8))
	touch stop
	for w in $pids; do wait "$w" || true; done
	# A write can be committed (and so be in the backup) while its writer
	# has not yet recorded the acknowledgement: the last word is the list
	# once the writers are done.
	cat acked.* | sort >final
	out=$(cat out)
	printf '%s\n' "$out" | grep -Eq "^backed up $NODE to $BK: [0-9]+ deltas, [0-9]+ records, [0-9.]+ MiB$" ||
		fail "backup printed '$out'"
	[ ! -e "$BK.part" ] || fail "$BK.part left behind"
	assert_eq "$(stat -c %a "$BK")" 700 "mode of the backup directory"
	assert_eq "$(stat -c %a "$BK/key")" 600 "mode of the backed-up key"
	cmp -s "$NODE/key" "$BK/key" || fail "the key differs from the node's"
	cmp -s "$NODE/node.json" "$BK/node.json" || fail "node.json differs"
	cmp -s "$NODE/layers/loss2021.geojson" "$BK/layers/loss2021.geojson" ||
		fail "the layer was not copied"
	[ ! -e "$BK/store/lock.mdb" ] || fail "the backup holds a lock file"
	[ ! -e "$BK/quipud.sock" ] && [ ! -e "$BK/quipud.pid" ] ||
		fail "the backup holds the daemon's socket or pid file"
	# The backup, started as a node of its own, holds every record that
	# was acknowledged before the backup began, and verifies.
	qpd_start "$BK"
	q -d "$BK" list producer | py jsonl /dev/stdin producer | sort >in-backup
	n=$(comm -23 before in-backup | head -n 5)
	[ -z "$n" ] || fail "acknowledged before the backup but not in it: $n"
	n=$(comm -13 final in-backup | head -n 5)
	[ -z "$n" ] || fail "in the backup but never acknowledged: $n"
	before=$(grep -c . before)
	after=$(grep -c . in-backup)
	[ "$after" -ge "$before" ] || fail "backup holds $after producers, $before were acked before it"
	printf '%s\n' "$out" | grep -q " $((after + 1)) records," ||
		fail "backup counted other than $((after + 1)) records: $out"
	qrun -d "$BK" verify
	assert_rc 0 "verify of the backup"
	q -d "$BK" layer list | grep -q loss2021 || fail "the backup does not list the layer"
	qpd_stop "$BK"
	qpd_stop "$NODE"
	# With quipud stopped the backup is taken the same way.
	qrun -d "$NODE" backup "$QP_CASE_DIR/offline"
	assert_rc 0 "backup with quipud stopped"
	assert_out_has " $(($(cat acked.* | grep -c .) + 1)) records,"
	timeout 120 "$QUIPUD" -d "$QP_CASE_DIR/offline" --verify >verify.out 2>verify.err ||
		fail "quipud --verify of the offline backup failed: $(cat verify.err)"
}

qp_case backup_refusals
case_backup_refusals() {
	local BK=$QP_CASE_DIR/bk long
	NODE=$QP_CASE_DIR/node
	node_init "$NODE"
	qpd_start "$NODE"
	add org '{"ruc":"'"$(ruc 2060777112)"'","name":"Cooperativa Cuidadosa","type":"cooperative"}' >/dev/null

	mkdir "$BK"
	echo "ya estaba" >"$BK/nota.txt"
	qrun -d "$NODE" backup "$BK"
	assert_rc 1 "backup to a directory that exists"
	assert_err_one_line
	assert_err_has "quipu: backup: $BK already exists; name a directory that does not exist yet"
	assert_eq "$(ls "$BK")" nota.txt "what the existing directory holds"
	[ ! -e "$BK.part" ] || fail "$BK.part made by a refused backup"

	mkdir "$QP_CASE_DIR/half.part"
	qrun -d "$NODE" backup "$QP_CASE_DIR/half"
	assert_rc 1 "backup over an unfinished one"
	assert_err_one_line
	assert_err_has "half.part exists: a backup that was stopped before it finished"
	[ ! -e "$QP_CASE_DIR/half" ] || fail "half made"

	qrun -d "$NODE" backup "$QP_CASE_DIR/no/such/dir/bk"
	assert_rc 1 "backup into a directory that does not exist"
	assert_err_one_line
	assert_err_has "cannot create $QP_CASE_DIR/no/such/dir/bk.part"

	qrun -d "$QP_CASE_DIR/empty" backup "$QP_CASE_DIR/bk2"
	assert_rc 1 "backup of a directory that was never initialised"
	assert_err_one_line
	assert_err_has "init first"
	[ ! -e "$QP_CASE_DIR/bk2" ] && [ ! -e "$QP_CASE_DIR/bk2.part" ] ||
		fail "a backup of nothing left files"

	long=$QP_CASE_DIR/$(printf 'x%.0s' $(seq 1 4090))
	qrun -d "$NODE" backup "$long"
	assert_rc 2 "backup to a path too long for DEST.part"
	assert_err_one_line
	assert_err_has "DEST must be a directory path shorter than"
	qrun -d "$long" restore "$QP_CASE_DIR/bk"
	assert_rc 2 "restore into a data directory path too long"
	assert_err_one_line
	assert_err_has "quipu: cannot resolve the data directory: File name too long"
	qrun -d "$QP_CASE_DIR/elsewhere" restore "$long"
	assert_rc 1 "restore from a backup path too long"
	assert_err_one_line
	assert_err_has "quipu: restore: $long: File name too long"
	timeout 20 "$QUIPUD" -d "$long" >long.out 2>long.err && fail "quipud started on a path too long"
	grep -q "quipud: cannot resolve the data directory: File name too long" long.err ||
		fail "quipud said: $(cat long.err)"

	qrun -d "$NODE" backup
	assert_rc 2 "backup without DEST"
	qrun -d "$NODE" backup a b
	assert_rc 2 "backup with two operands"
	qrun -d "$NODE" backup --help
	assert_rc 0 "backup --help"
	assert_out_has "usage: quipu [-d DIR] backup DEST"
}

# org_with_producers RUCBASE NAME N BATCH: on the running $NODE, an org
# and N producers imported in batches of BATCH; sets ORG.
org_with_producers() {
	ORG=$(add org '{"ruc":"'"$(ruc "$1")"'","name":"'"$2"'","type":"cooperative"}')
	python3 -c 'import sys
org, name, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
for i in range(n):
    print("{\"org\":\"%s\",\"dni\":\"%08d\",\"name\":\"Socia Numero %d de la %s\",\"sex\":\"F\",\"community\":\"Comunidad Campesina de San Juan\",\"phone\":\"964312775\"}" % (org, 30000000 + i, i, name))' "$ORG" "$2" "$3" >many.jsonl
	q -d "$NODE" import many.jsonl --kind producer --batch "$4" >/dev/null
}

# An interrupted backup removes what it made: no DEST.part, no DEST.
qp_case backup_interrupted
case_backup_interrupted() {
	local BK=$QP_CASE_DIR/bk pid rc sig interrupted=0 round
	NODE=$QP_CASE_DIR/node
	node_init "$NODE"
	qpd_start "$NODE"
	# A store large enough that the copy takes a while.
	org_with_producers 2060777113 "Cooperativa Grande" 60000 5000
	for round in 1 2 3; do
		for sig in INT TERM; do
			"$QUIPU" -d "$NODE" backup "$BK" >out 2>err &
			pid=$!
			while [ ! -e "$BK.part/store/data.mdb" ] && [ ! -e "$BK" ] &&
				kill -0 "$pid" 2>/dev/null; do :; done
			kill -"$sig" "$pid" 2>/dev/null || true
			rc=0
			wait "$pid" || rc=$?
			[ ! -e "$BK.part" ] || fail "round $round: $BK.part left after SIG$sig (exit $rc): $(ls -R "$BK.part")"
			if [ "$rc" -ne 0 ]; then
				[ ! -e "$BK" ] || fail "round $round: $BK exists though the backup was stopped"
				interrupted=$((interrupted + 1))
			else
				# It finished first: a whole backup.
				[ -s "$BK/store/data.mdb" ] || fail "round $round: finished backup lacks its store"
				rm -rf "$BK"
			fi
		done
	done
	[ "$interrupted" -gt 0 ] || fail "no backup was interrupted (each finished before the signal)"
	note "$interrupted of 6 backups interrupted mid-copy"
	q -d "$NODE" backup "$BK" >/dev/null
	timeout 120 "$QUIPUD" -d "$BK" --verify >verify.out 2>verify.err ||
		fail "quipud --verify of the backup failed: $(cat verify.err)"
}

# backup_cfg DIR JSON: set node.json's "backup" object of the node at DIR.
backup_cfg() {
	python3 - "$1/node.json" "$2" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["backup"] = json.loads(sys.argv[2])
json.dump(c, open(sys.argv[1], "w"))
PY
}

# backups_in DIR: the finished scheduled backups in DIR, oldest first.
backups_in() {
	ls "$1" | grep -E '^quipu-[0-9]{8}T[0-9]{6}Z$' | sort || true
}

# newest_backup_done SD: the newest backup in SD is the one status
# reports as the last made, and it holds a store.
newest_backup_done() {
	local last
	last=$(backups_in "$1" | tail -n 1)
	[ -n "$last" ] && [ "$(status_num "$NODE" backup last_path)" = "$1/$last" ] &&
		python3 - "$1/$last/store" <<'PY'
import os, sys
sys.exit(0 if os.path.getsize(os.path.join(sys.argv[1], "data.mdb")) > 0 else 1)
PY
}

# newest_backup_not SD NAME: SD's newest finished backup is not NAME.
newest_backup_not() {
	[ "$(backups_in "$1" | tail -n 1)" != "$2" ]
}

backup_running() {
	[ "$(status_num "$NODE" backup running)" = true ]
}

backup_failed() {
	status_num "$NODE" backup last_error | grep -q "$1"
}

qp_case backup_scheduled
case_backup_scheduled() {
	local SD=$QP_CASE_DIR/sd last n
	NODE=$QP_CASE_DIR/node
	node_init "$NODE"
	mkdir -p "$SD/quipu-20200101T000000Z/store" "$SD/quipu-20200102T000000Z.part" "$SD/fotos"
	echo vieja >"$SD/quipu-20200101T000000Z/key"
	echo mia >"$SD/fotos/chacra.jpg"
	# Every 1.8 s, keeping 2.
	backup_cfg "$NODE" '{"dir": "'"$SD"'", "every_hours": 0.0005, "keep": 2}'
	qpd_start "$NODE"
	ORG=$(add org '{"ruc":"'"$(ruc 2060777114)"'","name":"Cooperativa Previsora","type":"cooperative"}')
	# Two backups after the org was written: the newest two hold it.
	wait_for 30 "a first scheduled backup" newest_backup_done "$SD"
	last=$(backups_in "$SD" | tail -n 1)
	# The next one began after the org was written.
	wait_for 30 "a second scheduled backup" newest_backup_not "$SD" "$last"
	n=$(backups_in "$SD" | grep -c .)
	[ "$n" -le 2 ] || fail "keep 2, but $n backups in $SD: $(backups_in "$SD" | tr '\n' ' ')"
	[ ! -e "$SD/quipu-20200101T000000Z" ] || fail "the oldest backup was kept beyond keep"
	[ ! -e "$SD/quipu-20200102T000000Z.part" ] || fail "an unfinished backup was left"
	assert_eq "$(cat "$SD/fotos/chacra.jpg")" mia "a file that is not a backup"
	q -d "$NODE" status >status.txt
	grep -Eq "^backup +20[0-9-]+T[0-9:]+Z to $SD/quipu-" status.txt ||
		fail "status shows no backup: $(grep backup status.txt || true)"
	grep -q "backup: backed up $NODE to $SD/quipu-" "$NODE.qpd.log" || fail "no backup in the log"
	qpd_stop "$NODE"
	assert_eq "$QPD_STATUS" 0 "quipud exit status with backups scheduled"
	# The newest backup is a node: it verifies and holds the org.
	last=$(backups_in "$SD" | tail -n 1)
	timeout 120 "$QUIPUD" -d "$SD/$last" --verify >verify.out 2>verify.err ||
		fail "quipud --verify of $last failed: $(cat verify.err)"
	qpd_start "$SD/$last"
	q -d "$SD/$last" get "$ORG" >/dev/null || fail "$last lacks the org"
	qpd_stop "$SD/$last"
	rm -rf "${SD:?}/$last"

	# A card that is not there: the backup fails, status and log say
	# why, and quipud serves on.
	backup_cfg "$NODE" '{"dir": "'"$QP_CASE_DIR/no-card"'", "every_hours": 24}'
	qpd_start "$NODE"
	wait_for 20 "the failed backup is reported" backup_failed "cannot create $QP_CASE_DIR/no-card/quipu-"
	q -d "$NODE" status >status.txt
	grep -Eq "^backup +FAILED at .*: backup: cannot create .*no-card.*; last good: none; next in 10 min" status.txt ||
		fail "status: $(grep backup status.txt || true)"
	grep -q "backup to $QP_CASE_DIR/no-card failed: backup: cannot create" "$NODE.qpd.log" ||
		fail "no failure in the log"
	add producer '{"org":"'"$ORG"'","dni":"47000001","name":"Sigue Escribiendo","sex":"M"}' >/dev/null
	qpd_stop "$NODE"

	# A bad "backup" object stops quipud at start with the key named.
	backup_cfg "$NODE" '{"dir": "relativo/sd"}'
	timeout 20 "$QUIPUD" -d "$NODE" >bad.out 2>bad.err && fail "quipud started with a relative backup.dir"
	grep -q "node.json: backup.dir: must be an absolute directory path" bad.err ||
		fail "quipud said: $(cat bad.err)"
	backup_cfg "$NODE" '{"dir": "/tmp", "keep": 0}'
	timeout 20 "$QUIPUD" -d "$NODE" >bad.out 2>bad.err && fail "quipud started with keep 0"
	grep -q "node.json: backup.keep: must be a whole number of backups from 1 to 1000" bad.err ||
		fail "quipud said: $(cat bad.err)"
	backup_cfg "$NODE" '{"dir": "/tmp", "every": 3}'
	timeout 20 "$QUIPUD" -d "$NODE" >bad.out 2>bad.err && fail "quipud started with an unknown backup key"
	grep -q 'node.json: backup: unknown key "every" (known: dir, every_hours, keep)' bad.err ||
		fail "quipud said: $(cat bad.err)"
}

# quipud stopped while a scheduled backup runs: the backup is cut off and
# removes what it made; quipud exits cleanly.
qp_case backup_scheduled_stop
case_backup_scheduled_stop() {
	local SD=$QP_CASE_DIR/sd
	NODE=$QP_CASE_DIR/node
	node_init "$NODE"
	mkdir "$SD"
	qpd_start "$NODE"
	org_with_producers 2060777115 "Cooperativa Numerosa" 60000 5000
	qpd_stop "$NODE"
	backup_cfg "$NODE" '{"dir": "'"$SD"'", "every_hours": 0.0003, "keep": 3}'
	qpd_start "$NODE"
	wait_for 30 "a scheduled backup under way" backup_running
	qpd_stop "$NODE"
	assert_eq "$QPD_STATUS" 0 "quipud exit status"
	[ "${QPD_KILLED:-0}" = 0 ] || fail "quipud needed SIGKILL"
	n=$(find "$SD" -mindepth 1 -maxdepth 1 -name '*.part' | grep -c . || true)
	assert_eq "$n" 0 "unfinished backups left in $SD"
	pgrep -f "backup $SD/" >/dev/null && fail "a quipu backup process outlived quipud"
	true
}

# quipu restore: a backup put in place of the data directory, checked
# before anything changes; what it replaced is kept.
qp_case backup_restore
case_backup_restore() {
	local BK=$QP_CASE_DIR/bk BAD=$QP_CASE_DIR/bad org p aside
	NODE=$QP_CASE_DIR/node
	node_init "$NODE"
	qpd_start "$NODE"
	org=$(add org '{"ruc":"'"$(ruc 2060777116)"'","name":"Cooperativa Restaurable","type":"cooperative"}')
	q -d "$NODE" backup "$BK" >/dev/null
	p=$(add producer '{"org":"'"$org"'","dni":"47100001","name":"Despues Del Respaldo","sex":"F"}')
	qrun -d "$NODE" restore "$BK"
	assert_rc 1 "restore while quipud runs"
	assert_err_one_line
	assert_err_has "quipu: restore: quipud is running on $NODE; stop it first"
	qpd_stop "$NODE"

	# A damaged backup is refused and nothing changes.
	cp -a "$BK" "$BAD"
	python3 - "$BAD/store/data.mdb" <<'PY'
import sys
p = sys.argv[1]
b = open(p, "rb").read()
assert b.count(b"Restaurable") > 0
open(p, "wb").write(b.replace(b"Restaurable", b"Restaurablx"))
PY
	ls -la "$NODE" >before.ls
	qrun -d "$NODE" restore "$BAD"
	assert_rc 1 "restore of a damaged backup"
	assert_err_one_line
	assert_err_has "quipu: restore: $BAD: it does not verify"
	assert_err_has "nothing was changed"
	ls -la "$NODE" >after.ls
	cmp -s before.ls after.ls || fail "the data directory changed: $(diff before.ls after.ls)"
	[ ! -e "$NODE.restore-part" ] || fail "a refused restore left $NODE.restore-part"
	ls "$QP_CASE_DIR" | grep -q replaced && fail "a refused restore moved the node aside"

	qrun -d "$NODE" restore "$QP_CASE_DIR/nothing"
	assert_rc 1 "restore of a directory that is no backup"
	assert_err_has "is not a quipu backup"
	node_init "$QP_CASE_DIR/other"
	qrun -d "$QP_CASE_DIR/other" restore "$BK"
	assert_rc 1 "restore over another node"
	assert_err_one_line
	assert_err_has "is another node (key "
	assert_err_has "move $QP_CASE_DIR/other away first"

	qrun -d "$NODE" restore "$BK"
	assert_rc 0 "restore"
	assert_out_has "restored $NODE from $BK: 1 deltas, 1 records, verified; what it replaced is in $NODE.replaced-"
	aside=$(ls -d "$NODE".replaced-*)
	[ -s "$BK/store/data.mdb" ] || fail "the backup itself was consumed"
	assert_eq "$(stat -c %a "$NODE")" 700 "mode of the restored directory"
	qpd_start "$NODE"
	q -d "$NODE" get "$org" >/dev/null || fail "the restored node lacks the org"
	qrun -d "$NODE" get "$p"
	assert_rc 1 "the record written after the backup is not in it"
	qrun -d "$NODE" verify
	assert_rc 0 "verify after the restore"
	qpd_stop "$NODE"
	# What it replaced is kept whole, with the later record.
	qpd_start "$aside"
	q -d "$aside" get "$p" >/dev/null || fail "the replaced data lost the later record"
	qpd_stop "$aside"

	# A new tablet (no data directory yet) takes the backup as it is.
	qrun -d "$QP_CASE_DIR/new-tablet" restore "$BK"
	assert_rc 0 "restore to a new data directory"
	assert_out_has "restored $QP_CASE_DIR/new-tablet from $BK: 1 deltas, 1 records, verified"
	assert_eq "$(q -d "$QP_CASE_DIR/new-tablet" id)" "$(q -d "$NODE" id)" "the restored identity"
}

card_cleanup() {
	[ -f "$NODE.qpd.pid" ] && qpd_kill9 "$NODE"
	umount "$CARD" 2>/dev/null || true
}

# card_made_room: quipud has removed an old backup to make room.
card_made_room() {
	grep -q "is full: removed the oldest backup" "$NODE.qpd.log" &&
		[ "$(grep -c "backup: backed up" "$NODE.qpd.log")" -ge 5 ]
}

# A memory card that fills up: the oldest backups give way to new ones,
# the newest stays whole, and the status says nothing failed.
qp_case backup_card_full
case_backup_card_full() {
	local out n last
	[ "$(id -u)" -eq 0 ] || skip "needs root (mounts a small tmpfs)"
	NODE=$QP_CASE_DIR/node
	CARD=$QP_CASE_DIR/card
	mkdir -p "$CARD"
	trap card_cleanup EXIT
	out=$(mount -t tmpfs -o size=4m tmpfs "$CARD" 2>&1) ||
		skip "cannot mount a tmpfs: $out"
	node_init "$NODE"
	qpd_start "$NODE"
	org_with_producers 2060777117 "Cooperativa Apretada" 1000 1000
	qpd_stop "$NODE"
	backup_cfg "$NODE" '{"dir": "'"$CARD"'", "every_hours": 0.0005, "keep": 20}'
	qpd_start "$NODE"
	wait_for 90 "old backups removed to make room" card_made_room
	# Give the loop a turn past the retry, then look.
	wait_for 30 "a backup made after the room was made" sh -c \
		"grep -A3 'is full: removed the oldest' '$NODE.qpd.log' | grep -q 'backup: backed up'"
	qpd_stop "$NODE"
	n=$(backups_in "$CARD" | grep -c . || true)
	[ "$n" -ge 1 ] || fail "no backup left on the card"
	note "$n backups on the 4 MiB card"
	find "$CARD" -maxdepth 1 -name '*.part' | grep -q . && fail "an unfinished backup was left"
	last=$(backups_in "$CARD" | tail -n 1)
	timeout 120 "$QUIPUD" -d "$CARD/$last" --verify >verify.out 2>verify.err ||
		fail "quipud --verify of $last failed: $(cat verify.err)"
	true
}
