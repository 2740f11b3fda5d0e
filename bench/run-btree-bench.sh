#!/bin/sh
# SPDX-License-Identifier: MIT
#
# run-btree-bench.sh - run the Arbor-vs-LMDB B+tree benchmark and print its
# table.  Builds nothing: `make bench` builds bench/btree_bench and calls this.
#
#   run-btree-bench.sh [BINARY [btree_bench options...]]
#
# BINARY defaults to bench/btree_bench.  Without options it runs the full
# benchmark (10^6 keys, 3 rounds, both engines); ARBOR_BENCH_OPS and
# ARBOR_BENCH_ROUNDS override the sizes.  Files go to $ARBOR_BENCH_DIR
# (default /var/tmp) unless --dir is given.
set -eu

bin=${1:-bench/btree_bench}
[ $# -gt 0 ] && shift

if [ ! -x "$bin" ]; then
	echo "run-btree-bench.sh: no benchmark binary at '$bin' (build it with: make bench)" >&2
	exit 1
fi

dir=${ARBOR_BENCH_DIR:-/var/tmp}
if [ ! -d "$dir" ] || [ ! -w "$dir" ]; then
	echo "run-btree-bench.sh: '$dir' is not a writable directory (set ARBOR_BENCH_DIR)" >&2
	exit 1
fi

# options given on the command line come last and win
if [ $# -eq 0 ]; then
	set -- --ops "${ARBOR_BENCH_OPS:-1000000}" --rounds "${ARBOR_BENCH_ROUNDS:-3}" --engine both
fi
set -- --dir "$dir" "$@"

echo "# $(uname -srm), $(nproc 2>/dev/null || echo "?") CPUs"
exec "$bin" "$@"
