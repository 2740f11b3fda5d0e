#!/bin/bash
# tests/fuse/test_exerciser.sh - differential test of arborfs: the
# exerciser (tests/fuse/exerciser) applies one random sequence of writes,
# holes, truncates, fallocate, renames, links, fsyncs... to a directory on
# an arborfs mount and to one on the host file system, compares them after
# every step, and unmounts and remounts arborfs every few hundred
# operations.  Then "engine check" on the image must be clean.  Prints TAP;
# skips without root, /dev/fuse or fusermount3.
#
# ARBOR_TEST_SEED picks the first seed; ARBOR_TEST_SCALE multiplies the
# operations per seed (1: a few thousand, under a minute; 100: a long run).
# EXERCISER_OPS and EXERCISER_SEEDS override both.

# shellcheck source=tests/fuse/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

EXERCISER=$top_builddir/tests/fuse/exerciser
if [ ! -x "$EXERCISER" ]; then
	echo "Bail out! $EXERCISER is not built"
	exit 1
fi
if ! command -v flock >/dev/null; then
	echo "1..0 # SKIP flock is missing (package util-linux)"
	exit 0
fi

SEEDS=${EXERCISER_SEEDS:-3}
# ARBOR_TEST_SCALE may be fractional (0.1 for a quick run)
OPS=${EXERCISER_OPS:-$(awk -v s="$ARBOR_TEST_SCALE" 'BEGIN { n = int(2000 * s); print n < 100 ? 100 : n }')}
REMOUNT_EVERY=${EXERCISER_REMOUNT_EVERY:-300}
HOST=$T/host
PIDF=$T/arborfs.pid
mkdir -p "$HOST"
: >"$DLOG"

# The exerciser remounts through this helper (system() cannot wait for a
# daemon started here): "stop" unmounts and waits until the daemon has
# exited (gone or a zombie) and has let go of the image; "start" mounts and
# waits for the mount; "remount" does both.  The daemon runs in its own
# session with -f and appends to DLOG.
cat >"$T/mountctl" <<EOF
#!/bin/bash
IMG='$IMG' MNT='$MNT' PIDF='$PIDF' DLOG='$DLOG' ARBORFS='$ARBORFS'
EOF
cat >>"$T/mountctl" <<'EOF'
stop() {
	local pid i st
	pid=$(cat "$PIDF")
	fusermount3 -u "$MNT" || return 1
	for ((i = 0; i < 600; i++)); do
		st=$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null)
		[ -z "$st" ] || [ "$st" = Z ] && break
		sleep 0.1
	done
	[ -z "$st" ] || [ "$st" = Z ] || { echo "mountctl: arborfs $pid still running" >&2; return 1; }
	flock -w 60 "$IMG" true || { echo "mountctl: $IMG still locked" >&2; return 1; }
}
start() {
	local i pid
	setsid "$ARBORFS" "$IMG" "$MNT" -f </dev/null >>"$DLOG" 2>&1 &
	pid=$!
	echo "$pid" >"$PIDF"
	for ((i = 0; i < 200; i++)); do
		mountpoint -q "$MNT" && return 0
		kill -0 "$pid" 2>/dev/null || { echo "mountctl: arborfs exited" >&2; return 1; }
		sleep 0.1
	done
	echo "mountctl: no mount after 20 s" >&2
	return 1
}
case $1 in
start) start ;;
stop) stop ;;
remount) stop && start ;;
*) exit 2 ;;
esac
EOF
chmod +x "$T/mountctl"

# for lib.sh's cleanup: the daemon of the moment
afs_pid() {
	AFS_PID=$(cat "$PIDF" 2>/dev/null)
}

t_rc 0 "mkfs.arbor a 512 MiB image" "$MKFS" -q -s 512M "$IMG"
if ! "$T/mountctl" start 2>>"$DLOG"; then
	t_result 1 "mount the image"
	t_diag_file "$DLOG"
	t_done
	exit
fi
afs_pid
t_result 0 "mount the image"

echo "# $SEEDS seeds from $ARBOR_TEST_SEED, $OPS operations each, remount every $REMOUNT_EVERY"
for ((i = 0; i < SEEDS; i++)); do
	seed=$((ARBOR_TEST_SEED + i))
	mkdir -p "$MNT/s$seed" "$HOST/s$seed"
	start=$(date +%s)
	t_run "$EXERCISER" -s "$seed" -n "$OPS" --remount-every "$REMOUNT_EVERY" \
		--remount-cmd "'$T/mountctl' remount 2>>'$DLOG'" "$MNT/s$seed" "$HOST/s$seed"
	afs_pid
	t_equal "seed $seed: $OPS operations, arborfs and the host agree" "$RC" 0
	echo "# seed $seed: $(($(date +%s) - start)) s; $(head -n 1 "$OUT")"
	t_diag_file "$ERR"
	if [ "$RC" -ne 0 ]; then
		break
	fi
	if ! mountpoint -q "$MNT"; then
		break
	fi
	rm -rf "${HOST:?}/s$seed"
done

afs_pid
t_ok "unmount, the daemon exits" "$T/mountctl" stop
AFS_PID=
t_nogrep "the daemon logged no error" '^error:' "$DLOG"
t_engine_check "after the exerciser"
t_done
