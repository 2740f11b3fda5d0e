/* SPDX-License-Identifier: MIT */
/*
 * bench_common.h - what the core benchmarks (snapshot_bench, diff_bench)
 * share: a scratch filesystem on a sparse image file, subvolumes of N
 * small files, timing and medians.
 *
 * A subvolume of N files holds directories d000000.. of BENCH_PER_DIR
 * files each; file i is d<i / BENCH_PER_DIR>/f<i> and holds 100 bytes
 * (inline data in the leaf).
 */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <stdint.h>

#include "arbor/fs.h"
#include "arbor/io.h"
#include "arbor/vfs.h"

#define BENCH_PER_DIR 1000
#define BENCH_FILE_BYTES 100
#define BENCH_MAX_LIST 8

/* A filesystem on a sparse 64 GiB image file in a directory, removed by
 * bench_image_close. */
struct bench_image {
	char path[4096];
	struct arb_dev *dev;
	struct arb_fs *fs;
	arb_ino_t top; /* root directory of the default subvolume */
};

double bench_now(void);
/* "prog: what: strerror(err)" on stderr, exit 1 (err: an errno, either sign). */
void bench_die(const char *what, int err) __attribute__((noreturn));
/* Sorts v in place: v[n - 1] is the worst afterwards. */
double bench_median(double *v, int n);
/* "N,M,..." of positive numbers into v (at most BENCH_MAX_LIST); the
 * count, or -1. */
int bench_parse_list(const char *s, long *v);

void bench_image_open(const char *dir, struct bench_image *img);
void bench_image_close(struct bench_image *img);

/* The names of file i of a populated subvolume (buffers of 32 bytes). */
void bench_file_name(long i, char *dname, char *fname);
/* A subvolume under img->top named name, holding nfiles files, committed;
 * returns its id. */
uint64_t bench_populate(struct bench_image *img, const char *name, long nfiles);

#endif
