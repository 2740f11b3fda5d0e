# shellcheck shell=bash
# tests/fuse/lib.sh - helpers for the arborfs tests: skip without FUSE,
# mount in the background, unmount and wait for the daemon, clean up every
# mount whatever happens.  On top of tests/cli/lib.sh (the t_* checks).
#
# Environment: top_builddir (exported by make check) locates fuse/arborfs,
# mkfs/mkfs.arbor and cli/arbor.

# 1..0 # SKIP when this machine cannot mount FUSE filesystems.
fuse_skip_unless_possible() {
	local why=
	if [ "$(id -u)" -ne 0 ]; then
		why="not root"
	elif [ ! -c /dev/fuse ]; then
		why="/dev/fuse is missing"
	elif ! command -v fusermount3 >/dev/null; then
		why="fusermount3 is missing (package fuse3)"
	elif ! command -v mountpoint >/dev/null; then
		why="mountpoint is missing (package util-linux)"
	fi
	if [ -n "$why" ]; then
		echo "1..0 # SKIP $why"
		exit 0
	fi
}

fuse_skip_unless_possible

# shellcheck source=tests/cli/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../cli/lib.sh"

ARBORFS=$top_builddir/fuse/arborfs
MKFS=$top_builddir/mkfs/mkfs.arbor
for prog in "$ARBORFS" "$MKFS"; do
	if [ ! -x "$prog" ]; then
		echo "Bail out! $prog is not built"
		exit 1
	fi
done

IMG=$T/arbor.img
MNT=$T/mnt
DLOG=$T/daemon.log
AFS_PID=
MOUNT_TIMEOUT=${MOUNT_TIMEOUT:-20}
mkdir -p "$MNT"

# shellcheck source=tests/fuse/unmount.sh
. "$(dirname "${BASH_SOURCE[0]}")/unmount.sh"

# Whatever happened: no mount and no daemon left behind.
fuse_cleanup() {
	fuse_unmount_and_reap "$MNT" "$AFS_PID"
	AFS_PID=
}
trap 'fuse_cleanup; t_cleanup' EXIT

# fuse_wait_gone PID SECONDS: 0 once PID has exited.
fuse_wait_gone() {
	fuse_poll "$2" pid_gone "$1"
}

pid_gone() {
	! kill -0 "$1" 2>/dev/null
}

# fuse_poll SECONDS CMD [ARGS...]: 0 as soon as CMD succeeds (tried every
# 0.1 s), 1 if it still fails after SECONDS.
fuse_poll() {
	local i secs=$1
	shift
	for ((i = 0; i < secs * 10; i++)); do
		"$@" && return 0
		sleep 0.1
	done
	return 1
}

# fuse_start [OPTIONS...]: start arborfs -f on IMG in the background and
# wait for the mount.  0 once mounted; the daemon's output goes to DLOG.
fuse_start() {
	local i
	echo "# \$ arborfs $IMG $MNT -f $*"
	"$ARBORFS" "$IMG" "$MNT" -f "$@" >>"$DLOG" 2>&1 &
	AFS_PID=$!
	for ((i = 0; i < MOUNT_TIMEOUT * 10; i++)); do
		if mountpoint -q "$MNT"; then
			return 0
		fi
		if ! kill -0 "$AFS_PID" 2>/dev/null; then
			wait "$AFS_PID" 2>/dev/null
			AFS_PID=
			return 1
		fi
		sleep 0.1
	done
	return 1
}

# t_mount DESCRIPTION [OPTIONS...]: a check that the mount came up.
t_mount() {
	local desc=$1
	shift
	if fuse_start "$@"; then
		t_result 0 "$desc"
		return 0
	fi
	t_result 1 "$desc"
	t_diag_file "$DLOG"
	return 1
}

# fuse_stop: unmount, then wait for the daemon (it commits after the
# kernel has let go); its exit status.
fuse_stop() {
	local rc
	fusermount3 -u "$MNT" 2>>"$DLOG" || return 1
	if [ -z "$AFS_PID" ]; then
		return 0
	fi
	if ! fuse_wait_gone "$AFS_PID" 60; then
		kill -KILL "$AFS_PID" 2>/dev/null
	fi
	wait "$AFS_PID"
	rc=$?
	AFS_PID=
	return "$rc"
}

# t_umount DESCRIPTION: unmount and the daemon exits 0.
t_umount() {
	if fuse_stop; then
		t_result 0 "$1"
		return 0
	fi
	t_result 1 "$1"
	t_diag_file "$DLOG"
	return 1
}

# fuse_kill9: the daemon dies without a word; the mount is detached lazily.
fuse_kill9() {
	kill -KILL "$AFS_PID" 2>/dev/null
	wait "$AFS_PID" 2>/dev/null
	AFS_PID=
	fusermount3 -u -z "$MNT" 2>/dev/null
	mountpoint -q "$MNT" && umount -l "$MNT"
	return 0
}

# t_engine_check DESCRIPTION: "arbor engine check" on IMG is clean.
t_engine_check() {
	t_arbor 0 "$1: engine check exits 0" -i "$IMG" engine check
	t_grep "$1: engine check is clean" '^clean$'
}

# t_errno DESCRIPTION ERE CMD...: CMD fails with a message matching ERE.
t_fails() {
	local desc=$1 ere=$2
	shift 2
	t_run "$@"
	if [ "$RC" -ne 0 ] && grep -Eq -- "$ere" "$ERR"; then
		t_result 0 "$desc"
		return 0
	fi
	t_result 1 "$desc"
	echo "#   exit status $RC, expected a failure matching: $ere"
	t_diag_file "$ERR"
	return 1
}

# t_ok DESCRIPTION CMD...: CMD exits 0.
t_ok() {
	local desc=$1
	shift
	t_rc 0 "$desc" "$@"
}

# Drop clean page cache pages, so reads reach the daemon (best effort).
drop_caches() {
	sync
	echo 3 >/proc/sys/vm/drop_caches 2>/dev/null
	return 0
}

have_python() {
	command -v python3 >/dev/null
}

# t_skip REASON: a visible skipped check.
t_skip() {
	t_count=$((t_count + 1))
	echo "ok $t_count # SKIP $1"
}
