/* tests/fuse/posix/posixop.c - one system call per run for test_posix.sh.
 *
 * posixop OP ARGS...  runs OP and prints "OK" (followed by what it read,
 * for stat, read and mkmany) or the errno's name ("EACCES"), so that the
 * test can check an exact errno as any user (setpriv) without python.
 * Exit status 0 whatever the call did; 2 for a usage error.
 *
 *   open PATH FLAGS [MODE]      FLAGS: letters r w c(reat) x(excl) t(runc)
 *                               a(ppend) d(irectory) D(irect)
 *   write PATH FLAGS OFF DATA   open with FLAGS, pwrite (OFF -1: write)
 *   read PATH OFF LEN           pread LEN bytes, print them
 *   mkdir PATH MODE, rmdir PATH, unlink PATH, chmod PATH MODE,
 *   chown PATH UID GID, link OLD NEW, symlink TARGET NEW, rename OLD NEW,
 *   renameat2 OLD NEW noreplace|exchange, truncate PATH LEN
 *   ftruncate PATH LEN          open for writing, fchmod 0444, ftruncate
 *   utimens PATH ASEC ANSEC MSEC MNSEC   NSEC may be "now" or "omit"
 *   stat PATH                   mode(octal) uid gid nlink ino size
 *                               atime mtime ctime (nanoseconds)
 *   mkmany DIR N                create and close DIR/f0 .. DIR/f(N-1)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

static const char *errname(int e)
{
	switch (e) {
#define E(x)                                                                                       \
	case x:                                                                                    \
		return #x
		E(EPERM);
		E(ENOENT);
		E(EIO);
		E(EBADF);
		E(EACCES);
		E(EBUSY);
		E(EEXIST);
		E(EXDEV);
		E(ENOTDIR);
		E(EISDIR);
		E(EINVAL);
		E(EFBIG);
		E(ENOSPC);
		E(EROFS);
		E(EMLINK);
		E(ENAMETOOLONG);
		E(ENOTEMPTY);
		E(ELOOP);
		E(EOPNOTSUPP);
		E(ENOSYS);
		E(ETXTBSY);
#undef E
	}
	return strerror(e);
}

static int flags_of(const char *s)
{
	int f = 0, r = 0, w = 0;

	for (; *s; s++) {
		switch (*s) {
		case 'r':
			r = 1;
			break;
		case 'w':
			w = 1;
			break;
		case 'c':
			f |= O_CREAT;
			break;
		case 'x':
			f |= O_EXCL;
			break;
		case 't':
			f |= O_TRUNC;
			break;
		case 'a':
			f |= O_APPEND;
			break;
		case 'd':
			f |= O_DIRECTORY;
			break;
		case 'D':
			f |= O_DIRECT;
			break;
		default:
			fprintf(stderr, "bad flag %c\n", *s);
			exit(2);
		}
	}
	return f | (r && w ? O_RDWR : w ? O_WRONLY : O_RDONLY);
}

static long nsec_of(const char *s)
{
	if (!strcmp(s, "now"))
		return UTIME_NOW;
	if (!strcmp(s, "omit"))
		return UTIME_OMIT;
	return atol(s);
}

static long long ns(struct timespec t)
{
	return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static int fail(void)
{
	printf("%s\n", errname(errno));
	return 0;
}

#define NEED(n)                                                                                    \
	do {                                                                                       \
		if (argc < (n) + 2) {                                                              \
			fprintf(stderr, "usage\n");                                                \
			return 2;                                                                  \
		}                                                                                  \
	} while (0)

int main(int argc, char **argv)
{
	const char *op = argc > 1 ? argv[1] : "";
	char **a = argv + 2;
	int fd, r = 0;

	if (!strcmp(op, "open")) {
		NEED(2);
		fd = open(a[0], flags_of(a[1]), argc > 4 ? (int)strtol(a[2], NULL, 8) : 0644);
		if (fd < 0)
			return fail();
		close(fd);
	} else if (!strcmp(op, "write")) {
		ssize_t n;
		long long off;

		NEED(4);
		fd = open(a[0], flags_of(a[1]), 0644);
		if (fd < 0)
			return fail();
		off = atoll(a[2]);
		if (flags_of(a[1]) & O_DIRECT) {
			/* a 4 KiB aligned buffer holding DATA repeated */
			void *buf;
			size_t len = strlen(a[3]), i;

			if (posix_memalign(&buf, 4096, 4096))
				return 2;
			for (i = 0; i < 4096; i++)
				((char *)buf)[i] = a[3][i % len];
			n = pwrite(fd, buf, 4096, off);
		} else {
			n = off < 0 ? write(fd, a[3], strlen(a[3]))
			            : pwrite(fd, a[3], strlen(a[3]), off);
		}
		if (n < 0 || close(fd) < 0)
			return fail();
	} else if (!strcmp(op, "read")) {
		char *buf;
		ssize_t n;

		NEED(3);
		buf = malloc(atol(a[2]) + 1);
		fd = open(a[0], O_RDONLY);
		if (fd < 0)
			return fail();
		n = pread(fd, buf, atol(a[2]), atoll(a[1]));
		if (n < 0)
			return fail();
		close(fd);
		printf("OK %.*s\n", (int)n, buf);
		return 0;
	} else if (!strcmp(op, "mkdir")) {
		NEED(2);
		r = mkdir(a[0], strtol(a[1], NULL, 8));
	} else if (!strcmp(op, "rmdir")) {
		NEED(1);
		r = rmdir(a[0]);
	} else if (!strcmp(op, "unlink")) {
		NEED(1);
		r = unlink(a[0]);
	} else if (!strcmp(op, "chmod")) {
		NEED(2);
		r = chmod(a[0], strtol(a[1], NULL, 8));
	} else if (!strcmp(op, "chown")) {
		NEED(3);
		r = chown(a[0], atoi(a[1]), atoi(a[2]));
	} else if (!strcmp(op, "link")) {
		NEED(2);
		r = link(a[0], a[1]);
	} else if (!strcmp(op, "symlink")) {
		NEED(2);
		r = symlink(a[0], a[1]);
	} else if (!strcmp(op, "rename")) {
		NEED(2);
		r = rename(a[0], a[1]);
	} else if (!strcmp(op, "renameat2")) {
		NEED(3);
		r = syscall(SYS_renameat2, AT_FDCWD, a[0], AT_FDCWD, a[1],
		            !strcmp(a[2], "exchange") ? RENAME_EXCHANGE : RENAME_NOREPLACE);
	} else if (!strcmp(op, "truncate")) {
		NEED(2);
		r = truncate(a[0], atoll(a[1]));
	} else if (!strcmp(op, "ftruncate")) {
		NEED(2);
		fd = open(a[0], O_WRONLY);
		if (fd < 0 || fchmod(fd, 0444) < 0 || ftruncate(fd, atoll(a[1])) < 0)
			return fail();
		r = close(fd);
	} else if (!strcmp(op, "utimens")) {
		struct timespec t[2];

		NEED(5);
		t[0].tv_sec = atol(a[1]);
		t[0].tv_nsec = nsec_of(a[2]);
		t[1].tv_sec = atol(a[3]);
		t[1].tv_nsec = nsec_of(a[4]);
		r = utimensat(AT_FDCWD, a[0], t, 0);
	} else if (!strcmp(op, "stat")) {
		struct stat st;

		NEED(1);
		if (lstat(a[0], &st) < 0)
			return fail();
		printf("OK %o %u %u %lu %lu %lld %lld %lld %lld\n", (unsigned)st.st_mode,
		       (unsigned)st.st_uid, (unsigned)st.st_gid, (unsigned long)st.st_nlink,
		       (unsigned long)st.st_ino, (long long)st.st_size, ns(st.st_atim),
		       ns(st.st_mtim), ns(st.st_ctim));
		return 0;
	} else if (!strcmp(op, "mkmany")) {
		char name[4096];
		long i, n;

		NEED(2);
		n = atol(a[1]);
		for (i = 0; i < n; i++) {
			snprintf(name, sizeof(name), "%s/f%ld", a[0], i);
			fd = open(name, O_WRONLY | O_CREAT | O_EXCL, 0644);
			if (fd < 0 || close(fd) < 0) {
				printf("%s at %s\n", errname(errno), name);
				return 0;
			}
		}
	} else {
		fprintf(stderr, "unknown op '%s'\n", op);
		return 2;
	}
	if (r < 0)
		return fail();
	printf("OK\n");
	return 0;
}
