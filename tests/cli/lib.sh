# shellcheck shell=bash
# tests/cli/lib.sh - TAP helpers for the shell tests of the arbor tool.
#
# Source it, call the t_* checks (each prints exactly one "ok N - ..." or
# "not ok N - ..." line), and finish with t_done, which prints the plan.
# Environment: top_builddir (exported by make check) locates cli/arbor;
# ARBOR_TEST_SEED and ARBOR_TEST_SCALE tune the random work.  The scratch
# directory is removed when every check passed, kept otherwise.

set -u
export LC_ALL=C TZ=UTC

: "${top_builddir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
ARBOR=$top_builddir/cli/arbor
ARBOR_TEST_SEED=${ARBOR_TEST_SEED:-1}
ARBOR_TEST_SCALE=${ARBOR_TEST_SCALE:-1}

if [ ! -x "$ARBOR" ]; then
	echo "Bail out! $ARBOR is not built"
	exit 1
fi

T=$(mktemp -d "${TMPDIR:-/tmp}/arbor-test.XXXXXX") || {
	echo "Bail out! cannot create a scratch directory"
	exit 1
}
OUT=$T/stdout
ERR=$T/stderr
RC=0
t_count=0
t_failed=0

t_cleanup() {
	if [ "$t_failed" -eq 0 ]; then
		rm -rf "$T"
	else
		echo "# scratch directory kept: $T"
	fi
}
trap t_cleanup EXIT

# Print (the start of) a file as TAP diagnostics.
t_diag_file() {
	local lines
	[ -s "$1" ] || return 0
	sed -n 's/^/#   /; 1,40p' "$1"
	lines=$(wc -l <"$1")
	if [ "$lines" -gt 40 ]; then
		echo "#   ... $((lines - 40)) more lines in $1"
	fi
	return 0
}

# t_result STATUS DESCRIPTION: one TAP line; STATUS 0 is ok.
t_result() {
	t_count=$((t_count + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $t_count - $2"
		return 0
	fi
	t_failed=$((t_failed + 1))
	echo "not ok $t_count - $2"
	return 1
}

# t_run CMD...: run a command, keep its stdout, stderr and exit status.
t_run() {
	echo "# \$ $*"
	"$@" >"$OUT" 2>"$ERR"
	RC=$?
}

# t_rc EXPECTED DESCRIPTION CMD...: run CMD, check its exit status.
t_rc() {
	local want=$1 desc=$2
	shift 2
	t_run "$@"
	if [ "$RC" -eq "$want" ]; then
		t_result 0 "$desc"
		return 0
	fi
	t_result 1 "$desc"
	echo "#   exit status $RC, expected $want"
	t_diag_file "$OUT"
	t_diag_file "$ERR"
	return 1
}

# t_arbor EXPECTED DESCRIPTION ARGS...: t_rc on the arbor binary.
t_arbor() {
	local want=$1 desc=$2
	shift 2
	t_rc "$want" "$desc" "$ARBOR" "$@"
}

# t_grep DESCRIPTION ERE [FILE]: FILE (default: the last stdout) matches.
t_grep() {
	local file=${3:-$OUT}
	if grep -Eq -- "$2" "$file"; then
		t_result 0 "$1"
		return 0
	fi
	t_result 1 "$1"
	echo "#   no line matches: $2"
	t_diag_file "$file"
	return 1
}

# t_nogrep DESCRIPTION ERE [FILE]: no line of FILE matches.
t_nogrep() {
	local file=${3:-$OUT}
	if ! grep -Eq -- "$2" "$file"; then
		t_result 0 "$1"
		return 0
	fi
	t_result 1 "$1"
	echo "#   unexpected match: $2"
	t_diag_file "$file"
	return 1
}

# t_equal DESCRIPTION GOT EXPECTED
t_equal() {
	if [ "$2" = "$3" ]; then
		t_result 0 "$1"
		return 0
	fi
	t_result 1 "$1"
	echo "#   got '$2', expected '$3'"
	return 1
}

t_done() {
	echo "1..$t_count"
	[ "$t_failed" -eq 0 ]
}
