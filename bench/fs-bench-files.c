/* SPDX-License-Identifier: MIT */
/*
 * fs-bench-files.c - the small-file phases of bench/fs-bench.sh.
 *
 *   fs-bench-files create|walk|delete DIR NFILES NDIRS
 *
 * create: NDIRS directories d000.. under DIR, NFILES files of 4 KiB spread
 *         round-robin over them (open O_CREAT|O_EXCL, one 4 KiB write,
 *         close), then syncfs(2) and fsync(2) of DIR.
 * walk:   opendir/readdir every directory under DIR and lstat every entry
 *         (fstatat AT_SYMLINK_NOFOLLOW); counts the files seen.
 * delete: unlink every file, rmdir every directory, then syncfs(2) and
 *         fsync(2) of DIR.
 *
 * Prints one line: "<files> <seconds> <files/s>".  Exit status 1 on any
 * error (with a message on stderr), 2 on a usage error.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *path)
{
	fprintf(stderr, "fs-bench-files: %s %s: %s\n", what, path, strerror(errno));
	exit(1);
}

/* syncfs, then fsync of the directory: Linux passes syncfs to no FUSE
 * filesystem but virtiofs (it only writes back the page cache), so a
 * FUSE filesystem commits on the fsync alone, and every row ends with
 * everything on disk whichever filesystem runs it. */
static void do_syncfs(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY);

	if (fd < 0)
		die("open", dir);
	if (syncfs(fd) != 0)
		die("syncfs", dir);
	if (fsync(fd) != 0 && errno != EINVAL && errno != ENOSYS)
		die("fsync", dir);
	close(fd);
}

static long do_create(const char *top, long nfiles, long ndirs)
{
	static char buf[4096];
	char path[4096];
	long i;

	memset(buf, 0x5a, sizeof(buf));
	for (i = 0; i < ndirs; i++) {
		snprintf(path, sizeof(path), "%s/d%03ld", top, i);
		if (mkdir(path, 0755) != 0)
			die("mkdir", path);
	}
	for (i = 0; i < nfiles; i++) {
		int fd;

		snprintf(path, sizeof(path), "%s/d%03ld/f%06ld", top, i % ndirs, i);
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
		if (fd < 0)
			die("create", path);
		buf[0] = (char)i;
		if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
			die("write", path);
		if (close(fd) != 0)
			die("close", path);
	}
	do_syncfs(top);
	return nfiles;
}

/* walk or delete: every entry of every d* directory under top */
static long do_dirs(const char *top, int del)
{
	DIR *td = opendir(top);
	struct dirent *te;
	long count = 0;

	if (!td)
		die("opendir", top);
	while ((errno = 0, te = readdir(td)) != NULL) {
		char sub[4096];
		struct dirent *e;
		struct stat st;
		DIR *d;

		if (te->d_name[0] != 'd')
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", top, te->d_name);
		if (fstatat(dirfd(td), te->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
			die("lstat", sub);
		d = opendir(sub);
		if (!d)
			die("opendir", sub);
		while ((errno = 0, e = readdir(d)) != NULL) {
			if (e->d_name[0] == '.')
				continue;
			if (del) {
				if (unlinkat(dirfd(d), e->d_name, 0) != 0)
					die("unlink", e->d_name);
			} else if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
				die("lstat", e->d_name);
			}
			count++;
		}
		if (errno)
			die("readdir", sub);
		closedir(d);
		if (del && rmdir(sub) != 0)
			die("rmdir", sub);
	}
	if (errno)
		die("readdir", top);
	closedir(td);
	if (del)
		do_syncfs(top);
	return count;
}

int main(int argc, char **argv)
{
	long nfiles, ndirs, n;
	double t0, t;

	if (argc != 5 || (nfiles = atol(argv[3])) <= 0 || (ndirs = atol(argv[4])) <= 0 ||
	    ndirs > 1000) {
		fprintf(stderr, "usage: fs-bench-files create|walk|delete DIR NFILES NDIRS\n");
		return 2;
	}
	t0 = now();
	if (strcmp(argv[1], "create") == 0)
		n = do_create(argv[2], nfiles, ndirs);
	else if (strcmp(argv[1], "walk") == 0)
		n = do_dirs(argv[2], 0);
	else if (strcmp(argv[1], "delete") == 0)
		n = do_dirs(argv[2], 1);
	else {
		fprintf(stderr, "fs-bench-files: unknown phase '%s'\n", argv[1]);
		return 2;
	}
	t = now() - t0;
	if (n != nfiles) {
		fprintf(stderr, "fs-bench-files: %s saw %ld files, expected %ld\n", argv[1], n,
		        nfiles);
		return 1;
	}
	printf("%ld %.3f %.1f\n", n, t, t > 0 ? n / t : 0.0);
	return 0;
}
