# lib.sh - helpers for quipu's integration tests; sourced by run.sh.
#
# Each case runs in its own subshell with its own temporary directory
# ($QP_CASE_DIR) and `set -e`.  A case fails by calling `fail MESSAGE` or by
# any command failing.  Every quipud started through qpd_start is recorded in
# $QP_ROOT/daemons so that the EXIT trap can kill whatever a case left
# running.  Everything a case prints goes to its log, which is kept only when
# the case fails.

QUIPU="$QP_BIN/quipu"
QUIPUD="$QP_BIN/quipud"
QP_PY="$QP_HERE/qptool.py"
QP_TIMEOUT=${QP_TIMEOUT:-60} # seconds any single quipu command may take

# ---------------------------------------------------------------------------
# Run-wide setup and cleanup

qp_root_init() {
	QP_ROOT=$(mktemp -d "${TMPDIR:-/tmp}/quipu-it.XXXXXX")
	: >"$QP_ROOT/daemons"
	QP_PASSED=0
	QP_FAILED=0
	QP_SKIPPED=0
	QP_FAILED_NAMES=""
	trap qp_cleanup EXIT
	trap 'exit 130' INT TERM
}

# Kill pid only while it is still a quipud (pids are reused).
qp_kill_quipud() {
	local pid=$1 comm
	comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 0
	case $comm in
	quipud*) kill -KILL "$pid" 2>/dev/null || true ;;
	esac
}

qp_cleanup() {
	local pid
	if [ -n "${QP_ROOT:-}" ] && [ -d "$QP_ROOT" ]; then
		while read -r pid; do
			[ -n "$pid" ] && qp_kill_quipud "$pid"
		done <"$QP_ROOT/daemons"
		rm -rf "$QP_ROOT"
	fi
}

# ---------------------------------------------------------------------------
# Cases

# run_case NAME FUNCTION: run one case, print PASS/FAIL, keep its logs on
# failure.
run_case() {
	local name=$1 fn=$2 dir log rc pidf keep
	dir="$QP_ROOT/$name"
	log="$QP_ROOT/$name.log"
	mkdir -p "$dir"
	(
		QP_CASE_DIR=$dir
		cd "$dir" || exit 1
		set -e
		"$fn"
	) >"$log" 2>&1 </dev/null
	rc=$?
	if [ "$rc" -eq 0 ] && [ -f "$dir/.failed" ]; then
		echo "FAIL (in a command substitution): $(head -n 1 "$dir/.failed")" >>"$log"
		rc=1
	fi
	# Whatever the case left running dies now.
	for pidf in "$dir"/*.qpd.pid; do
		[ -f "$pidf" ] && qp_kill_quipud "$(cat "$pidf")"
	done
	if [ "$rc" -eq 77 ] && [ -f "$dir/.skip" ]; then
		# The case cannot run here (no root, no netem...): says why.
		echo "SKIP $name: $(head -n 1 "$dir/.skip")"
		QP_SKIPPED=$((QP_SKIPPED + 1))
		rm -rf "$dir" "$log"
	elif [ "$rc" -eq 0 ]; then
		echo "PASS $name"
		QP_PASSED=$((QP_PASSED + 1))
		rm -rf "$dir" "$log"
	else
		echo "FAIL $name"
		QP_FAILED=$((QP_FAILED + 1))
		QP_FAILED_NAMES="$QP_FAILED_NAMES $name"
		# Keep the log and the case's files (daemon logs, inputs,
		# outputs, the node itself) for a post-mortem.
		keep=$(mktemp -d "${QP_KEEP:-${TMPDIR:-/tmp}}/quipu-it-$name.XXXXXX")
		cp "$log" "$keep/case.log"
		cp -a "$dir" "$keep/files" 2>/dev/null || true
		rm -f "$keep/files"/*/quipud.sock
		tail -n 25 "$log" | sed 's/^/    | /'
		echo "    logs kept in $keep"
	fi
}

# fail MESSAGE: the case failed.  Also from a command substitution whose
# status a test ignores ([ "$(f)" = x ]): the mark fails the case.
fail() {
	echo "FAIL: $*" >&2
	[ -z "${QP_CASE_DIR:-}" ] || echo "$*" >>"$QP_CASE_DIR/.failed"
	exit 1
}

# skip REASON: the case cannot run on this machine; counted as skipped.
skip() {
	echo "$*" >"$QP_CASE_DIR/.skip"
	echo "SKIP: $*" >&2
	exit 77
}

note() {
	echo "--- $*" >&2
}

# ---------------------------------------------------------------------------
# Running quipu

# qrun ARGS...: run quipu with a time limit; stdout to $QP_CASE_DIR/out,
# stderr to $QP_CASE_DIR/err, exit status in $RC.  Never fails itself.
qrun() {
	echo "+ quipu $*" >&2
	RC=0
	timeout "$QP_TIMEOUT" "$QUIPU" "$@" >"$QP_CASE_DIR/out" 2>"$QP_CASE_DIR/err" || RC=$?
	head -c 2000 "$QP_CASE_DIR/err" >&2
	echo "  (exit $RC)" >&2
	return 0
}

# q ARGS...: run quipu, which must succeed; prints its stdout.
q() {
	local rc=0
	timeout "$QP_TIMEOUT" "$QUIPU" "$@" 2>"$QP_CASE_DIR/q.err" || rc=$?
	if [ "$rc" -ne 0 ]; then
		cat "$QP_CASE_DIR/q.err" >&2
		fail "quipu $* exited $rc"
	fi
}

assert_rc() {
	[ "$RC" -eq "$1" ] || fail "expected exit $1, got $RC${2:+ ($2)}"
}

assert_err_has() {
	grep -qF -- "$1" "$QP_CASE_DIR/err" ||
		fail "stderr lacks '$1': $(head -c 500 "$QP_CASE_DIR/err")"
}

assert_out_has() {
	grep -qF -- "$1" "$QP_CASE_DIR/out" ||
		fail "stdout lacks '$1': $(head -c 500 "$QP_CASE_DIR/out")"
}

# The spec: errors are exactly one line on stderr starting with "quipu: ".
assert_err_one_line() {
	local n
	n=$(grep -c '' "$QP_CASE_DIR/err" || true)
	[ "$n" -eq 1 ] || fail "stderr has $n lines, want 1: $(head -c 500 "$QP_CASE_DIR/err")"
	grep -q '^quipu: ' "$QP_CASE_DIR/err" || fail "stderr does not start with 'quipu: '"
}

assert_eq() {
	[ "$1" = "$2" ] || fail "${3:-value}: got '$1', want '$2'"
}

is_id() {
	printf '%s' "$1" | grep -Eq '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
}

# add KIND JSON: add one record; prints its id.
add() {
	local id
	id=$(printf '%s\n' "$2" | q -d "$NODE" add "$1")
	is_id "$id" || fail "add $1 printed '$id', not an id"
	printf '%s\n' "$id"
}

py() {
	python3 "$QP_PY" "$@"
}

# state_digest DIR: the record-state digest of the node at DIR.
state_digest() {
	local d
	q -d "$1" status --json --digest >"$QP_CASE_DIR/digest.json"
	d=$(py find "$QP_CASE_DIR/digest.json" digest) || fail "no digest from $1"
	printf '%s' "$d" | grep -Eq '^[0-9a-f]{64}$' || fail "digest of $1 is '$d'"
	echo "$d"
}

# ---------------------------------------------------------------------------
# Nodes and daemons

# node_init DIR: `quipu init` a field node at DIR.
node_init() {
	local key
	key=$(q -d "$1" init)
	printf '%s' "$key" | grep -Eq '^[0-9a-f]{64}$' || fail "init printed '$key', not a key"
}

# qpd_start DIR [ARGS]: start quipud on DIR in the background and wait until
# it answers `quipu status`.  The log goes to DIR.qpd.log.
qpd_start() {
	local dir=$1 pid i
	shift
	echo "+ quipud -d $dir $*" >&2
	"$QUIPUD" -d "$dir" "$@" >>"$dir.qpd.log" 2>&1 &
	pid=$!
	echo "$pid" >"$dir.qpd.pid"
	echo "$pid" >>"$QP_ROOT/daemons"
	for i in $(seq 1 200); do
		if ! qpd_alive "$dir"; then
			tail -n 20 "$dir.qpd.log" >&2
			fail "quipud exited during start-up"
		fi
		if [ -S "$dir/quipud.sock" ] &&
			timeout 5 "$QUIPU" -d "$dir" status >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.05
	done
	fail "quipud did not answer within 10 s"
}

qpd_pid() {
	cat "$1.qpd.pid"
}

# qpd_alive DIR: the daemon process exists and is not a zombie.
qpd_alive() {
	local pid st
	pid=$(qpd_pid "$1")
	st=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1) || return 1
	[ -n "$st" ] && [ "$st" != Z ]
}

# qpd_stop DIR: SIGTERM, wait up to 10 s, then SIGKILL.  Sets QPD_STATUS to
# the daemon's exit status and QPD_KILLED=1 when SIGKILL was needed.
qpd_stop() {
	local dir=$1 pid i
	pid=$(qpd_pid "$dir")
	QPD_KILLED=0
	kill -TERM "$pid" 2>/dev/null || true
	for i in $(seq 1 200); do
		qpd_alive "$dir" || break
		sleep 0.05
	done
	if qpd_alive "$dir"; then
		QPD_KILLED=1
		kill -KILL "$pid" 2>/dev/null || true
	fi
	QPD_STATUS=0
	wait "$pid" 2>/dev/null || QPD_STATUS=$?
	echo "+ quipud stopped (exit $QPD_STATUS, killed $QPD_KILLED)" >&2
}

# qpd_kill9 DIR: crash the daemon.
qpd_kill9() {
	local pid
	pid=$(qpd_pid "$1")
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

# ---------------------------------------------------------------------------
# Data

# ruc BASE10: BASE10 (10 digits, prefix 10/15/17/20) plus its SUNAT check
# digit.
ruc() {
	local b=$1 s=0 i r
	local w="5 4 3 2 7 6 5 4 3 2"
	i=0
	for d in $w; do
		s=$((s + ${b:i:1} * d))
		i=$((i + 1))
	done
	r=$((11 - s % 11))
	[ "$r" -eq 10 ] && r=0
	[ "$r" -eq 11 ] && r=1
	printf '%s%s\n' "$b" "$r"
}

# status_num DIR KEY [SUBKEY]: a number from `quipu status --json`.
status_num() {
	local dir=$1
	shift
	q -d "$dir" status --json >"$QP_CASE_DIR/status.json"
	py find "$QP_CASE_DIR/status.json" "$@"
}

# count KIND [ARGS]: records listed for KIND on $NODE.
count() {
	q -d "$NODE" list "$@" >"$QP_CASE_DIR/count.out"
	grep -c . "$QP_CASE_DIR/count.out" || true
}
