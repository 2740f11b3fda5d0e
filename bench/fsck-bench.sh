#!/bin/bash
# bench/fsck-bench.sh - fsck.arbor -n against e2fsck -fn on the same tree
# of N small files (default 10^6: 1,000 directories of 1,000 files of 100
# bytes), each on its own image in --dir, caches dropped before every run,
# runs interleaved; prints the medians and the ratio e2fsck/fsck.arbor
# (above 1: fsck.arbor is faster).  Run as root from the build tree:
#
#   make bench/tree_image && sudo ../bench/fsck-bench.sh [--files N] [--rounds R] [--dir DIR]
set -euo pipefail

FILES=1000000
ROUNDS=3
DIR=/var/tmp
while [ $# -gt 0 ]; do
	case $1 in
	--files) FILES=$2; shift 2 ;;
	--rounds) ROUNDS=$2; shift 2 ;;
	--dir) DIR=$2; shift 2 ;;
	-h | --help) sed -n '2,9p' "$0"; exit 0 ;;
	*) echo "unknown option $1" >&2; exit 2 ;;
	esac
done
FSCK=${FSCK:-./fsck/fsck.arbor}
TREE=${TREE:-./bench/tree_image}
for tool in "$FSCK" "$TREE" mke2fs e2fsck; do
	command -v "$tool" >/dev/null || { echo "missing $tool (build: make bench/tree_image)" >&2; exit 1; }
done
W=$(mktemp -d "$DIR/fsck-bench.XXXXXX")
trap 'rm -rf "$W"' EXIT

now() { date +%s.%N; }
drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "# $(uname -sr), $(nproc) CPUs; $FILES files of 100 bytes, $ROUNDS rounds; images in $DIR"
t0=$(now)
ARBOR_IMG=$("$TREE" --arbor "$W" "$FILES")
echo "# arbor image built in $(echo "$(now) - $t0" | bc) s: $(du -h "$ARBOR_IMG" | cut -f1) used"
mkdir "$W/host"
t0=$(now)
"$TREE" --host "$W/host" "$FILES"
truncate -s 16G "$W/ext4.img"
mke2fs -q -t ext4 -N $((FILES + 10000)) -d "$W/host" "$W/ext4.img"
rm -rf "$W/host"
echo "# ext4 image built in $(echo "$(now) - $t0" | bc) s: $(du -h "$W/ext4.img" | cut -f1) used"

for ((r = 1; r <= ROUNDS; r++)); do
	drop
	t0=$(now)
	"$FSCK" -n "$ARBOR_IMG" >"$W/fsck.out"
	echo "$(now) - $t0" | bc >>"$W/arbor.times"
	drop
	t0=$(now)
	e2fsck -fn "$W/ext4.img" >"$W/e2fsck.out" 2>&1
	echo "$(now) - $t0" | bc >>"$W/e2fsck.times"
	echo "# round $r: fsck.arbor $(tail -1 "$W/arbor.times") s, e2fsck $(tail -1 "$W/e2fsck.times") s"
done
tail -1 "$W/fsck.out" | sed 's/^/# fsck.arbor: /'
tail -1 "$W/e2fsck.out" | sed 's/^/# e2fsck: /'
a=$(median <"$W/arbor.times")
e=$(median <"$W/e2fsck.times")
printf '%-12s %12s %12s %8s\n' "files" "fsck.arbor s" "e2fsck -fn s" "ratio"
printf '%-12s %12.2f %12.2f %8.2f\n' "$FILES" "$a" "$e" "$(echo "$e / $a" | bc -l)"
