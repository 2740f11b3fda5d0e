#!/bin/bash
# tests/demo.sh - the main job for now (make demo): drive the Arbor engine
# through the arbor tool on a 64 MiB image and show what it does.
#
# Usage: tests/demo.sh PATH/TO/arbor
# Formats an image, fills a tree with 20000 random items, clones it, changes
# the clone, then shows the trees, the space use, the superblock ring, the
# start of the root and space trees, and runs a full check.  Exits non-zero
# on failure.
set -euo pipefail

if [ $# -ne 1 ] || [ ! -x "$1" ]; then
	echo "usage: $0 PATH/TO/arbor" >&2
	exit 2
fi
arbor=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
seed=${ARBOR_TEST_SEED:-42}

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

# Like run, but print only the command; the output goes to the caller.
capture() {
	printf '$ arbor -i demo.img %s\n' "$*" >&2
	"$arbor" -i "$img" "$@"
}

step "1. format a 64 MiB image (16 KiB nodes)"
run engine format -s 64M -L demo

step "2. create a tree"
tree=$(capture engine create-tree)
echo "tree id: $tree"

step "3. fill it with 20000 random items (committing every 1000)"
start=$(date +%s.%N)
run engine fill "$tree" 20000 --seed "$seed"
end=$(date +%s.%N)
awk -v s="$start" -v e="$end" 'BEGIN { printf "took %.2f s\n", e - s }'

step "4. clone it (O(1): one more reference on the root node)"
clone=$(capture engine clone "$tree")
echo "clone id: $clone"

step "5. modify the clone; the source keeps its data"
run engine put "$clone" 1 1 1 changed-in-the-clone
run engine put "$tree" 2 1 2 added-to-the-source
run engine get "$clone" 1 1 1
if run engine get "$tree" 1 1 1 2>/dev/null; then
	echo "error: the change leaked into the source tree" >&2
	exit 1
fi
echo "(not in the source tree, as expected)"

step "6. the trees"
run engine list

step "7. filesystem info"
run engine info

step "8. the superblock ring"
run inspect superblock

step "9. the root tree (first 40 lines)"
run inspect dump-tree 1 >"$work/dump"
head -n 40 "$work/dump"

step "10. the space tree: a 2-bit reference count per sector"
run inspect dump-tree space >"$work/dump"
head -n 20 "$work/dump"

step "11. full check: every node, every reference count"
run engine check

step "demo finished: all steps succeeded"
