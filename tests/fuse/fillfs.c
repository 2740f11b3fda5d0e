/*
 * tests/fuse/fillfs.c - fill a mounted filesystem to ENOSPC and check that
 * what was made durable survived (tests/fuse/test_enospc.sh).
 *
 * Every file holds one deterministic pattern: byte OFF of a file is byte
 * OFF % 8 of splitmix64(SEED + OFF / 8), SEED being the FNV-1a hash of the
 * file's base name, mixed with --seed N when given (the same file name can
 * so hold other bytes at another round).  Modes:
 *
 *   fillfs big FILE CHUNK SYNC_EVERY [--rdwr] [--limit BYTES] [--seed N]
 *       Open FILE O_WRONLY|O_CREAT|O_TRUNC (O_RDWR with --rdwr) and write
 *       the pattern in CHUNK-byte write(2)s, with an fsync every SYNC_EVERY
 *       bytes (0: none), until a call fails; then fsync and close.  Prints
 *       one line (an fsync after a failed one does not count as durable):
 *         durable=N written=M size=S avail=A error=E at=CALL fsync=F close=C
 *       durable: bytes covered by the last successful fsync; written: bytes
 *       write(2) accepted; size: st_size before close; avail: the statfs
 *       Avail at open; E: the first error (errno name) and CALL where it
 *       happened (open, write or fsync); F and C: what the final fsync and
 *       close said.  Exit 0 when the first error was ENOSPC and every
 *       other error too; 1 when any error was something else; 3 when
 *       another CHUNK would take the total past BYTES (default 1 TiB: the
 *       bound that keeps a filesystem that never says ENOSPC from hanging
 *       a test).
 *
 *   fillfs verify FILE DURABLE [--seed N] [--direct]
 *       The first DURABLE bytes hold the pattern, and every byte after
 *       them, up to the end of file, too (bytes past DURABLE may be
 *       missing, never other bytes).  --direct reads with O_DIRECT (past
 *       the page cache).  Exit 1 with the first bad offset.
 *
 *   fillfs write FILE SIZE [--rdwr] [--seed N]
 *       Write SIZE bytes of pattern (O_TRUNC), fsync, close.  Exit 0 when
 *       all succeeded, 3 on ENOSPC (anywhere; "error=ENOSPC at=CALL" is
 *       printed), 1 on any other error.
 *
 *   fillfs small DIR COUNT SIZE [--seed N]
 *       Create DIR/f00000, DIR/f00001, ... (O_EXCL) with SIZE bytes of
 *       pattern each, until COUNT files or ENOSPC (at open, write or
 *       close; the file that failed is removed again); then fsync DIR.
 *       Prints "created=N error=E at=CALL".  Exit 0 after COUNT files or
 *       ENOSPC; 1 on any other error, a failed unlink or a failed fsync of
 *       DIR.
 *
 *   fillfs verifysmall DIR N SIZE [--seed N]
 *       DIR/f00000 .. f(N-1) hold SIZE bytes of pattern each, and f(N)
 *       does not exist.  Exit 1 at the first bad file.
 *
 * Exit status 2: a usage error.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* O_DIRECT */
#endif
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define BUFSZ (1u << 20)

static uint64_t user_seed;
static bool opt_rdwr, opt_direct;
static uint64_t opt_limit = 1ull << 40;

/* ---- the pattern ---------------------------------------------------------- */

static uint64_t splitmix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static uint64_t name_seed(const char *path)
{
	const char *base = strrchr(path, '/');
	uint64_t h = 0xcbf29ce484222325ull;

	for (base = base ? base + 1 : path; *base; base++)
		h = (h ^ (unsigned char)*base) * 0x100000001b3ull;
	return h ^ splitmix64(user_seed);
}

/* Fill buf with the LEN pattern bytes from file offset OFF. */
static void pattern(uint64_t seed, uint64_t off, unsigned char *buf, size_t len)
{
	size_t i = 0;

	while (i < len) {
		uint64_t o = off + i, w = splitmix64(seed + o / 8);
		unsigned b;

		for (b = o % 8; b < 8 && i < len; b++, i++)
			buf[i] = (unsigned char)(w >> (8 * b));
	}
}

/* ---- helpers ----------------------------------------------------------------- */

static const char *errname(int e)
{
	switch (e) {
	case 0:
		return "none";
	case ENOSPC:
		return "ENOSPC";
	case EIO:
		return "EIO";
	case EDQUOT:
		return "EDQUOT";
	case EROFS:
		return "EROFS";
	case EFBIG:
		return "EFBIG";
	case ENOMEM:
		return "ENOMEM";
	case EINVAL:
		return "EINVAL";
	case EEXIST:
		return "EEXIST";
	case ENOENT:
		return "ENOENT";
	case ENOTCONN:
		return "ENOTCONN";
	case EBADF:
		return "EBADF";
	default: {
		static char buf[32];
		snprintf(buf, sizeof(buf), "errno%d", e);
		return buf;
	}
	}
}

static int usage(void)
{
	fprintf(stderr,
	        "usage: fillfs big FILE CHUNK SYNC_EVERY [--rdwr] [--limit BYTES] [--seed N]\n"
	        "       fillfs verify FILE DURABLE [--seed N] [--direct]\n"
	        "       fillfs write FILE SIZE [--rdwr] [--seed N]\n"
	        "       fillfs small DIR COUNT SIZE [--seed N]\n"
	        "       fillfs verifysmall DIR N SIZE [--seed N]\n");
	return 2;
}

static bool parse_u64(const char *s, uint64_t *v)
{
	char *end;

	errno = 0;
	*v = strtoull(s, &end, 0);
	return !errno && end != s && !*end && s[0] != '-';
}

/* write all of buf at the current offset; 0 or an errno, *done the bytes
 * write(2) accepted */
static int write_all(int fd, const unsigned char *buf, size_t len, uint64_t *done)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n = write(fd, buf + off, len - off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		if (n == 0)
			return EIO; /* write(2) must not return 0 here */
		off += (size_t)n;
		*done += (uint64_t)n;
	}
	return 0;
}

/* Page-aligned: a direct write of a whole number of pages from it is one
 * WRITE request, not one and a piece. */
static unsigned char *page_buffer(size_t size)
{
	void *p;

	return posix_memalign(&p, 4096, size) ? NULL : p;
}

static int do_fsync(int fd)
{
	return fsync(fd) ? errno : 0;
}

static int do_close(int fd)
{
	/* a close interrupted on Linux has released the descriptor anyway */
	return close(fd) && errno != EINTR ? errno : 0;
}

/* ---- big ---------------------------------------------------------------------- */

static int mode_big(const char *path, uint64_t chunk, uint64_t sync_every)
{
	uint64_t seed = name_seed(path), written = 0, durable = 0, since = 0, avail = 0;
	int flags = (opt_rdwr ? O_RDWR : O_WRONLY) | O_CREAT | O_TRUNC;
	int first = 0, fs_err = 0, cl_err = 0, fd;
	bool other = false, limit = false;
	const char *at = "none";
	unsigned char *buf;
	struct statvfs sv;
	struct stat st;
	long long size = -1;

	if (!chunk || chunk > BUFSZ) {
		fprintf(stderr, "fillfs: CHUNK must be 1..%u\n", BUFSZ);
		return 2;
	}
	buf = page_buffer(chunk);
	if (!buf)
		return 1;
	fd = open(path, flags, 0644);
	if (fd < 0) {
		first = errno;
		printf("durable=0 written=0 size=-1 avail=-1 error=%s at=open fsync=none "
		       "close=none\n",
		       errname(first));
		free(buf);
		return first == ENOSPC ? 0 : 1;
	}
	if (fstatvfs(fd, &sv) == 0)
		avail = (uint64_t)sv.f_bavail * sv.f_frsize;
	for (;;) {
		int e;

		if (written + chunk > opt_limit) {
			limit = true;
			break;
		}
		pattern(seed, written, buf, chunk);
		e = write_all(fd, buf, chunk, &written);
		since += chunk;
		if (e) {
			first = e;
			at = "write";
			break;
		}
		if (sync_every && since >= sync_every) {
			since = 0;
			e = do_fsync(fd);
			if (e) {
				first = e;
				at = "fsync";
				break;
			}
			durable = written;
		}
	}
	/* after a failed fsync a later one may succeed with the data lost
	 * (Linux reports a write-back error once per descriptor): only an
	 * fsync with no failed one before it makes everything durable */
	fs_err = do_fsync(fd);
	if (!fs_err && strcmp(at, "fsync"))
		durable = written;
	if (fstat(fd, &st) == 0)
		size = (long long)st.st_size;
	cl_err = do_close(fd);
	printf("durable=%" PRIu64 " written=%" PRIu64 " size=%lld avail=%" PRIu64 " error=%s at=%s",
	       durable, written, size, avail, errname(first), at);
	printf(" fsync=%s", fs_err ? errname(fs_err) : "ok");
	printf(" close=%s\n", cl_err ? errname(cl_err) : "ok");
	free(buf);
	if (limit) {
		fprintf(stderr,
		        "fillfs: %" PRIu64 " bytes written without ENOSPC: past the "
		        "limit of %" PRIu64 "\n",
		        written, opt_limit);
		return 3;
	}
	other = first != ENOSPC || (fs_err && fs_err != ENOSPC) || (cl_err && cl_err != ENOSPC);
	if (other)
		fprintf(stderr, "fillfs: an error other than ENOSPC\n");
	return other ? 1 : 0;
}

/* ---- verify ------------------------------------------------------------------- */

/* Where the run of zeros at file offset off (buf[i] of the n bytes just
 * read) ends: off when buf[i] is not zero, else the offset of the next
 * non-zero byte or the end of file.  Reads on from fd. */
static uint64_t zero_run(int fd, unsigned char *buf, ssize_t i, ssize_t n, uint64_t off)
{
	for (;;) {
		for (; i < n && !buf[i]; i++)
			off++;
		if (i < n)
			return off;
		n = read(fd, buf, BUFSZ);
		if (n <= 0)
			return off;
		i = 0;
	}
}

/* 0 if FILE holds the pattern up to its end and at least DURABLE bytes. */
static int verify_file(const char *path, uint64_t durable, bool quiet)
{
	uint64_t seed = name_seed(path), off = 0;
	unsigned char *buf = page_buffer(BUFSZ), *want = malloc(BUFSZ);
	int fd = open(path, O_RDONLY | (opt_direct ? O_DIRECT : 0));
	int ret = 1;

	if (fd < 0 || !buf || !want) {
		fprintf(stderr, "fillfs: %s: %s\n", path, strerror(errno));
		goto out;
	}
	for (;;) {
		ssize_t n = read(fd, buf, BUFSZ), i;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "fillfs: %s: read at %" PRIu64 ": %s\n", path, off,
			        strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		pattern(seed, off, want, (size_t)n);
		if (memcmp(buf, want, (size_t)n)) {
			struct stat st;
			uint64_t zend;

			for (i = 0; buf[i] == want[i]; i++)
				;
			off += (uint64_t)i;
			zend = zero_run(fd, buf, i, n, off);
			fprintf(stderr,
			        "fillfs: %s: bad data at offset %" PRIu64 " (%s durable "
			        "%" PRIu64 "): ",
			        path, off, off < durable ? "before" : "past", durable);
			if (zend > off)
				fprintf(stderr, "zeros up to %" PRIu64, zend);
			else
				fprintf(stderr, "other bytes");
			if (fstat(fd, &st) == 0)
				fprintf(stderr, "; the file has %lld bytes", (long long)st.st_size);
			fprintf(stderr, "\n");
			goto out;
		}
		off += (uint64_t)n;
	}
	if (off < durable) {
		fprintf(stderr,
		        "fillfs: %s: %" PRIu64 " bytes, fewer than the %" PRIu64 " durable ones\n",
		        path, off, durable);
		goto out;
	}
	if (!quiet)
		printf("ok size=%" PRIu64 " durable=%" PRIu64 "\n", off, durable);
	ret = 0;
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	free(want);
	return ret;
}

/* ---- write -------------------------------------------------------------------- */

static int mode_write(const char *path, uint64_t size)
{
	uint64_t seed = name_seed(path), done = 0;
	unsigned char *buf = page_buffer(BUFSZ);
	const char *at = "open";
	int e = 0, e2, fd;

	if (!buf)
		return 1;
	fd = open(path, (opt_rdwr ? O_RDWR : O_WRONLY) | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) {
		e = errno;
	} else {
		at = "write";
		while (!e && done < size) {
			size_t n = size - done < BUFSZ ? (size_t)(size - done) : BUFSZ;

			pattern(seed, done, buf, n);
			e = write_all(fd, buf, n, &done);
		}
		if (!e) {
			at = "fsync";
			e = do_fsync(fd);
		}
		e2 = do_close(fd);
		if (!e && e2) {
			e = e2;
			at = "close";
		}
	}
	free(buf);
	if (!e)
		return 0;
	printf("written=%" PRIu64 " error=%s at=%s\n", done, errname(e), at);
	if (e == ENOSPC)
		return 3;
	fprintf(stderr, "fillfs: %s: %s: %s\n", path, at, strerror(e));
	return 1;
}

/* ---- small files ------------------------------------------------------------- */

static void small_name(char *out, size_t len, const char *dir, uint64_t i)
{
	snprintf(out, len, "%s/f%05" PRIu64, dir, i);
}

static int mode_small(const char *dir, uint64_t count, uint64_t size)
{
	unsigned char *buf = page_buffer(size ? size : 1);
	char name[4096];
	const char *at = "none";
	uint64_t i, done;
	int e = 0, e2, fd, dfd;

	if (!buf)
		return 1;
	for (i = 0; i < count; i++) {
		small_name(name, sizeof(name), dir, i);
		fd = open(name, O_WRONLY | O_CREAT | O_EXCL, 0644);
		if (fd < 0) {
			e = errno;
			at = "open";
			break;
		}
		pattern(name_seed(name), 0, buf, size);
		done = 0;
		e = write_all(fd, buf, size, &done);
		at = "write";
		e2 = do_close(fd);
		if (!e && e2) {
			e = e2;
			at = "close";
		}
		if (e) {
			if (unlink(name)) {
				fprintf(stderr, "fillfs: unlink %s after %s: %s\n", name,
				        errname(e), strerror(errno));
				free(buf);
				return 1;
			}
			break;
		}
	}
	free(buf);
	if (!e)
		at = "none";
	printf("created=%" PRIu64 " error=%s at=%s\n", i, errname(e), at);
	fflush(stdout);
	if (e && e != ENOSPC) {
		fprintf(stderr, "fillfs: %s of %s: %s\n", at, name, strerror(e));
		return 1;
	}
	dfd = open(dir, O_RDONLY | O_DIRECTORY);
	if (dfd < 0 || fsync(dfd)) {
		fprintf(stderr, "fillfs: fsync of %s: %s\n", dir, strerror(errno));
		return 1;
	}
	close(dfd);
	return 0;
}

static int mode_verifysmall(const char *dir, uint64_t n, uint64_t size)
{
	char name[4096];
	struct stat st;
	uint64_t i;

	for (i = 0; i < n; i++) {
		small_name(name, sizeof(name), dir, i);
		if (stat(name, &st)) {
			fprintf(stderr, "fillfs: %s: %s\n", name, strerror(errno));
			return 1;
		}
		if ((uint64_t)st.st_size != size) {
			fprintf(stderr, "fillfs: %s: %lld bytes, not %" PRIu64 "\n", name,
			        (long long)st.st_size, size);
			return 1;
		}
		if (verify_file(name, size, true))
			return 1;
	}
	small_name(name, sizeof(name), dir, n);
	if (lstat(name, &st) == 0 || errno != ENOENT) {
		fprintf(stderr, "fillfs: %s exists (or cannot be looked up)\n", name);
		return 1;
	}
	printf("ok %" PRIu64 " files\n", n);
	return 0;
}

/* ---- main --------------------------------------------------------------------- */

int main(int argc, char **argv)
{
	const char *pos[4];
	uint64_t a, b;
	int npos = 0, i;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--rdwr")) {
			opt_rdwr = true;
		} else if (!strcmp(argv[i], "--direct")) {
			opt_direct = true;
		} else if (!strcmp(argv[i], "--seed") || !strcmp(argv[i], "--limit")) {
			if (i + 1 == argc ||
			    !parse_u64(argv[i + 1], argv[i][2] == 's' ? &user_seed : &opt_limit))
				return usage();
			i++;
		} else if (argv[i][0] == '-' && argv[i][1]) {
			return usage();
		} else if (npos < 4) {
			pos[npos++] = argv[i];
		} else {
			return usage();
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (npos < 1)
		return usage();
	if (!strcmp(pos[0], "big") && npos == 4 && parse_u64(pos[2], &a) && parse_u64(pos[3], &b))
		return mode_big(pos[1], a, b);
	if (!strcmp(pos[0], "verify") && npos == 3 && parse_u64(pos[2], &a))
		return verify_file(pos[1], a, false);
	if (!strcmp(pos[0], "write") && npos == 3 && parse_u64(pos[2], &a))
		return mode_write(pos[1], a);
	if (!strcmp(pos[0], "small") && npos == 4 && parse_u64(pos[2], &a) && parse_u64(pos[3], &b))
		return mode_small(pos[1], a, b);
	if (!strcmp(pos[0], "verifysmall") && npos == 4 && parse_u64(pos[2], &a) &&
	    parse_u64(pos[3], &b))
		return mode_verifysmall(pos[1], a, b);
	return usage();
}
