#!/bin/bash
# tests/demo.sh - the main job (make demo): format an image with mkfs.arbor,
# mount it with arborfs, write files (and an instant copy-on-write copy of a
# big one), take a read-only snapshot and see what changed since, unmount,
# check the image with fsck.arbor.  Without root or /dev/fuse the files go
# in through the arbor tool instead of a mount.
#
# Usage: tests/demo.sh BUILDDIR
# Exits non-zero on failure.
set -euo pipefail

if [ $# -ne 1 ] || [ ! -x "$1/cli/arbor" ] || [ ! -x "$1/mkfs/mkfs.arbor" ]; then
	echo "usage: $0 BUILDDIR (with cli/arbor, mkfs/mkfs.arbor, fuse/arborfs, fsck/fsck.arbor built)" >&2
	exit 2
fi
build=$(cd "$1" && pwd)
arbor=$build/cli/arbor
mkfs=$build/mkfs/mkfs.arbor
fsck=$build/fsck/fsck.arbor
arborfs=$build/fuse/arborfs
src=$(cd "$(dirname "$0")/.." && pwd)

work=$(mktemp -d "${TMPDIR:-/tmp}/arbor-demo.XXXXXX")
img=$work/demo.img
mnt=$work/mnt
daemon=

cleanup() {
	if [ -n "$daemon" ] && mountpoint -q "$mnt" 2>/dev/null; then
		fusermount3 -u "$mnt" 2>/dev/null || fusermount3 -u -z "$mnt" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

step() {
	printf '\n=== %s\n' "$*"
}

# Show a command, then run it.
show() {
	printf '$ %s\n' "$*"
	"$@"
}

run() {
	printf '$ arbor -i demo.img %s\n' "$*"
	"$arbor" -i "$img" "$@"
}

can_mount() {
	[ "$(id -u)" -eq 0 ] && [ -c /dev/fuse ] && command -v fusermount3 >/dev/null &&
		[ -x "$arborfs" ]
}

mount_fs() {
	mkdir -p "$mnt"
	printf '$ arborfs demo.img mnt -f &\n'
	"$arborfs" "$img" "$mnt" -f &
	daemon=$!
	for _ in $(seq 100); do
		mountpoint -q "$mnt" && return 0
		sleep 0.1
	done
	echo "error: arborfs did not mount" >&2
	exit 1
}

# fusermount3 -u returns before the daemon's final commit: wait for it.
unmount_fs() {
	printf '$ fusermount3 -u mnt; wait for the daemon\n'
	fusermount3 -u "$mnt"
	wait "$daemon"
	daemon=
}

step "1. format a 256 MiB image"
show "$mkfs" -s 256M -L demo "$img"

head -c 64M /dev/urandom >"$work/random.bin"
if can_mount; then
	step "2. mount it and write: the Arbor sources, a 64 MiB file, a symlink"
	mount_fs
	show cp -r "$src/core" "$mnt/src"
	show cp "$work/random.bin" "$mnt/random.bin"
	show ln -s src/btree.c "$mnt/btree.c"
	step "3. an instant copy: cp shares the extents (copy_file_range)"
	show df -k "$mnt"
	start=$(date +%s.%N)
	show cp "$mnt/random.bin" "$mnt/copy.bin"
	end=$(date +%s.%N)
	awk -v s="$start" -v e="$end" 'BEGIN { printf "64 MiB copied in %.3f s\n", e - s }'
	show df -k "$mnt"
	show cmp "$mnt/random.bin" "$mnt/copy.bin"
	show ls -l "$mnt"
	step "4. a read-only snapshot (O(1)), a change, and what changed since"
	show "$arbor" snapshot create -r "$mnt" "$mnt/monday"
	show rm "$mnt/copy.bin"
	echo "new" >"$mnt/src/new.c"
	show "$arbor" diff "$mnt/monday" "$mnt"
	unmount_fs
else
	step "2. write through the arbor tool (no root or /dev/fuse: no mount)"
	run mkdir -p /src
	for f in "$src"/core/*.c; do
		"$arbor" -i "$img" put "$f" /src/
	done
	run put "$work/random.bin" /random.bin
	run ln -s src/btree.c /btree.c
	step "3. read back"
	run ls -l /
	step "4. a read-only snapshot (O(1)), a change, and what changed since"
	run snapshot create -r / /monday
	run rm /btree.c
	run diff /monday /
fi

step "5. the files, read offline with the arbor tool"
run ls -l /src | head -n 5
run get /random.bin "$work/random.out"
cmp "$work/random.bin" "$work/random.out"
echo "(64 MiB read back identical)"

step "6. check it: superblocks, every node and count, every file (fsck -n)"
show "$fsck" -n -v --check-data "$img"

step "7. delete the snapshot offline; check again"
run subvolume delete /monday
show "$fsck" -n "$img"

printf '\n=== demo finished: all steps succeeded\n'
