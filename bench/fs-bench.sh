#!/bin/bash
# SPDX-License-Identifier: MIT
#
# fs-bench.sh - arborfs against fuse2fs (ext4 image) and kernel btrfs (loop
# device), side by side in one run, as in the perf anchors: every image is a
# fresh sparse file per round, rounds are interleaved (each round runs every
# filesystem once), the table shows medians and ratios.
#
#   fs-bench.sh [--dir DIR] [--rounds R] [--size-gib G] [--quick]
#               [--only arborfs|fuse2fs|btrfs|all[,...]]
#               [--workloads seq,rand,files,untar]
#               [--arborfs PATH] [--mkfs-arbor PATH]
#
# Workloads (higher is better in every row):
#   seq write   G GiB, 1 MiB writes, final fsync (fio)            MiB/s
#   cold read   the same file after unmount + remount + drop_caches MiB/s
#   rand write  4 KiB overwrites of a 256 MiB file, fsync every 32  IOPS
#   create      10^5 x 4 KiB files in 100 dirs, then syncfs + fsync  files/s
#   walk        cold readdir + lstat of them (after remount)        files/s
#   delete      unlink them all, then syncfs + fsync                files/s
#   untar       tar -x of a tarball of /usr/include + sync -f + sync DIR files/s
#
# Needs root, fio, fuse2fs, mkfs.ext4, mkfs.btrfs, losetup, fusermount3, cc.
# arborfs and mkfs.arbor are looked up in $ARBORFS / $MKFS_ARBOR, then
# $top_builddir, the current directory (a build tree), then PATH.
# Everything (mounts, daemons, loop devices, images) is cleaned up on exit,
# whatever happens.
set -u

prog="fs-bench.sh"
srcdir=$(cd "$(dirname "$0")" && pwd)

dir=${ARBOR_BENCH_DIR:-/var/tmp}
rounds=3
size_gib=1
only=all
workloads=seq,rand,files,untar
quick=0
arborfs=${ARBORFS:-}
mkfs_arbor=${MKFS_ARBOR:-}

usage() {
	sed -n '4,13p' "$0" | sed 's/^# \{0,1\}//'
	exit "${1:-2}"
}

while [ $# -gt 0 ]; do
	case $1 in
	--dir) dir=$2; shift 2 ;;
	--rounds) rounds=$2; shift 2 ;;
	--size-gib) size_gib=$2; shift 2 ;;
	--only) only=$2; shift 2 ;;
	--workloads) workloads=$2; shift 2 ;;
	--quick) quick=1; shift ;;
	--arborfs) arborfs=$2; shift 2 ;;
	--mkfs-arbor) mkfs_arbor=$2; shift 2 ;;
	-h|--help) usage 0 ;;
	*) echo "$prog: unknown option '$1'" >&2; usage ;;
	esac
done

die() {
	echo "$prog: $*" >&2
	exit 1
}

case $rounds in ''|*[!0-9]*|0) die "--rounds wants a positive integer" ;; esac
case $size_gib in ''|*[!0-9]*|0) die "--size-gib wants a positive integer" ;; esac
fslist=
for fs in ${only//,/ }; do
	case $fs in
	all) fslist="$fslist arborfs fuse2fs btrfs" ;;
	arborfs|fuse2fs|btrfs) fslist="$fslist $fs" ;;
	*) die "--only wants arborfs, fuse2fs, btrfs or all (or a list: arborfs,fuse2fs)" ;;
	esac
done
[ -n "$fslist" ] || die "--only wants arborfs, fuse2fs, btrfs or all"
for w in ${workloads//,/ }; do
	case $w in
	seq|rand|files|untar) ;;
	*) die "--workloads wants a list of seq, rand, files, untar" ;;
	esac
done
# wants WORKLOAD: is it in --workloads?
wants() { case ",$workloads," in *",$1,"*) return 0 ;; esac; return 1; }

# sizes
if [ "$quick" = 1 ]; then
	seq_mib=64
	rand_mib=16
	nfiles=2000
	ndirs=20
	img_gib=2
else
	seq_mib=$((size_gib * 1024))
	rand_mib=256
	nfiles=100000
	ndirs=100
	img_gib=$((size_gib * 2 + 6))
fi

[ "$(id -u)" -eq 0 ] || die "must run as root (loop devices, mount, drop_caches)"
if [ ! -d "$dir" ] || [ ! -w "$dir" ]; then
	die "'$dir' is not a writable directory"
fi

find_prog() { # find_prog VAR-VALUE RELPATH NAME
	if [ -n "$1" ]; then
		echo "$1"
	elif [ -n "${top_builddir:-}" ] && [ -x "$top_builddir/$2" ]; then
		echo "$top_builddir/$2"
	elif [ -x "./$2" ]; then
		echo "$PWD/$2"
	else
		command -v "$3" || true
	fi
}

need=(fio cc tar fusermount3 mountpoint)
for fs in $fslist; do
	case $fs in
	arborfs)
		arborfs=$(find_prog "$arborfs" fuse/arborfs arborfs)
		mkfs_arbor=$(find_prog "$mkfs_arbor" mkfs/mkfs.arbor mkfs.arbor)
		[ -x "$arborfs" ] || die "arborfs not found (--arborfs PATH, or run from the build tree)"
		[ -x "$mkfs_arbor" ] || die "mkfs.arbor not found (--mkfs-arbor PATH)"
		;;
	fuse2fs) need+=(fuse2fs mkfs.ext4) ;;
	btrfs) need+=(mkfs.btrfs losetup) ;;
	esac
done
for p in "${need[@]}"; do
	command -v "$p" >/dev/null || die "'$p' is missing (apt-get install fio fuse2fs e2fsprogs btrfs-progs fuse3)"
done

# ---------------------------------------------------------------- cleanup

work=$(mktemp -d "$dir/fs-bench.XXXXXX") || die "cannot create a directory in $dir"
MNT=$work/mnt
mkdir -p "$MNT"
DPID=    # daemon of the current FUSE mount
LOOP=    # loop device attached for btrfs
RES=$work/results
: >"$RES"

# shellcheck disable=SC2317 # called from the EXIT trap
cleanup() {
	if mountpoint -q "$MNT" 2>/dev/null; then
		fusermount3 -u "$MNT" 2>/dev/null || umount "$MNT" 2>/dev/null ||
			umount -l "$MNT" 2>/dev/null
	fi
	if [ -n "$DPID" ]; then
		wait_gone "$DPID" 30 || kill -TERM "$DPID" 2>/dev/null
		wait_gone "$DPID" 5 || kill -KILL "$DPID" 2>/dev/null
		wait "$DPID" 2>/dev/null
		DPID=
	fi
	if [ -n "$LOOP" ]; then
		losetup -d "$LOOP" 2>/dev/null
		LOOP=
	fi
	if ! mountpoint -q "$MNT" 2>/dev/null; then
		rm -rf --one-file-system "$work"
	else
		echo "$prog: $MNT is still mounted; left $work" >&2
	fi
}
trap cleanup EXIT
trap 'echo "$prog: interrupted" >&2; exit 130' INT TERM HUP

wait_gone() { # PID SECONDS
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		kill -0 "$1" 2>/dev/null || return 0
		sleep 0.1
	done
	return 1
}

log() { echo "# $*"; }

# ------------------------------------------------------ per-filesystem ops

# fs_mkfs FS: fresh sparse image (and loop device) with an empty filesystem
fs_mkfs() {
	local img=$work/$1.img
	rm -f "$img"
	truncate -s "${img_gib}G" "$img" || return 1
	case $1 in
	arborfs) "$mkfs_arbor" -q "$img" >>"$work/log" 2>&1 ;;
	fuse2fs) mkfs.ext4 -q -F "$img" >>"$work/log" 2>&1 ;;
	btrfs)
		LOOP=$(losetup --find --show "$img") || return 1
		mkfs.btrfs -q -f "$LOOP" >>"$work/log" 2>&1
		;;
	esac
}

# wait for a FUSE daemon started in the background to mount
wait_mount() {
	local i
	for ((i = 0; i < 300; i++)); do
		mountpoint -q "$MNT" && return 0
		if ! kill -0 "$DPID" 2>/dev/null; then
			wait "$DPID" 2>/dev/null
			DPID=
			return 1
		fi
		sleep 0.1
	done
	return 1
}

fs_mount() {
	local img=$work/$1.img
	case $1 in
	arborfs)
		"$arborfs" "$img" "$MNT" -f >>"$work/log" 2>&1 &
		DPID=$!
		wait_mount
		;;
	fuse2fs)
		fuse2fs "$img" "$MNT" -f >>"$work/log" 2>&1 &
		DPID=$!
		wait_mount
		;;
	btrfs) mount -t btrfs "$LOOP" "$MNT" ;;
	esac
}

# fs_umount FS: unmount; for FUSE, wait for the daemon to exit (its final
# commit happens after the kernel lets go) and return its status.
fs_umount() {
	local rc=0
	case $1 in
	arborfs|fuse2fs)
		fusermount3 -u "$MNT" 2>>"$work/log" || umount "$MNT" || return 1
		if [ -n "$DPID" ]; then
			wait_gone "$DPID" 300 || kill -KILL "$DPID" 2>/dev/null
			wait "$DPID"
			rc=$?
			DPID=
		fi
		;;
	btrfs) umount "$MNT" || return 1 ;;
	esac
	return "$rc"
}

fs_destroy() {
	mountpoint -q "$MNT" && fs_umount "$1"
	if [ -n "$LOOP" ]; then
		losetup -d "$LOOP"
		LOOP=
	fi
	rm -f "$work/$1.img"
}

drop_caches() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
}

# remount cold: unmount, drop every cache, mount again
fs_cold() {
	fs_umount "$1" || return 1
	drop_caches
	fs_mount "$1"
}

now() { date +%s.%N; }
rate() { awk -v n="$1" -v a="$2" -v b="$3" 'BEGIN { d = b - a; printf "%.1f", (d > 0 ? n / d : 0) }'; }

# record FS WORKLOAD VALUE
record() {
	echo "$1|$2|$3" >>"$RES"
	printf '#   %-8s %-12s %s\n' "$1" "$2" "$3"
}

# ------------------------------------------------------------ the workloads

# (1) sequential write, 1 MiB writes, final fsync; (2) cold sequential read
run_seq() {
	local fs=$1 t0 t1
	t0=$(now)
	if ! fio --name=seqw --filename="$MNT/seq" --rw=write --bs=1M \
		--size="${seq_mib}m" --end_fsync=1 --ioengine=psync \
		--output="$work/fio.out" >/dev/null 2>>"$work/log"; then
		record "$fs" seqwrite FAIL
		record "$fs" coldread FAIL
		return
	fi
	t1=$(now)
	record "$fs" seqwrite "$(rate "$seq_mib" "$t0" "$t1")"
	if fs_cold "$fs"; then
		t0=$(now)
		if dd if="$MNT/seq" of=/dev/null bs=1M status=none; then
			t1=$(now)
			record "$fs" coldread "$(rate "$seq_mib" "$t0" "$t1")"
		else
			record "$fs" coldread FAIL
		fi
		rm -f "$MNT/seq"
	else
		record "$fs" coldread FAIL
	fi
}

# (3) random 4 KiB overwrites of a laid-out file, fsync every 32 writes
run_rand() {
	local fs=$1 out
	if dd if=/dev/urandom of="$MNT/rand" bs=1M count="$rand_mib" \
		conv=fsync status=none 2>>"$work/log" &&
		fio --name=randw --filename="$MNT/rand" --rw=randwrite --bs=4k \
			--size="${rand_mib}m" --fsync=32 --ioengine=psync \
			--runtime=120 --output-format=json \
			--output="$work/fio.json" >/dev/null 2>>"$work/log"; then
		out=$(awk -F: '/"iops"/ { gsub(/[ ,]/, "", $2); if ($2 + 0 > 0) { printf "%.0f", $2; exit } }' "$work/fio.json")
		record "$fs" randwrite "${out:-FAIL}"
	else
		record "$fs" randwrite FAIL
	fi
	rm -f "$MNT/rand"
}

# (4) small files: create, cold walk, delete
run_files() {
	local fs=$1 out
	mkdir "$MNT/files"
	if ! out=$("$work/fs-bench-files" create "$MNT/files" "$nfiles" "$ndirs"); then
		record "$fs" create FAIL
		record "$fs" walk FAIL
		record "$fs" delete FAIL
		return
	fi
	record "$fs" create "${out##* }"
	if fs_cold "$fs" && out=$("$work/fs-bench-files" walk "$MNT/files" "$nfiles" "$ndirs"); then
		record "$fs" walk "${out##* }"
	else
		record "$fs" walk FAIL
	fi
	if mountpoint -q "$MNT" &&
		out=$("$work/fs-bench-files" delete "$MNT/files" "$nfiles" "$ndirs"); then
		record "$fs" delete "${out##* }"
	else
		record "$fs" delete FAIL
	fi
}

# (5) unpack a real source tree + sync
run_untar() {
	local fs=$1 t0 t1
	mkdir "$MNT/untar"
	t0=$(now)
	# sync -f (syncfs) reaches no FUSE filesystem; sync DIR (fsync of the
	# directory) commits arborfs, so every filesystem ends on disk
	if tar -xf "$tarball" -C "$MNT/untar" && sync -f "$MNT/untar" && sync "$MNT/untar"; then
		t1=$(now)
		record "$fs" untar "$(rate "$tar_files" "$t0" "$t1")"
		log "  untar took $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s"
	else
		record "$fs" untar FAIL
	fi
}

# every workload of --workloads in order, on one fresh image
run_fs() {
	local fs=$1 w
	if ! fs_mkfs "$fs" || ! fs_mount "$fs"; then
		echo "$prog: $fs: mkfs or mount failed (see below)" >&2
		tail -5 "$work/log" >&2
		fs_destroy "$fs"
		return 1
	fi
	for w in seq rand files untar; do
		wants "$w" || continue
		case $w in
		seq) run_seq "$fs" ;;
		rand) run_rand "$fs" ;;
		files) run_files "$fs" ;;
		untar) run_untar "$fs" ;;
		esac
		mountpoint -q "$MNT" || { fs_destroy "$fs"; return 1; }
	done
	if ! fs_umount "$fs"; then
		echo "$prog: $fs: unmount or final commit failed" >&2
		tail -5 "$work/log" >&2
	fi
	fs_destroy "$fs"
}

# ----------------------------------------------------------------- main

cc -O2 -Wall -o "$work/fs-bench-files" "$srcdir/fs-bench-files.c" ||
	die "cannot compile $srcdir/fs-bench-files.c"

# the tarball: /usr/include, uncompressed (tar's CPU time is not measured)
tar_src=/usr/include
[ "$quick" = 1 ] && [ -d /usr/include/linux ] && tar_src=/usr/include/linux
tarball=$work/src.tar
tar -cf "$tarball" -C "$(dirname "$tar_src")" "$(basename "$tar_src")" 2>/dev/null ||
	die "cannot make a tarball of $tar_src"
tar_files=$(tar -tf "$tarball" | wc -l)
tar_mib=$(du -m --apparent-size "$tarball" | cut -f1)

start=$(date +%s)
log "$(uname -srm), $(nproc) CPUs, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)"
log "images: sparse ${img_gib} GiB files in $dir; rounds: $rounds (interleaved)"
log "workloads: $workloads; filesystems:$fslist"
log "seq: ${seq_mib} MiB; rand: ${rand_mib} MiB; files: $nfiles x 4 KiB in $ndirs dirs"
log "untar: tar of $tar_src ($tar_files entries, $tar_mib MiB, uncompressed)"
[ -n "$arborfs" ] && log "arborfs: $arborfs"
log "$(fio --version), $(fuse2fs -V 2>&1 | head -1)"

for ((r = 1; r <= rounds; r++)); do
	for fs in $fslist; do
		log "round $r/$rounds: $fs"
		run_fs "$fs" || echo "$prog: round $r: $fs failed" >&2
	done
done

# ---------------------------------------------------------------- table

log "ran for $(($(date +%s) - start)) s"
echo
awk -F'|' -v fslist="$fslist" '
function median(key,   n, i, j, v, t, a) {
	n = split(vals[key], a, " ")
	if (n == 0 || vals[key] == "") return "n/a"
	for (i = 1; i <= n; i++) if (a[i] == "FAIL") return "FAIL"
	for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++)
		if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
function ratio(a, b) {
	if (a == "n/a" || b == "n/a" || a == "FAIL" || b == "FAIL" || b + 0 == 0) return "-"
	return sprintf("%.2f", a / b)
}
function fmt(v) { return (v == "n/a" || v == "FAIL") ? v : sprintf("%.1f", v) }
{ vals[$1 "|" $2] = vals[$1 "|" $2] (vals[$1 "|" $2] == "" ? "" : " ") $3 }
END {
	name["seqwrite"] = "seq write, 1 MiB writes + fsync, MiB/s"
	name["coldread"] = "cold seq read, MiB/s"
	name["randwrite"] = "rand 4 KiB overwrite, fsync/32, IOPS"
	name["create"] = "create 4 KiB files + sync, files/s"
	name["walk"] = "cold readdir + lstat, files/s"
	name["delete"] = "delete all + sync, files/s"
	name["untar"] = "untar + sync, files/s"
	split("seqwrite coldread randwrite create walk delete untar", order, " ")
	printf "| %-40s | %9s | %9s | %9s | %15s | %13s |\n", "workload (median)", "arborfs", "fuse2fs", "btrfs", "arborfs/fuse2fs", "arborfs/btrfs"
	printf "|%s|%s|%s|%s|%s|%s|\n", "------------------------------------------", "-----------", "-----------", "-----------", "-----------------", "---------------"
	for (i = 1; i <= 7; i++) {
		w = order[i]
		a = median("arborfs|" w); f = median("fuse2fs|" w); b = median("btrfs|" w)
		printf "| %-40s | %9s | %9s | %9s | %15s | %13s |\n", name[w], fmt(a), fmt(f), fmt(b), ratio(a, f), ratio(a, b)
	}
}' "$RES"
echo
log "per round (fs|workload|value):"
sed 's/^/#   /' "$RES"
if grep -q FAIL "$RES"; then
	echo "$prog: some workloads failed; daemon and tool messages:" >&2
	tail -20 "$work/log" >&2
	exit 1
fi
exit 0
