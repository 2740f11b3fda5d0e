/* SPDX-License-Identifier: MIT */
/*
 * snapshot_bench.c - snapshot latency against subvolume size.
 *
 * A snapshot clones a subvolume's tree by adding one reference to its root
 * node, so its cost must not depend on how many files the subvolume holds.
 * This builds, on a sparse image file, one subvolume per size (default 10
 * and 1,000,000 files of 100 bytes in directories of 1,000), commits, and
 * then times R snapshots of each: arb_vfs_snapshot alone, and snapshot +
 * durable commit (what `arbor snapshot create` and the daemon do).  It
 * prints the median and the worst of each, and the ratio between sizes.
 *
 *   snapshot_bench [--files N,M,...] [--rounds R] [--dir DIR]
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench_common.h"

#define MAX_ROUNDS 99

struct result {
	long files;
	double snap[MAX_ROUNDS], durable[MAX_ROUNDS];
};

static void time_snapshots(struct arb_fs *fs, arb_ino_t top, uint64_t id, int rounds,
                           struct result *r)
{
	char n[64];

	for (int i = 0; i < rounds; i++) {
		double t0, t1, t2;
		int err;

		snprintf(n, sizeof(n), "snap-%" PRIu64 "-%d", id, i);
		t0 = bench_now();
		err = arb_vfs_snapshot(fs, id, top, n, ARB_SNAPSHOT_RDONLY, NULL);
		t1 = bench_now();
		if (!err)
			err = arb_commit(fs);
		t2 = bench_now();
		if (err)
			bench_die("snapshot", err);
		r->snap[i] = (t1 - t0) * 1e6;
		r->durable[i] = (t2 - t0) * 1e6;
	}
}

struct options {
	long sizes[BENCH_MAX_LIST];
	int nsizes, rounds;
	const char *dir;
};

static void parse_args(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {{"files", required_argument, NULL, 'f'},
	                                         {"rounds", required_argument, NULL, 'r'},
	                                         {"dir", required_argument, NULL, 'd'},
	                                         {"help", no_argument, NULL, 'h'},
	                                         {NULL, 0, NULL, 0}};
	const char *sizes = "10,1000000";
	int c;

	o->rounds = 15;
	o->dir = "/var/tmp";
	while ((c = getopt_long(argc, argv, "f:r:d:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			sizes = optarg;
			break;
		case 'r':
			o->rounds = atoi(optarg);
			break;
		case 'd':
			o->dir = optarg;
			break;
		default:
			fprintf(stderr, "usage: snapshot_bench [--files N,M,...] [--rounds R] "
			                "[--dir DIR]\n");
			exit(c == 'h' ? 0 : 2);
		}
	}
	o->nsizes = bench_parse_list(sizes, o->sizes);
	if (o->nsizes <= 0 || o->rounds < 1 || o->rounds > MAX_ROUNDS) {
		fprintf(stderr,
		        "snapshot_bench: --files wants up to %d positive counts, --rounds 1..%d\n",
		        BENCH_MAX_LIST, MAX_ROUNDS);
		exit(2);
	}
}

static void print_table(struct result *res, int nsizes, int rounds)
{
	printf("%-12s %14s %14s %18s %18s\n", "files", "snapshot us", "worst us",
	       "+commit us (med)", "+commit worst us");
	for (int s = 0; s < nsizes; s++) {
		double sm = bench_median(res[s].snap, rounds), snap_worst = res[s].snap[rounds - 1];
		double dm = bench_median(res[s].durable, rounds);
		double dur_worst = res[s].durable[rounds - 1];

		printf("%-12ld %14.1f %14.1f %18.1f %18.1f\n", res[s].files, sm, snap_worst, dm,
		       dur_worst);
	}
	printf("# medians of %d snapshots each; the ratio of the largest to the smallest size: "
	       "snapshot %.2fx, snapshot+commit %.2fx\n",
	       rounds,
	       bench_median(res[nsizes - 1].snap, rounds) / bench_median(res[0].snap, rounds),
	       bench_median(res[nsizes - 1].durable, rounds) /
	               bench_median(res[0].durable, rounds));
}

int main(int argc, char **argv)
{
	static struct result res[BENCH_MAX_LIST];
	struct bench_image img = {0};
	struct options o;

	parse_args(argc, argv, &o);
	bench_image_open(o.dir, &img);
	for (int s = 0; s < o.nsizes; s++) {
		char name[32];
		double t0 = bench_now();

		snprintf(name, sizeof(name), "sub%ld", o.sizes[s]);
		uint64_t id = bench_populate(&img, name, o.sizes[s]);

		fprintf(stderr, "# %ld files written and committed in %.1f s\n", o.sizes[s],
		        bench_now() - t0);
		res[s].files = o.sizes[s];
		time_snapshots(img.fs, img.top, id, o.rounds, &res[s]);
	}
	bench_image_close(&img);
	print_table(res, o.nsizes, o.rounds);
	return 0;
}
