/*
 * tests/fuse/exerciser.c - differential exerciser for arborfs.
 *
 * exerciser [-s SEED] [-n OPS] [-v] [--remount-cmd CMD] [--remount-every N]
 *           [--walk-every N] [--full-every K] [--small BYTES] [--dense]
 *           [--progress N] DIR_A DIR_B
 *
 * Applies one pseudo-random sequence of file system operations to two
 * directory trees (A on arborfs, B on a host file system) and compares them
 * after every step: the return value and errno of every call; type, mode,
 * link count and size of the touched names and their parents, and the
 * target of a symbolic link; the content of the touched file, through its
 * open descriptors after an operation on them, and through a fresh open
 * (which drops A's page cache: reads reach the daemon) after an operation
 * by name and every 8th operation on descriptors.  A content check reads
 * the touched range with 8 KiB either side (its first 256 KiB whatever the
 * hole maps say; for a write or truncate beyond the end of file, from the
 * old end), the first 4 KiB and the last 8 KiB across the end of file; the
 * whole file when it is at most --small bytes (256 KiB), every K-th
 * operation (--full-every, 32) and after fsync+fadvise(DONTNEED).
 *
 * Every N operations (--walk-every, 500), after each remount and at the
 * end, the whole trees are compared: names, metadata and the whole content
 * of every file through a fresh open.  Every 500 operations, what the
 * operations cannot name (entries that a directory rename took out of their
 * reach, which would otherwise pile up for ever) is removed from both trees.
 *
 * Whole-file comparisons read every byte that either side reports as data
 * (SEEK_DATA/SEEK_HOLE: a hole map that differs between the two file
 * systems, or A's missing unflushed data of the writeback cache, does no
 * harm) and every hole shorter than 128 KiB; of a longer range that both
 * sides report as a hole, they read one 4 KiB probe (its start, its middle
 * or its end, changing from one operation to the next; all three within a
 * touched range).  --dense reads every byte instead.
 *
 * Every --remount-every operations (300), with --remount-cmd, all
 * descriptors are closed, CMD is run with system() (it must unmount A and
 * mount it again), the trees are compared, and the descriptors are reopened
 * and compared in full.  The first divergence prints the seed, the
 * operation index, the operation and both results, and exits 1.  The
 * operation sequence is deterministic for a seed (splitmix64) and does not
 * depend on the check options (the checks draw no random numbers).  At the
 * end it prints the rate in operations per second and where the time went;
 * --progress N prints the rate on stderr every N operations.
 *
 * Without arguments (as a plain "make check" program) it prints a TAP skip:
 * tests/fuse/test_exerciser.sh runs it on a real mount.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* also set by the build */
#endif
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
#include <time.h>
#include <unistd.h>

#define KIB 1024L
#define MIB (1024L * 1024L)
#define NSLOTS 6
#define MAXIO (1 * MIB)
#define FAR_MAX (16 * MIB) /* holes: writes up to this far beyond EOF */
#define MAX_FILE (40 * MIB)
#define MARGIN (8 * KIB)     /* read around a touched range */
#define HEAD (4 * KIB)       /* start of file read by a ranged check */
#define DENSE (256 * KIB)    /* of a touched range, read whatever the hole maps say */
#define MIN_SKIP (128 * KIB) /* shorter holes are read */
#define PROBE (4 * KIB)      /* read at an end or the middle of a skipped hole */
#define REOPEN_EVERY 8       /* fresh-open check after descriptor operations */
#define PRUNE_EVERY 500      /* operations: remove what they cannot name */

/* ---- PRNG ------------------------------------------------------------------ */

static uint64_t rng_state;

static uint64_t mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t rnd64(void)
{
	return mix64(rng_state += 0x9e3779b97f4a7c15ULL);
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
static long nops = 1000, remount_every = 300, walk_every = 500, full_every = 32, opno;
static long progress_every, walks, remounts, walk_files; /* files in the last walk */
static off_t small_size = 256 * KIB;
static int verbose, dense;
static int full_now; /* this operation's content checks read whole files */
static struct slot slots[NSLOTS];
static char opdesc[3 * PATH_MAX];
static unsigned char *buf_w, *buf_a, *buf_b;
static long stat_ops[64], stat_pruned;

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* The command line that replays the sequence up to this operation. */
static void print_reproduce(void)
{
	fprintf(stderr, "  reproduce: exerciser -s %" PRIu64 " -n %ld", seed, opno + 1);
	fprintf(stderr, " --walk-every %ld --full-every %ld --small %lld%s", walk_every, full_every,
	        (long long)small_size, dense ? " --dense" : "");
	if (remount_cmd)
		fprintf(stderr, " --remount-every %ld --remount-cmd CMD", remount_every);
	fprintf(stderr, " -v A B\n  (with --walk-every 1 --full-every 1, the same operations and "
	                "every check after every step)\n");
}

static void fail(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "DIVERGENCE: seed %" PRIu64 ", op %ld: %s\n  ", seed, opno, opdesc);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	print_reproduce();
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

/* ---- timing ------------------------------------------------------------------ */

enum { PH_NONE = -1, PH_OP, PH_CHECK, PH_WALK, PH_REMOUNT, PH_NR };
static const char *phase_names[PH_NR] = {"operations", "checks", "tree walks", "remounts"};
static double phase_time[PH_NR], phase_start;
static int phase_cur = PH_NONE;
static uint64_t bytes_read[PH_NR], bytes_skipped; /* from A, by the comparisons */

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Charge the time since the last call to the current phase; enter p
 * (PH_NONE: stop). */
static void phase(int p)
{
	double t = now();
	if (phase_cur != PH_NONE)
		phase_time[phase_cur] += t - phase_start;
	phase_cur = p;
	phase_start = t;
}

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

/* Compare [off, off+len) read through fa and fb, up to the end of file. */
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
		bytes_read[phase_cur == PH_NONE ? PH_CHECK : phase_cur] += a.ret;
		if (memcmp(buf_a, buf_b, a.ret)) {
			long i = 0;
			while (buf_a[i] == buf_b[i])
				i++;
			fail("%s: content differs at offset %lld: A 0x%02x, B 0x%02x", w,
			     (long long)(off + i), buf_a[i], buf_b[i]);
		}
		if (a.ret < n) /* both at the end of file */
			return;
		off += a.ret;
		len -= a.ret;
	}
}

/* The first offset in [pos, end) that fd reports as data; end when it
 * reports none (ENXIO); pos when it cannot tell. */
static off_t data_from(int fd, off_t pos, off_t end)
{
	off_t r;
	if (dense)
		return pos;
	r = lseek(fd, pos, SEEK_DATA);
	if (r < 0)
		return errno == ENXIO ? end : pos;
	return r < pos ? pos : r > end ? end : r;
}

/* Where the data at pos ends (at most end); end when fd cannot tell. */
static off_t hole_from(int fd, off_t pos, off_t end)
{
	off_t r = dense ? end : lseek(fd, pos, SEEK_HOLE);
	return r <= pos || r > end ? end : r;
}

/* [lo, hi) is a hole on both sides: with all, read its ends and a block
 * inside; else one of the three, a different one from one operation to the
 * next. */
static void probe_hole(const char *what, int fa, int fb, off_t lo, off_t hi, int all)
{
	uint64_t h = mix64((uint64_t)lo ^ (uint64_t)hi << 20 ^ (uint64_t)opno);
	off_t mid = lo + (off_t)(h % (uint64_t)(hi - lo - PROBE));
	int which = (int)(h >> 40) % 3;
	if (all || which == 0)
		cmp_range(what, fa, fb, lo, PROBE);
	if (all || which == 1)
		cmp_range(what, fa, fb, mid, PROBE);
	if (all || which == 2)
		cmp_range(what, fa, fb, hi - PROBE, PROBE);
	bytes_skipped += hi - lo - (all ? 3 : 1) * PROBE;
}

static off_t max_off(off_t x, off_t y)
{
	return x > y ? x : y;
}

/*
 * Compare [lo, hi) (within both files), reading every byte that either side
 * reports as data and every short hole; of a long hole of both sides only
 * probes (all: 3).  B's map comes first (cheap); A is asked only inside B's
 * holes.
 */
static void cmp_sparse(const char *what, int fa, int fb, off_t lo, off_t hi, int all)
{
	off_t pos = lo;
	while (pos < hi) {
		off_t da, db, end;
		if (hi - pos < MIN_SKIP) { /* nothing worth skipping */
			cmp_range(what, fa, fb, pos, hi - pos);
			return;
		}
		db = data_from(fb, pos, hi);
		if (db - pos < MIN_SKIP) { /* B's data, after a short hole */
			end = db == hi ? hi : hole_from(fb, db, hi);
		} else { /* a long hole on B; on A? */
			da = data_from(fa, pos, db);
			if (da - pos >= MIN_SKIP) {
				probe_hole(what, fa, fb, pos, da, all);
				pos = da;
				continue;
			}
			end = da == db ? db : hole_from(fa, da, db);
		}
		cmp_range(what, fa, fb, pos, end - pos);
		pos = end;
	}
}

/* The touched range [off, off+len) with a margin, within the file: its
 * first DENSE bytes are read whatever the hole maps say, its long holes are
 * probed in three places. */
static void cmp_touched(const char *what, int fa, int fb, off_t sz, off_t off, long len)
{
	off_t lo = max_off(off - MARGIN, 0), hi = off + len + MARGIN, mid;
	if (hi > sz)
		hi = sz;
	if (lo >= hi)
		return;
	mid = hi - lo > DENSE ? lo + DENSE : hi;
	cmp_range(what, fa, fb, lo, mid - lo);
	cmp_sparse(what, fa, fb, mid, hi, 1);
}

/*
 * Content of fa and fb, both of size sz: the touched range (len < 0: none);
 * then the whole file when full or small (a small one in one read), else
 * its head and its last bytes; always a read across the end of file.
 */
static void cmp_content(const char *what, int fa, int fb, off_t sz, off_t off, long len, int full)
{
	if ((full || sz <= small_size) && sz < MIN_SKIP) { /* all of it, and the EOF */
		cmp_range(what, fa, fb, 0, sz + 1);
		return;
	}
	if (len >= 0)
		cmp_touched(what, fa, fb, sz, off, len);
	if (full || sz <= small_size) {
		cmp_sparse(what, fa, fb, 0, sz, 0);
		cmp_range(what, fa, fb, sz, 1); /* both at EOF */
		return;
	}
	cmp_range(what, fa, fb, 0, HEAD);
	cmp_range(what, fa, fb, max_off(sz - MARGIN, 0), MARGIN + 1);
}

/* lstat rel on both sides: the same result, type, mode, links, size and
 * symbolic link target.  The mode (0 when absent); the size in *size. */
static mode_t cmp_name(const char *rel, off_t *size)
{
	char a[PATH_MAX], b[PATH_MAX], w[300];
	struct stat sa = {0}, sb = {0};
	pa(a, rel);
	pb(b, rel);
	snprintf(w, sizeof(w), "lstat %s", rel);
	struct res ra = R(lstat(a, &sa)), rb = R(lstat(b, &sb));
	same(w, ra, rb, 1);
	if (ra.ret < 0)
		return 0;
	cmp_stat(w, &sa, &sb);
	if (S_ISLNK(sa.st_mode)) {
		char la[PATH_MAX], lb[PATH_MAX];
		ssize_t na = readlink(a, la, sizeof(la)), nb = readlink(b, lb, sizeof(lb));
		if (na != nb || (na > 0 && memcmp(la, lb, na)))
			fail("readlink %s: A '%.*s', B '%.*s'", rel, (int)na, la, (int)nb, lb);
	}
	*size = sa.st_size;
	return sa.st_mode;
}

/* Open the regular file rel afresh on both sides (A's page cache is
 * dropped: reads reach the daemon) and compare its content. */
static void cmp_reopen(const char *rel, off_t sz, off_t off, long len, int full)
{
	char a[PATH_MAX], b[PATH_MAX], w[300];
	pa(a, rel);
	pb(b, rel);
	snprintf(w, sizeof(w), "reopen %s", rel);
	struct res ra = R(open(a, O_RDONLY)), rb = R(open(b, O_RDONLY));
	same(w, ra, rb, 0);
	if (ra.ret < 0 || rb.ret < 0)
		die("open for compare");
	cmp_content(w, ra.ret, rb.ret, sz, off, len, full);
	close(ra.ret);
	close(rb.ret);
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

static void free_list(char **v, int n)
{
	int i;
	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* ---- the tree ------------------------------------------------------------------ */

/* Operations name at most two directories from dnames and a leaf. */
static const char *dnames[] = {"d0", "d1", "d2"};
static const char *leaves[] = {"d0", "d1", "d2", "f0", "f1", "f2", "f3", "f4", "f5", "l0", "l1"};
#define NAME_DEPTH 3

/* Whether the operations can name rel. */
static int reachable(const char *rel)
{
	const char *slash;
	int n = 1, i, nd = sizeof(dnames) / sizeof(dnames[0]);
	for (; (slash = strchr(rel, '/')); rel = slash + 1) {
		for (i = 0; i < nd; i++)
			if ((size_t)(slash - rel) == strlen(dnames[i]) &&
			    !strncmp(rel, dnames[i], slash - rel))
				break;
		if (i == nd || ++n > NAME_DEPTH)
			return 0;
	}
	return 1;
}

/* Remove rel (a directory: emptied first) from both trees. */
static void prune(const char *rel, mode_t m)
{
	char a[PATH_MAX], b[PATH_MAX], w[PATH_MAX + 32];
	pa(a, rel);
	pb(b, rel);
	snprintf(w, sizeof(w), "prune: %s %s", S_ISDIR(m) ? "rmdir" : "unlink", rel);
	if (S_ISDIR(m))
		same(w, R(rmdir(a)), R(rmdir(b)), 1);
	else
		same(w, R(unlink(a)), R(unlink(b)), 1);
	stat_pruned++;
}

/*
 * Remove from both trees what the operations cannot name under rel (taken
 * there by a directory rename): out of their reach it would pile up for
 * ever.  B's listing leads, deepest first; both sides must agree.
 */
static void prune_tree(const char *rel)
{
	char b[PATH_MAX], sub[PATH_MAX];
	struct stat st;
	char **vb;
	int nb, i;
	pb(b, rel);
	nb = list_dir(b, &vb);
	for (i = 0; i < nb; i++) {
		snprintf(sub, sizeof(sub), "%s%s%s", rel, *rel ? "/" : "", vb[i]);
		pb(b, sub);
		if (lstat(b, &st))
			die("lstat");
		if (S_ISDIR(st.st_mode))
			prune_tree(sub);
		if (!reachable(sub))
			prune(sub, st.st_mode);
	}
	free_list(vb, nb);
}

/* The whole tree under rel: names, metadata, whole contents. */
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
		off_t sz = 0;
		mode_t m;
		snprintf(sub, sizeof(sub), "%s%s%s", rel, *rel ? "/" : "", va[i]);
		m = cmp_name(sub, &sz);
		if (S_ISREG(m)) {
			cmp_reopen(sub, sz, 0, -1, 1);
			walk_files++;
		} else if (S_ISDIR(m)) {
			cmp_tree(sub);
		}
	}
	free_list(va, na);
	free_list(vb, nb);
}

/* A whole-tree comparison, described as opdesc. */
static void walk(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void walk(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(opdesc, sizeof(opdesc), fmt, ap);
	va_end(ap);
	phase(PH_WALK);
	walk_files = 0;
	cmp_tree("");
	walks++;
}

/* ---- names ------------------------------------------------------------------ */

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

/* lstat-compare a name and its parent; with content, a regular file's
 * content through a fresh open ([off, off+len) touched). */
static void check_names(const char *rel, int content, off_t off, long len)
{
	char par[PATH_MAX];
	off_t sz = 0;
	if (S_ISREG(cmp_name(rel, &sz)) && content)
		cmp_reopen(rel, sz, off, len, full_now);
	parent_of(par, rel);
	if (*par)
		cmp_name(par, &sz);
}

/* ---- descriptors ------------------------------------------------------------------ */

/* Through a slot's descriptors: metadata and content ([off, off+len)
 * touched; full: the whole file). */
static void check_slot(struct slot *s, off_t off, long len, int full)
{
	char w[400];
	struct stat sa, sb;
	snprintf(w, sizeof(w), "fstat fd of %s", s->path);
	if (fstat(s->fa, &sa) || fstat(s->fb, &sb))
		die("fstat");
	cmp_stat(w, &sa, &sb);
	snprintf(w, sizeof(w), "fd of %s", s->path);
	cmp_content(w, s->fa, s->fb, sb.st_size, off, len, full || full_now);
}

/* Close s's descriptors.  A file unlinked while open is compared in full
 * first: no name will show it to a tree walk. */
static void slot_close(struct slot *s)
{
	struct stat st;
	if (!s->used)
		return;
	if (!fstat(s->fb, &st) && st.st_nlink == 0)
		check_slot(s, 0, -1, 1);
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

/* ---- what an operation touched, checked after it ------------------------------------ */

static struct touched {
	struct slot *slot; /* descriptors operated on */
	int slot_full;     /* compare the slot's whole file */
	off_t off;         /* range touched in the slot's file and in name[0] */
	long len;          /* < 0: none */
	int n;
	char name[2][PATH_MAX];
	int content[2]; /* compare the name's content through a fresh open */
} tch;

static void touch_reset(void)
{
	tch.slot = NULL;
	tch.slot_full = 0;
	tch.off = 0;
	tch.len = -1;
	tch.n = 0;
}

static void touch_range(off_t lo, off_t hi)
{
	tch.off = lo;
	tch.len = hi - lo;
}

static void touch_name(const char *rel, int content)
{
	snprintf(tch.name[tch.n], PATH_MAX, "%s", rel);
	tch.content[tch.n++] = content;
}

/* An operation on s's descriptors; its path through a fresh open now and
 * then (a fresh open writes back A's cached pages and drops them). */
static void touch_slot(struct slot *s)
{
	tch.slot = s;
	touch_name(s->path, opno % REOPEN_EVERY == 0);
}

static void check_touched(void)
{
	int i;
	if (tch.slot)
		check_slot(tch.slot, tch.off, tch.len, tch.slot_full);
	for (i = 0; i < tch.n; i++)
		check_names(tch.name[i], tch.content[i], tch.off, i ? -1 : tch.len);
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

static void op_open(const char *rel)
{
	struct slot *t = &slots[rnd(NSLOTS)];
	int flags = O_RDWR;
	if (chance(50))
		flags |= O_CREAT;
	if (chance(10))
		flags |= O_TRUNC;
	if (chance(10))
		flags |= O_EXCL;
	snprintf(opdesc, sizeof(opdesc), "open(%s, 0%o)", rel, flags);
	slot_open(t, rel, flags, 0644);
	/* the new descriptors are a fresh open */
	touch_name(rel, !t->used);
	if (t->used)
		tch.slot = t;
}

static void op_close(void)
{
	struct slot *s = rnd_open_slot();
	snprintf(opdesc, sizeof(opdesc), "close(%s)", s ? s->path : "-");
	if (s) {
		touch_name(s->path, 1);
		slot_close(s);
	}
}

static void op_pwrite(struct slot *s)
{
	struct res ra, rb;
	off_t off, sz = fd_size(s->fa);
	long len;
	rnd_extent(sz, &off, &len);
	fill(len);
	snprintf(opdesc, sizeof(opdesc), "pwrite(%s, %ld @ %lld) size %lld", s->path, len,
	         (long long)off, (long long)sz);
	BOTH(pwrite(s->fa, buf_w, len, off), pwrite(s->fb, buf_w, len, off));
	touch_slot(s);
	touch_range(off < sz ? off : sz, off + len); /* and the hole before it */
}

static void op_pread(struct slot *s)
{
	off_t off, sz = fd_size(s->fa);
	long len;
	rnd_extent(sz, &off, &len);
	if (chance(30))
		off = sz > len ? sz - rnd(len) : 0; /* across EOF */
	snprintf(opdesc, sizeof(opdesc), "pread(%s, %ld @ %lld) size %lld", s->path, len,
	         (long long)off, (long long)sz);
	cmp_range(opdesc, s->fa, s->fb, off, len);
	touch_slot(s);
}

/* A new size for a file of size sz. */
static off_t rnd_new_size(off_t sz)
{
	off_t nsz;
	switch (rnd(5)) {
	case 0:
		nsz = 0;
		break;
	case 1:
		nsz = sz ? rnd(sz) : 0; /* down */
		break;
	case 2:
		nsz = sz + rnd(64 * KIB);
		break;
	case 3:
		nsz = sz + rnd(FAR_MAX); /* up, far */
		break;
	default:
		nsz = (off_t)rnd(sz / 4096 + 2) * 4096 + (chance(50) ? 0 : rnd(4096));
		break;
	}
	if (nsz > MAX_FILE)
		nsz = rnd(MAX_FILE);
	return nsz;
}

/* ftruncate with s, else truncate by name; the range between the old and
 * the new size is touched (read as zeros when it grew). */
static void op_truncate(struct slot *s, const char *rel, const char *a, const char *b)
{
	struct res ra, rb;
	struct stat st;
	off_t sz = s ? fd_size(s->fa) : lstat(a, &st) ? 0 : st.st_size, nsz = rnd_new_size(sz);
	if (s) {
		snprintf(opdesc, sizeof(opdesc), "ftruncate(%s, %lld) size %lld", s->path,
		         (long long)nsz, (long long)sz);
		BOTH(ftruncate(s->fa, nsz), ftruncate(s->fb, nsz));
		touch_slot(s);
	} else {
		snprintf(opdesc, sizeof(opdesc), "truncate(%s, %lld) size %lld", rel,
		         (long long)nsz, (long long)sz);
		BOTH(truncate(a, nsz), truncate(b, nsz));
		touch_name(rel, 1);
	}
	touch_range(nsz < sz ? nsz : sz, nsz < sz ? sz : nsz);
}

static void op_fallocate(struct slot *s, int op)
{
	struct res ra, rb;
	off_t off, sz = fd_size(s->fa);
	long len;
	int mode;
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
	touch_slot(s);
	touch_range((off < sz || op != OP_PREALLOC) ? off : sz, off + len);
}

static void op_fsync(struct slot *s)
{
	struct res ra, rb;
	int data = chance(50);
	snprintf(opdesc, sizeof(opdesc), "%s(%s)", data ? "fdatasync" : "fsync", s->path);
	if (data)
		BOTH(fdatasync(s->fa), fdatasync(s->fb));
	else
		BOTH(fsync(s->fa), fsync(s->fb));
	touch_slot(s);
}

/* Write back, then drop the clean pages: the next reads reach the daemon;
 * the whole file is compared through the descriptors. */
static void op_evict(struct slot *s)
{
	struct res ra, rb;
	snprintf(opdesc, sizeof(opdesc), "fsync+fadvise(DONTNEED)(%s)", s->path);
	BOTH(fsync(s->fa), fsync(s->fb));
	posix_fadvise(s->fa, 0, 0, POSIX_FADV_DONTNEED);
	posix_fadvise(s->fb, 0, 0, POSIX_FADV_DONTNEED);
	touch_slot(s);
	tch.slot_full = 1;
}

static void op_writepath(const char *rel, const char *a, const char *b)
{
	struct res ra, rb;
	struct stat st;
	int fa, fb,
	        flags = O_WRONLY | O_CREAT | (chance(30) ? O_APPEND : 0) |
	                (chance(20) ? O_TRUNC : 0);
	off_t off, sz = lstat(a, &st) ? 0 : st.st_size;
	long len;
	rnd_extent(sz, &off, &len);
	fill(len);
	snprintf(opdesc, sizeof(opdesc), "open(%s, 0%o)+pwrite(%ld @ %lld)+close", rel, flags, len,
	         (long long)off);
	touch_name(rel, 1);
	ra = R(open(a, flags, 0644));
	rb = R(open(b, flags, 0644));
	same(opdesc, ra, rb, 0);
	if (ra.ret < 0)
		return;
	fa = ra.ret;
	fb = rb.ret;
	if (flags & O_TRUNC)
		sz = 0;
	if (flags & O_APPEND)
		BOTH(write(fa, buf_w, len), write(fb, buf_w, len));
	else
		BOTH(pwrite(fa, buf_w, len, off), pwrite(fb, buf_w, len, off));
	BOTH(close(fa), close(fb));
	if (flags & O_APPEND)
		off = sz;
	touch_range((flags & O_TRUNC) ? 0 : off < sz ? off : sz, off + len);
}

static void op_create(const char *rel, const char *a, const char *b)
{
	struct res ra, rb;
	int mode = chance(50) ? 0600 : 0640;
	snprintf(opdesc, sizeof(opdesc), "creat-excl(%s, 0%o)", rel, mode);
	ra = R(open(a, O_CREAT | O_EXCL | O_WRONLY, mode));
	rb = R(open(b, O_CREAT | O_EXCL | O_WRONLY, mode));
	if (ra.ret >= 0)
		close(ra.ret);
	if (rb.ret >= 0)
		close(rb.ret);
	same(opdesc, ra, rb, 0);
	touch_name(rel, 1);
}

/* POSIX allows either for a non-empty directory. */
static void same_notempty(struct res ra, struct res rb)
{
	if (ra.ret < 0 && rb.ret < 0 && (ra.err == EEXIST || ra.err == ENOTEMPTY) &&
	    (rb.err == EEXIST || rb.err == ENOTEMPTY))
		ra.err = rb.err;
	same(opdesc, ra, rb, 1);
}

/* rename or link rel to a random name; the target's content is compared. */
static void op_rename_link(int op, const char *rel, const char *a, const char *b)
{
	char rel2[PATH_MAX], a2[PATH_MAX], b2[PATH_MAX];
	struct res ra, rb;
	rnd_path(rel2, 1);
	pa(a2, rel2);
	pb(b2, rel2);
	snprintf(opdesc, sizeof(opdesc), "%s(%s, %s)", op == OP_RENAME ? "rename" : "link", rel,
	         rel2);
	if (op == OP_RENAME) {
		ra = R(rename(a, a2));
		rb = R(rename(b, b2));
		same_notempty(ra, rb);
	} else {
		BOTH(link(a, a2), link(b, b2));
	}
	touch_name(rel, 0);
	touch_name(rel2, 1);
}

static void op_symlink(const char *rel, const char *a, const char *b)
{
	/* never absolute nor "..": a renamed link must not point out of the tree */
	static const char *targets[] = {"f0", "d0/f2", "nowhere", "d1", "l0", "d2/l1", "f1"};
	const char *t = targets[rnd(sizeof(targets) / sizeof(targets[0]))];
	struct res ra, rb;
	snprintf(opdesc, sizeof(opdesc), "symlink(%s -> %s)", rel, t);
	BOTH(symlink(t, a), symlink(t, b));
	touch_name(rel, 0);
}

static void op_chmod(const char *rel, const char *a, const char *b)
{
	static const mode_t modes[] = {0644, 0600, 0755, 0444, 0700};
	mode_t m = modes[rnd(5)];
	struct res ra, rb;
	snprintf(opdesc, sizeof(opdesc), "chmod(%s, 0%o)", rel, m);
	BOTH(chmod(a, m), chmod(b, m));
	touch_name(rel, 0);
}

/* Apply op to both trees and compare the results; what it touched goes to
 * tch for check_touched(). */
static void do_op(int op)
{
	char rel[PATH_MAX], a[PATH_MAX], b[PATH_MAX];
	struct res ra, rb;
	struct slot *s = NULL;

	touch_reset();
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
	case OP_OPEN:
		op_open(rel);
		break;
	case OP_CLOSE:
		op_close();
		break;
	case OP_PWRITE:
		op_pwrite(s);
		break;
	case OP_PREAD:
		op_pread(s);
		break;
	case OP_FTRUNC:
	case OP_TRUNC:
		op_truncate(s, rel, a, b);
		break;
	case OP_PUNCH:
	case OP_PREALLOC:
	case OP_KEEPALLOC:
		op_fallocate(s, op);
		break;
	case OP_FSYNC:
		op_fsync(s);
		break;
	case OP_EVICT:
		op_evict(s);
		break;
	case OP_WRITEPATH:
		op_writepath(rel, a, b);
		break;
	case OP_CREATE:
		op_create(rel, a, b);
		break;
	case OP_UNLINK:
		snprintf(opdesc, sizeof(opdesc), "unlink(%s)", rel);
		BOTH(unlink(a), unlink(b));
		touch_name(rel, 0);
		break;
	case OP_MKDIR:
		snprintf(opdesc, sizeof(opdesc), "mkdir(%s)", rel);
		BOTH(mkdir(a, 0755), mkdir(b, 0755));
		touch_name(rel, 0);
		break;
	case OP_RMDIR:
		snprintf(opdesc, sizeof(opdesc), "rmdir(%s)", rel);
		ra = R(rmdir(a));
		rb = R(rmdir(b));
		same_notempty(ra, rb);
		touch_name(rel, 0);
		break;
	case OP_RENAME:
	case OP_LINK:
		op_rename_link(op, rel, a, b);
		break;
	case OP_SYMLINK:
		op_symlink(rel, a, b);
		break;
	case OP_CHMOD:
		op_chmod(rel, a, b);
		break;
	}
}

/* Close every descriptor, run CMD, compare the whole tree, reopen the same
 * names (without O_CREAT: the files unlinked while open are gone on both
 * sides) and compare them in full. */
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
	phase(PH_REMOUNT);
	rc = system(remount_cmd);
	if (rc != 0) {
		fprintf(stderr,
		        "exerciser: seed %" PRIu64 ", op %ld: remount command failed (%d)\n", seed,
		        opno, rc);
		exit(2);
	}
	walk("tree walk after remount");
	for (i = 0; i < NSLOTS; i++)
		if (names[i][0]) {
			if (snprintf(opdesc, sizeof(opdesc), "reopen %s after remount", names[i]) <
			    0)
				die("snprintf");
			slot_open(&slots[i], names[i], O_RDWR, 0);
			if (slots[i].used)
				check_slot(&slots[i], 0, -1, 1);
		}
}

static void usage(void)
{
	fprintf(stderr, "usage: exerciser [-s SEED] [-n OPS] [-v] [--remount-cmd CMD] "
	                "[--remount-every N]\n"
	                "                 [--walk-every N] [--full-every K] [--small BYTES] "
	                "[--dense] DIR_A DIR_B\n");
	exit(2);
}

/* A positive number from an option, else usage. */
static long opt_num(const char *s)
{
	char *end;
	long v = strtol(s, &end, 0);
	if (*s == 0 || *end || v <= 0)
		usage();
	return v;
}

static void parse_args(int argc, char **argv)
{
	static const struct option longopts[] = {
	        {"remount-cmd", required_argument, NULL, 'r'},
	        {"remount-every", required_argument, NULL, 'R'},
	        {"walk-every", required_argument, NULL, 'W'},
	        {"full-every", required_argument, NULL, 'F'},
	        {"small", required_argument, NULL, 'S'},
	        {"dense", no_argument, NULL, 'D'},
	        {"progress", required_argument, NULL, 'P'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	int c;
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
			remount_every = opt_num(optarg);
			break;
		case 'W':
			walk_every = opt_num(optarg);
			break;
		case 'F':
			full_every = opt_num(optarg);
			break;
		case 'S':
			small_size = opt_num(optarg);
			break;
		case 'D':
			dense = 1;
			break;
		case 'P':
			progress_every = opt_num(optarg);
			break;
		default:
			usage();
		}
	}
	if (argc - optind != 2)
		usage();
	dir_a = argv[optind];
	dir_b = argv[optind + 1];
}

/* With --progress: a line on stderr every progress_every operations. */
static void progress(double t0)
{
	static double last_t;
	static long last_op;
	double t = now();
	if (!progress_every || (opno + 1) % progress_every)
		return;
	if (!last_t)
		last_t = t0;
	fprintf(stderr,
	        "exerciser: seed %" PRIu64 ": %ld operations, %.0f ops/s (%.0f ops/s over the last "
	        "%ld), %ld files in the last tree walk\n",
	        seed, opno + 1, (opno + 1) / (t - t0), (opno + 1 - last_op) / (t - last_t),
	        opno + 1 - last_op, walk_files);
	last_t = t;
	last_op = opno + 1;
}

/* Operation opno and its checks; now and then a tree walk or a remount. */
static void step(double t0)
{
	int op = pick_op(), remount_now;
	full_now = opno % full_every == 0;
	phase(PH_OP);
	do_op(op);
	if (verbose)
		fprintf(stderr, "%ld: %s\n", opno, opdesc);
	phase(PH_CHECK);
	check_touched();
	if (opno % PRUNE_EVERY == PRUNE_EVERY - 1) {
		phase(PH_OP);
		snprintf(opdesc, sizeof(opdesc), "prune after op %ld", opno);
		prune_tree("");
	}
	remount_now = remount_cmd && opno % remount_every == remount_every - 1;
	if (opno % walk_every == walk_every - 1 && !remount_now)
		walk("tree walk after op %ld", opno);
	if (remount_now) {
		remount();
		remounts++;
	}
	progress(t0);
}

static void report(double elapsed)
{
	int i;
	printf("seed %" PRIu64 ": %ld operations, %ld tree walks, %ld remounts, no divergence; "
	       "%.1f s, %.0f ops/s\n",
	       seed, nops, walks, remounts, elapsed, elapsed > 0 ? nops / elapsed : 0.0);
	printf("  time:");
	for (i = 0; i < PH_NR; i++)
		printf(" %s %.1f s%s", phase_names[i], phase_time[i], i < PH_NR - 1 ? "," : ";");
	printf(" read from A: operations %" PRIu64 " MiB, checks %" PRIu64 " MiB, walks %" PRIu64
	       " MiB; %" PRIu64 " MiB of holes probed\n",
	       bytes_read[PH_OP] / MIB, bytes_read[PH_CHECK] / MIB, bytes_read[PH_WALK] / MIB,
	       bytes_skipped / MIB);
	for (i = 0; i < OP_NR; i++)
		printf("  %-10s %ld\n", opnames[i], stat_ops[i]);
	printf("  %-10s %ld\n", "pruned", stat_pruned);
}

int main(int argc, char **argv)
{
	double t0;
	int i;

	if (argc == 1) {
		printf("1..0 # SKIP needs two directories: run by tests/fuse/test_exerciser.sh\n");
		return 0;
	}
	parse_args(argc, argv);
	rng_state = seed;
	buf_w = malloc(MAXIO);
	buf_a = malloc(MAXIO);
	buf_b = malloc(MAXIO);
	if (!buf_w || !buf_a || !buf_b)
		die("malloc");
	umask(022);
	t0 = now();
	opno = -1;
	walk("initial tree walk");
	for (opno = 0; opno < nops; opno++)
		step(t0);
	for (i = 0; i < NSLOTS; i++)
		slot_close(&slots[i]);
	walk("final tree walk");
	phase(PH_NONE);
	report(now() - t0);
	return 0;
}
