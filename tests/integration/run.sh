#!/bin/bash
# run.sh - quipu's integration tests: real quipud and quipu processes.
#
# Usage: tests/integration/run.sh BINDIR [PATTERN...]
#   BINDIR    directory holding quipu and quipud (make check passes bin/)
#   PATTERN   run only the cases whose name contains one of the patterns
# Environment: QP_CRASH_ROUNDS (default 20), QP_KEEP (where logs of failed
# cases are kept; default $TMPDIR or /tmp), QP_TIMEOUT (per command, s).
#
# Each case is a function case_NAME in one of the t_*.sh files next to this
# script, registered with `qp_case NAME`.  Output: one `PASS NAME` or
# `FAIL NAME` line per case (`SKIP NAME: reason` for a case that cannot run
# here, e.g. sync_lossy without root or netem), then `integration: N passed,
# N failed, N skipped`.  The exit status is non-zero when any case failed.
set -u

QP_HERE=$(cd "$(dirname "$0")" && pwd)
if [ $# -lt 1 ] || [ ! -d "$1" ]; then
	echo "usage: $0 BINDIR [PATTERN...]" >&2
	exit 2
fi
QP_BIN=$(cd "$1" && pwd)
shift

for b in quipu quipud; do
	if [ ! -x "$QP_BIN/$b" ]; then
		echo "integration: $QP_BIN/$b missing (run make first)" >&2
		exit 2
	fi
done
for t in python3 timeout; do
	if ! command -v "$t" >/dev/null 2>&1; then
		echo "integration: $t is required" >&2
		exit 2
	fi
done

# The tests must not see a user's own node.
unset QUIPU_DATA
export XDG_DATA_HOME=/nonexistent-quipu-it
export LC_ALL=C

# shellcheck source=lib.sh
. "$QP_HERE/lib.sh"

QP_CASES=""
qp_case() {
	QP_CASES="$QP_CASES $1"
}

for f in "$QP_HERE"/t_*.sh; do
	# shellcheck disable=SC1090
	. "$f"
done

# Case subshells inherit these: fail on any failing command, also inside
# pipelines and command substitutions.
set -o pipefail
shopt -s inherit_errexit

qp_root_init

for c in $QP_CASES; do
	if [ $# -gt 0 ]; then
		match=0
		for p in "$@"; do
			case $c in *"$p"*) match=1 ;; esac
		done
		[ "$match" -eq 1 ] || continue
	fi
	run_case "$c" "case_$c"
done

echo "integration: $QP_PASSED passed, $QP_FAILED failed, $QP_SKIPPED skipped"
[ "$QP_FAILED" -eq 0 ]
