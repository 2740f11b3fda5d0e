#!/bin/bash
# tests/fsck/test_fsck.sh - fsck.arbor as a tool: fsck(8) exit codes for a
# clean image, damage found (-n: 4, nothing written), damage repaired (-y
# and -p: 1, then clean), a commit given up (-p leaves it: 4; -y: 1), an
# image that is not Arbor (8), usage errors (16); refusing to repair a
# mounted image while -n checks it; progress lines for fsck(8); the fsck(8)
# front end (fsck -t arbor).  The kinds of damage have their own corpus
# (images/, tests/fsck/test_images.sh).  Prints TAP.
#
# Environment: top_builddir locates fsck/fsck.arbor, mkfs/mkfs.arbor,
# cli/arbor and fuse/arborfs.  The mounted case needs FUSE (skipped
# otherwise, visibly).

# shellcheck source=tests/cli/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../cli/lib.sh"

FSCK=$top_builddir/fsck/fsck.arbor
MKFS=$top_builddir/mkfs/mkfs.arbor
ARBORFS=$top_builddir/fuse/arborfs
for tool in "$FSCK" "$MKFS"; do
	if [ ! -x "$tool" ]; then
		echo "Bail out! $tool is not built"
		exit 1
	fi
done
IMG=$T/img
MNT=$T/mnt
trap 'mountpoint -q "$MNT" 2>/dev/null && umount "$MNT"; t_cleanup' EXIT

t_skip() {
	t_count=$((t_count + 1))
	echo "ok $t_count # SKIP $1"
}

t_ok() {
	local desc=$1
	shift
	t_rc 0 "$desc" "$@"
}

# t_fsck EXPECTED DESCRIPTION ARGS...: fsck.arbor exits EXPECTED.
t_fsck() {
	local want=$1 desc=$2
	shift 2
	t_rc "$want" "$desc" "$FSCK" "$@"
}

# A small filesystem with files, a directory and a subvolume, committed.
make_image() {
	rm -f "$IMG"
	"$MKFS" -q -s 64M "$IMG" || return 1
	"$ARBOR" -i "$IMG" mkdir /dir &&
		seq 1 500 | "$ARBOR" -i "$IMG" put - /dir/numbers &&
		echo hello | "$ARBOR" -i "$IMG" put - /hello &&
		"$ARBOR" -i "$IMG" subvolume create /sv >/dev/null
}

# local inode number and tree of PATH in the image
inode_of() {
	"$ARBOR" -i "$IMG" stat "$1" | awk '$1 == "inode" { print $2; exit }'
}

image_sum() {
	sha256sum <"$IMG" | cut -d' ' -f1
}

test_clean() {
	t_ok "an image with files and a subvolume" make_image
	t_fsck 0 "fsck -n of a clean image exits 0" -n "$IMG"
	t_grep "it says clean" '^.*img: clean, [0-9]+ files, [0-9]+ directories in 2 subvolumes'
	t_fsck 0 "fsck -y of a clean image exits 0" -y "$IMG"
	t_fsck 0 "fsck -p of a clean image exits 0" -p "$IMG"
	t_fsck 0 "-a is -p (fsck(8) passes it)" -a "$IMG"
	t_fsck 0 "-f is accepted" -f -n "$IMG"
	t_fsck 0 "--check-data" -n --check-data "$IMG"
	t_fsck 0 "-v" -n -v "$IMG"
	t_grep "-v gives figures" '^[0-9]+ trees, [0-9]+ nodes, [0-9]+ inodes'
}

# An item of the namespace removed with valid checksums: phase 3.
test_namespace_damage() {
	local ino sum
	make_image
	ino=$(inode_of /hello)
	t_ok "remove the inode item of /hello" \
		"$ARBOR" -i "$IMG" engine del $(((ino >> 40) + 255)) $((ino & ((1 << 40) - 1))) 1 0
	sum=$(image_sum)
	t_fsck 4 "fsck -n finds it: exit 4" -n "$IMG"
	t_grep "names the entry that leads nowhere" "entry 'hello' .* does not exist"
	t_equal "fsck -n wrote nothing" "$(image_sum)" "$sum"
	t_fsck 1 "fsck -p repairs it: exit 1" -p "$IMG"
	t_grep "the summary says errors fixed" 'img: errors fixed'
	t_fsck 0 "a second run is clean" -n "$IMG"
	t_arbor 0 "the other files are intact" -i "$IMG" cat /dir/numbers
	t_equal "with their content" "$(sha256sum <"$OUT")" "$(seq 1 500 | sha256sum)"
}

# The newest commit's tree damaged: fsck goes back to the previous one.
test_commit_given_up() {
	local root
	make_image
	echo "newest" | "$ARBOR" -i "$IMG" put - /newest
	root=$("$ARBOR" -i "$IMG" inspect superblock |
		awk '/<== mount/ { m = 1 } m && $1 == "root_tree" { print $3; exit }')
	t_ok "damage the root of the newest commit's root tree" \
		dd if=/dev/urandom of="$IMG" bs=1 count=16 seek=$((root + 100)) conv=notrunc status=none
	t_fsck 4 "fsck -n reports the commit to give up: exit 4" -n "$IMG"
	t_grep "with its time" '^commit [0-9]+ of [0-9-]+ [0-9:]+ UTC is damaged'
	t_fsck 4 "fsck -p leaves that decision: exit 4" -p "$IMG"
	t_grep "and says what to run" 'needs fsck.arbor -y'
	t_fsck 1 "fsck -y goes back: exit 1" -y "$IMG"
	t_grep "it says so" '^went back to commit [0-9]+'
	t_fsck 0 "then the image is clean" -n "$IMG"
	t_arbor 1 "the last commit's file is gone" -i "$IMG" cat /newest
	t_arbor 0 "the older files are there" -i "$IMG" cat /hello
}

test_not_arbor() {
	head -c $((4 << 20)) /dev/zero >"$T/zero"
	t_fsck 8 "an image that is not Arbor: exit 8" -n "$T/zero"
	t_fsck 8 "a missing file: exit 8" -n "$T/nothing"
}

test_usage() {
	t_fsck 16 "no device: exit 16" -n
	t_fsck 16 "an unknown option: exit 16" -n -x "$IMG"
	t_fsck 16 "two modes: exit 16" -n -y "$IMG"
	t_fsck 16 "no mode and no terminal: exit 16" "$IMG" </dev/null
	t_grep "and says what to give" 'give -n to check, -y or -p to repair' "$ERR"
	t_fsck 0 "--help" --help
	t_grep "--help lists the exit codes" '16 usage error'
	t_fsck 0 "-V" -V
}

test_progress() {
	make_image
	t_fsck 0 "-C 3 writes progress lines to fd 3" -n -C 3 "$IMG" 3>"$T/progress"
	t_equal "lines are 'phase done total device'" \
		"$(grep -cvE '^[123] [0-9]+ [0-9]+ .*img$' "$T/progress")" 0
	t_equal "phase 3 reaches its total" \
		"$(awk '$1 == 3 && $2 == $3' "$T/progress" | wc -l | tr -d ' ')" 1
}

test_front_end() {
	if ! command -v fsck >/dev/null; then
		t_skip "fsck(8) is not installed"
		return 0
	fi
	make_image
	t_rc 0 "fsck -t arbor -n finds fsck.arbor" \
		env PATH="$(dirname "$FSCK"):$PATH" fsck -t arbor -n "$IMG"
	t_grep "and runs it" 'img: clean'
}

test_mounted() {
	local pid
	if [ ! -x "$ARBORFS" ] || [ ! -c /dev/fuse ] || [ "$(id -u)" -ne 0 ]; then
		t_skip "mounting needs root, /dev/fuse and arborfs"
		return 0
	fi
	make_image
	mkdir -p "$MNT"
	"$ARBORFS" "$IMG" "$MNT" -f 2>"$T/daemon.log" &
	pid=$!
	for ((i = 0; i < 100; i++)); do
		mountpoint -q "$MNT" && break
		sleep 0.1
	done
	t_fsck 0 "fsck -n of a mounted image checks its last commit" -n "$IMG"
	t_grep "with a warning on stderr" 'in use .* checking its last commit' "$ERR"
	t_fsck 8 "fsck -y of a mounted image is refused: exit 8" -y "$IMG"
	t_grep "and says to unmount" 'unmount it before a repair' "$ERR"
	umount "$MNT"
	wait "$pid"
	t_fsck 0 "after the unmount it is clean" -n "$IMG"
}

test_clean
test_namespace_damage
test_commit_given_up
test_not_arbor
test_usage
test_progress
test_front_end
test_mounted
t_done
