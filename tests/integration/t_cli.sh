# t_cli.sh - command-line conventions (notes/cli.md): --help, usage errors,
# exit 3 without a daemon, init/id and the data directory resolution.

qp_case cli_help
case_cli_help() {
	local c
	qrun --help
	assert_rc 0 "quipu --help"
	[ -s out ] || fail "quipu --help printed nothing on stdout"
	for c in init id status add update void get list import export verify; do
		qrun "$c" --help
		assert_rc 0 "quipu $c --help"
		[ -s out ] || fail "quipu $c --help printed nothing on stdout"
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
