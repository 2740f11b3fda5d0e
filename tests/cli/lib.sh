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

# ---- subvolume diffs against host trees (test_subvol.sh, offline and online) ----

# host_list DIR: every path below DIR, from "/", sorted as strcmp sorts.
host_list() {
	(cd "$1" && find . -mindepth 1 | sed 's|^\.||' | LC_ALL=C sort)
}

# host_changed OLD NEW PATH: 0 if PATH, in both trees, changed: another
# type, other bytes, or a directory whose entries changed (its mtime:
# OLD is a cp -a copy, so only a change of entries moves it).
host_changed() {
	local a=$1$3 b=$2$3 da=0 db=0
	[ -d "$a" ] && da=1
	[ -d "$b" ] && db=1
	if [ "$da" != "$db" ]; then
		return 0
	fi
	if [ "$da" = 1 ]; then
		[ "$(stat -c %y "$a")" != "$(stat -c %y "$b")" ]
		return
	fi
	! cmp -s "$a" "$b"
}

# host_diff OLD NEW: the lines "arbor diff" must print from tree OLD to
# tree NEW, found by brute force: every path of both, compared.
host_diff() {
	local p
	host_list "$1" >"$T/hd.a"
	host_list "$2" >"$T/hd.b"
	{
		comm -23 "$T/hd.a" "$T/hd.b" | sed 's/^/D /'
		comm -13 "$T/hd.a" "$T/hd.b" | sed 's/^/A /'
		comm -12 "$T/hd.a" "$T/hd.b" | while IFS= read -r p; do
			if host_changed "$1" "$2" "$p"; then
				echo "C $p"
			fi
		done
	} | LC_ALL=C sort -k2
}

# host_tree DIR NDIRS NFILES: a tree of NDIRS directories (one nested) with
# NFILES small random files each, plus files at the top, and /stable/f and
# /stable/g that random_changes leaves alone.
host_tree() {
	local d f
	mkdir -p "$1/stable"
	echo f >"$1/stable/f"
	echo g >"$1/stable/g"
	for ((d = 0; d < $2; d++)); do
		mkdir -p "$1/d$d/sub"
		for ((f = 0; f < $3; f++)); do
			head -c $((RANDOM % 9000 + 1)) /dev/urandom >"$1/d$d/f$f"
		done
		head -c 100 /dev/urandom >"$1/d$d/sub/deep"
	done
	for ((f = 0; f < $3; f++)); do
		head -c $((RANDOM % 3000 + 1)) /dev/urandom >"$1/top$f"
	done
}

# random_changes DIR N LOG: N random changes to host tree DIR (never below
# /stable, which host_tree makes for changes of a known kind), logged for
# replay_changes as "write PATH DATA", "rm PATH", "rmr PATH", "mkdir PATH"
# and "mv OLD NEW" lines (DATA: a file under $T/data).  Seeded by
# ARBOR_TEST_SEED.
random_changes() {
	local h=$1 n=$2 log=$3 i f d files dirs
	RANDOM=$ARBOR_TEST_SEED
	mkdir -p "$T/data"
	: >"$log"
	for ((i = 0; i < n; i++)); do
		mapfile -t files < <(cd "$h" && find . -type f | sed 's|^\.||' | grep -v '^/stable' | LC_ALL=C sort)
		mapfile -t dirs < <(cd "$h" && find . -mindepth 1 -type d | sed 's|^\.||' | grep -v '^/stable' | LC_ALL=C sort)
		dirs+=("")
		f=${files[RANDOM % (${#files[@]} + 1)]:-}
		d=${dirs[RANDOM % ${#dirs[@]}]}
		head -c $((RANDOM % 20000 + 1)) /dev/urandom >"$T/data/$i"
		case $((RANDOM % 6)) in
		0) [ -n "$f" ] && echo "write $f $T/data/$i" ;;
		1) [ -n "$f" ] && echo "rm $f" ;;
		2) echo "write $d/n$i $T/data/$i" ;;
		3) printf 'mkdir %s\nwrite %s %s\n' "$d/m$i" "$d/m$i/x" "$T/data/$i" ;;
		4) [ -n "$d" ] && [ "${#dirs[@]}" -gt 4 ] && echo "rmr $d" ;;
		5) [ -n "$f" ] && [ -e "$h${d}" ] && echo "mv $f $d/r$i" ;;
		esac >"$T/op"
		cat "$T/op" >>"$log"
		replay_changes host "$h" <"$T/op"
	done
}

# replay_changes KIND ROOT < LOG: apply logged changes below ROOT, on the
# host (KIND host: ROOT is a directory, also a mounted subvolume) or in an
# image (KIND IMAGE-FILE: ROOT is an absolute path in it).
replay_changes() {
	local kind=$1 root=$2 op a b
	while read -r op a b; do
		if [ "$kind" = host ]; then
			case $op in
			write) cp "$b" "$root$a" ;;
			rm) rm "$root$a" ;;
			rmr) rm -r "$root$a" ;;
			mkdir) mkdir "$root$a" ;;
			mv) mv "$root$a" "$root$b" ;;
			esac
		else
			case $op in
			write) "$ARBOR" -i "$kind" put "$b" "$root$a" ;;
			rm) "$ARBOR" -i "$kind" rm "$root$a" ;;
			rmr) "$ARBOR" -i "$kind" rm -r "$root$a" ;;
			mkdir) "$ARBOR" -i "$kind" mkdir "$root$a" ;;
			mv) "$ARBOR" -i "$kind" mv "$root$a" "$root$b" ;;
			esac
		fi || return 1
	done
}

# json_diff_lines: the JSON array of a diff (stdin) as "K PATH" lines.
json_diff_lines() {
	python3 -c 'import json, sys
for o in json.load(sys.stdin):
    print(o["change"], o["path"])'
}
