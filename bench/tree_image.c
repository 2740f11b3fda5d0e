/* SPDX-License-Identifier: MIT */
/*
 * tree_image.c - the tree of the fsck benchmark, twice: as an Arbor image
 * built through the core (fast: no FUSE), and as a host directory for
 * mke2fs -d.  Both hold N files of 100 bytes, BENCH_PER_DIR per directory
 * (see bench_common.h), so fsck.arbor and e2fsck check the same tree.
 *
 *   tree_image --arbor DIR N     prints the path of the image made in DIR
 *   tree_image --host DIR N      fills DIR (which must exist)
 */
#include "bench_common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void host_tree(const char *root, long n)
{
	static const char data[BENCH_FILE_BYTES] = "bench file: one hundred bytes of content, "
	                                           "enough to be inline data in the leaf.";
	char dname[32], fname[32], path[4200];

	for (long i = 0; i < n; i++) {
		int fd;

		bench_file_name(i, dname, fname);
		if (i % BENCH_PER_DIR == 0) {
			snprintf(path, sizeof(path), "%s/%s", root, dname);
			if (mkdir(path, 0755) < 0)
				bench_die(path, errno);
		}
		snprintf(path, sizeof(path), "%s/%s/%s", root, dname, fname);
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
		if (fd < 0 || write(fd, data, sizeof(data)) != (ssize_t)sizeof(data))
			bench_die(path, errno);
		close(fd);
	}
}

int main(int argc, char **argv)
{
	struct bench_image img;
	long n;

	if (argc != 4 || (strcmp(argv[1], "--arbor") && strcmp(argv[1], "--host")) ||
	    (n = strtol(argv[3], NULL, 10)) <= 0) {
		fprintf(stderr, "usage: %s --arbor|--host DIR NFILES\n", argv[0]);
		return 2;
	}
	if (!strcmp(argv[1], "--host")) {
		host_tree(argv[2], n);
		return 0;
	}
	bench_image_open(argv[2], &img);
	bench_populate(&img, "tree", n);
	arb_close(img.fs);
	arb_dev_close(img.dev);
	printf("%s\n", img.path);
	return 0;
}
