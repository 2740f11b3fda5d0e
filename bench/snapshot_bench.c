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
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "arbor/fs.h"
#include "arbor/io.h"
#include "arbor/vfs.h"

#define MAX_SIZES 8
#define MAX_ROUNDS 99
#define PER_DIR 1000

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, int err)
{
	fprintf(stderr, "snapshot_bench: %s: %s\n", what, strerror(err < 0 ? -err : err));
	exit(1);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* A subvolume named name holding nfiles small files; returns its id. */
static uint64_t populate(struct arb_fs *fs, arb_ino_t top, const char *name, long nfiles)
{
	static const char data[100] = "snapshot bench file: one hundred bytes of content, enough "
	                              "to be inline data in the leaf.";
	struct arb_cred cred = {0, 0};
	struct arb_stat sub, dir, st;
	char n[64];
	int err = arb_vfs_subvol_make(fs, top, name, 0755, &cred, &sub);

	if (err)
		die("subvolume create", err);
	for (long i = 0; i < nfiles; i++) {
		size_t w;

		if (i % PER_DIR == 0) {
			snprintf(n, sizeof(n), "d%06ld", i / PER_DIR);
			err = arb_vfs_mkdir(fs, sub.ino, n, 0755, &cred, &dir);
			if (err)
				die("mkdir", err);
		}
		snprintf(n, sizeof(n), "f%07ld", i);
		err = arb_vfs_mknod(fs, dir.ino, n, S_IFREG | 0644, 0, &cred, &st);
		if (!err)
			err = arb_vfs_write(fs, st.ino, 0, data, sizeof(data), &w);
		if (err)
			die("create a file", err);
		if (i % 100000 == 99999 && (err = arb_commit(fs)))
			die("commit", err);
	}
	if ((err = arb_commit(fs)))
		die("commit", err);
	return arb_ino_subvol(sub.ino);
}

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
		t0 = now();
		err = arb_vfs_snapshot(fs, id, top, n, ARB_SNAPSHOT_RDONLY, NULL);
		t1 = now();
		if (!err)
			err = arb_commit(fs);
		t2 = now();
		if (err)
			die("snapshot", err);
		r->snap[i] = (t1 - t0) * 1e6;
		r->durable[i] = (t2 - t0) * 1e6;
	}
}

static int parse_sizes(char *s, long *sizes)
{
	int n = 0;

	for (char *tok = strtok(s, ","); tok && n < MAX_SIZES; tok = strtok(NULL, ","))
		if ((sizes[n++] = strtol(tok, NULL, 10)) <= 0)
			return -1;
	return n;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {{"files", required_argument, NULL, 'f'},
	                                         {"rounds", required_argument, NULL, 'r'},
	                                         {"dir", required_argument, NULL, 'd'},
	                                         {"help", no_argument, NULL, 'h'},
	                                         {NULL, 0, NULL, 0}};
	char sizes_arg[256] = "10,1000000", path[4096];
	const char *dir = "/var/tmp";
	long sizes[MAX_SIZES];
	int nsizes, rounds = 15, c;
	static struct result res[MAX_SIZES];

	while ((c = getopt_long(argc, argv, "f:r:d:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			snprintf(sizes_arg, sizeof(sizes_arg), "%s", optarg);
			break;
		case 'r':
			rounds = atoi(optarg);
			break;
		case 'd':
			dir = optarg;
			break;
		default:
			fprintf(stderr, "usage: snapshot_bench [--files N,M,...] [--rounds R] "
			                "[--dir DIR]\n");
			return c == 'h' ? 0 : 2;
		}
	}
	nsizes = parse_sizes(sizes_arg, sizes);
	if (nsizes <= 0 || rounds < 1 || rounds > MAX_ROUNDS) {
		fprintf(stderr, "snapshot_bench: --files wants positive counts, --rounds 1..%d\n",
		        MAX_ROUNDS);
		return 2;
	}
	snprintf(path, sizeof(path), "%s/snapshot-bench.%d.img", dir, (int)getpid());

	struct arb_dev *dev;
	struct arb_fs *fs;
	struct arb_cred cred = {0, 0};
	struct arb_format_opts fo = {0};
	arb_ino_t top;
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
	int err = fd < 0 ? -errno : ftruncate(fd, 64ll << 30) ? -errno : 0;

	if (fd >= 0)
		close(fd);
	if (!err)
		err = arb_dev_open_file(path, ARB_DEV_EXCL, &dev);
	if (!err)
		err = arb_format(dev, &fo);
	if (!err)
		err = arb_open(dev, NULL, &fs);
	if (!err)
		err = arb_vfs_init(fs, 0755, &cred);
	if (!err)
		err = arb_vfs_root(fs, 0, &top);
	if (err) {
		unlink(path);
		die(path, err);
	}
	for (int s = 0; s < nsizes; s++) {
		char name[32];
		double t0 = now();

		snprintf(name, sizeof(name), "sub%ld", sizes[s]);
		uint64_t id = populate(fs, top, name, sizes[s]);

		fprintf(stderr, "# %ld files written and committed in %.1f s\n", sizes[s],
		        now() - t0);
		res[s].files = sizes[s];
		time_snapshots(fs, top, id, rounds, &res[s]);
	}
	arb_close(fs);
	arb_dev_close(dev);
	unlink(path);

	printf("%-12s %14s %14s %18s %18s\n", "files", "snapshot us", "worst us",
	       "+commit us (med)", "+commit worst us");
	for (int s = 0; s < nsizes; s++) {
		double sm = median(res[s].snap, rounds), snap_worst = res[s].snap[rounds - 1];
		double dm = median(res[s].durable, rounds), dur_worst = res[s].durable[rounds - 1];

		printf("%-12ld %14.1f %14.1f %18.1f %18.1f\n", res[s].files, sm, snap_worst, dm,
		       dur_worst);
	}
	printf("# medians of %d snapshots each; the ratio of the largest to the smallest size: "
	       "snapshot %.2fx, snapshot+commit %.2fx\n",
	       rounds, median(res[nsizes - 1].snap, rounds) / median(res[0].snap, rounds),
	       median(res[nsizes - 1].durable, rounds) / median(res[0].durable, rounds));
	return 0;
}
