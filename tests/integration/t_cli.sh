# t_cli.sh - command-line conventions (notes/cli.md): --help, usage errors,
# exit 3 without a daemon, init/id and the data directory resolution.

qp_case cli_help
case_cli_help() {
	local c
	qrun --help
	assert_rc 0 "quipu --help"
	[ -s out ] || fail "quipu --help printed nothing on stdout"
	# Every command, with no daemon anywhere (help never needs one).
	for c in init id status add update void get list import export verify \
		enroll join revoke peers sync conflicts quarantine settle bundle check \
		trace dds report layer; do
		qrun -d "$QP_CASE_DIR/nowhere" "$c" --help
		assert_rc 0 "quipu $c --help"
		[ -s out ] || fail "quipu $c --help printed nothing on stdout"
		[ -s err ] && fail "quipu $c --help wrote to stderr: $(head -c 200 err)"
	done
	"$QUIPUD" --help >out 2>err || fail "quipud --help exited non-zero"
	[ -s out ] || fail "quipud --help printed nothing on stdout"
}

qp_case cli_usage_errors
case_cli_usage_errors() {
	NODE=$QP_CASE_DIR/node
	node_init "$NODE"
	qrun -d "$NODE" frobnicate
	assert_rc 2 "unknown command"
	assert_err_one_line
	qrun -d "$NODE" add
	assert_rc 2 "add without KIND"
	assert_err_one_line
	qrun -d "$NODE" list producer --no-such-option
	assert_rc 2 "unknown option"
	assert_err_one_line
}

qp_case cli_no_daemon
case_cli_no_daemon() {
	NODE=$QP_CASE_DIR/node
	node_init "$NODE"
	qrun -d "$NODE" status
	assert_rc 3 "status without quipud"
	assert_err_one_line
	assert_err_has "cannot reach quipud"
	echo '{"org":"00000000-0000-7000-8000-000000000000","dni":"12345678","name":"A","sex":"F"}' >rec.json
	qrun -d "$NODE" add producer --file rec.json
	assert_rc 3 "add without quipud"
	assert_err_has "cannot reach quipud"
}

# Settings that would be silently ignored are refused instead: sync
# --timeout without --wait (nothing waits), a QUIPU_TIMEOUT that is not a
# number of seconds.
qp_case cli_timeout_checks
case_cli_timeout_checks() {
	local v
	NODE=$QP_CASE_DIR/node
	node_init "$NODE"
	qrun -d "$NODE" sync --timeout 5
	assert_rc 2 "sync --timeout without --wait"
	assert_err_one_line
	assert_err_has "--timeout applies only with --wait"
	for v in abc -5 5s 86401 " 5"; do
		QUIPU_TIMEOUT=$v qrun -d "$NODE" status
		assert_rc 2 "QUIPU_TIMEOUT='$v'"
		assert_err_one_line
		assert_err_has "QUIPU_TIMEOUT wants whole seconds from 0 to 86400 (0 waits forever), not \"$v\""
	done
	# Valid values (0 waits forever) go on to the daemon, absent here.
	for v in 0 30 ""; do
		QUIPU_TIMEOUT=$v qrun -d "$NODE" status
		assert_rc 3 "QUIPU_TIMEOUT='$v'"
		assert_err_has "cannot reach quipud"
	done
}

# A data directory that holds no node: say so and point at init, not at
# starting quipud (which cannot run there either).
qp_case cli_no_node
case_cli_no_node() {
	local d=$QP_CASE_DIR/nowhere
	qrun -d "$d" status
	assert_rc 3 "status on a directory that does not exist"
	assert_err_one_line
	assert_err_has "no node at $d: the directory does not exist"
	assert_err_has "quipu -d $d init"
	grep -q "start it with" err && fail "advises starting quipud: $(cat err)"
	mkdir "$QP_CASE_DIR/empty"
	qrun -d "$QP_CASE_DIR/empty" list producer
	assert_rc 3 "list on a directory without a key"
	assert_err_one_line
	assert_err_has "no node at $QP_CASE_DIR/empty: it holds no key file"
	assert_err_has "quipu -d $QP_CASE_DIR/empty init"
	: >"$QP_CASE_DIR/file"
	qrun -d "$QP_CASE_DIR/file" status
	assert_rc 3 "status on a regular file"
	assert_err_one_line
	assert_err_has "$QP_CASE_DIR/file is not a directory"
}

qp_case cli_init_id
case_cli_init_id() {
	local key key2 mode
	NODE=$QP_CASE_DIR/node
	key=$(q -d "$NODE" init)
	printf '%s' "$key" | grep -Eq '^[0-9a-f]{64}$' || fail "init printed '$key'"
	mode=$(stat -c %a "$NODE")
	assert_eq "$mode" 700 "data dir mode"
	mode=$(stat -c %a "$NODE/key")
	assert_eq "$mode" 600 "key file mode"
	assert_eq "$(stat -c %s "$NODE/key")" 64 "key file size"
	[ -d "$NODE/store" ] || fail "no store directory"
	assert_eq "$(py find "$NODE/node.json" role)" field "node.json role"

	# A field node does not listen: --listen alone is a usage error.
	qrun -d "$QP_CASE_DIR/f2" init --listen 127.0.0.1:7000
	assert_rc 2 "init --listen without --role hub"
	assert_err_one_line
	[ ! -e "$QP_CASE_DIR/f2/key" ] || fail "a refused init made a key"

	# init again must refuse and keep the identity.
	qrun -d "$NODE" init
	assert_rc 1 "second init"
	assert_err_one_line
	key2=$(q -d "$NODE" id)
	assert_eq "$key2" "$key" "id after refused init"

	# Data directory resolution: --data, $QUIPU_DATA, $XDG_DATA_HOME/quipu.
	assert_eq "$(q --data "$NODE" id)" "$key" "id with --data"
	assert_eq "$(QUIPU_DATA=$NODE q id)" "$key" "id with QUIPU_DATA"
	mkdir -p xdg
	key2=$(XDG_DATA_HOME=$QP_CASE_DIR/xdg q init)
	[ -f xdg/quipu/key ] || fail "init did not use \$XDG_DATA_HOME/quipu"
	assert_eq "$(XDG_DATA_HOME=$QP_CASE_DIR/xdg q id)" "$key2" "id with XDG_DATA_HOME"
	assert_eq "$(HOME=$QP_CASE_DIR/home XDG_DATA_HOME='' q init | wc -c)" 65 "init under HOME"
	[ -f home/.local/share/quipu/key ] || fail "init did not use ~/.local/share/quipu"

	# A hub node.
	q -d "$QP_CASE_DIR/hub" init --role hub --listen 127.0.0.1:7421 >/dev/null
	assert_eq "$(py find "$QP_CASE_DIR/hub/node.json" role)" hub "hub role"
	assert_eq "$(py find "$QP_CASE_DIR/hub/node.json" listen)" 127.0.0.1:7421 "hub listen"
}

# `make install` lays out the binaries, manual pages (clean under groff's
# warnings), the systemd unit pointing at PREFIX and the example config;
# the manual covers every command `quipu --help` lists.
qp_case install_layout
case_install_layout() {
	local root D f c
	root=$(cd "$QP_HERE/../.." && pwd)
	D=$QP_CASE_DIR/root
	make -s -C "$root" -o all install BIN="$QP_BIN" DESTDIR="$D" \
		PREFIX=/usr >"$QP_CASE_DIR/make.out" 2>&1 ||
		fail "make install: $(tail -n 5 "$QP_CASE_DIR/make.out")"
	for f in usr/bin/quipu usr/bin/quipud; do
		[ -x "$D/$f" ] || fail "$f not installed as an executable"
	done
	for f in usr/share/man/man1/quipu.1 usr/share/man/man8/quipud.8 \
		usr/lib/systemd/system/quipud.service \
		usr/share/doc/quipu/node.json.example; do
		[ -f "$D/$f" ] || fail "$f not installed"
	done
	grep -qx 'ExecStart=/usr/bin/quipud -d /var/lib/quipu' \
		"$D/usr/lib/systemd/system/quipud.service" ||
		fail "the unit's ExecStart is not under PREFIX"
	"$D/usr/bin/quipu" --version >/dev/null || fail "installed quipu does not run"
	python3 -c 'import json,sys; json.load(open(sys.argv[1]))' \
		"$D/usr/share/doc/quipu/node.json.example" ||
		fail "node.json.example is not JSON"
	if command -v groff >/dev/null 2>&1; then
		for f in usr/share/man/man1/quipu.1 usr/share/man/man8/quipud.8; do
			groff -man -ww -z -Tutf8 "$D/$f" >"$QP_CASE_DIR/groff.err" 2>&1 ||
				fail "groff failed on $f"
			[ -s "$QP_CASE_DIR/groff.err" ] &&
				fail "groff warns on $f: $(head -c 300 "$QP_CASE_DIR/groff.err")"
		done
	fi
	"$QUIPU" --help | sed -n '/^commands:/,/^$/p' | awk 'NF > 1 {print $1}' |
		grep -v '^commands:' >"$QP_CASE_DIR/commands"
	[ "$(grep -c . "$QP_CASE_DIR/commands")" -ge 20 ] || fail "could not read the command list"
	while read -r c; do
		grep -Eq "^(\\\\fB$c( [a-z]+)?\\\\fR|\\.B $c)( |\$)" "$D/usr/share/man/man1/quipu.1" ||
			fail "quipu.1 has no entry for $c"
	done <"$QP_CASE_DIR/commands"
}
