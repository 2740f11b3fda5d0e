# shellcheck shell=bash
# tests/fuse/unmount.sh - leave no mount and no daemon behind: shared by
# the TAP library (tests/fuse/lib.sh) and scripts that run outside it
# (tests/crash/run-crashcheck.sh).

# fuse_unmount_and_reap MNT PID: lazily unmount MNT if it is mounted, stop
# daemon PID (TERM, then KILL a second later) and wait for it.  Either
# argument may be empty.
fuse_unmount_and_reap() {
	local mnt=$1 pid=$2
	if [ -n "$mnt" ] && mountpoint -q "$mnt" 2>/dev/null; then
		fusermount3 -u -z "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null
	fi
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null
		sleep 1
		kill -KILL "$pid" 2>/dev/null
	fi
	if [ -n "$pid" ]; then
		wait "$pid" 2>/dev/null
	fi
	return 0
}
