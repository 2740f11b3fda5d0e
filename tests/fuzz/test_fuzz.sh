#!/bin/bash
# tests/fuzz/test_fuzz.sh - run each libFuzzer harness briefly (TAP).
#
# For each harness (tests/fuzz/fuzz_mount, tests/fuzz/fuzz_fsck, built by
# `make fuzz` when configure found clang with libFuzzer): one check that
# every input of its corpus (tests/fuzz/corpus/<harness>: the seeds and the
# regression inputs of bugs found so far) runs clean, then one check that
# fuzzing from that corpus for ARBOR_FUZZ_TIME seconds (default 20) finds
# nothing.  New inputs go to a scratch directory, never into the source
# tree; a failure prints the crashing input (base64) and keeps the scratch
# directory.  Without the harnesses: 1..0 # SKIP.
#
# Environment: top_builddir (exported by make check), ARBOR_FUZZ_TIME,
# ARBOR_FUZZ_SEED (libFuzzer -seed, default 1; 0: a random one).

set -u
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${top_builddir:=$(cd "$here/../.." && pwd)}"
FUZZ_TIME=${ARBOR_FUZZ_TIME:-20}
FUZZ_SEED=${ARBOR_FUZZ_SEED:-1}
harnesses=(mount fsck)

for h in "${harnesses[@]}"; do
	if [ ! -x "$top_builddir/tests/fuzz/fuzz_$h" ]; then
		echo "1..0 # SKIP tests/fuzz/fuzz_$h is not built (needs clang with libFuzzer at configure time)"
		exit 0
	fi
done

T=$(mktemp -d "${TMPDIR:-/tmp}/arbor-fuzz.XXXXXX") || {
	echo "Bail out! cannot create a scratch directory"
	exit 1
}
t_count=0
t_failed=0

# shellcheck disable=SC2317 # run by the trap
cleanup() {
	if [ "$t_failed" -eq 0 ]; then
		rm -rf "$T"
	else
		echo "# scratch directory kept: $T"
	fi
}
trap cleanup EXIT

# result STATUS DESCRIPTION RUN: one TAP line, and on failure the end of
# the run's log and every crashing input it wrote.
result() {
	t_count=$((t_count + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $t_count - $2"
		return
	fi
	t_failed=$((t_failed + 1))
	echo "not ok $t_count - $2"
	tail -n 60 "$T/$3.log" | sed 's/^/#   /'
	for a in "$T/artifacts-$3"/*; do
		[ -f "$a" ] || continue
		echo "# input $a (base64):"
		base64 -w 76 "$a" | sed 's/^/#   /'
	done
}

# The options common to both runs of a harness (RUN: the run's name).
fuzz_opts() {
	echo "-timeout=25 -rss_limit_mb=2560 -max_len=1024 -len_control=0" \
		"-artifact_prefix=$T/artifacts-$1/ -seed=$FUZZ_SEED"
}

echo "1..$((2 * ${#harnesses[@]}))"
for h in "${harnesses[@]}"; do
	bin=$top_builddir/tests/fuzz/fuzz_$h
	corpus=$here/corpus/$h
	mkdir -p "$T/artifacts-$h-corpus" "$T/artifacts-$h-fuzz" "$T/new-$h"
	# shellcheck disable=SC2046
	"$bin" $(fuzz_opts "$h-corpus") -runs=0 "$T/new-$h" "$corpus" >"$T/$h-corpus.log" 2>&1
	result $? "fuzz_$h: every input of tests/fuzz/corpus/$h runs clean" "$h-corpus"
	# shellcheck disable=SC2046
	"$bin" $(fuzz_opts "$h-fuzz") -max_total_time="$FUZZ_TIME" -print_final_stats=1 \
		"$T/new-$h" "$corpus" >"$T/$h-fuzz.log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$T/$h-fuzz.log")
	result $rc "fuzz_$h: ${FUZZ_TIME}s of fuzzing (${execs:-?} inputs) find nothing" "$h-fuzz"
done
exit 0
