/*
 * tests/fuse/exerciser.c - differential exerciser for arborfs.
 *
 * exerciser [-s SEED] [-n OPS] [-v] [--remount-cmd CMD] [--remount-every N]
 *           DIR_A DIR_B
 *
 * Applies one pseudo-random sequence of file system operations to two
 * directory trees (A on arborfs, B on a host file system) and compares them
 * after every step: return values and errno, sizes, types, modes, link
 * counts and contents of the touched names (through a fresh open and
 * through the open descriptors), and every 100 operations the whole tree.
 * Every few hundred operations, with --remount-cmd, all descriptors are
 * closed, CMD is run with system() (it must unmount A and mount it again)
 * and the descriptors are reopened.  The first divergence prints the seed,
 * the operation index, the operation and both results, and exits 1.
 * Deterministic for a seed (splitmix64).
 *
 * Without arguments (as a plain "make check" program) it prints a TAP skip:
 * tests/fuse/test_exerciser.sh runs it on a real mount.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define KIB 1024L
#define MIB (1024L * 1024L)
#define NSLOTS 6
#define MAXIO (1 * MIB)
#define FAR_MAX (16 * MIB) /* holes: writes up to this far beyond EOF */
#define MAX_FILE (40 * MIB)

/* ---- PRNG ------------------------------------------------------------------ */

static uint64_t rng_state;

static uint64_t rnd64(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* uniform in [0, n) */
static uint64_t rnd(uint64_t n)
{
	return n ? rnd64() % n : 0;
}

static int chance(int pct)
{
	return (int)rnd(100) < pct;
}

/* ---- state ------------------------------------------------------------------ */

struct slot {
	int used;
	char path[256];
	int fa, fb;
};

static const char *dir_a, *dir_b, *remount_cmd;
static uint64_t seed = 1;
static long nops = 1000, remount_every = 300, opno;
static int verbose;
static struct slot slots[NSLOTS];
static char opdesc[3 * PATH_MAX];
static unsigned char *buf_w, *buf_a, *buf_b;
static long stat_ops[64];

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void fail(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "DIVERGENCE: seed %" PRIu64 ", op %ld: %s\n  ", seed, opno, opdesc);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n  reproduce: exerciser -s %" PRIu64 " -n %ld -v A B\n", seed, opno + 1);
	exit(1);
}

static void die(const char *what)
{
	fprintf(stderr, "exerciser: seed %" PRIu64 ", op %ld: %s: %s\n", seed, opno, what,
	        strerror(errno));
	exit(2);
}

static void pa(char *out, const char *rel)
{
	if (snprintf(out, PATH_MAX, "%s/%s", dir_a, rel) >= PATH_MAX)
		die("path too long");
}

static void pb(char *out, const char *rel)
{
	if (snprintf(out, PATH_MAX, "%s/%s", dir_b, rel) >= PATH_MAX)
		die("path too long");
}

struct res {
	long ret;
	int err;
};

static const char *errname(int e)
{
	static char b[2][64];
	static int i;
	i ^= 1;
	if (!e)
		return "ok";
	snprintf(b[i], sizeof(b[i]), "%s (%d)", strerror(e), e);
	return b[i];
}

/* Both sides must agree: same return value (or both >= 0 when ret_exact is
 * 0: descriptors differ) and same errno. */
static void same(const char *what, struct res a, struct res b, int ret_exact)
{
	int ea = a.ret < 0 ? a.err : 0, eb = b.ret < 0 ? b.err : 0;
	if (ea != eb)
		fail("%s: A returned %ld, %s; B returned %ld, %s", what, a.ret, errname(ea), b.ret,
		     errname(eb));
	if (ret_exact && a.ret != b.ret)
		fail("%s: A returned %ld; B returned %ld", what, a.ret, b.ret);
}

#define R(expr)                                                                                    \
	({                                                                                         \
		errno = 0;                                                                         \
		long r_ = (long)(expr);                                                            \
		(struct res){r_, errno};                                                           \
	})

/* ---- comparisons ------------------------------------------------------------------ */

static void cmp_stat(const char *what, const struct stat *a, const struct stat *b)
{
	if ((a->st_mode & S_IFMT) != (b->st_mode & S_IFMT))
		fail("%s: type A 0%o, B 0%o", what, a->st_mode & S_IFMT, b->st_mode & S_IFMT);
	if (a->st_mode != b->st_mode)
		fail("%s: mode A 0%o, B 0%o", what, a->st_mode, b->st_mode);
	if (a->st_nlink != b->st_nlink)
		fail("%s: nlink A %lu, B %lu", what, (unsigned long)a->st_nlink,
		     (unsigned long)b->st_nlink);
	if (!S_ISDIR(a->st_mode) && a->st_size != b->st_size)
		fail("%s: size A %lld, B %lld", what, (long long)a->st_size, (long long)b->st_size);
}

/* Compare [off, off+len) read through fa and fb. */
static void cmp_range(const char *what, int fa, int fb, off_t off, long len)
{
	while (len > 0) {
		long n = len > MAXIO ? MAXIO : len;
		struct res a = R(pread(fa, buf_a, n, off));
		struct res b = R(pread(fb, buf_b, n, off));
		char w[512];
		snprintf(w, sizeof(w), "%s: pread(%ld @ %lld)", what, n, (long long)off);
		same(w, a, b, 1);
		if (a.ret <= 0)
			return;
		if (memcmp(buf_a, buf_b, a.ret)) {
			long i = 0;
			while (buf_a[i] == buf_b[i])
				i++;
			fail("%s: content differs at offset %lld: A 0x%02x, B 0x%02x", w,
			     (long long)(off + i), buf_a[i], buf_b[i]);
		}
		off += a.ret;
		len -= a.ret;
	}
}

/* Full content of two descriptors, sizes first. */
static void cmp_fds(const char *what, int fa, int fb)
{
	struct stat sa, sb;
	if (fstat(fa, &sa) || fstat(fb, &sb))
		die("fstat");
	cmp_stat(what, &sa, &sb);
	if (S_ISREG(sa.st_mode))
		cmp_range(what, fa, fb, 0, sa.st_size + 1);
}

/* lstat both; with content, reopen and read all of a regular file. */
static void cmp_path(const char *rel, int content)
{
	char a[PATH_MAX], b[PATH_MAX], w[300];
	struct stat sa = {0}, sb = {0};
	pa(a, rel);
	pb(b, rel);
	snprintf(w, sizeof(w), "lstat %s", rel);
	struct res ra = R(lstat(a, &sa)), rb = R(lstat(b, &sb));
	same(w, ra, rb, 1);
	if (ra.ret < 0)
		return;
	cmp_stat(w, &sa, &sb);
	if (S_ISLNK(sa.st_mode)) {
		char la[PATH_MAX], lb[PATH_MAX];
		ssize_t na = readlink(a, la, sizeof(la)), nb = readlink(b, lb, sizeof(lb));
		if (na != nb || (na > 0 && memcmp(la, lb, na)))
			fail("readlink %s: A '%.*s', B '%.*s'", rel, (int)na, la, (int)nb, lb);
	}
	if (content && S_ISREG(sa.st_mode)) {
		int fa = open(a, O_RDONLY), fb = open(b, O_RDONLY);
		snprintf(w, sizeof(w), "reopen %s", rel);
		same(w, (struct res){fa, errno}, (struct res){fb, errno}, 0);
		if (fa < 0 || fb < 0)
			die("open for compare");
		cmp_range(w, fa, fb, 0, sa.st_size + 1);
		close(fa);
		close(fb);
	}
}

static int namecmp(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

static int list_dir(const char *path, char ***out)
{
	DIR *d = opendir(path);
	struct dirent *e;
	int n = 0, cap = 16;
	char **v = malloc(cap * sizeof(*v));
	if (!d)
		die("opendir");
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (n == cap) {
			char **nv = realloc(v, (cap *= 2) * sizeof(*v));

			if (!nv)
				die("realloc");
			v = nv;
		}
		v[n++] = strdup(e->d_name);
	}
	closedir(d);
	qsort(v, n, sizeof(*v), namecmp);
	*out = v;
	return n;
}

static long tree_entries;

static void cmp_tree(const char *rel)
{
	char a[PATH_MAX], b[PATH_MAX], sub[PATH_MAX];
	char **va, **vb;
	int na, nb, i;
	pa(a, rel);
	pb(b, rel);
	na = list_dir(a, &va);
	nb = list_dir(b, &vb);
	for (i = 0; i < na || i < nb; i++) {
		if (i >= na || i >= nb || strcmp(va[i], vb[i]))
			fail("tree walk: directory '%s' lists '%s' on A, '%s' on B", rel,
			     i < na ? va[i] : "(end)", i < nb ? vb[i] : "(end)");
	}
	for (i = 0; i < na; i++) {
		struct stat st;
		snprintf(sub, sizeof(sub), "%s%s%s", rel, *rel ? "/" : "", va[i]);
		cmp_path(sub, 1);
		tree_entries++;
		pa(a, sub);
		if (!lstat(a, &st) && S_ISDIR(st.st_mode))
			cmp_tree(sub);
	}
	for (i = 0; i < na; i++)
		free(va[i]);
	for (i = 0; i < nb; i++)
		free(vb[i]);
	free(va);
	free(vb);
}

/* ---- names ------------------------------------------------------------------ */

static const char *dnames[] = {"d0", "d1", "d2"};
static const char *leaves[] = {"d0", "d1", "d2", "f0", "f1", "f2", "f3", "f4", "f5", "l0", "l1"};

static void rnd_path(char *out, int want_file)
{
	int depth = rnd(10) < 5 ? 0 : rnd(10) < 7 ? 1 : 2, i;
	out[0] = 0;
	for (i = 0; i < depth; i++) {
		strcat(out, dnames[rnd(3)]);
		strcat(out, "/");
	}
	if (want_file && chance(80))
		strcat(out, leaves[3 + rnd(6)]);
	else
		strcat(out, leaves[rnd(sizeof(leaves) / sizeof(leaves[0]))]);
}

static void parent_of(char *out, const char *rel)
{
	char *s;
	snprintf(out, PATH_MAX, "%s", rel);
	s = strrchr(out, '/');
	if (s)
		*s = 0;
	else
		out[0] = 0;
}

/* lstat-compare a name and its parent. */
static void check_names(const char *rel, int content)
{
	char par[PATH_MAX];
	cmp_path(rel, content);
	parent_of(par, rel);
	if (*par)
		cmp_path(par, 0);
}

/* ---- descriptors ------------------------------------------------------------------ */

static void slot_close(struct slot *s)
{
	if (!s->used)
		return;
	close(s->fa);
	close(s->fb);
	s->used = 0;
}

static void slot_open(struct slot *s, const char *rel, int flags, mode_t mode)
{
	char a[PATH_MAX], b[PATH_MAX], w[400];
	slot_close(s);
	pa(a, rel);
	pb(b, rel);
	struct res ra = R(open(a, flags, mode)), rb = R(open(b, flags, mode));
	snprintf(w, sizeof(w), "open %s flags 0%o", rel, flags);
	same(w, ra, rb, 0);
	if (ra.ret < 0)
		return;
	s->used = 1;
	s->fa = ra.ret;
	s->fb = rb.ret;
	snprintf(s->path, sizeof(s->path), "%s", rel);
}

static struct slot *rnd_open_slot(void)
{
	int i, n = 0, k;
	for (i = 0; i < NSLOTS; i++)
		n += slots[i].used;
	if (!n)
		return NULL;
	k = rnd(n);
	for (i = 0; i < NSLOTS; i++)
		if (slots[i].used && !k--)
			return &slots[i];
	return NULL;
}

static off_t fd_size(int fd)
{
	struct stat st;
	if (fstat(fd, &st))
		die("fstat");
	return st.st_size;
}

/* A random offset and length for I/O on a file of size sz. */
static void rnd_extent(off_t sz, off_t *off, long *len)
{
	int k = rnd(100);
	if (k < 40)
		*off = rnd(sz + 8 * KIB);
	else if (k < 70) /* near a 4 KiB boundary */
		*off = (off_t)(rnd(sz / 4096 + 4)) * 4096 - 64 + rnd(128);
	else if (k < 85)
		*off = sz + rnd(FAR_MAX); /* far beyond EOF: a hole */
	else
		*off = rnd(2 * MIB);
	if (*off < 0)
		*off = 0;
	k = rnd(100);
	if (k < 30)
		*len = 1 + rnd(16);
	else if (k < 65)
		*len = 1 + rnd(3 * 4096);
	else if (k < 92)
		*len = 1 + rnd(256 * KIB);
	else
		*len = 1 + rnd(MAXIO);
	if (*off + *len > MAX_FILE)
		*off = rnd(MAX_FILE - *len);
}

static void fill(long len)
{
	long i = 0;
	if (chance(20)) { /* zeros and a pattern: compressible, dedupe-looking */
		memset(buf_w, chance(50) ? 0 : 0x5a, len);
		return;
	}
	while (i < len) {
		uint64_t v = rnd64();
		long n = len - i < 8 ? len - i : 8;
		memcpy(buf_w + i, &v, n);
		i += n;
	}
}

/* After an operation on a slot: sizes, the range around it, and now and
 * then the whole file, through the descriptors. */
static void check_slot(struct slot *s, off_t off, long len)
{
	char w[400];
	struct stat sa, sb;
	snprintf(w, sizeof(w), "fstat fd of %s", s->path);
	if (fstat(s->fa, &sa) || fstat(s->fb, &sb))
		die("fstat");
	cmp_stat(w, &sa, &sb);
	snprintf(w, sizeof(w), "fd of %s", s->path);
	if (len >= 0) {
		off_t lo = off > 8192 ? off - 8192 : 0;
		cmp_range(w, s->fa, s->fb, lo, off - lo + len + 8192);
	}
	if (sa.st_size <= 256 * KIB || opno % 16 == 0)
		cmp_fds(w, s->fa, s->fb);
	check_names(s->path, opno % 8 == 0);
}

/* ---- operations ------------------------------------------------------------------ */

enum {
	OP_OPEN,
	OP_CLOSE,
	OP_PWRITE,
	OP_PREAD,
	OP_FTRUNC,
	OP_TRUNC,
	OP_PUNCH,
	OP_PREALLOC,
	OP_KEEPALLOC,
	OP_FSYNC,
	OP_EVICT,
	OP_WRITEPATH,
	OP_CREATE,
	OP_UNLINK,
	OP_MKDIR,
	OP_RMDIR,
	OP_RENAME,
	OP_LINK,
	OP_SYMLINK,
	OP_CHMOD,
	OP_NR
};
static const char *opnames[] = {"open",     "close",     "pwrite",   "pread",     "ftruncate",
                                "truncate", "punch",     "prealloc", "keepalloc", "fsync",
                                "evict",    "writepath", "create",   "unlink",    "mkdir",
                                "rmdir",    "rename",    "link",     "symlink",   "chmod"};
static const int weights[OP_NR] = {10, 4, 30, 10, 5, 3, 5, 3, 2, 3, 2, 5, 4, 5, 4, 3, 7, 3, 2, 2};

static int pick_op(void)
{
	int total = 0, i, k;
	for (i = 0; i < OP_NR; i++)
		total += weights[i];
	k = rnd(total);
	for (i = 0; i < OP_NR; i++) {
		if (k < weights[i])
			return i;
		k -= weights[i];
	}
	return 0;
}

#define BOTH(call_a, call_b)                                                                       \
	do {                                                                                       \
		ra = R(call_a);                                                                    \
		rb = R(call_b);                                                                    \
		same(opdesc, ra, rb, 1);                                                           \
	} while (0)

static void do_op(int op)
{
	char rel[PATH_MAX], rel2[PATH_MAX], a[PATH_MAX], b[PATH_MAX], a2[PATH_MAX], b2[PATH_MAX];
	struct res ra, rb;
	struct slot *s = NULL;
	off_t off = 0, sz;
	long len = 0;
	int flags, mode;

	if (op >= OP_PWRITE && op <= OP_EVICT && op != OP_TRUNC) {
		s = rnd_open_slot();
		if (!s)
			op = OP_OPEN;
	}
	stat_ops[op]++;
	rnd_path(rel, op != OP_MKDIR && op != OP_RMDIR);
	pa(a, rel);
	pb(b, rel);
	switch (op) {
	case OP_OPEN: {
		struct slot *t = &slots[rnd(NSLOTS)];
		flags = O_RDWR;
		if (chance(50))
			flags |= O_CREAT;
		if (chance(10))
			flags |= O_TRUNC;
		if (chance(10))
			flags |= O_EXCL;
		snprintf(opdesc, sizeof(opdesc), "open(%s, 0%o)", rel, flags);
		slot_open(t, rel, flags, 0644);
		check_names(rel, 1);
		if (t->used)
			check_slot(t, 0, -1);
		break;
	}
	case OP_CLOSE:
		s = rnd_open_slot();
		snprintf(opdesc, sizeof(opdesc), "close(%s)", s ? s->path : "-");
		if (s) {
			char p[256];
			snprintf(p, sizeof(p), "%s", s->path);
			slot_close(s);
			check_names(p, 1);
		}
		break;
	case OP_PWRITE:
		sz = fd_size(s->fa);
		rnd_extent(sz, &off, &len);
		fill(len);
		snprintf(opdesc, sizeof(opdesc), "pwrite(%s, %ld @ %lld) size %lld", s->path, len,
		         (long long)off, (long long)sz);
		BOTH(pwrite(s->fa, buf_w, len, off), pwrite(s->fb, buf_w, len, off));
		check_slot(s, off, len);
		break;
	case OP_PREAD:
		sz = fd_size(s->fa);
		rnd_extent(sz, &off, &len);
		if (chance(30))
			off = sz > len ? sz - rnd(len) : 0; /* across EOF */
		snprintf(opdesc, sizeof(opdesc), "pread(%s, %ld @ %lld) size %lld", s->path, len,
		         (long long)off, (long long)sz);
		cmp_range(opdesc, s->fa, s->fb, off, len);
		check_slot(s, off, -1);
		break;
	case OP_FTRUNC:
	case OP_TRUNC: {
		off_t nsz;
		if (s)
			sz = fd_size(s->fa);
		else {
			struct stat st;
			sz = lstat(a, &st) ? 0 : st.st_size;
		}
		switch (rnd(5)) {
		case 0:
			nsz = 0;
			break;
		case 1:
			nsz = sz ? rnd(sz) : 0;
			break; /* down */
		case 2:
			nsz = sz + rnd(64 * KIB);
			break;
		case 3:
			nsz = sz + rnd(FAR_MAX);
			break; /* up, far */
		default:
			nsz = (off_t)rnd(sz / 4096 + 2) * 4096 + (chance(50) ? 0 : rnd(4096));
			break;
		}
		if (nsz > MAX_FILE)
			nsz = rnd(MAX_FILE);
		if (s) {
			snprintf(opdesc, sizeof(opdesc), "ftruncate(%s, %lld) size %lld", s->path,
			         (long long)nsz, (long long)sz);
			BOTH(ftruncate(s->fa, nsz), ftruncate(s->fb, nsz));
			check_slot(s, nsz > 4096 ? nsz - 4096 : 0, 8192);
		} else {
			snprintf(opdesc, sizeof(opdesc), "truncate(%s, %lld) size %lld", rel,
			         (long long)nsz, (long long)sz);
			BOTH(truncate(a, nsz), truncate(b, nsz));
			check_names(rel, 1);
		}
		break;
	}
	case OP_PUNCH:
	case OP_PREALLOC:
	case OP_KEEPALLOC:
		sz = fd_size(s->fa);
		rnd_extent(sz, &off, &len);
		if (op != OP_PUNCH && len > 2 * MIB)
			len = 2 * MIB;
		if (op == OP_PUNCH && chance(50)) { /* block aligned */
			off &= ~4095L;
			len = (len + 4095) & ~4095L;
		}
		mode = op == OP_PUNCH       ? FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
		       : op == OP_KEEPALLOC ? FALLOC_FL_KEEP_SIZE
		                            : 0;
		snprintf(opdesc, sizeof(opdesc), "fallocate(%s, %s, %ld @ %lld) size %lld", s->path,
		         opnames[op], len, (long long)off, (long long)sz);
		BOTH(fallocate(s->fa, mode, off, len), fallocate(s->fb, mode, off, len));
		check_slot(s, off, len);
		break;
	case OP_FSYNC:
		flags = chance(50);
		snprintf(opdesc, sizeof(opdesc), "%s(%s)", flags ? "fdatasync" : "fsync", s->path);
		if (flags)
			BOTH(fdatasync(s->fa), fdatasync(s->fb));
		else
			BOTH(fsync(s->fa), fsync(s->fb));
		check_slot(s, 0, -1);
		break;
	case OP_EVICT:
		/* write back, then drop the clean pages: the next reads reach the daemon */
		snprintf(opdesc, sizeof(opdesc), "fsync+fadvise(DONTNEED)(%s)", s->path);
		BOTH(fsync(s->fa), fsync(s->fb));
		posix_fadvise(s->fa, 0, 0, POSIX_FADV_DONTNEED);
		posix_fadvise(s->fb, 0, 0, POSIX_FADV_DONTNEED);
		check_slot(s, 0, -1);
		cmp_fds(opdesc, s->fa, s->fb);
		break;
	case OP_WRITEPATH: {
		int fa, fb;
		flags = O_WRONLY | O_CREAT | (chance(30) ? O_APPEND : 0) |
		        (chance(20) ? O_TRUNC : 0);
		struct stat st;
		sz = lstat(a, &st) ? 0 : st.st_size;
		rnd_extent(sz, &off, &len);
		fill(len);
		snprintf(opdesc, sizeof(opdesc), "open(%s, 0%o)+pwrite(%ld @ %lld)+close", rel,
		         flags, len, (long long)off);
		ra = R(open(a, flags, 0644));
		rb = R(open(b, flags, 0644));
		same(opdesc, ra, rb, 0);
		if (ra.ret < 0)
			break;
		fa = ra.ret;
		fb = rb.ret;
		if (flags & O_APPEND)
			BOTH(write(fa, buf_w, len), write(fb, buf_w, len));
		else
			BOTH(pwrite(fa, buf_w, len, off), pwrite(fb, buf_w, len, off));
		BOTH(close(fa), close(fb));
		check_names(rel, 1);
		break;
	}
	case OP_CREATE:
		mode = chance(50) ? 0600 : 0640;
		snprintf(opdesc, sizeof(opdesc), "creat-excl(%s, 0%o)", rel, mode);
		ra = R(open(a, O_CREAT | O_EXCL | O_WRONLY, mode));
		rb = R(open(b, O_CREAT | O_EXCL | O_WRONLY, mode));
		if (ra.ret >= 0)
			close(ra.ret);
		if (rb.ret >= 0)
			close(rb.ret);
		same(opdesc, ra, rb, 0);
		check_names(rel, 1);
		break;
	case OP_UNLINK:
		snprintf(opdesc, sizeof(opdesc), "unlink(%s)", rel);
		BOTH(unlink(a), unlink(b));
		check_names(rel, 0);
		break;
	case OP_MKDIR:
		snprintf(opdesc, sizeof(opdesc), "mkdir(%s)", rel);
		BOTH(mkdir(a, 0755), mkdir(b, 0755));
		check_names(rel, 0);
		break;
	case OP_RMDIR:
		snprintf(opdesc, sizeof(opdesc), "rmdir(%s)", rel);
		ra = R(rmdir(a));
		rb = R(rmdir(b));
		/* POSIX allows either for a non-empty directory */
		if (ra.ret < 0 && rb.ret < 0 && (ra.err == EEXIST || ra.err == ENOTEMPTY) &&
		    (rb.err == EEXIST || rb.err == ENOTEMPTY))
			ra.err = rb.err;
		same(opdesc, ra, rb, 1);
		check_names(rel, 0);
		break;
	case OP_RENAME:
		rnd_path(rel2, op != OP_MKDIR);
		pa(a2, rel2);
		pb(b2, rel2);
		snprintf(opdesc, sizeof(opdesc), "rename(%s, %s)", rel, rel2);
		ra = R(rename(a, a2));
		rb = R(rename(b, b2));
		if (ra.ret < 0 && rb.ret < 0 && (ra.err == EEXIST || ra.err == ENOTEMPTY) &&
		    (rb.err == EEXIST || rb.err == ENOTEMPTY))
			ra.err = rb.err;
		same(opdesc, ra, rb, 1);
		check_names(rel, 0);
		check_names(rel2, 1);
		break;
	case OP_LINK:
		rnd_path(rel2, 1);
		pa(a2, rel2);
		pb(b2, rel2);
		snprintf(opdesc, sizeof(opdesc), "link(%s, %s)", rel, rel2);
		BOTH(link(a, a2), link(b, b2));
		check_names(rel, 0);
		check_names(rel2, 1);
		break;
	case OP_SYMLINK: {
		/* never absolute nor "..": a renamed link must not point out of the tree */
		static const char *targets[] = {"f0", "d0/f2", "nowhere", "d1",
		                                "l0", "d2/l1", "f1"};
		const char *t = targets[rnd(sizeof(targets) / sizeof(targets[0]))];
		snprintf(opdesc, sizeof(opdesc), "symlink(%s -> %s)", rel, t);
		BOTH(symlink(t, a), symlink(t, b));
		check_names(rel, 0);
		break;
	}
	case OP_CHMOD: {
		static const mode_t modes[] = {0644, 0600, 0755, 0444, 0700};
		mode_t m = modes[rnd(5)];
		snprintf(opdesc, sizeof(opdesc), "chmod(%s, 0%o)", rel, m);
		BOTH(chmod(a, m), chmod(b, m));
		check_names(rel, 0);
		break;
	}
	}
}

/* Close every descriptor, run CMD, reopen the same names (without O_CREAT:
 * the files unlinked while open are gone on both sides). */
static void remount(void)
{
	char names[NSLOTS][sizeof(slots[0].path)];
	int i, rc;
	snprintf(opdesc, sizeof(opdesc), "remount");
	for (i = 0; i < NSLOTS; i++) {
		names[i][0] = 0;
		if (slots[i].used)
			snprintf(names[i], sizeof(names[i]), "%s", slots[i].path);
		slot_close(&slots[i]);
	}
	fflush(stdout);
	rc = system(remount_cmd);
	if (rc != 0) {
		fprintf(stderr,
		        "exerciser: seed %" PRIu64 ", op %ld: remount command failed (%d)\n", seed,
		        opno, rc);
		exit(2);
	}
	cmp_tree("");
	for (i = 0; i < NSLOTS; i++)
		if (names[i][0]) {
			if (snprintf(opdesc, sizeof(opdesc), "reopen %s after remount", names[i]) <
			    0)
				die("snprintf");
			slot_open(&slots[i], names[i], O_RDWR, 0);
			if (slots[i].used)
				cmp_fds(opdesc, slots[i].fa, slots[i].fb);
		}
}

static void usage(void)
{
	fprintf(stderr, "usage: exerciser [-s SEED] [-n OPS] [-v] [--remount-cmd CMD] "
	                "[--remount-every N] DIR_A DIR_B\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	        {"remount-cmd", required_argument, NULL, 'r'},
	        {"remount-every", required_argument, NULL, 'R'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	int c, i;
	long remounts = 0, walks = 0;

	if (argc == 1) {
		printf("1..0 # SKIP needs two directories: run by tests/fuse/test_exerciser.sh\n");
		return 0;
	}
	while ((c = getopt_long(argc, argv, "s:n:vh", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			seed = strtoull(optarg, NULL, 0);
			break;
		case 'n':
			nops = strtol(optarg, NULL, 0);
			break;
		case 'v':
			verbose = 1;
			break;
		case 'r':
			remount_cmd = optarg;
			break;
		case 'R':
			remount_every = strtol(optarg, NULL, 0);
			break;
		default:
			usage();
		}
	}
	if (argc - optind != 2 || remount_every <= 0)
		usage();
	dir_a = argv[optind];
	dir_b = argv[optind + 1];
	rng_state = seed;
	buf_w = malloc(MAXIO);
	buf_a = malloc(MAXIO);
	buf_b = malloc(MAXIO);
	if (!buf_w || !buf_a || !buf_b)
		die("malloc");
	umask(022);
	snprintf(opdesc, sizeof(opdesc), "initial tree walk");
	opno = -1;
	cmp_tree("");
	for (opno = 0; opno < nops; opno++) {
		int op = pick_op();
		do_op(op);
		if (verbose)
			fprintf(stderr, "%ld: %s\n", opno, opdesc);
		if (opno % 100 == 99) {
			snprintf(opdesc, sizeof(opdesc), "tree walk after op %ld", opno);
			cmp_tree("");
			walks++;
		}
		if (remount_cmd && opno % remount_every == remount_every - 1) {
			remount();
			remounts++;
		}
	}
	snprintf(opdesc, sizeof(opdesc), "final tree walk");
	for (i = 0; i < NSLOTS; i++)
		slot_close(&slots[i]);
	cmp_tree("");
	printf("seed %" PRIu64 ": %ld operations, %ld tree walks, %ld remounts, no divergence\n",
	       seed, nops, walks, remounts);
	for (i = 0; i < OP_NR; i++)
		printf("  %-10s %ld\n", opnames[i], stat_ops[i]);
	return 0;
}
