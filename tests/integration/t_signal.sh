# t_signal.sh - SIGTERM stops quipud cleanly: exit 0, socket and pid file
# removed, data intact on restart, even with an idle client connected.

qp_case signal_sigterm
case_signal_sigterm() {
	local ORG P holder
	NODE=$QP_CASE_DIR/node
	node_init "$NODE"
	qpd_start "$NODE"
	[ -f "$NODE/quipud.pid" ] || fail "no quipud.pid while running"
	assert_eq "$(cat "$NODE/quipud.pid")" "$(qpd_pid "$NODE")" "quipud.pid content"
	ORG=$(add org '{"ruc":"'"$(ruc 2060123456)"'","name":"Cooperativa Ordenada","type":"cooperative"}')
	P=$(add producer '{"org":"'"$ORG"'","dni":"40123456","name":"Ana Poma","sex":"F"}')

	qpd_stop "$NODE"
	assert_eq "$QPD_KILLED" 0 "quipud needed SIGKILL"
	assert_eq "$QPD_STATUS" 0 "quipud exit status on SIGTERM"
	[ ! -e "$NODE/quipud.sock" ] || fail "socket left behind after SIGTERM"
	[ ! -e "$NODE/quipud.pid" ] || fail "pid file left behind after SIGTERM"

	# Restart: the data is there.
	qpd_start "$NODE"
	q -d "$NODE" get "$P" >/dev/null

	# An idle client holding a connection does not keep quipud alive.
	python3 -c 'import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
time.sleep(30)' "$NODE/quipud.sock" &
	holder=$!
	sleep 0.2
	qpd_stop "$NODE"
	kill "$holder" 2>/dev/null || true
	wait "$holder" 2>/dev/null || true
	assert_eq "$QPD_KILLED" 0 "quipud needed SIGKILL with a client connected"
	assert_eq "$QPD_STATUS" 0 "quipud exit status with a client connected"
	[ ! -e "$NODE/quipud.sock" ] || fail "socket left behind"

	# A stale socket file (as after a crash) does not stop a new start.
	qpd_start "$NODE"
	qpd_kill9 "$NODE"
	[ -e "$NODE/quipud.sock" ] || note "socket already gone after SIGKILL"
	qpd_start "$NODE"
	q -d "$NODE" get "$P" >/dev/null
	qpd_stop "$NODE"
	assert_eq "$QPD_STATUS" 0 "quipud exit status"
}
