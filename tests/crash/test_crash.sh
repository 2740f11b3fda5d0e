#!/bin/bash
# tests/crash/test_crash.sh - crash consistency end to end in make check
# (issue #7): every workload of tests/crash/crashwork run on a recording
# arborfs mount and its crash states checked by tests/crash/crashcheck,
# through the short mode of run-crashcheck.sh (one check per workload, with
# its state count); then proof that the checker can fail: an oracle that
# promises a version never written, one with a wrong seed, and a damaged
# log must all be refused.  Prints TAP; skips everything without root,
# /dev/fuse or fusermount3, and a workload whose tool (sqlite3, git) is
# missing, with the reason.

# shellcheck source=tests/fuse/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../fuse/lib.sh"

RUN=$(dirname "${BASH_SOURCE[0]}")/run-crashcheck.sh
CRASHCHECK=$top_builddir/tests/crash/crashcheck
for prog in "$CRASHCHECK" "$top_builddir/tests/crash/crashwork" "$top_builddir/fsck/fsck.arbor"; do
	if [ ! -x "$prog" ]; then
		echo "Bail out! $prog is not built"
		exit 1
	fi
done

WORKLOADS=(files rename dirsync links trunc sqlite-wal sqlite-journal git snapshot full)
RUNS=$T/runs

# t_workload NAME: run-crashcheck.sh on one workload; ok with its counts,
# a SKIP with the reason, or not ok with the table and the checker's end.
t_workload() {
	local w=$1 rc line result
	bash "$RUN" --workloads "$w" --dir "$RUNS" --seed "$ARBOR_TEST_SEED" >"$T/$w.table" 2>&1
	rc=$?
	line=$(awk -v w="$w" '$1 == w' "$T/$w.table")
	result=$(echo "$line" | awk '{ for (i = 6; i <= NF; i++) printf "%s%s", $i, (i < NF ? " " : "") }')
	echo "# $line"
	if [ "$rc" = 0 ] && [ "$result" = ok ]; then
		t_result 0 "$w: $(echo "$line" | awk '{ printf "%s crash states of %s events pass (%s s)", $3, $2, $5 }')"
	elif [ "$rc" = 0 ] && [ "${result#skipped: }" != "$result" ]; then
		t_skip "$w: ${result#skipped: }"
	else
		t_result 1 "$w: every crash state passes"
		t_diag_file "$T/$w.table"
		[ -f "$RUNS/$w/check.out" ] && tail -n 20 "$RUNS/$w/check.out" | sed 's/^/#   /'
		[ -f "$RUNS/$w/work.out" ] && tail -n 5 "$RUNS/$w/work.out" | sed 's/^/#   /'
	fi
}

# ---- negative tests: the checker must be able to fail ----------------------------------

F=$RUNS/files

# The last path of the files oracle made durable (D) after a version of
# non-zero size, as "PATH VLINE DLINE" (line numbers of that V and D).
durable_candidate() {
	awk '$2 == "V" { v[$3] = NR; size[$3] = $5 }
	     $2 == "D" && size[$3] > 0 { p = $3; vl = v[$3]; dl = NR }
	     END { if (p != "") print p, vl, dl }' "$F/oracle"
}

# check_refused DESCRIPTION ORACLE [LOG]: crashcheck exits EXPECTED (ERE).
check_refused() {
	local desc=$1 oracle=$2 log=${3:-$F/log} want=$4
	t_run "$CRASHCHECK" --name negative --max-states 200 --seed "$ARBOR_TEST_SEED" \
		"$F/base" "$log" "$oracle"
	if echo "$RC" | grep -Eqx -- "$want"; then
		t_result 0 "$desc (exit $RC)"
		return 0
	fi
	t_result 1 "$desc"
	echo "#   exit status $RC, expected $want"
	tail -n 10 "$OUT" | sed 's/^/#   /'
	t_diag_file "$ERR"
	return 1
}

test_negative() {
	local cand path vline dline pos size
	if [ ! -s "$F/oracle" ] || [ ! -s "$F/log" ] || [ ! -f "$F/base" ]; then
		t_skip "negative tests: the files workload left no log and oracle"
		return
	fi
	cand=$(durable_candidate)
	if [ -z "$cand" ]; then
		t_skip "negative tests: no durable file in the files oracle"
		return
	fi
	read -r path vline dline <<<"$cand"
	echo "# negative tests on $path (V on line $vline, D on line $dline)"
	pos=$(awk -v l="$dline" 'NR == l { print $1 }' "$F/oracle")
	size=$(awk -v l="$vline" 'NR == l { print $5 }' "$F/oracle")

	# a version never written, declared right after the real D and made
	# durable by the same flush: a D one byte later (a D at the same
	# position would promise the version declared before it, the real one)
	awk -v l="$dline" -v rec="$pos V $path 12345 $size" -v d="$((pos + 1)) D $path" \
		'{ print } NR == l { print rec; print d }' "$F/oracle" >"$T/oracle.extra"
	check_refused "a durable version that was never written fails the check" \
		"$T/oracle.extra" "" 1

	# the version made durable declared with a wrong seed
	awk -v l="$vline" 'NR == l { $4 = ($4 == 7 ? 9 : 7) } { print }' "$F/oracle" \
		>"$T/oracle.seed"
	check_refused "a durable version declared with a wrong seed fails the check" \
		"$T/oracle.seed" "" 1

	# a log with 64 bytes of its middle overwritten: a damaged record
	cp "$F/log" "$T/log.bad"
	head -c 64 /dev/urandom | dd of="$T/log.bad" bs=1 seek=$(($(stat -c %s "$F/log") / 2)) \
		conv=notrunc status=none
	check_refused "a damaged log is refused" "$F/oracle" "$T/log.bad" '1|2'
}

for w in "${WORKLOADS[@]}"; do
	t_workload "$w"
done
test_negative
t_done
