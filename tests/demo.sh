#!/bin/bash
# tests/demo.sh - the main job for now (make demo): format an image with
# mkfs.arbor, write files into it with the arbor tool, take an O(1) clone of
# the filesystem tree, change the live files, and check every node and
# every reference count.  (Mounting comes with arborfs, fsck with
# fsck.arbor.)
#
# Usage: tests/demo.sh PATH/TO/arbor PATH/TO/mkfs.arbor
# Exits non-zero on failure.
set -euo pipefail

if [ $# -ne 2 ] || [ ! -x "$1" ] || [ ! -x "$2" ]; then
	echo "usage: $0 PATH/TO/arbor PATH/TO/mkfs.arbor" >&2
	exit 2
fi
abspath() { echo "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"; }
arbor=$(abspath "$1")
mkfs=$(abspath "$2")
src=$(cd "$(dirname "$0")/.." && pwd)

work=$(mktemp -d "${TMPDIR:-/tmp}/arbor-demo.XXXXXX")
trap 'rm -rf "$work"' EXIT
img=$work/demo.img

step() {
	printf '\n=== %s\n' "$*"
}

# Show the command, then run it on the image.
run() {
	printf '$ arbor -i demo.img %s\n' "$*"
	"$arbor" -i "$img" "$@"
}

step "1. format a 128 MiB image"
printf '$ mkfs.arbor -s 128M -L demo demo.img\n'
"$mkfs" -s 128M -L demo "$img"

step "2. write files: the Arbor sources, and a 20 MiB random file"
run mkdir -p /src/core
for f in "$src"/core/*.c; do
	"$arbor" -i "$img" put "$f" /src/core/
done
echo "(put $(find "$src/core" -name '*.c' | wc -l) files into /src/core)"
head -c 20M /dev/urandom >"$work/random.bin"
run put "$work/random.bin" /random.bin
run ln -s /src/core/btree.c /btree.c

step "3. read them back"
run ls -l /
run ls -l /src/core | head -n 5
run get /random.bin "$work/random.out"
cmp "$work/random.bin" "$work/random.out"
echo "(20 MiB read back identical)"
run cat /btree.c 2>/dev/null | head -n 3 || true
run stat /random.bin

step "4. clone the filesystem tree: O(1), one more reference on its root"
run engine list
clone=$("$arbor" -i "$img" engine clone 256)
echo "clone id: $clone"

step "5. change the live files; the clone still holds the old ones"
run rm /random.bin
run put "$src/README.md" /README.md
run ls -l /
run engine list

step "6. space and the superblock ring"
run engine info
run inspect superblock | tail -n 12

step "7. full check: every node, every reference count (data included)"
run engine check

step "8. drop the clone: its exclusive blocks come back"
run engine drop "$clone"
run engine check | tail -n 1

printf '\n=== demo finished: all steps succeeded\n'
