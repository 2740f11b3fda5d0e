#!/bin/bash
# tests/fuse/test_enospc.sh - a full Arbor keeps working (issue #8): small
# images filled to ENOSPC through a real arborfs mount.
#
#   dd       the issue itself: dd of /dev/urandom onto a 256 MiB image stops
#            with ENOSPC from write(2), within a bound; the same with
#            fillfs: the cached file holds what it wrote, up to where the
#            write-back failed (no hole, no larger than the image)
#   wronly   one big O_WRONLY file (fsync every 4 MiB): only ENOSPC, below
#            the write-back headroom from write(2) itself (direct I/O),
#            which leaves the file as it was; every fsync'ed byte intact,
#            also after a remount
#   rdwr     the same with O_RDWR (cached): ENOSPC from write, fsync or
#            close; then without fsyncs: write(2) fails once the kernel's
#            write-back failed, and fsync reports the lost write-back
#   df       Avail of an empty filesystem is writable (less a small
#            slack), Used never exceeds Size, and rm gives it all back
#   small    small files until ENOSPC, all intact; rm -rf at full
#   snap     snapshots made exclusive by overwrites until ENOSPC; at full a
#            snapshot is refused for lack of space, while rm -rf and
#            subvolume delete work and give everything back
#   parallel 4 writers (O_WRONLY and O_RDWR) on a nearly full filesystem
#
# After each: unmount (the daemon exits 0) and fsck.arbor -n is clean.
# Every fill is bounded (tests/fuse/fillfs --limit, dd count=, timeout):
# a filesystem that never says ENOSPC fails the test instead of hanging
# it.  ENOSPC_SLACK (bytes) overrides the df slack; ENOSPC_TIMEOUT the
# time allowed to each fill.  Prints TAP; skips without root, /dev/fuse
# or fusermount3.

# shellcheck source=tests/fuse/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

FILLFS=$top_builddir/tests/fuse/fillfs
FSCK=$top_builddir/fsck/fsck.arbor
for prog in "$FILLFS" "$FSCK"; do
	if [ ! -x "$prog" ]; then
		echo "Bail out! $prog is not built"
		exit 1
	fi
done
for prog in timeout df stat; do
	if ! command -v "$prog" >/dev/null; then
		echo "1..0 # SKIP $prog is missing (package coreutils)"
		exit 0
	fi
done

MIB=1048576
TIMEOUT=${ENOSPC_TIMEOUT:-300}
# a file of (Avail of the empty filesystem - SLACK) bytes must fit; the
# smallest slack that works, measured: 1.14 MiB on 128 MiB (0.9%; cached
# write-back in 1 MiB requests), 0.41 MiB with direct I/O (64 MiB)
SLACK=${ENOSPC_SLACK:-$((3 * MIB / 2))}
IMGSIZE=0

# ---- helpers ------------------------------------------------------------------------

# new_image SIZE_MIB: a fresh image of that size at IMG.
new_image() {
	rm -f "$IMG"
	IMGSIZE=$(($1 * MIB))
	"$MKFS" -q -s "$1M" "$IMG"
}

# df_field FIELD: size, used or avail of the mount, in bytes.
df_field() {
	df -B1 --output="$1" "$MNT" | tail -n 1 | tr -d ' '
}

avail() {
	df_field avail
}

# t_df_sane WHAT: df's figures add up: Used <= Size, Avail <= Size - Used.
t_df_sane() {
	local size used av
	read -r size used av < <(df -B1 --output=size,used,avail "$MNT" | tail -n 1)
	echo "# df $1: size $size, used $used, avail $av"
	t_equal "$1: df Used <= Size, Avail <= Size - Used" \
		"$((used <= size && av <= size - used))" 1
}

# wait_avail AVAIL SECONDS: 0 once df shows AVAIL bytes available again
# (the commit that frees the space may take a moment).
avail_at_least() {
	[ "$(avail)" -ge "$1" ]
}

wait_avail() {
	fuse_poll "$2" avail_at_least "$1" && return 0
	echo "#   avail is $(avail), expected $1"
	return 1
}

# kv KEY: the value of KEY=VALUE in the last fillfs output ($OUT).
kv() {
	grep -o "\\b$1=[^ ]*" "$OUT" | head -n 1 | cut -d= -f2
}

# early AT: "open or write" for those two, else AT (fsync, close): where an
# O_WRONLY writer below the headroom must meet ENOSPC.
early() {
	case $1 in
	open | write) echo "open or write" ;;
	*) echo "$1" ;;
	esac
}

# fill DESCRIPTION ARGS...: a fillfs run that must exit 0 (only ENOSPC,
# within its bound and the timeout); its output line as a comment.
fill() {
	local desc=$1 ok
	shift
	t_rc 0 "$desc" timeout -k 10 "$TIMEOUT" "$FILLFS" "$@"
	ok=$?
	# (a failed check has shown it already)
	[ "$ok" -eq 0 ] && sed 's/^/#   fillfs: /' "$OUT"
	return "$ok"
}

# t_finish WHAT: unmount (the daemon exits 0), then fsck.arbor -n is clean.
t_finish() {
	t_umount "$1: unmount, the daemon exits 0"
	t_rc 0 "$1: fsck.arbor -n is clean" "$FSCK" -n "$IMG"
}

# The kernel's dirty limit for this mount (its bdi: FUSE limits it to a
# share of the global threshold), in bytes.
dirty_limit() {
	local bdi thresh ratio
	bdi=/sys/class/bdi/$(mountpoint -d "$MNT")
	if [ -r "$bdi/max_bytes" ] && [ "$(cat "$bdi/max_bytes")" -gt 0 ]; then
		cat "$bdi/max_bytes"
		return
	fi
	# no max_bytes (before Linux 6.2): from the global threshold, at most
	# 128 MiB (what arborfs assumes then)
	thresh=$(awk '$1 == "nr_dirty_threshold" { print $2 }' /proc/vmstat)
	ratio=$(cat "$bdi/max_ratio" 2>/dev/null || echo 100)
	thresh=$((${thresh:-0} * 4096 * ratio / 100))
	echo $((thresh < 128 * MIB ? thresh : 128 * MIB))
}

# cached_bound: how far a cached writer may get past a full image before
# the kernel's write-back, and so its ENOSPC, catches up with it.
cached_bound() {
	echo $((IMGSIZE + 2 * $(dirty_limit) + 32 * MIB))
}

# below_headroom AVAIL: 0 when a file opened with AVAIL bytes free is
# surely below the write-back headroom (about twice the dirty limit), so
# that arborfs opens O_WRONLY files with direct I/O.
below_headroom() {
	[ "$1" -lt $(($(dirty_limit) * 3 / 2)) ]
}

# above_headroom AVAIL: 0 when it is surely above: O_WRONLY files cached.
above_headroom() {
	[ "$1" -gt $(($(dirty_limit) * 3 + 32 * MIB)) ]
}

# ---- dd: the issue's own case ----------------------------------------------------------

# A file opened while space is plenty is cached: the writer must learn of
# the failed write-back from write(2), and nothing the write-back could not
# store may leave the file larger than the image or with a hole.
test_dd() {
	local bound size
	new_image 256 || return 1
	t_mount "dd: mount a 256 MiB image" || return 1
	echo "# the kernel's dirty limit for this mount: $(dirty_limit) bytes"
	bound=$(cached_bound)
	t_fails "dd: dd bs=1M of /dev/urandom stops with ENOSPC from write(2) (within $((bound / MIB)) MiB)" \
		'error writing .*No space left on device' \
		timeout -k 10 "$TIMEOUT" dd if=/dev/urandom of="$MNT/dd" bs=1M count=$((bound / MIB)) \
		status=noxfer
	t_diag_file "$ERR"
	t_df_sane "dd: at ENOSPC"
	t_finish "dd" || return 1
	t_mount "dd: remount" || return 1
	size=$(stat -c %s "$MNT/dd")
	echo "# dd: the file holds $size bytes"
	t_equal "dd: the file is no larger than the image" "$((size <= IMGSIZE))" 1
	t_ok "dd: rm at full" rm "$MNT/dd"
	t_ok "dd: sync DIR" sync "$MNT"
	fill "dd: the same with fillfs (O_WRONLY, 1 MiB writes, no fsync): ENOSPC only" \
		big "$MNT/big" "$MIB" 0 --limit "$bound"
	t_equal "dd: from write(2)" "$(kv at)" write
	if below_headroom "$(kv avail)"; then
		t_equal "dd: (opened below the headroom) the fsync after it succeeds" "$(kv fsync)" ok
	elif above_headroom "$(kv avail)"; then
		t_equal "dd: (opened cached) the fsync after it reports the lost write-back" \
			"$(kv fsync)" ENOSPC
	else
		t_skip "dd: $(kv avail) bytes free at open is too close to the headroom to tell"
	fi
	drop_caches
	t_ok "dd: the file holds the pattern, no hole, no other byte" "$FILLFS" verify "$MNT/big" 0
	sed 's/^/#   /' "$OUT"
	t_finish "dd" || return 1
	t_mount "dd: remount" || return 1
	t_ok "dd: after the remount too" "$FILLFS" verify "$MNT/big" 0
	sed 's/^/#   /' "$OUT"
	t_equal "dd: the file is no larger than the image" \
		"$(($(stat -c %s "$MNT/big") <= IMGSIZE))" 1
	t_ok "dd: rm at full" rm "$MNT/big"
	t_finish "dd"
}

# ---- wronly: one big O_WRONLY file -------------------------------------------------

test_wronly() {
	local durable written size av at
	new_image 64 || return 1
	t_mount "wronly: mount a 64 MiB image" || return 1
	fill "wronly: an O_WRONLY writer (fsync every 4 MiB) ends with ENOSPC, nothing else, within the image size" \
		big "$MNT/big" "$MIB" $((4 * MIB)) --limit "$IMGSIZE"
	durable=$(kv durable) written=$(kv written) size=$(kv size) av=$(kv avail) at=$(kv at)
	if [ -n "$av" ] && below_headroom "$av"; then
		t_equal "wronly: below the headroom, write(2) itself says ENOSPC" "$at" write
		t_equal "wronly: and the fsync after it succeeds" "$(kv fsync)" ok
		t_equal "wronly: the file holds exactly what write(2) accepted" "$size" "$written"
	else
		t_skip "wronly: ${av:-?} bytes free at open is not surely below the headroom ($(dirty_limit) dirty limit)"
	fi
	t_df_sane "wronly: at ENOSPC"
	drop_caches
	t_ok "wronly: every fsync'ed byte is intact, no other byte in the file" \
		"$FILLFS" verify "$MNT/big" "${durable:-0}"
	t_finish "wronly" || return 1
	t_mount "wronly: remount" || return 1
	t_ok "wronly: after the remount too" "$FILLFS" verify "$MNT/big" "${durable:-0}"
	sed 's/^/#   /' "$OUT"
	size=$(stat -c %s "$MNT/big")
	t_equal "wronly: the file is no larger than the image" "$((size <= IMGSIZE))" 1
	if [ -n "$av" ] && below_headroom "$av"; then
		t_equal "wronly: and holds what write(2) accepted" "$size" "$written"
	fi
	t_ok "wronly: rm at full" rm "$MNT/big"
	t_finish "wronly"
}

# ---- rdwr: the same through the page cache ----------------------------------------------

test_rdwr() {
	local durable bound
	new_image 64 || return 1
	t_mount "rdwr: mount a 64 MiB image" || return 1
	fill "rdwr: an O_RDWR writer (fsync every 4 MiB) ends with ENOSPC, nothing else, within the image size" \
		big "$MNT/big" "$MIB" $((4 * MIB)) --rdwr --limit "$IMGSIZE"
	durable=$(kv durable)
	t_df_sane "rdwr: at ENOSPC"
	drop_caches
	t_ok "rdwr: every fsync'ed byte is intact, no other byte in the file" \
		"$FILLFS" verify "$MNT/big" "${durable:-0}"
	t_finish "rdwr" || return 1
	t_mount "rdwr: remount" || return 1
	t_ok "rdwr: after the remount too" "$FILLFS" verify "$MNT/big" "${durable:-0}"
	sed 's/^/#   /' "$OUT"
	t_equal "rdwr: the file is no larger than the image" \
		"$(($(stat -c %s "$MNT/big") <= IMGSIZE))" 1
	t_ok "rdwr: rm at full" rm "$MNT/big"
	t_ok "rdwr: sync DIR" sync "$MNT"
	# no fsync to tell the writer: write(2) must, once write-back failed
	bound=$(cached_bound)
	fill "rdwr: without fsyncs, write(2) says ENOSPC once write-back failed (within $((bound / MIB)) MiB)" \
		big "$MNT/big2" "$MIB" 0 --rdwr --limit "$bound"
	t_equal "rdwr: the fsync after it reports the lost write-back" "$(kv fsync)" ENOSPC
	drop_caches
	t_ok "rdwr: the file holds the pattern, no hole, no other byte" \
		"$FILLFS" verify "$MNT/big2" 0
	sed 's/^/#   /' "$OUT"
	t_finish "rdwr" || return 1
	t_mount "rdwr: remount" || return 1
	t_ok "rdwr: after the remount too" "$FILLFS" verify "$MNT/big2" 0
	sed 's/^/#   /' "$OUT"
	t_equal "rdwr: the file is no larger than the image" \
		"$(($(stat -c %s "$MNT/big2") <= IMGSIZE))" 1
	t_ok "rdwr: rm at full" rm "$MNT/big2"
	t_finish "rdwr"
}

# ---- df: what it says is there -------------------------------------------------------

test_df() {
	local empty size mode flags
	new_image 128 || return 1
	t_mount "df: mount a 128 MiB image" || return 1
	empty=$(avail) size=$(df_field size)
	echo "# df: empty: size $size, avail $empty; a file of avail - $SLACK bytes"
	t_equal "df: an empty filesystem has most of its size available" \
		"$((empty > size * 9 / 10))" 1
	for mode in wronly rdwr; do
		flags=()
		[ "$mode" = rdwr ] && flags=(--rdwr)
		t_rc 0 "df: a $mode file of Avail - $SLACK bytes fits, with fsync" \
			timeout -k 10 "$TIMEOUT" "$FILLFS" write "$MNT/f" $((empty - SLACK)) "${flags[@]}"
		t_df_sane "df: with the $mode file"
		t_ok "df: it reads back" "$FILLFS" verify "$MNT/f" $((empty - SLACK))
		t_ok "df: rm it" rm "$MNT/f"
		t_ok "df: sync DIR (fsync of the directory)" sync "$MNT"
		t_ok "df: Avail is back to the empty figure" wait_avail "$empty" 8
	done
	t_finish "df"
}

# ---- small: many small files -----------------------------------------------------------

test_small() {
	local n empty
	new_image 32 || return 1
	t_mount "small: mount a 32 MiB image" || return 1
	mkdir "$MNT/s" "$MNT/empty"
	sync "$MNT"
	empty=$(avail)
	# about 7,000 files: a few FUSE requests each, so that it stays quick
	# under ASan too
	fill "small: 4 KiB files until ENOSPC (at most 20000)" small "$MNT/s" 20000 4096
	n=$(kv created)
	t_equal "small: it stopped at ENOSPC" "$(kv error)" ENOSPC
	t_df_sane "small: at ENOSPC"
	t_ok "small: all $n files are intact" "$FILLFS" verifysmall "$MNT/s" "${n:-0}" 4096
	t_finish "small" || return 1
	t_mount "small: remount" || return 1
	t_ok "small: all $n files are intact after the remount" \
		"$FILLFS" verifysmall "$MNT/s" "${n:-0}" 4096
	# every kind of delete works at full
	t_ok "small: truncate at full" truncate -s 0 "$MNT/s/f00000"
	t_ok "small: punch a hole at full" fallocate -p -o 0 -l 4096 "$MNT/s/f00001"
	t_ok "small: rename over a file at full" mv -f "$MNT/s/f00002" "$MNT/s/f00003"
	t_ok "small: unlink at full" rm "$MNT/s/f00004"
	t_ok "small: rmdir at full" rmdir "$MNT/empty"
	t_ok "small: rm -rf of them all at full" rm -rf "$MNT/s"
	mkdir "$MNT/s" "$MNT/empty"
	sync "$MNT"
	t_ok "small: Avail is back to the empty figure" wait_avail "$empty" 8
	t_finish "small"
}

# ---- snap: snapshots made exclusive ------------------------------------------------------

SNAP_FILES=4
SNAP_SIZE=$((4 * MIB))

# snap_round ROUND: overwrite live/f* (O_WRONLY) with the pattern of ROUND
# (its seed); 0, 3 on ENOSPC, 1 on another error.  The fillfs output of
# the last file is in $T/round.out, the Avail before it in $T/round.avail.
snap_round() {
	local i rc
	for ((i = 0; i < SNAP_FILES; i++)); do
		avail >"$T/round.avail"
		timeout -k 10 "$TIMEOUT" "$FILLFS" write "$MNT/live/f$i" "$SNAP_SIZE" --seed "$1" \
			>"$T/round.out" 2>&1
		rc=$?
		if [ "$rc" -ne 0 ]; then
			sed 's/^/#   fillfs: /' "$T/round.out"
			return "$rc"
		fi
	done
	return 0
}

test_snap() {
	local empty r rc max bad=0 i at f
	new_image 128 || return 1
	t_mount "snap: mount a 128 MiB image" || return 1
	t_arbor 0 "snap: subvolume create live" subvolume create "$MNT/live" || return 1
	sync "$MNT"
	empty=$(avail)
	max=$((IMGSIZE / (SNAP_FILES * SNAP_SIZE) + 2))
	for ((r = 0; r < max; r++)); do
		snap_round "$r"
		rc=$?
		[ "$rc" -ne 0 ] && break
		# a snapshot needs room too: refused for lack of it, it ends the fill
		if ! "$ARBOR" snapshot create "$MNT/live" "$MNT/snap$r" >/dev/null 2>"$ERR"; then
			t_diag_file "$ERR"
			grep -Eq 'space|ENOSPC' "$ERR" && rc=3 || rc=4
			: >"$T/round.out"
			break
		fi
	done
	echo "# snap: $r snapshots, then round $r ended with status $rc"
	t_equal "snap: overwrites under snapshots end with ENOSPC (within $max rounds)" "$rc" 3
	at=$(grep -o '\bat=[a-z]*' "$T/round.out" | cut -d= -f2)
	if [ -z "$at" ]; then
		t_skip "snap: the snapshot, not a write, met the full filesystem"
	elif below_headroom "$(cat "$T/round.avail")"; then
		t_equal "snap: the O_WRONLY overwrite failed in open or write(2), not at fsync after accepted writes" \
			"$(early "$at")" "open or write"
	else
		t_skip "snap: the last overwrite was not surely below the headroom"
	fi
	# the last MiB: small writes until nothing fits
	fill "snap: top up with 4 KiB writes until ENOSPC" big "$MNT/live/pad" 4096 0 \
		--limit "$IMGSIZE"
	t_df_sane "snap: at ENOSPC"
	t_run "$ARBOR" snapshot create "$MNT/live" "$MNT/snapfull"
	sed 's/^/#   arbor: /' "$ERR"
	t_equal "snap: a snapshot of the full filesystem fails" "$((RC != 0))" 1
	t_grep "snap: saying there is no space" 'space|ENOSPC' "$ERR"
	for ((i = 0; i < r; i++)); do
		for f in "$MNT/snap$i"/f*; do
			"$FILLFS" verify "$f" "$SNAP_SIZE" --seed "$i" >/dev/null 2>"$ERR" || {
				bad=$((bad + 1))
				t_diag_file "$ERR"
			}
		done
	done
	t_equal "snap: every snapshot still holds its own bytes" "$bad" 0
	t_ok "snap: rm -rf of the live files at full" rm -rf "$MNT/live/"*
	for ((i = 0; i < r; i++)); do
		t_arbor 0 "snap: subvolume delete --wait snap$i" subvolume delete --wait "$MNT/snap$i"
	done
	t_ok "snap: sync DIR" sync "$MNT"
	t_ok "snap: Avail is back to the empty figure" wait_avail "$empty" 8
	t_finish "snap"
}

# ---- parallel: 4 writers on a nearly full filesystem -----------------------------------

# verify_writers: how many of the four parallel writers' fsync'ed parts do
# not verify (the reports go to stderr, into the test's log).
verify_writers() {
	local i bad=0
	for i in 0 1 2 3; do
		OUT=$T/w$i.out
		if ! "$FILLFS" verify "$MNT/w$i" "$(kv durable)" >/dev/null 2>"$T/v.err"; then
			bad=$((bad + 1))
			t_diag_file "$T/v.err" >&2
		fi
	done
	echo "$bad"
}

test_parallel() {
	local i pids=() rc av flags kind
	new_image 128 || return 1
	t_mount "parallel: mount a 128 MiB image" || return 1
	av=$(avail)
	t_ok "parallel: fill all but 40 MiB" "$FILLFS" write "$MNT/pre" $((av - 40 * MIB))
	# even writers O_WRONLY, odd ones O_RDWR; chunks of 64 to 256 KiB
	for i in 0 1 2 3; do
		flags=()
		[ $((i % 2)) = 1 ] && flags=(--rdwr)
		timeout -k 10 "$TIMEOUT" "$FILLFS" big "$MNT/w$i" $((64 * 1024 * (i + 1))) $((2 * MIB)) \
			--limit "$IMGSIZE" "${flags[@]}" >"$T/w$i.out" 2>"$T/w$i.err" &
		pids+=($!)
	done
	for i in 0 1 2 3; do
		wait "${pids[i]}"
		rc=$?
		sed 's/^/#   fillfs: /' "$T/w$i.out"
		kind=O_WRONLY
		[ $((i % 2)) = 1 ] && kind=O_RDWR
		t_equal "parallel: writer $i ($kind) ends with ENOSPC only" "$rc" 0 ||
			t_diag_file "$T/w$i.err"
		OUT=$T/w$i.out
		if [ "$kind" = O_WRONLY ] && below_headroom "$(kv avail)"; then
			t_equal "parallel: writer $i ($kind) failed in open or write(2)" \
				"$(early "$(kv at)")" "open or write"
		fi
		OUT=$T/stdout
	done
	t_df_sane "parallel: at ENOSPC"
	drop_caches
	t_equal "parallel: every writer's fsync'ed bytes are intact" "$(verify_writers)" 0
	t_finish "parallel" || return 1
	t_mount "parallel: remount" || return 1
	t_equal "parallel: and after the remount" "$(verify_writers)" 0
	t_ok "parallel: rm at full" rm "$MNT"/w? "$MNT/pre"
	t_finish "parallel"
}

# ---- run ---------------------------------------------------------------------------------

START=$SECONDS
for t in test_dd test_wronly test_rdwr test_df test_small test_snap test_parallel; do
	$t
	fuse_cleanup
	echo "# $t done at $((SECONDS - START)) s"
done
t_done
