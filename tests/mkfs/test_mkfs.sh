#!/bin/bash
# tests/mkfs/test_mkfs.sh - mkfs.arbor end to end: formats verified with
# "arbor inspect superblock" and "engine check", every refusal with its exit
# status, its message and an untouched target, -s creating and growing
# files, a sparse 1 TiB image, reproducible images.  Prints TAP.
#
# Environment: top_builddir (exported by make check) locates mkfs/mkfs.arbor
# and cli/arbor.  The mounted-device case needs root, losetup, mount and
# mkfs.ext4; it is skipped otherwise.

# shellcheck source=tests/cli/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../cli/lib.sh"

MKFS=$top_builddir/mkfs/mkfs.arbor
if [ ! -x "$MKFS" ]; then
	echo "Bail out! $MKFS is not built"
	exit 1
fi

UUID1=0f6a3b2c-1d4e-4f5a-8b6c-7d8e9f0a1b2c
UUID2=5a1e0c7b-9d2f-4e3a-b1c4-2f6d8e0a9b7c
MIB=1048576

# The mounted-device case: undo whatever it set up, whatever happens.
mnt_dir=
loop_dev=
cleanup_mount() {
	if [ -n "$mnt_dir" ] && mountpoint -q "$mnt_dir" 2>/dev/null; then
		umount "$mnt_dir"
	fi
	if [ -n "$loop_dev" ]; then
		losetup -d "$loop_dev" 2>/dev/null
	fi
	mnt_dir=
	loop_dev=
}
trap 'cleanup_mount; t_cleanup' EXIT

# t_skip REASON: a visible skipped check.
t_skip() {
	t_count=$((t_count + 1))
	echo "ok $t_count # SKIP $1"
}

# t_mkfs EXPECTED DESCRIPTION ARGS...: t_rc on mkfs.arbor.
t_mkfs() {
	local want=$1 desc=$2
	shift 2
	t_rc "$want" "$desc" "$MKFS" "$@"
}

# t_same DESCRIPTION FILE COPY: FILE is byte-for-byte COPY.
t_same() {
	if cmp -s "$2" "$3"; then
		t_result 0 "$1"
		return 0
	fi
	t_result 1 "$1"
	cmp "$2" "$3" | sed 's/^/#   /'
	return 1
}

# t_refused EXPECTED DESCRIPTION ERE FILE CMD...: CMD exits EXPECTED with a
# message matching ERE, and FILE is left as it was.
t_refused() {
	local want=$1 desc=$2 ere=$3 file=$4
	shift 4
	cp --sparse=always "$file" "$T/before"
	t_rc "$want" "$desc: exit $want" "$@"
	t_grep "$desc: says why" "$ere" "$ERR"
	t_same "$desc: target unchanged" "$file" "$T/before"
	rm -f "$T/before"
}

# Field of "inspect superblock" for the slot a mount uses.
sb_field() {
	"$ARBOR" -i "$1" inspect superblock |
		awk -v f="$2" '/<== mount/ { m = 1; next } m && $1 == f { $1 = ""; sub(/^ /, ""); print; exit }'
}

# t_check DESCRIPTION IMG: engine check is clean.
t_check() {
	t_arbor 0 "$1: engine check exits 0" -i "$2" engine check
	t_grep "$1: engine check is clean" '^clean$'
}

# A DOS partition table with one Linux partition: no fdisk needed.
write_mbr() {
	printf '\x83' | dd of="$1" bs=1 seek=450 conv=notrunc status=none
	printf '\x00\x08\x00\x00\x00\x20\x00\x00' | dd of="$1" bs=1 seek=454 conv=notrunc status=none
	printf '\x55\xaa' | dd of="$1" bs=1 seek=510 conv=notrunc status=none
}

# blkid -p finds nothing (skipped when blkid is absent).
t_no_signature() {
	if ! command -v blkid >/dev/null; then
		t_skip "blkid not installed"
		return 0
	fi
	blkid -p "$2" >"$OUT" 2>&1
	t_equal "$1" "$?" 2
}

# ---- usage ------------------------------------------------------------------

test_usage() {
	t_mkfs 0 "--help exits 0" --help
	t_grep "--help documents the exit status" '^Exit status: 0 on success, 1 '
	t_mkfs 0 "--version exits 0" -V
	t_grep "--version names the program" '^mkfs\.arbor '
	t_mkfs 2 "no argument is a usage error"
	t_grep "and says so" '^error: no device or file given' "$ERR"
	t_mkfs 2 "an unknown option is a usage error" --bogus x.img
	t_mkfs 2 "two targets are a usage error" a.img b.img
}

# ---- formatting ----------------------------------------------------------------

test_format() {
	local img=$T/fmt.img

	t_mkfs 0 "format a new 64 MiB image" -s 64M -L testlabel -n 4096 -U "$UUID1" "$img"
	t_grep "the summary names the label" '^label: +testlabel$'
	t_grep "the summary names the UUID" "^uuid: +$UUID1\$"
	t_grep "the summary names the node size" '^node size: +4096$'
	t_grep "the summary names the sector size" '^sector size: +4096$'
	t_grep "the summary names the device size" '^device size: +64\.00 MiB \(67108864 bytes\)$'
	t_grep "the summary lists the features" '^features: +none$'
	t_equal "-s created a 64 MiB file" "$(stat -c %s "$img")" $((64 * MIB))
	t_arbor 0 "inspect superblock reads it" -i "$img" inspect superblock
	t_grep "a mount picks a slot" '<== mount'
	t_equal "inspect shows the label" "$(sb_field "$img" label)" '"testlabel"'
	t_equal "inspect shows the node size" "$(sb_field "$img" nodesize)" 4096
	t_equal "inspect shows the UUID" "$(sb_field "$img" fsid)" "$UUID1"
	t_equal "inspect shows the size" "$(sb_field "$img" total_bytes)" $((64 * MIB))
	t_check "new image" "$img"
	t_arbor 0 "engine list" -i "$img" engine list
	t_grep "the top-level subvolume exists" '^256 '

	t_mkfs 0 "-q formats quietly" -q -f "$img"
	t_equal "-q prints nothing" "$(cat "$OUT" "$ERR")" ""
	t_check "quiet format" "$img"
	t_mkfs 0 "default node size, random UUID" -f -U random "$img"
	t_grep "the default node size is 16384" '^node size: +16384$'
	t_nogrep "the UUID is new" "^uuid: +$UUID1\$"
}

test_size() {
	local img=$T/size.img

	truncate -s 4M "$img"
	t_mkfs 0 "-s grows a 4 MiB file" -s 8M "$img"
	t_equal "the file is now 8 MiB" "$(stat -c %s "$img")" $((8 * MIB))
	t_check "grown file" "$img"
	rm -f "$img"
	truncate -s 16M "$img"
	t_mkfs 0 "-s smaller than the file" -s 8M "$img"
	t_equal "the file is not shrunk" "$(stat -c %s "$img")" $((16 * MIB))
	t_equal "the filesystem spans -s bytes" "$(sb_field "$img" total_bytes)" $((8 * MIB))
	t_check "-s inside a larger file" "$img"
	t_mkfs 0 "without -s an existing file is used whole" -f "$img"
	t_equal "the filesystem spans the file" "$(sb_field "$img" total_bytes)" $((16 * MIB))
}

# ---- refusals ---------------------------------------------------------------------

test_refuse_ext4() {
	local img=$T/ext4.img

	if ! command -v mkfs.ext4 >/dev/null; then
		t_skip "mkfs.ext4 not installed (e2fsprogs)"
		return 0
	fi
	truncate -s 32M "$img"
	mkfs.ext4 -q -F -L foo "$img" >/dev/null 2>&1
	t_refused 1 "an ext4 image" "contains a ext4 filesystem labelled 'foo'" "$img" "$MKFS" "$img"
	t_grep "the refusal points at -f" '^error: use -f to overwrite' "$ERR"
	t_mkfs 0 "-f formats over ext4" -f "$img"
	t_grep "-f reports the erased signature" '^erased the ext4 signature'
	t_no_signature "the ext4 signature is gone" "$img"
	t_check "over ext4" "$img"
}

test_refuse_arbor() {
	local img=$T/arbor.img

	"$MKFS" -q -s 32M -L old -U "$UUID1" "$img"
	t_refused 1 "an Arbor image" "contains an Arbor filesystem labelled 'old' \\(uuid $UUID1\\)" \
		"$img" "$MKFS" -U "$UUID2" "$img"
	t_mkfs 0 "-f formats over Arbor" -f -U "$UUID2" "$img"
	t_equal "the new UUID is in place" "$(sb_field "$img" fsid)" "$UUID2"
	t_equal "the old label is gone" "$(sb_field "$img" label)" '""'
	t_check "over Arbor" "$img"
}

test_refuse_partition_table() {
	local img=$T/parts.img

	truncate -s 32M "$img"
	write_mbr "$img"
	t_refused 1 "a partitioned image" 'contains a partition table \(dos\)' "$img" "$MKFS" "$img"
	t_mkfs 0 "-f formats over a partition table" -f "$img"
	t_no_signature "the partition table is gone" "$img"
	t_check "over a partition table" "$img"
}

test_refuse_small() {
	local img=$T/small.img

	truncate -s 1M "$img"
	t_refused 1 "a 1 MiB file" 'is too small .*the minimum is 2097152 bytes \(2\.00 MiB\)' \
		"$img" "$MKFS" "$img"
	t_mkfs 1 "-s below the minimum" -s 1M "$T/nothere.img"
	t_grep "-s below the minimum: says why" 'the minimum is 2097152 bytes' "$ERR"
	t_equal "-s below the minimum: no file created" "$(ls "$T/nothere.img" 2>/dev/null)" ""
}

test_refuse_usage() {
	local img=$T/usage.img

	"$MKFS" -q -s 16M "$img"
	t_refused 2 "a bad UUID" "invalid UUID 'not-a-uuid'" "$img" "$MKFS" -f -U not-a-uuid "$img"
	t_refused 2 "-b 512" 'sector size 512 is not supported.*4096' "$img" "$MKFS" -f -b 512 "$img"
	t_mkfs 0 "-b 4096 is accepted" -q -f -b 4096 "$img"
	t_refused 2 "node size 3000" "invalid node size '3000'" "$img" "$MKFS" -f -n 3000 "$img"
	t_refused 2 "node size 128K" "invalid node size '128K'" "$img" "$MKFS" -f -n 128K "$img"
	t_refused 2 "node size 2048" "invalid node size '2048'" "$img" "$MKFS" -f -n 2048 "$img"
	t_refused 2 "a 129-byte label" 'label is 129 bytes long' "$img" "$MKFS" \
		-f -L "$(printf '%0129d' 0)" "$img"
	t_mkfs 0 "a 128-byte label is accepted" -q -f -L "$(printf '%0128d' 0)" "$img"
	t_equal "and stored whole" "$(sb_field "$img" label)" "\"$(printf '%0128d' 0)\""
	t_refused 2 "a bad size" "invalid size '12Q'" "$img" "$MKFS" -f -s 12Q "$img"
	t_refused 1 "a bad SOURCE_DATE_EPOCH" 'SOURCE_DATE_EPOCH' "$img" \
		env SOURCE_DATE_EPOCH=yesterday "$MKFS" -f "$img"
}

test_refuse_missing() {
	t_mkfs 1 "a missing file without -s" "$T/missing.img"
	t_grep "the message names -s" 'does not exist: use -s SIZE' "$ERR"
	t_equal "no file was created" "$(ls "$T/missing.img" 2>/dev/null)" ""
	t_mkfs 1 "a directory" -f "$T"
	t_grep "a directory: says why" 'neither a block device nor a regular file' "$ERR"
}

test_refuse_locked() {
	local img=$T/locked.img

	if ! command -v flock >/dev/null; then
		t_skip "flock(1) not installed"
		return 0
	fi
	"$MKFS" -q -s 16M "$img"
	t_refused 1 "an image locked by another program" 'is in use' "$img" \
		flock "$img" "$MKFS" -f "$img"
}

test_refuse_mounted() {
	local img=$T/mounted.img

	if [ "$(id -u)" -ne 0 ]; then
		t_skip "mounting a loop device needs root"
		return 0
	fi
	for tool in losetup mount umount mountpoint mkfs.ext4; do
		if ! command -v "$tool" >/dev/null; then
			t_skip "$tool not installed"
			return 0
		fi
	done
	truncate -s 32M "$img"
	mkfs.ext4 -q -F "$img" >/dev/null 2>&1
	mnt_dir=$T/mnt
	mkdir -p "$mnt_dir"
	# read-only, so the kernel never writes to the image while it is mounted
	if ! loop_dev=$(losetup -r -f --show "$img" 2>"$ERR"); then
		loop_dev=
		t_skip "losetup failed: $(head -n1 "$ERR")"
		return 0
	fi
	if ! mount -o ro "$loop_dev" "$mnt_dir" 2>"$ERR"; then
		t_skip "mount failed: $(head -n1 "$ERR")"
		cleanup_mount
		return 0
	fi
	t_refused 1 "a file mounted through a loop device, without -f" 'contains a ext4' \
		"$img" "$MKFS" "$img"
	t_refused 1 "a file mounted through a loop device, with -f" \
		"is mounted on $mnt_dir through $loop_dev" "$img" "$MKFS" -f "$img"
	t_refused 1 "a mounted loop device" "is mounted on $mnt_dir" "$img" "$MKFS" -f "$loop_dev"
	cleanup_mount
}

# ---- big, sparse, reproducible ---------------------------------------------------

test_sparse_tib() {
	local img=$T/tib.img start end kib

	start=$(date +%s%N)
	t_mkfs 0 "format a new 1 TiB sparse image" -q -s 1T "$img"
	end=$(date +%s%N)
	echo "# 1 TiB format took $(((end - start) / 1000000)) ms"
	t_equal "the image is 1 TiB" "$(stat -c %s "$img")" $((1024 * 1024 * MIB))
	kib=$(du -k "$img" | cut -f1)
	echo "# 1 TiB image allocates $kib KiB ($(stat -c %b "$img") blocks of $(stat -c %B "$img") bytes)"
	t_result "$([ "$kib" -lt 16384 ] && echo 0 || echo 1)" "the image allocates under 16 MiB"
	t_check "1 TiB image" "$img"
}

test_reproducible() {
	local a=$T/repro-a.img b=$T/repro-b.img

	t_rc 0 "reproducible format, first" env SOURCE_DATE_EPOCH=1700000000 \
		"$MKFS" -q -s 64M -L repro -U "$UUID1" "$a"
	sleep 1
	t_rc 0 "reproducible format, second" env SOURCE_DATE_EPOCH=1700000000 \
		"$MKFS" -q -s 64M -L repro -U "$UUID1" "$b"
	"$ARBOR" -i "$a" inspect superblock >"$T/repro-a.txt" 2>&1
	"$ARBOR" -i "$b" inspect superblock >"$T/repro-b.txt" 2>&1
	if cmp -s "$T/repro-a.txt" "$T/repro-b.txt"; then
		t_result 0 "identical inspect superblock output"
	else
		t_result 1 "identical inspect superblock output"
		diff "$T/repro-a.txt" "$T/repro-b.txt" | sed 's/^/#   /'
	fi
	if cmp -s "$a" "$b"; then
		t_result 0 "byte-identical images"
	else
		t_result 1 "byte-identical images"
		cmp "$a" "$b" | sed 's/^/#   /'
	fi
	t_check "reproducible image" "$a"
}

test_usage
test_format
test_size
test_refuse_ext4
test_refuse_arbor
test_refuse_partition_table
test_refuse_small
test_refuse_usage
test_refuse_missing
test_refuse_locked
test_refuse_mounted
test_sparse_tib
test_reproducible
t_done
