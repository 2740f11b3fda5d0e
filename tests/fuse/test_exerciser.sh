#!/bin/bash
# tests/fuse/test_exerciser.sh - differential test of arborfs: the
# exerciser (tests/fuse/exerciser) applies one random sequence of writes,
# holes, truncates, fallocate, renames, links, fsyncs... to a directory on
# an arborfs mount and to one on the host file system, compares them after
# every step, compares the whole trees every few hundred operations, and
# unmounts and remounts arborfs every EXERCISER_REMOUNT_EVERY operations.
# Then "engine check" on the image must be clean.  Prints TAP, with the
# rate (operations per second) and where the time went as comments; skips
# without root, /dev/fuse or fusermount3.
#
# ARBOR_TEST_SEED picks the first seed; ARBOR_TEST_SCALE multiplies the
# operations per seed (1: 2,000 operations and 3 seeds, well under a
# minute).  EXERCISER_OPS and EXERCISER_SEEDS override both.
# EXERCISER_REMOUNT_EVERY (300) sets the remount period; EXERCISER_ARGS
# adds exerciser options, for instance "--walk-every 100 --full-every 8"
# (check more), "--dense" (read holes too) or "--progress 10000" (a rate
# line on stderr every 10,000 operations, shown at the end).
#
# A long run, 10^6 operations on one seed (about 1,000 operations per
# second on two cores: a quarter of an hour), from the build tree:
#
#   EXERCISER_OPS=1000000 EXERCISER_SEEDS=1 ARBOR_TEST_SEED=42 \
#       make check TESTS=tests/fuse/test_exerciser.sh
#
# (a progress line every 50,000 operations is added by itself from 10^5
# operations on).  A divergence prints the seed and operation and the
# exerciser command that replays the sequence.

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
# word splitting wanted: options
read -r -a EXTRA <<<"${EXERCISER_ARGS:-}"
if [ "$OPS" -ge 100000 ]; then
	EXTRA=(--progress 50000 "${EXTRA[@]}")
fi
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
# Polls every 10 ms without a process per poll: a remount takes tens of
# milliseconds, and there are thousands of them in a long run.
exec {TICK}<> <(:)
nap() {
	read -r -t 0.01 -u "$TICK" _
}
# ST: the state letter in /proc/PID/stat, empty when PID is gone.
proc_state() {
	ST=
	read -r ST 2>/dev/null <"/proc/$1/stat" || return 0
	ST=${ST##*) }
	ST=${ST%% *}
}
# whether $1 is a mount point (mountinfo escapes blanks and backslashes)
mounted() {
	local want=$1 mp _
	want=${want//\\/\\134}
	want=${want// /\\040}
	want=${want//$'\t'/\\011}
	want=${want//$'\n'/\\012}
	while read -r _ _ _ _ mp _; do
		[ "$mp" = "$want" ] && return 0
	done </proc/self/mountinfo
	return 1
}
stop() {
	local pid i
	read -r pid <"$PIDF"
	fusermount3 -u "$MNT" || return 1
	for ((i = 0; i < 6000; i++)); do
		proc_state "$pid"
		[ -z "$ST" ] || [ "$ST" = Z ] && break
		nap
	done
	[ -z "$ST" ] || [ "$ST" = Z ] || { echo "mountctl: arborfs $pid still running" >&2; return 1; }
	flock -w 60 "$IMG" true || { echo "mountctl: $IMG still locked" >&2; return 1; }
}
start() {
	local i pid
	setsid "$ARBORFS" "$IMG" "$MNT" -f </dev/null >>"$DLOG" 2>&1 {TICK}>&- &
	pid=$!
	echo "$pid" >"$PIDF"
	for ((i = 0; i < 2000; i++)); do
		mounted "$MNT" && return 0
		kill -0 "$pid" 2>/dev/null || { echo "mountctl: arborfs exited" >&2; return 1; }
		nap
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

echo "# $SEEDS seeds from $ARBOR_TEST_SEED, $OPS operations each, remount every $REMOUNT_EVERY${EXTRA[*]:+, options ${EXTRA[*]}}"
for ((i = 0; i < SEEDS; i++)); do
	seed=$((ARBOR_TEST_SEED + i))
	mkdir -p "$MNT/s$seed" "$HOST/s$seed"
	start=$(date +%s)
	t_run "$EXERCISER" -s "$seed" -n "$OPS" --remount-every "$REMOUNT_EVERY" "${EXTRA[@]}" \
		--remount-cmd "'$T/mountctl' remount 2>>'$DLOG'" "$MNT/s$seed" "$HOST/s$seed"
	afs_pid
	t_equal "seed $seed: $OPS operations, arborfs and the host agree" "$RC" 0
	echo "# seed $seed: $(($(date +%s) - start)) s; $(head -n 1 "$OUT")"
	sed -n 's/^ *time:/# seed '"$seed"':/p' "$OUT"
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
