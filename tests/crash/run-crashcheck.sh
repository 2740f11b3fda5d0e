#!/bin/bash
# tests/crash/run-crashcheck.sh - crash consistency end to end (issue #7).
#
# run-crashcheck.sh [--long] [--workloads W,...] [--dir DIR] [--seed S]
#                   [--max-states N] [--keep]
#
# For each workload: a fresh image (mkfs.arbor), a copy of it (the base),
# arborfs mounted on it recording every device write and flush
# (-o record=LOG,commit=1), tests/crash/crashwork running the workload and
# writing the oracle, the unmount (the daemon must exit 0), fsck.arbor -n
# of the final image, and tests/crash/crashcheck, which replays the log
# into crash states and checks each against the oracle.  Prints a table
# (workload, events, states, failures, seconds) and exits 1 if anything
# failed, 2 on a usage error.  A workload whose tool (sqlite3, git) is
# missing is skipped, with the reason in the table.
#
# The default (short) mode is what make check runs through test_crash.sh:
# a few hundred states per workload, a handful of them also checked with
# the real fsck.arbor and a real mount.  --long (make crashcheck) runs more
# operations, more states (over 100,000 in all) and commit timer
# variations.  A workload may carry mount options: files@commit=30.
#
# Each workload works in DIR/NAME (image, base, log, oracle, the outputs).
# Without --dir a scratch directory is used, removed when everything
# passed (or with --keep, kept).  Needs root, /dev/fuse and fusermount3.
#
# Environment: top_builddir (the build tree; default: this script's
# ../..), ARBOR_TEST_SEED (the default seed), MOUNT_TIMEOUT (seconds),
# CRASHCHECK (another build of the checker).

set -u
export LC_ALL=C TZ=UTC

: "${top_builddir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
export top_builddir
ARBORFS=$top_builddir/fuse/arborfs
MKFS=$top_builddir/mkfs/mkfs.arbor
FSCK=$top_builddir/fsck/fsck.arbor
CRASHWORK=$top_builddir/tests/crash/crashwork
CRASHCHECK=${CRASHCHECK:-$top_builddir/tests/crash/crashcheck}
MOUNT_TIMEOUT=${MOUNT_TIMEOUT:-20}

SHORT_WORKLOADS=files,rename,dirsync,links,trunc,sqlite-wal,sqlite-journal,git,snapshot,full
LONG_EXTRA=files@commit=5,files@commit=60,rename@commit=30,trunc@commit=30

long=0
workloads=
dir=
keep=0
seed=${ARBOR_TEST_SEED:-1}
max_states=

# usage [STATUS]: the synopsis; on stderr for a usage error (status 2).
usage() {
	if [ "${1:-2}" = 0 ]; then
		sed -n 's/^# \{0,1\}//; 4,5p' "$0"
		exit 0
	fi
	sed -n 's/^# \{0,1\}//; 4,5p' "$0" >&2
	exit 2
}

# need_arg OPTION COUNT: an option that takes a value has one.
need_arg() {
	[ "$2" -ge 2 ] || usage
}

while [ $# -gt 0 ]; do
	case $1 in
	--long) long=1 ;;
	--keep) keep=1 ;;
	-h | --help) usage 0 ;;
	--workloads | --dir | --seed | --max-states)
		need_arg "$1" $#
		case $1 in
		--workloads) workloads=$2 ;;
		--dir) dir=$2 ;;
		--seed) seed=$2 ;;
		--max-states) max_states=$2 ;;
		esac
		shift
		;;
	*) usage ;;
	esac
	shift
done

if [ -z "$workloads" ]; then
	workloads=$SHORT_WORKLOADS
	[ "$long" = 1 ] && workloads=$SHORT_WORKLOADS,$LONG_EXTRA
fi

for prog in "$ARBORFS" "$MKFS" "$FSCK" "$CRASHWORK" "$CRASHCHECK"; do
	if [ ! -x "$prog" ]; then
		echo "run-crashcheck: $prog is not built" >&2
		exit 2
	fi
done
if [ "$(id -u)" -ne 0 ] || [ ! -c /dev/fuse ] || ! command -v fusermount3 >/dev/null; then
	echo "run-crashcheck: needs root, /dev/fuse and fusermount3" >&2
	exit 2
fi

scratch=0
if [ -z "$dir" ]; then
	dir=$(mktemp -d "${TMPDIR:-/tmp}/arbor-crash.XXXXXX") || exit 2
	scratch=1
fi
mkdir -p "$dir" || exit 2

# shellcheck source=tests/fuse/unmount.sh
. "$(dirname "${BASH_SOURCE[0]}")/../fuse/unmount.sh"

MNT=
AFS_PID=
failed=0

# Whatever happens: no mount and no daemon left behind.
# shellcheck disable=SC2317 # called by the trap
cleanup() {
	fuse_unmount_and_reap "$MNT" "$AFS_PID"
	AFS_PID=
	if [ "$scratch" = 1 ]; then
		if [ "$failed" = 0 ] && [ "$keep" = 0 ]; then
			rm -rf "$dir"
		else
			echo "run-crashcheck: kept $dir"
		fi
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- budgets ------------------------------------------------------------------------

# The image size of a workload: full wants a small one that fills fast.
image_size() {
	case $1 in
	full) echo 24M ;;
	sqlite-* | git | snapshot) echo 64M ;;
	*) echo 32M ;;
	esac
}

# Operations of a workload (those that run tools are slow: fewer of them,
# and --long multiplies them less).
ops_of() {
	local n scale=16
	case $1 in
	git) n=6 scale=4 ;;
	sqlite-*) n=12 scale=8 ;;
	snapshot) n=16 scale=8 ;;
	full) n=60 ;;
	*) n=30 ;;
	esac
	[ "$long" = 1 ] && n=$((n * scale))
	echo "$n"
}

# crashcheck's budget: states (a power cut after every event, plus
# --subsets reordered states per flush epoch, thinned to --max-states),
# and every how many states the real tools (fsck.arbor, a real mount)
# check one too: a handful per workload.  git's states are slow (each
# copies the repository out and runs git fsck): fewer of them.
check_budget() {
	local states=300 every=75 subsets=4
	if [ "$long" = 1 ]; then
		states=12000 every=1000 subsets=12
		[ "$1" = git ] && states=3000 every=300
	fi
	[ -n "$max_states" ] && states=$max_states
	echo "--max-states $states --tools-every $every --subsets $subsets"
}

# ---- one workload ------------------------------------------------------------------------

# wait_mount DIR PID: 0 once DIR is a mount point, 1 if PID died or timed out.
wait_mount() {
	local i
	for ((i = 0; i < MOUNT_TIMEOUT * 10; i++)); do
		mountpoint -q "$1" && return 0
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# stop_daemon: unmount MNT, wait for the daemon; its exit status.
stop_daemon() {
	local i rc
	fusermount3 -u "$MNT" || return 1
	for ((i = 0; i < 600; i++)); do
		kill -0 "$AFS_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$AFS_PID" 2>/dev/null && kill -KILL "$AFS_PID"
	wait "$AFS_PID"
	rc=$?
	AFS_PID=
	return "$rc"
}

# row NAME EVENTS STATES FAILED SECONDS RESULT: one line of the table.
row() {
	printf '%-22s %8s %8s %7s %8s  %s\n' "$@"
}

# record_with WORK OPTS: mount W/img on MNT recording into W/log, run
# the workload (oracle W/oracle), unmount, fsck -n the final image.  0 ok,
# 77 skipped, 1 failed (the reason in $why).
record_with() {
	local work=$1 opts=$2 rc
	"$ARBORFS" "$W/img" "$MNT" -f -o "record=$W/log,commit=1$opts" >"$W/daemon.log" 2>&1 &
	AFS_PID=$!
	if ! wait_mount "$MNT" "$AFS_PID"; then
		why="the mount did not come up (see $W/daemon.log)"
		return 1
	fi
	"$CRASHWORK" "$work" "$MNT" "$W/oracle" "$W/log" --ops "$(ops_of "$work")" \
		--seed "$seed" >"$W/work.out" 2>&1
	rc=$?
	if ! stop_daemon; then
		why="arborfs did not exit 0 after the unmount (see $W/daemon.log)"
		return 1
	fi
	if [ "$rc" = 77 ]; then
		why=$(sed -n 's/^crashwork: [^:]*: skipped: //p' "$W/work.out" | head -n 1)
		return 77
	fi
	if [ "$rc" != 0 ]; then
		why="crashwork exited $rc: $(tail -n 1 "$W/work.out")"
		return 1
	fi
	if ! "$FSCK" -n "$W/img" >"$W/fsck.out" 2>&1; then
		why="fsck.arbor -n of the final image failed (see $W/fsck.out)"
		return 1
	fi
	return 0
}

# run_one SPEC: SPEC is WORKLOAD or WORKLOAD@MOUNT_OPTIONS.
run_one() {
	local spec=$1 work=${1%%@*} opts='' t0 rc line states events nfail secs
	[ "$spec" != "$work" ] && opts=,${spec#*@}
	W=$dir/$spec
	MNT=$W/mnt
	why=
	t0=$(date +%s.%N)
	rm -rf "$W"
	mkdir -p "$MNT"
	if ! "$MKFS" -q -s "$(image_size "$work")" "$W/img" >"$W/mkfs.out" 2>&1; then
		row "$spec" - - - - "FAILED: mkfs.arbor (see $W/mkfs.out)"
		return 1
	fi
	cp --sparse=always "$W/img" "$W/base"
	record_with "$work" "$opts"
	rc=$?
	if [ "$rc" = 77 ]; then
		row "$spec" - - - - "skipped: $why"
		return 0
	fi
	if [ "$rc" != 0 ]; then
		row "$spec" - - - - "FAILED: $why"
		return 1
	fi
	# shellcheck disable=SC2046 # the budget is several words
	"$CRASHCHECK" --name "$spec" --seed "$seed" --keep-failed "$W/failed" \
		$(check_budget "$work") "$W/base" "$W/log" "$W/oracle" >"$W/check.out" 2>&1
	rc=$?
	secs=$(echo "$t0 $(date +%s.%N)" | awk '{ printf "%.1f", $2 - $1 }')
	line=$(grep '^crashcheck: .* states (' "$W/check.out" | tail -n 1)
	states=$(echo "$line" | sed -n 's/.*: \([0-9]*\) states (.*/\1/p')
	nfail=$(echo "$line" | sed -n 's/.*, \([0-9]*\) failed;.*/\1/p')
	events=$(echo "$line" | sed -n 's/.*; \([0-9]*\) events (.*/\1/p')
	if [ "$rc" = 0 ]; then
		row "$spec" "${events:--}" "${states:--}" "${nfail:--}" "$secs" ok
		return 0
	fi
	row "$spec" "${events:--}" "${states:--}" "${nfail:--}" "$secs" \
		"FAILED: crashcheck exited $rc (see $W/check.out)"
	return 1
}

row workload events states failed seconds result
IFS=, read -r -a list <<<"$workloads"
for spec in "${list[@]}"; do
	[ -n "$spec" ] || continue
	run_one "$spec" || failed=1
done
exit "$failed"
