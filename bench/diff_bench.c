/* SPDX-License-Identifier: MIT */
/*
 * diff_bench.c - the cost of arb_vfs_diff against subvolume size and
 * change size.
 *
 * Diff walks only the subtrees the two trees do not share, so its cost must
 * follow the size of the change, not of the subvolume.  For every size
 * (default 10^4 and 10^6 files of 100 bytes in directories of 1,000, on a
 * sparse image file) this builds a subvolume, and for every change size
 * (default 1, 100 and 10,000 files) takes a read-only snapshot, changes
 * that many files of the source spread over the whole subvolume (a third
 * each overwritten, created and deleted; a single change is a write),
 * commits, and times R rounds of arb_vfs_diff(snapshot, source): median
 * and first round, tree nodes read and paths reported.  A last row per size
 * diffs the source against an empty subvolume: the cost of reading all of
 * it.  The ratios between the largest and the smallest size follow.
 *
 *   diff_bench [--files N,M,...] [--changes C,D,...] [--rounds R] [--dir DIR]
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bench_common.h"

#define MAX_ROUNDS 99

struct options {
	long sizes[BENCH_MAX_LIST], changes[BENCH_MAX_LIST];
	int nsizes, nchanges, rounds;
	const char *dir;
};

/* One row: a diff timed R times. */
struct row {
	long files, changes; /* changes 0: against an empty subvolume */
	uint64_t nodes, paths;
	double first_ms, median_ms;
};

/* The subvolume being changed: files are picked along a permutation of
 * 0..files-1 (a stride coprime with files), so that no file is written or
 * deleted twice and changes spread over every directory. */
struct source {
	struct bench_image *img;
	uint64_t id;
	arb_ino_t root;
	long files, stride, picked, created;
};

static long gcd(long a, long b)
{
	while (b) {
		long t = a % b;

		a = b;
		b = t;
	}
	return a;
}

static void source_init(struct source *s, struct bench_image *img, long files)
{
	char name[32];
	int err;

	memset(s, 0, sizeof(*s));
	s->img = img;
	s->files = files;
	snprintf(name, sizeof(name), "sub%ld", files);
	s->id = bench_populate(img, name, files);
	if ((err = arb_vfs_root(img->fs, s->id, &s->root)))
		bench_die("subvolume root", err);
	s->stride = files * 618 / 1000 + 1;
	while (gcd(s->stride, files) != 1)
		s->stride++;
}

/* File i along the permutation: its directory's inode, its name. */
static arb_ino_t locate(const struct source *s, long i, char *fname)
{
	struct arb_stat st;
	char dname[32];
	int err;

	bench_file_name(i * s->stride % s->files, dname, fname);
	if ((err = arb_vfs_lookup(s->img->fs, s->root, dname, &st)))
		bench_die("lookup a directory", err);
	return st.ino;
}

/* Change j of a set: overwrite or delete the next file along the
 * permutation, or create a file in the directory of another. */
static void change_one(struct source *s, long j)
{
	struct arb_fs *fs = s->img->fs;
	struct arb_cred cred = {0, 0};
	char data[BENCH_FILE_BYTES], fname[32];
	struct arb_stat st;
	arb_ino_t dir;
	size_t w;
	int err;

	memset(data, 'a' + (int)(j % 26), sizeof(data));
	if (j % 3 == 1) {
		dir = locate(s, s->created, fname);
		snprintf(fname, sizeof(fname), "n%07ld", s->created++);
		err = arb_vfs_mknod(fs, dir, fname, S_IFREG | 0644, 0, &cred, &st);
		if (!err)
			err = arb_vfs_write(fs, st.ino, 0, data, sizeof(data), &w);
	} else {
		if (s->picked >= s->files)
			bench_die("more changes than files: fewer --changes", EINVAL);
		dir = locate(s, s->picked++, fname);
		if (j % 3 == 2)
			err = arb_vfs_unlink(fs, dir, fname);
		else if (!(err = arb_vfs_lookup(fs, dir, fname, &st)))
			err = arb_vfs_write(fs, st.ino, 0, data, sizeof(data), &w);
	}
	if (err)
		bench_die("change a file", err);
}

static int count_path(void *ctx, char kind, const char *path)
{
	(void)kind, (void)path;
	++*(uint64_t *)ctx;
	return 0;
}

static void time_diff(struct arb_fs *fs, uint64_t a, uint64_t b, int rounds, struct row *r)
{
	double ms[MAX_ROUNDS] = {0};

	for (int i = 0; i < rounds; i++) {
		double t0 = bench_now();
		int err;

		r->paths = 0;
		err = arb_vfs_diff(fs, a, b, count_path, &r->paths, &r->nodes);
		if (err)
			bench_die("diff", err);
		ms[i] = (bench_now() - t0) * 1e3;
	}
	r->first_ms = ms[0];
	r->median_ms = bench_median(ms, rounds);
}

/* Snapshot, change n files, commit, time the diff. */
static void change_row(struct source *s, long n, int rounds, struct row *r)
{
	struct arb_stat st;
	char name[64];
	int err;

	snprintf(name, sizeof(name), "snap%ld-%ld", s->files, n);
	err = arb_vfs_snapshot(s->img->fs, s->id, s->img->top, name, ARB_SNAPSHOT_RDONLY, &st);
	if (err)
		bench_die("snapshot", err);
	for (long j = 0; j < n; j++)
		change_one(s, j);
	if ((err = arb_commit(s->img->fs)))
		bench_die("commit", err);
	r->files = s->files;
	r->changes = n;
	time_diff(s->img->fs, arb_ino_subvol(st.ino), s->id, rounds, r);
}

/* The source against an empty subvolume: everything is read (one round). */
static void whole_row(struct source *s, struct row *r)
{
	struct arb_cred cred = {0, 0};
	struct arb_stat st;
	char name[32];
	int err;

	snprintf(name, sizeof(name), "empty%ld", s->files);
	err = arb_vfs_subvol_make(s->img->fs, s->img->top, name, 0755, &cred, &st);
	if (!err)
		err = arb_commit(s->img->fs);
	if (err)
		bench_die("empty subvolume", err);
	r->files = s->files;
	r->changes = 0;
	time_diff(s->img->fs, arb_ino_subvol(st.ino), s->id, 1, r);
}

static void parse_args(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
	        {"files", required_argument, NULL, 'f'},  {"changes", required_argument, NULL, 'c'},
	        {"rounds", required_argument, NULL, 'r'}, {"dir", required_argument, NULL, 'd'},
	        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0}};
	const char *sizes = "10000,1000000", *changes = "1,100,10000";
	int c;

	o->rounds = 15;
	o->dir = "/var/tmp";
	while ((c = getopt_long(argc, argv, "f:c:r:d:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			sizes = optarg;
			break;
		case 'c':
			changes = optarg;
			break;
		case 'r':
			o->rounds = atoi(optarg);
			break;
		case 'd':
			o->dir = optarg;
			break;
		default:
			fprintf(stderr, "usage: diff_bench [--files N,M,...] [--changes C,D,...] "
			                "[--rounds R] [--dir DIR]\n");
			exit(c == 'h' ? 0 : 2);
		}
	}
	o->nsizes = bench_parse_list(sizes, o->sizes);
	o->nchanges = bench_parse_list(changes, o->changes);
	if (o->nsizes <= 0 || o->nchanges <= 0 || o->rounds < 1 || o->rounds > MAX_ROUNDS) {
		fprintf(stderr,
		        "diff_bench: --files and --changes want up to %d positive counts, "
		        "--rounds 1..%d\n",
		        BENCH_MAX_LIST, MAX_ROUNDS);
		exit(2);
	}
}

static void print_table(const struct row *rows, int nrows)
{
	printf("%-10s %-10s %10s %12s %12s %12s\n", "files", "changes", "paths", "nodes read",
	       "median ms", "first ms");
	for (int i = 0; i < nrows; i++) {
		char changes[32];

		if (rows[i].changes)
			snprintf(changes, sizeof(changes), "%ld", rows[i].changes);
		else
			snprintf(changes, sizeof(changes), "all");
		printf("%-10ld %-10s %10" PRIu64 " %12" PRIu64 " %12.3f %12.3f\n", rows[i].files,
		       changes, rows[i].paths, rows[i].nodes, rows[i].median_ms, rows[i].first_ms);
	}
}

/* rows: per size, nchanges rows then the whole one. */
static void print_ratios(const struct row *rows, const struct options *o)
{
	int per = o->nchanges + 1;
	const struct row *lo = rows, *hi = rows + (o->nsizes - 1) * per;

	if (o->nsizes < 2)
		return;
	for (int c = 0; c < per; c++) {
		if (hi[c].changes)
			printf("# %ld changed:", hi[c].changes);
		else
			printf("# all:");
		printf(" %ld files take %.2fx the time of %ld files (%.2fx the nodes read)\n",
		       hi[c].files, hi[c].median_ms / lo[c].median_ms, lo[c].files,
		       (double)hi[c].nodes / (double)(lo[c].nodes ? lo[c].nodes : 1));
	}
}

int main(int argc, char **argv)
{
	static struct row rows[BENCH_MAX_LIST * (BENCH_MAX_LIST + 1)];
	struct bench_image img = {0};
	struct options o;
	int nrows = 0;

	parse_args(argc, argv, &o);
	bench_image_open(o.dir, &img);
	for (int s = 0; s < o.nsizes; s++) {
		struct source src;
		double t0 = bench_now();

		source_init(&src, &img, o.sizes[s]);
		fprintf(stderr, "# %ld files written and committed in %.1f s\n", o.sizes[s],
		        bench_now() - t0);
		for (int c = 0; c < o.nchanges; c++)
			change_row(&src, o.changes[c], o.rounds, &rows[nrows++]);
		whole_row(&src, &rows[nrows++]);
	}
	bench_image_close(&img);
	print_table(rows, nrows);
	printf("# diff of a read-only snapshot against its changed source, median of %d rounds;\n"
	       "# changes \"all\": an empty subvolume against the source (one round)\n",
	       o.rounds);
	print_ratios(rows, &o);
	return 0;
}
