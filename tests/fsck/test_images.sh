#!/bin/bash
# tests/fsck/test_images.sh - the fsck corpus (images/, as e2fsprogs'
# tests/f_*): each images/NAME/image.xz is unpacked into a scratch
# directory and fsck.arbor runs on it there as "image" (so that its output
# names no scratch path): -n, -y, then -n again.  Standard output and the
# exit status must equal images/NAME/expect.n, expect.y and expect.recheck
# exactly; extra options come from images/NAME/flags.  images/regen.sh
# rebuilds the corpus.  Prints TAP.

set -u
export LC_ALL=C TZ=UTC

: "${top_builddir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
FSCK=$top_builddir/fsck/fsck.arbor
IMAGES=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../images" && pwd)

if [ ! -x "$FSCK" ]; then
	echo "1..0 # SKIP $FSCK is not built"
	exit 0
fi
if ! command -v xz >/dev/null; then
	echo "1..0 # SKIP xz is not installed"
	exit 0
fi

T=$(mktemp -d "${TMPDIR:-/tmp}/arbor-images.XXXXXX") || {
	echo "Bail out! cannot create a scratch directory"
	exit 1
}
count=0
failed=0
trap '[ "$failed" -eq 0 ] && rm -rf "$T" || echo "# scratch directory kept: $T"' EXIT

# run_fsck OPTION...: stdout of fsck.arbor on ./image, then "exit N"
run_fsck() {
	local rc=0
	"$FSCK" "$@" image 2>/dev/null || rc=$?
	echo "exit $rc"
}

# check NAME STEP GOT: one TAP line; the diff on a mismatch.
check() {
	local want=$IMAGES/$1/expect.$2
	count=$((count + 1))
	if [ -f "$want" ] && cmp -s "$want" "$3"; then
		echo "ok $count - $1: fsck.arbor $4"
		return 0
	fi
	failed=$((failed + 1))
	echo "not ok $count - $1: fsck.arbor $4"
	diff -u "$want" "$3" 2>&1 | sed 's/^/#   /'
	return 1
}

run_image() {
	local name=$1 dir=$T/$1 flags=() opts
	if [ -f "$IMAGES/$name/flags" ]; then
		read -r -a flags <"$IMAGES/$name/flags"
	fi
	opts=${flags[*]:+ ${flags[*]}}
	mkdir -p "$dir"
	if ! xz -dc "$IMAGES/$name/image.xz" >"$dir/image"; then
		count=$((count + 1))
		failed=$((failed + 1))
		echo "not ok $count - $name: image.xz unpacks"
		return
	fi
	(cd "$dir" && run_fsck -n "${flags[@]}") >"$dir/got.n"
	check "$name" n "$dir/got.n" "-n$opts"
	(cd "$dir" && run_fsck -y "${flags[@]}") >"$dir/got.y"
	check "$name" y "$dir/got.y" "-y$opts"
	(cd "$dir" && run_fsck -n "${flags[@]}") >"$dir/got.recheck"
	check "$name" recheck "$dir/got.recheck" "-n$opts after the repair"
	rm -f "$dir/image"
}

for d in "$IMAGES"/*/; do
	[ -f "$d/image.xz" ] || continue
	run_image "$(basename "$d")"
done
echo "1..$count"
[ "$failed" -eq 0 ]
