#!/bin/bash
# images/regen.sh - rebuild the fsck corpus: every images/NAME/image.xz and
# its expected fsck.arbor output, from images/NAME/script, with the tools
# of a build directory.  Run it after a change of the on-disk format or of
# what fsck.arbor prints, then review the diff of the expect.* files.
#
#   images/regen.sh BUILDDIR [NAME...]      (default: every image)
#
# Each script runs with bash in an empty scratch directory, with these
# helpers (and set -e): its image is the file "image" there.
#   mkfs                an empty 8 MiB filesystem, node size 4096, fixed UUID
#   arbor ARGS...       the arbor tool on the image (arbor -i image ARGS...)
#   populate            a few files: /docs/readme (inline), /docs/numbers
#                       (18893 bytes, 5 sectors), /docs/sub, and the hard
#                       link /docs/sub/numbers-link
#   generation          the newest generation of the image
#   node_addr TREE      the address of TREE's root node (newest commit)
# SOURCE_DATE_EPOCH, the UUID and the name hash seed mkfs derives from it
# are fixed, so that the images and fsck's output are reproducible.
#
# Then, for each image: image.xz (xz -9), and from fsck.arbor run in the
# scratch directory on "image" with the options in NAME/flags (if any):
#   expect.n        stdout of fsck.arbor -n, then a line "exit N"
#   expect.y        the same for -y
#   expect.recheck  -n again, after the repair
# tests/fsck/test_images.sh checks exactly these.
set -euo pipefail
export LC_ALL=C TZ=UTC SOURCE_DATE_EPOCH=1700000000

if [ $# -lt 1 ] || [ ! -d "$1" ]; then
	echo "usage: $0 BUILDDIR [NAME...]" >&2
	exit 2
fi
BUILD=$(cd "$1" && pwd)
shift
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ARBOR_BIN=$BUILD/cli/arbor
MKFS_BIN=$BUILD/mkfs/mkfs.arbor
FSCK_BIN=${FSCK_BIN:-$BUILD/fsck/fsck.arbor}
UUID=5eed0000-a7b0-4000-8000-000000000001

for tool in "$ARBOR_BIN" "$MKFS_BIN" "$FSCK_BIN"; do
	if [ ! -x "$tool" ]; then
		echo "$0: $tool is not built" >&2
		exit 1
	fi
done

# ---- helpers for the scripts -------------------------------------------------

mkfs() {
	"$MKFS_BIN" -q -U "$UUID" -n 4096 -s 8M "$@" image
}

arbor() {
	"$ARBOR_BIN" -i image "$@"
}

populate() {
	printf 'hello, world\n' >readme.txt
	seq 1 4000 >numbers.txt
	arbor mkdir /docs
	arbor put readme.txt /docs/readme
	arbor put numbers.txt /docs/numbers
	arbor mkdir /docs/sub
	arbor ln /docs/numbers /docs/sub/numbers-link
}

generation() {
	arbor engine info | awk '$1 == "generation" { print $2; exit }'
}

node_addr() {
	arbor inspect dump-tree "$1" | awk 'NR == 2 { print $2; exit }'
}

# ---- one image ---------------------------------------------------------------------

# run_fsck OPTION...: stdout of fsck.arbor on ./image, then "exit N"
run_fsck() {
	local rc=0
	"$FSCK_BIN" "$@" image 2>/dev/null || rc=$?
	echo "exit $rc"
}

regen_one() {
	local dir=$HERE/$1 tmp flags=()
	[ -f "$dir/script" ] || {
		echo "$0: $dir/script is missing" >&2
		return 1
	}
	if [ -f "$dir/flags" ]; then
		read -r -a flags <"$dir/flags"
	fi
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/arbor-regen.XXXXXX")
	(
		cd "$tmp"
		# shellcheck source=/dev/null
		. "$dir/script" >script.log 2>&1
	) || {
		echo "$0: $1/script failed (kept: $tmp)" >&2
		cat "$tmp/script.log" >&2
		return 1
	}
	xz -9 -T1 -c "$tmp/image" >"$dir/image.xz"
	(
		cd "$tmp"
		run_fsck -n "${flags[@]}" >"$dir/expect.n"
		run_fsck -y "${flags[@]}" >"$dir/expect.y"
		run_fsck -n "${flags[@]}" >"$dir/expect.recheck"
	)
	rm -rf "$tmp"
	printf '%-28s -n: %s  -y: %s  recheck: %s\n' "$1" "$(tail -n1 "$dir/expect.n")" \
		"$(tail -n1 "$dir/expect.y")" "$(tail -n1 "$dir/expect.recheck")"
}

names=("$@")
if [ ${#names[@]} -eq 0 ]; then
	for d in "$HERE"/*/; do
		names+=("$(basename "$d")")
	done
fi
for n in "${names[@]}"; do
	regen_one "$n"
done
