/* SPDX-License-Identifier: MIT */
/*
 * bench_common.c - scratch images, populated subvolumes and medians for
 * the core benchmarks (see bench_common.h).
 */
#include "bench_common.h"

#include <errno.h> /* program_invocation_short_name (_GNU_SOURCE) */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

double bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void bench_die(const char *what, int err)
{
	fprintf(stderr, "%s: %s: %s\n", program_invocation_short_name, what,
	        strerror(err < 0 ? -err : err));
	exit(1);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

double bench_median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int bench_parse_list(const char *s, long *v)
{
	int n = 0;

	while (*s) {
		char *end;

		if (n == BENCH_MAX_LIST)
			return -1;
		v[n] = strtol(s, &end, 10);
		if (end == s || v[n] <= 0 || (*end && *end != ','))
			return -1;
		n++;
		s = *end ? end + 1 : end;
	}
	return n ? n : -1;
}

void bench_image_open(const char *dir, struct bench_image *img)
{
	struct arb_cred cred = {0, 0};
	struct arb_format_opts fo = {0};
	int fd, err;

	snprintf(img->path, sizeof(img->path), "%s/%s.%d.img", dir, program_invocation_short_name,
	         (int)getpid());
	fd = open(img->path, O_RDWR | O_CREAT | O_EXCL, 0600);
	err = fd < 0 ? -errno : ftruncate(fd, 64ll << 30) ? -errno : 0;
	if (fd >= 0)
		close(fd);
	if (!err)
		err = arb_dev_open_file(img->path, ARB_DEV_EXCL, &img->dev);
	if (!err)
		err = arb_format(img->dev, &fo);
	if (!err)
		err = arb_open(img->dev, NULL, &img->fs);
	if (!err)
		err = arb_vfs_init(img->fs, 0755, &cred);
	if (!err)
		err = arb_vfs_root(img->fs, 0, &img->top);
	if (err) {
		if (fd >= 0)
			unlink(img->path);
		bench_die(img->path, err);
	}
}

void bench_image_close(struct bench_image *img)
{
	arb_close(img->fs);
	arb_dev_close(img->dev);
	unlink(img->path);
}

void bench_file_name(long i, char *dname, char *fname)
{
	snprintf(dname, 32, "d%06ld", i / BENCH_PER_DIR);
	snprintf(fname, 32, "f%07ld", i);
}

uint64_t bench_populate(struct bench_image *img, const char *name, long nfiles)
{
	static const char data[BENCH_FILE_BYTES] = "bench file: one hundred bytes of content, "
	                                           "enough to be inline data in the leaf.";
	struct arb_cred cred = {0, 0};
	struct arb_stat sub, dir, st;
	char dname[32], fname[32];
	int err = arb_vfs_subvol_make(img->fs, img->top, name, 0755, &cred, &sub);

	if (err)
		bench_die("subvolume create", err);
	for (long i = 0; i < nfiles; i++) {
		size_t w;

		bench_file_name(i, dname, fname);
		if (i % BENCH_PER_DIR == 0) {
			err = arb_vfs_mkdir(img->fs, sub.ino, dname, 0755, &cred, &dir);
			if (err)
				bench_die("mkdir", err);
		}
		err = arb_vfs_mknod(img->fs, dir.ino, fname, S_IFREG | 0644, 0, &cred, &st);
		if (!err)
			err = arb_vfs_write(img->fs, st.ino, 0, data, sizeof(data), &w);
		if (err)
			bench_die("create a file", err);
		if (i % 100000 == 99999 && (err = arb_commit(img->fs)))
			bench_die("commit", err);
	}
	if ((err = arb_commit(img->fs)))
		bench_die("commit", err);
	return arb_ino_subvol(sub.ino);
}
