/* SPDX-License-Identifier: MIT */
/*
 * tests/crash/crashwork.c - the workloads of the crash tests (issue #7).
 *
 * crashwork WORKLOAD MNT ORACLE LOG [--ops N] [--seed S]
 *
 * Runs one seeded workload in MNT, an arborfs mount recording its device
 * writes into LOG (-o record=LOG), and appends to ORACLE what each path may
 * hold and from which log position on it must be durable (the format is in
 * oracle.h; tests/crash/crashcheck checks every crash state against it).
 * Workloads: files, rename, dirsync, links, trunc, sqlite-wal,
 * sqlite-journal, git, snapshot, full.
 *
 * Exit status: 0 done, 1 a step failed unexpectedly, 2 usage, 77 skipped
 * (the workload needs a tool that is missing: sqlite3, git, arbor).
 *
 * Declaring every state a path can show.  With the writeback cache the
 * kernel sends a file's dirty pages to the daemon when it pleases, in
 * requests of up to max_write bytes, and each request that ends past the
 * end of file moves the size the next commit (the commit timer's, say)
 * makes durable.  So a write(2) that extends a file over many pages could
 * leave any page-aligned intermediate size on disk, a size no V record
 * names.  Files therefore grow in one of two ways whose every
 * intermediate state is declared: page by page (one write(2) never
 * crosses a 4 KiB boundary, and a V with the new size comes before each),
 * or sparse (a V with the extension as a hole, ftruncate, then a V with
 * the data, and one large write that can only turn zeros into data inside
 * the final size).  A new version with a new seed always starts from an
 * empty file (or overwrites the whole file in place): a file written in
 * place may show its allowed versions sector by sector, so one version is
 * never a mix of two seeds.
 *
 * close(2) writes the file's dirty pages back to the daemon (fuse_flush),
 * so an fsyncdir after close, which commits everything the daemon holds,
 * makes the file's data durable too.  A syncfs is syncfs(2) (every dirty
 * page written back) then fsync of the mount's root: the kernel sends no
 * syncfs to a /dev/fuse daemon, and fsyncdir commits.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* also set by the build */
#endif

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifdef __linux__
#include <linux/falloc.h>
#endif

#include "oracle.h"

#define EXIT_SKIP 77
#define PAGE 4096u
#define KIB 1024u
#define MAX_HOLES 24
#define PATH_LEN 128
#define IO_CHUNK (1u << 20)

struct hole {
	uint64_t off, len;
};

/* One declared state of a file: pattern SEED up to SIZE, zero in holes
 * (sorted, disjoint, within SIZE). */
struct version {
	uint64_t seed, size;
	int nholes;
	struct hole holes[MAX_HOLES];
};

/* A path the workload tracks: exists is what the workload did last; dead
 * paths (a failure left their state unknown) are never touched again. */
struct tfile {
	char path[PATH_LEN];
	bool exists, dead;
	struct version v;
};

static struct {
	const char *workload, *mnt, *log;
	int oracle_fd;
	uint64_t rng;
	int ops;
	unsigned long records, failures_tolerated;
	bool tolerate; /* the full workload: ENOSPC and friends are expected */
} w = {.ops = 40, .rng = 1};

static uint8_t *iobuf;

/* ---- little helpers -------------------------------------------------------------- */

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "crashwork: %s: ", w.workload ? w.workload : "error");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static uint64_t rnd(void)
{
	uint64_t z = (w.rng += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static uint64_t rnd_below(uint64_t n)
{
	return n ? rnd() % n : 0;
}

/* A seed no other version uses (0 is kept for nothing in particular). */
static uint64_t new_seed(void)
{
	return (rnd() >> 1) | 1;
}

/* A file size: a quarter inline-sized (< 4 KiB), the rest up to 300 KiB. */
static uint64_t rnd_file_size(void)
{
	if (rnd_below(4) == 0)
		return rnd_below(PAGE);
	return rnd_below(300 * KIB + 1);
}

static void mpath(char *out, const char *rel)
{
	int n = snprintf(out, PATH_MAX, "%s/%s", w.mnt, rel);

	if (n < 0 || n >= PATH_MAX)
		die("path too long: %s", rel);
}

static void mkdir_rel(const char *rel)
{
	char p[PATH_MAX];

	mpath(p, rel);
	if (mkdir(p, 0755) && errno != EEXIST)
		die("mkdir %s: %s", p, strerror(errno));
}

static void pause_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};

	nanosleep(&ts, NULL);
}

/* ---- the oracle -------------------------------------------------------------------- */

static uint64_t log_pos(void)
{
	struct stat st;

	if (stat(w.log, &st))
		die("stat %s: %s", w.log, strerror(errno));
	return (uint64_t)st.st_size;
}

/* One record "POS KIND ARGS": the log size is read just before, and the
 * line goes out in one unbuffered write, so the order of records and
 * device writes is the order in which they happened. */
static void record(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void record(const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n = snprintf(line, sizeof(line), "%" PRIu64 " ", log_pos());

	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	if (n >= (int)sizeof(line) - 1)
		die("oracle record too long");
	line[n++] = '\n';
	if (write(w.oracle_fd, line, (size_t)n) != n)
		die("write oracle: %s", strerror(errno));
	w.records++;
}

static void declare(const struct tfile *f)
{
	char holes[MAX_HOLES * 44 + 1] = "";
	size_t used = 0;

	for (int i = 0; i < f->v.nholes; i++)
		used += (size_t)snprintf(holes + used, sizeof(holes) - used,
		                         " %" PRIu64 " %" PRIu64, f->v.holes[i].off,
		                         f->v.holes[i].len);
	record("V %s %" PRIu64 " %" PRIu64 "%s", f->path, f->v.seed, f->v.size, holes);
}

static void declare_absent(const char *path)
{
	record("A %s", path);
}

static void durable(const char *path)
{
	record("D %s", path);
}

/* ---- versions and holes ---------------------------------------------------------- */

static void version_new(struct version *v, uint64_t seed)
{
	memset(v, 0, sizeof(*v));
	v->seed = seed;
}

/* Drop what lies at or past size. */
static void holes_clip(struct version *v, uint64_t size)
{
	int n = 0;

	for (int i = 0; i < v->nholes; i++) {
		struct hole h = v->holes[i];

		if (h.off >= size)
			continue;
		if (h.off + h.len > size)
			h.len = size - h.off;
		v->holes[n++] = h;
	}
	v->nholes = n;
}

/* Add [off, off+len) to the holes, merging what touches it.  False (and v
 * unchanged) when the list is full: the caller does something else. */
static bool holes_add(struct version *v, uint64_t off, uint64_t len)
{
	struct hole out[MAX_HOLES + 1];
	uint64_t end = off + len;
	int n = 0;
	bool placed = false;

	if (!len)
		return true;
	for (int i = 0; i < v->nholes; i++) {
		struct hole h = v->holes[i];

		if (h.off + h.len < off) {
			out[n++] = h;
		} else if (h.off > end) {
			if (!placed)
				out[n++] = (struct hole){off, end - off};
			placed = true;
			out[n++] = h;
		} else {
			off = h.off < off ? h.off : off;
			end = h.off + h.len > end ? h.off + h.len : end;
		}
	}
	if (!placed)
		out[n++] = (struct hole){off, end - off};
	if (n > MAX_HOLES)
		return false;
	memcpy(v->holes, out, sizeof(out[0]) * (size_t)n);
	v->nholes = n;
	return true;
}

/* ---- I/O ------------------------------------------------------------------------------ */

/* arb_pattern_fill, a word at a time (byte i of a word is its bits 8i..). */
static void pattern_fill(uint64_t seed, uint64_t off, uint8_t *buf, uint64_t len)
{
	uint64_t i = 0;

	for (; i < len && (off + i) % 8; i++)
		buf[i] = arb_pattern_byte(seed, off + i);
	for (; i + 8 <= len; i += 8) {
		uint64_t word = arb_pattern_word(seed, (off + i) / 8);

		for (int b = 0; b < 8; b++)
			buf[i + (uint64_t)b] = (uint8_t)(word >> (8 * b));
	}
	for (; i < len; i++)
		buf[i] = arb_pattern_byte(seed, off + i);
}

static int pwrite_all(int fd, const uint8_t *buf, size_t len, uint64_t off)
{
	while (len) {
		ssize_t n = pwrite(fd, buf, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		buf += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

/* Bytes [off, off+len) of version seed, in writes of up to 1 MiB. */
static int write_pattern(int fd, uint64_t seed, uint64_t off, uint64_t len)
{
	while (len) {
		size_t n = len < IO_CHUNK ? (size_t)len : IO_CHUNK;
		int ret;

		pattern_fill(seed, off, iobuf, n);
		ret = pwrite_all(fd, iobuf, n, off);
		if (ret)
			return ret;
		off += n;
		len -= n;
	}
	return 0;
}

static int ftruncate_err(int fd, uint64_t size)
{
	return ftruncate(fd, (off_t)size) ? -errno : 0;
}

/* fsync, then (only if it succeeded) D: the path's last version is durable. */
static int fsync_durable(const struct tfile *f, int fd)
{
	if (fsync(fd))
		return -errno;
	durable(f->path);
	return 0;
}

/* fsync of a directory: arborfs commits everything (fsyncdir). */
static int fsync_dir(const char *rel)
{
	char p[PATH_MAX];
	int fd, ret = 0;

	mpath(p, rel);
	fd = open(p, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return -errno;
	if (fsync(fd))
		ret = -errno;
	close(fd);
	return ret;
}

/* syncfs as far as FUSE lets it: every dirty page written back, then a
 * commit of everything (fsyncdir of the root). */
static int sync_all(void)
{
	int fd = open(w.mnt, O_RDONLY | O_DIRECTORY), ret = 0;

	if (fd < 0)
		return -errno;
	if (syncfs(fd) || fsync(fd))
		ret = -errno;
	close(fd);
	return ret;
}

static void parent_dir(char *out, const char *rel)
{
	const char *slash = strrchr(rel, '/');
	size_t n = slash ? (size_t)(slash - rel) : 0;

	if (!n) {
		strcpy(out, ".");
		return;
	}
	memcpy(out, rel, n);
	out[n] = '\0';
}

/* fsync the directory holding rel, then record rel durable as declared. */
static void fsync_parent_durable(const char *rel)
{
	char dir[PATH_LEN];
	int ret;

	parent_dir(dir, rel);
	ret = fsync_dir(dir);
	if (ret)
		die("fsync %s: %s", dir, strerror(-ret));
	durable(rel);
}

/* ---- file changes, each declared before it is made ------------------------------- */

/* Open f for writing, creating it empty (declared) when it does not exist. */
static int open_file(struct tfile *f)
{
	char p[PATH_MAX];
	int fd;

	mpath(p, f->path);
	if (!f->exists) {
		version_new(&f->v, new_seed());
		declare(f);
		f->exists = true; /* from now on it may be there */
	}
	fd = open(p, O_WRONLY | O_CREAT, 0644);
	return fd < 0 ? -errno : fd;
}

/* Grow f by len bytes of its seed, page by page: no write(2) crosses a 4
 * KiB boundary, so the kernel can only send sizes declared before. */
static int grow_by_pages(struct tfile *f, int fd, uint64_t len)
{
	uint64_t end = f->v.size + len;

	while (f->v.size < end) {
		uint64_t off = f->v.size;
		uint64_t n = PAGE - off % PAGE;
		int ret;

		if (n > end - off)
			n = end - off;
		f->v.size = off + n;
		declare(f);
		pattern_fill(f->v.seed, off, iobuf, n);
		ret = pwrite_all(fd, iobuf, (size_t)n, off);
		if (ret)
			return ret;
	}
	return 0;
}

/* Grow f by len bytes sparse first (a hole, declared), then the data in
 * one large write that changes no size. */
static int grow_sparse(struct tfile *f, int fd, uint64_t len)
{
	struct version before = f->v;
	uint64_t off = f->v.size;
	int ret;

	if (!len)
		return 0;
	f->v.size = off + len;
	if (!holes_add(&f->v, off, len)) {
		f->v = before;
		return grow_by_pages(f, fd, len);
	}
	declare(f);
	ret = ftruncate_err(fd, off + len);
	if (ret)
		return ret;
	f->v = before;
	f->v.size = off + len;
	declare(f);
	return write_pattern(fd, f->v.seed, off, len);
}

static int grow(struct tfile *f, int fd, uint64_t len)
{
	return rnd_below(2) ? grow_by_pages(f, fd, len) : grow_sparse(f, fd, len);
}

/* A new version of size bytes: emptied (declared), then grown. */
static int rewrite(struct tfile *f, int fd, uint64_t size)
{
	int ret;

	version_new(&f->v, new_seed());
	declare(f);
	ret = ftruncate_err(fd, 0);
	return ret ? ret : grow(f, fd, size);
}

/* A new version over the whole file in place, in 1..4 pieces written in a
 * random order: until it is durable, every sector is old or new. */
static int overwrite_in_place(struct tfile *f, int fd)
{
	uint64_t cuts[5] = {0}, size = f->v.size;
	int pieces = 1 + (int)rnd_below(4), order[4] = {0, 1, 2, 3};

	if (!size)
		return 0;
	version_new(&f->v, new_seed());
	f->v.size = cuts[pieces] = size;
	declare(f);
	for (int i = 1; i < pieces; i++)
		cuts[i] = cuts[i - 1] + rnd_below(cuts[pieces] - cuts[i - 1] + 1);
	for (int i = pieces - 1; i > 0; i--) {
		int j = (int)rnd_below((uint64_t)i + 1), t = order[i];

		order[i] = order[j];
		order[j] = t;
	}
	for (int i = 0; i < pieces; i++) {
		int k = order[i];
		int ret = write_pattern(fd, f->v.seed, cuts[k], cuts[k + 1] - cuts[k]);

		if (ret)
			return ret;
	}
	return 0;
}

static int finish(int fd, int ret)
{
	if (close(fd) && !ret)
		ret = -errno;
	return ret;
}

/* One step of the files churn on f: create, rewrite, append or overwrite,
 * and most of the time fsync (then D). */
static int file_step(struct tfile *f, bool must_fsync)
{
	bool created = !f->exists;
	int fd = open_file(f), ret;
	unsigned r = (unsigned)rnd_below(10);

	if (fd < 0)
		return fd;
	if (created)
		ret = grow(f, fd, rnd_file_size());
	else if (r < 4)
		ret = rewrite(f, fd, rnd_file_size());
	else if (r < 7)
		ret = grow(f, fd, rnd_below(64 * KIB + 1));
	else if (r < 9)
		ret = overwrite_in_place(f, fd);
	else
		ret = 0;
	if (!ret && (must_fsync || rnd_below(4)))
		ret = fsync_durable(f, fd);
	return finish(fd, ret);
}

/* Create f with content and make it durable (the setup of a workload). */
static void make_durable_file(struct tfile *f)
{
	int ret = file_step(f, true);

	if (ret)
		die("create %s: %s", f->path, strerror(-ret));
}

static void tfile_init(struct tfile *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tfile_init(struct tfile *f, const char *fmt, ...)
{
	va_list ap;
	int n;

	memset(f, 0, sizeof(*f));
	va_start(ap, fmt);
	n = vsnprintf(f->path, sizeof(f->path), fmt, ap);
	va_end(ap);
	if (n < 0 || n >= (int)sizeof(f->path))
		die("path too long");
}

static struct tfile *tfiles_alloc(size_t n)
{
	struct tfile *t = calloc(n, sizeof(*t));

	if (!t)
		die("out of memory");
	return t;
}

/* ---- workloads ----------------------------------------------------------------------- */

/* files: several files in a couple of directories, rewritten, appended and
 * overwritten in place, fsync'ed most of the time; now and then a pause so
 * the commit timer (commit=1) commits in the middle of things. */
static int wl_files(void)
{
	static const char *const names[] = {"a/f0", "a/f1", "a/f2", "b/f3", "b/f4", "f5"};
	const int n = (int)(sizeof(names) / sizeof(names[0]));
	struct tfile *tf = tfiles_alloc((size_t)n);

	mkdir_rel("a");
	mkdir_rel("b");
	for (int i = 0; i < n; i++)
		tfile_init(&tf[i], "%s", names[i]);
	for (int op = 0; op < w.ops; op++) {
		struct tfile *f = &tf[rnd_below((uint64_t)n)];
		int ret = file_step(f, false);

		if (ret)
			die("%s: %s", f->path, strerror(-ret));
		if (rnd_below(16) == 0)
			pause_ms(400);
	}
	free(tf);
	return 0;
}

/* Write a whole undeclared file (a temporary) and fsync it. */
static void write_fsync_tmp(const char *rel, uint64_t seed, uint64_t size)
{
	char p[PATH_MAX];
	int fd, ret;

	mpath(p, rel);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		die("create %s: %s", p, strerror(errno));
	ret = write_pattern(fd, seed, 0, size);
	if (!ret && fsync(fd))
		ret = -errno;
	ret = finish(fd, ret);
	if (ret)
		die("write %s: %s", p, strerror(-ret));
}

static void rename_rel(const char *from, const char *to)
{
	char a[PATH_MAX], b[PATH_MAX];

	mpath(a, from);
	mpath(b, to);
	if (rename(a, b))
		die("rename %s %s: %s", a, b, strerror(errno));
}

/* rename: atomic replace as editors do it: the new content in a durable
 * temporary, then renamed over the target; half the time the directory is
 * fsync'ed, which makes the new content durable under the target's name. */
static int wl_rename(void)
{
	struct tfile t[3];

	mkdir_rel("ed");
	for (int i = 0; i < 3; i++)
		tfile_init(&t[i], "ed/t%d", i);
	for (int op = 0; op < w.ops; op++) {
		struct tfile *f = &t[rnd_below(3)];
		char tmp[PATH_LEN];

		snprintf(tmp, sizeof(tmp), "ed/.tmp%d", op);
		version_new(&f->v, new_seed());
		f->v.size = rnd_file_size();
		write_fsync_tmp(tmp, f->v.seed, f->v.size);
		declare(f);
		record("X %s", f->path);
		rename_rel(tmp, f->path);
		f->exists = true;
		if (rnd_below(2)) {
			int ret = fsync_dir("ed");

			if (ret)
				die("fsync ed: %s", strerror(-ret));
			durable(f->path);
		}
	}
	return 0;
}

/* Create path with content, close (which writes the pages back), fsync
 * its directory, and D. */
static void create_dirsync(struct tfile *f)
{
	char dir[PATH_LEN];
	int fd = open_file(f), ret;

	if (fd < 0)
		die("create %s: %s", f->path, strerror(-fd));
	ret = finish(fd, grow(f, fd, rnd_file_size()));
	parent_dir(dir, f->path);
	if (!ret)
		ret = fsync_dir(dir);
	if (ret)
		die("%s: %s", f->path, strerror(-ret));
	durable(f->path);
}

/* Move src to a new name dst in another directory: the new name may hold
 * the content and the old may be gone, both durable after both fsyncdirs. */
static void move_dirsync(struct tfile *src, struct tfile *dst)
{
	char sdir[PATH_LEN], ddir[PATH_LEN];
	int ret;

	dst->v = src->v;
	declare(dst);
	declare_absent(src->path);
	rename_rel(src->path, dst->path);
	dst->exists = true;
	src->exists = false;
	src->dead = true;
	parent_dir(sdir, src->path);
	parent_dir(ddir, dst->path);
	ret = fsync_dir(ddir);
	if (!ret)
		ret = fsync_dir(sdir);
	if (ret)
		die("fsync after rename: %s", strerror(-ret));
	durable(dst->path);
	durable(src->path);
}

/* An existing, live tracked file, or NULL. */
static struct tfile *pick_live(struct tfile *tf, int n)
{
	int start = (int)rnd_below((uint64_t)(n ? n : 1));

	for (int i = 0; i < n; i++) {
		struct tfile *f = &tf[(start + i) % n];

		if (f->exists && !f->dead)
			return f;
	}
	return NULL;
}

/* Unlink f, fsync its directory, D: it is durably gone. */
static void unlink_dirsync(struct tfile *f)
{
	char p[PATH_MAX];

	declare_absent(f->path);
	mpath(p, f->path);
	if (unlink(p))
		die("unlink %s: %s", p, strerror(errno));
	f->exists = false;
	f->dead = true;
	fsync_parent_durable(f->path);
}

/* A new file in da or one of its subdirectories (a new one now and then). */
static void dirsync_create(struct tfile *f, int op, int *subdirs)
{
	if (rnd_below(10) == 0 || !*subdirs) {
		char d[PATH_LEN];

		snprintf(d, sizeof(d), "da/s%d", (*subdirs)++);
		mkdir_rel(d);
	}
	if (rnd_below(2))
		tfile_init(f, "da/s%d/n%d", (int)rnd_below((uint64_t)*subdirs), op);
	else
		tfile_init(f, "da/n%d", op);
	create_dirsync(f);
}

/* dirsync: new files made durable by fsyncdir alone, some in new
 * subdirectories, moved to another directory (fsyncdir of both), and
 * unlinked (which also keeps the long runs from filling the image). */
static int wl_dirsync(void)
{
	struct tfile *tf = tfiles_alloc((size_t)w.ops + 1);
	int n = 0, subdirs = 0;

	mkdir_rel("da");
	mkdir_rel("db");
	for (int op = 0; op < w.ops; op++) {
		unsigned r = (unsigned)rnd_below(10);
		struct tfile *src = pick_live(tf, n);

		if (src && r >= 8) {
			unlink_dirsync(src);
		} else if (src && r >= 5 && !strncmp(src->path, "da/", 3)) {
			tfile_init(&tf[n], "db/m%d", op);
			move_dirsync(src, &tf[n++]);
		} else {
			dirsync_create(&tf[n++], op, &subdirs);
		}
	}
	free(tf);
	return 0;
}

static void link_rel(const struct tfile *from, struct tfile *to)
{
	char a[PATH_MAX], b[PATH_MAX];

	to->v = from->v;
	declare(to);
	record("L %s %s", from->path, to->path);
	mpath(a, from->path);
	mpath(b, to->path);
	if (link(a, b))
		die("link %s %s: %s", a, b, strerror(errno));
	to->exists = true;
	fsync_parent_durable(to->path);
}

/* links: hard links across directories, made durable by fsyncdir, and
 * names unlinked.  Linked files are never written again, so every name of
 * an inode keeps the version it was linked with. */
static int wl_links(void)
{
	struct tfile *tf = tfiles_alloc((size_t)w.ops + 4);
	int n = 0;

	mkdir_rel("la");
	mkdir_rel("lb");
	for (; n < 4; n++) {
		tfile_init(&tf[n], "la/f%d", n);
		make_durable_file(&tf[n]);
	}
	for (int op = 0; op < w.ops; op++) {
		unsigned r = (unsigned)rnd_below(10);
		struct tfile *f = pick_live(tf, n);

		if (!f || r >= 8) {
			tfile_init(&tf[n], "la/g%d", op);
			make_durable_file(&tf[n++]);
		} else if (r < 5) {
			tfile_init(&tf[n], "%s/l%d", rnd_below(3) ? "lb" : "la", op);
			link_rel(f, &tf[n++]);
		} else {
			unlink_dirsync(f);
		}
	}
	free(tf);
	return 0;
}

static int truncate_down(struct tfile *f, int fd)
{
	f->v.size = rnd_below(f->v.size + 1);
	holes_clip(&f->v, f->v.size);
	declare(f);
	return ftruncate_err(fd, f->v.size);
}

/* False when the hole list is full (nothing declared, nothing done). */
static bool truncate_up(struct tfile *f, int fd, int *ret)
{
	uint64_t ext = 1 + rnd_below(200 * KIB);

	if (!holes_add(&f->v, f->v.size, ext))
		return false;
	f->v.size += ext;
	declare(f);
	*ret = ftruncate_err(fd, f->v.size);
	return true;
}

static bool punch(struct tfile *f, int fd, int *ret)
{
	uint64_t off, len, max;

	if (!f->v.size)
		return false;
	off = rnd_below(f->v.size);
	max = f->v.size - off < 128 * KIB ? f->v.size - off : 128 * KIB;
	len = 1 + rnd_below(max);
	if (!holes_add(&f->v, off, len))
		return false;
	declare(f);
	*ret = fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len)
	               ? -errno
	               : 0;
	return true;
}

static int trunc_change(struct tfile *f, int fd)
{
	unsigned r = (unsigned)rnd_below(10);
	int ret = 0;

	if (r < 3)
		return truncate_down(f, fd);
	if (r < 6 && truncate_up(f, fd, &ret))
		return ret;
	if (r < 9 && punch(f, fd, &ret))
		return ret;
	if (f->v.nholes >= MAX_HOLES - 2)
		return rewrite(f, fd, rnd_file_size());
	return grow(f, fd, rnd_below(32 * KIB + 1));
}

/* trunc: truncate down and up (the extension a hole), punch holes, append
 * after holes; fsync (then D) two times out of three. */
static int wl_trunc(void)
{
	struct tfile t[3];

	mkdir_rel("tr");
	for (int i = 0; i < 3; i++) {
		tfile_init(&t[i], "tr/t%d", i);
		make_durable_file(&t[i]);
	}
	for (int op = 0; op < w.ops; op++) {
		struct tfile *f = &t[rnd_below(3)];
		int fd = open_file(f), ret;

		if (fd < 0)
			die("open %s: %s", f->path, strerror(-fd));
		ret = trunc_change(f, fd);
		if (!ret && rnd_below(3))
			ret = fsync_durable(f, fd);
		ret = finish(fd, ret);
		if (ret)
			die("%s: %s", f->path, strerror(-ret));
	}
	return 0;
}

/* ---- external tools ----------------------------------------------------------------- */

static bool in_path(const char *name)
{
	const char *path = getenv("PATH");
	char buf[PATH_MAX];

	if (strchr(name, '/'))
		return access(name, X_OK) == 0;
	while (path && *path) {
		size_t n = strcspn(path, ":");

		if (snprintf(buf, sizeof(buf), "%.*s/%s", (int)n, path, name) < (int)sizeof(buf) &&
		    access(buf, X_OK) == 0)
			return true;
		path += n + (path[n] == ':');
	}
	return false;
}

/* Run argv (stdout to /dev/null unless show_out), wait; its exit status. */
static int run(char *const argv[], bool show_out)
{
	pid_t pid = fork();
	int status;

	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		if (!show_out) {
			int null = open("/dev/null", O_WRONLY);

			if (null >= 0)
				dup2(null, STDOUT_FILENO);
		}
		execvp(argv[0], argv);
		fprintf(stderr, "crashwork: exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			die("waitpid: %s", strerror(errno));
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void run_ok(char *const argv[])
{
	int rc = run(argv, false);

	if (rc)
		die("%s %s ... exited with %d", argv[0], argv[1] ? argv[1] : "", rc);
}

static int skip(const char *tool)
{
	printf("crashwork: %s: skipped: %s is not installed\n", w.workload, tool);
	return EXIT_SKIP;
}

/* One sqlite3 run of sql on MNT/db. */
static void sqlite(const char *sql)
{
	char db[PATH_MAX];
	char *argv[] = {"sqlite3", "-bail", db, (char *)sql, NULL};

	mpath(db, "db");
	run_ok(argv);
}

/* A transaction of 1..20 rows (now and then up to 300, of blobs of up to
 * 6 KiB, which spill over pages and grow the WAL), at the given
 * synchronous level. */
static void sqlite_transaction(const char *sync, uint64_t *rows)
{
	uint64_t k = 1 + rnd_below(rnd_below(8) ? 20 : 300);
	uint64_t blob = 16 + rnd_below(rnd_below(4) ? 400 : 6000);
	char sql[512];

	snprintf(sql, sizeof(sql),
	         "PRAGMA synchronous=%s; BEGIN; INSERT INTO t(v) WITH RECURSIVE "
	         "c(x) AS (VALUES(1) UNION ALL SELECT x+1 FROM c WHERE x<%" PRIu64 ") "
	         "SELECT randomblob(%" PRIu64 ") FROM c; COMMIT;",
	         sync, k, blob);
	record("q db %" PRIu64, *rows + k);
	sqlite(sql);
	*rows += k;
	record("Q db %" PRIu64, *rows);
}

/* sqlite-wal, sqlite-journal: transactions through the sqlite3 shell; q
 * before each (the most rows it may leave), Q after it returned (the rows
 * a crash must keep).  WAL: synchronous=FULL is durable (the WAL is
 * fsync'ed at each commit).  DELETE: the commit point is the unlink of the
 * journal, which FULL does not make durable (a crash may find the old
 * journal hot and roll a returned COMMIT back, as the SQLite docs say);
 * EXTRA fsyncs the directory after the unlink, so it is what promises a
 * returned COMMIT survives. */
static int wl_sqlite(const char *mode)
{
	const char *sync = strcmp(mode, "WAL") ? "EXTRA" : "FULL";
	char init[256];
	uint64_t rows = 0;

	if (!in_path("sqlite3"))
		return skip("sqlite3");
	snprintf(init, sizeof(init),
	         "PRAGMA journal_mode=%s; PRAGMA synchronous=%s; "
	         "CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB);",
	         mode, sync);
	record("q db 0");
	sqlite(init);
	record("Q db 0");
	for (int op = 0; op < w.ops; op++) {
		sqlite_transaction(sync, &rows);
		if (!strcmp(mode, "WAL") && rnd_below(6) == 0)
			sqlite("PRAGMA wal_checkpoint(TRUNCATE);");
	}
	return 0;
}

static void git(const char *a, const char *b, const char *c, const char *d)
{
	char repo[PATH_MAX];
	char *argv[] = {"git",       "-C",      repo,          "-c", "core.fsync=all", "-c",
	                "gc.auto=0", "-c",      "user.name=t", "-c", "user.email=t@t", (char *)a,
	                (char *)b,   (char *)c, (char *)d,     NULL};

	mpath(repo, "repo");
	run_ok(argv);
}

/* Random text (the repository's content needs no pattern). */
static void write_text(const char *rel, uint64_t size)
{
	char p[PATH_MAX];
	FILE *f;

	mpath(p, rel);
	f = fopen(p, "w");
	if (!f)
		die("create %s: %s", p, strerror(errno));
	for (uint64_t i = 0; i < size; i++)
		fputc(i % 64 == 63 ? '\n' : 'a' + (int)rnd_below(26), f);
	if (fclose(f))
		die("write %s: %s", p, strerror(errno));
}

static void git_change_files(void)
{
	int changes = 1 + (int)rnd_below(3);

	for (int i = 0; i < changes; i++) {
		char rel[64];

		snprintf(rel, sizeof(rel), "repo/%s%d", rnd_below(3) ? "" : "sub/",
		         (int)rnd_below(8));
		write_text(rel, rnd_below(20000));
	}
	if (rnd_below(5) == 0) {
		char p[PATH_MAX];

		mpath(p, "repo/sub/0");
		unlink(p); /* may not exist: then the writes above are the change */
	}
}

/* git: commits with core.fsync=all, then syncfs; G after it. */
static int wl_git(void)
{
	char repo[PATH_MAX];

	if (!in_path("git"))
		return skip("git");
	mpath(repo, "repo");
	setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
	setenv("GIT_CONFIG_GLOBAL", "/dev/null", 1);
	{
		char *argv[] = {"git", "-c", "init.defaultBranch=main", "init", "-q", repo, NULL};

		run_ok(argv);
	}
	mkdir_rel("repo/sub");
	for (int op = 0; op < w.ops; op++) {
		char msg[32];
		int ret;

		git_change_files();
		snprintf(msg, sizeof(msg), "commit %d", op + 1);
		git("add", "-A", NULL, NULL);
		git("commit", "-q", "-m", msg);
		ret = sync_all();
		if (ret)
			die("syncfs: %s", strerror(-ret));
		record("G repo %d", op + 1);
	}
	return 0;
}

/* ---- snapshots ------------------------------------------------------------------------ */

static const char *arbor_cli(void)
{
	static char path[PATH_MAX];
	const char *top = getenv("top_builddir");

	if (getenv("ARBOR"))
		return getenv("ARBOR");
	if (top && snprintf(path, sizeof(path), "%s/cli/arbor", top) < (int)sizeof(path) &&
	    access(path, X_OK) == 0)
		return path;
	return "arbor";
}

/* arbor with up to 5 arguments (a NULL ends them early). */
static void arbor(const char *a, const char *b, const char *c, const char *d, const char *e)
{
	char *argv[] = {(char *)arbor_cli(), (char *)a, (char *)b, (char *)c,
	                (char *)d,           (char *)e, NULL};

	run_ok(argv);
}

#define SRC_FILES 5
#define MAX_SNAPS 64

struct snap {
	char name[32];
	bool alive;
	struct tfile files[SRC_FILES];
};

/* Commit, then mark every file of the snapshot as it now is durable. */
static void sync_snapshot_files(const struct snap *s)
{
	int ret = sync_all();

	if (ret)
		die("syncfs: %s", strerror(-ret));
	for (int i = 0; i < SRC_FILES; i++)
		if (s->files[i].exists)
			durable(s->files[i].path);
}

/* Snapshot src as snapN: every file of it declared under snapN (the
 * content src has now: every src change was fsync'ed), and T. */
static void snapshot_take(const struct tfile *src, struct snap *s, int id)
{
	char from[PATH_MAX], to[PATH_MAX];

	snprintf(s->name, sizeof(s->name), "snap%d", id);
	for (int i = 0; i < SRC_FILES; i++) {
		tfile_init(&s->files[i], "%s/%s", s->name, src[i].path + strlen("src/"));
		if (!src[i].exists)
			continue;
		s->files[i].v = src[i].v;
		s->files[i].exists = true;
		declare(&s->files[i]);
	}
	record("T %s", s->name);
	mpath(from, "src");
	mpath(to, s->name);
	if (rnd_below(2))
		arbor("snapshot", "create", from, to, NULL);
	else
		arbor("snapshot", "create", "-r", from, to);
	s->alive = true;
	sync_snapshot_files(s);
}

static void snapshot_delete(struct snap *s)
{
	char p[PATH_MAX];

	for (int i = 0; i < SRC_FILES; i++)
		if (s->files[i].exists)
			declare_absent(s->files[i].path);
	mpath(p, s->name);
	arbor("subvolume", "delete", p, NULL, NULL);
	s->alive = false;
	sync_snapshot_files(s);
}

/* snapshot: durable files in the subvolume src, snapshots of it (half of
 * them read-only), src changed in between, old snapshots deleted. */
static int wl_snapshot(void)
{
	static struct snap snaps[MAX_SNAPS];
	struct tfile src[SRC_FILES];
	char p[PATH_MAX];
	int nsnaps = 0, oldest = 0;

	if (strchr(arbor_cli(), '/') ? access(arbor_cli(), X_OK) : !in_path("arbor"))
		return skip("arbor (set top_builddir)");
	mpath(p, "src");
	arbor("subvolume", "create", p, NULL, NULL);
	mkdir_rel("src/d");
	for (int i = 0; i < SRC_FILES; i++) {
		tfile_init(&src[i], i == SRC_FILES - 1 ? "src/d/f%d" : "src/f%d", i);
		make_durable_file(&src[i]);
	}
	for (int op = 0; op < w.ops; op++) {
		unsigned r = (unsigned)rnd_below(10);

		if (r < 5) {
			struct tfile *f = &src[rnd_below(SRC_FILES)];
			int ret = file_step(f, true);

			if (ret)
				die("%s: %s", f->path, strerror(-ret));
		} else if ((r < 8 || oldest == nsnaps) && nsnaps < MAX_SNAPS) {
			snapshot_take(src, &snaps[nsnaps], nsnaps);
			nsnaps++;
		} else if (oldest < nsnaps) {
			snapshot_delete(&snaps[oldest++]);
		}
	}
	return 0;
}

/* ---- full --------------------------------------------------------------------------- */

/* A full arborfs refuses with ENOSPC and nothing else (issue #8). */
static bool is_space_error(int ret)
{
	return ret == -ENOSPC;
}

/* Delete f (declared absent first) and commit: a full file system must
 * always manage both. */
static void unlink_durable(struct tfile *f)
{
	char p[PATH_MAX];

	declare_absent(f->path);
	mpath(p, f->path);
	if (unlink(p) && errno != ENOENT)
		die("unlink %s on a full file system: %s", p, strerror(errno));
	f->exists = false;
	fsync_parent_durable(f->path);
}

/* A file whose change failed: its content is whatever landed (declared),
 * and the page cache may hold pages the daemon refused.  It is deleted so
 * that no later version is built on what we cannot know. */
static void abandon(struct tfile *f)
{
	w.failures_tolerated++;
	unlink_durable(f);
}

/* Fill the file system until ENOSPC with one file grown 1 MiB at a time,
 * each step fsync'ed; statfs's Avail bounds it (a fill that goes on past
 * it means ENOSPC never came). */
static void fill(struct tfile *f)
{
	struct statvfs sv;
	uint64_t limit;
	int fd;

	if (statvfs(w.mnt, &sv))
		die("statvfs: %s", strerror(errno));
	limit = (uint64_t)sv.f_bavail * sv.f_frsize;
	fd = open_file(f);
	if (fd < 0)
		die("create %s: %s", f->path, strerror(-fd));
	for (;;) {
		if (f->v.size > limit)
			die("fill: %" PRIu64 " bytes written with %" PRIu64 " available", f->v.size,
			    limit);
		uint64_t good = f->v.size;
		int ret = grow_sparse(f, fd, IO_CHUNK);

		if (!ret)
			ret = fsync_durable(f, fd);
		if (!ret)
			continue;
		if (!is_space_error(ret))
			die("fill: %s", strerror(-ret));
		/* full: back to the last durable size, which frees the rest */
		f->v.size = good;
		holes_clip(&f->v, good);
		declare(f);
		if (ftruncate_err(fd, good) == 0 && fsync_durable(f, fd) == 0)
			break;
		close(fd);
		abandon(f);
		return;
	}
	close(fd);
	printf("crashwork: full: filled %" PRIu64 " MiB of %" PRIu64 " MiB free\n", f->v.size >> 20,
	       ((uint64_t)sv.f_bavail * sv.f_frsize) >> 20);
}

/* Shrink the full filler by len (durably): the churn that follows gets
 * room to succeed at times, and fills the file system again. */
static void make_room(struct tfile *f, uint64_t len)
{
	int fd, ret;

	if (!f->exists)
		return;
	fd = open_file(f);
	if (fd < 0)
		die("open %s: %s", f->path, strerror(-fd));
	f->v.size = f->v.size > len ? f->v.size - len : 0;
	holes_clip(&f->v, f->v.size);
	declare(f);
	ret = ftruncate_err(fd, f->v.size);
	if (!ret)
		ret = fsync_durable(f, fd);
	if (ret)
		die("truncating %s on a full file system: %s", f->path, strerror(-ret));
	close(fd);
}

/* full: a nearly full file system, then the files churn with ENOSPC
 * tolerated (every version declared before its attempt); files are also
 * deleted (durably) to make room. */
static int wl_full(void)
{
	struct tfile filler, tf[8];

	mkdir_rel("c");
	tfile_init(&filler, "fill");
	fill(&filler);
	make_room(&filler, IO_CHUNK);
	for (int i = 0; i < 8; i++)
		tfile_init(&tf[i], "c/f%d", i);
	for (int op = 0; op < w.ops; op++) {
		struct tfile *f = &tf[rnd_below(8)];
		int ret;

		if (f->exists && rnd_below(5) == 0) {
			unlink_durable(f);
			continue;
		}
		ret = file_step(f, false);
		if (ret && !is_space_error(ret))
			die("%s: %s", f->path, strerror(-ret));
		if (ret)
			abandon(f);
	}
	printf("crashwork: full: %lu changes failed for want of space\n", w.failures_tolerated);
	/* the delete that must always work, and its commit */
	unlink_durable(&filler);
	return 0;
}

/* ---- main ----------------------------------------------------------------------------- */

static int run_workload(const char *name)
{
	if (!strcmp(name, "files"))
		return wl_files();
	if (!strcmp(name, "rename"))
		return wl_rename();
	if (!strcmp(name, "dirsync"))
		return wl_dirsync();
	if (!strcmp(name, "links"))
		return wl_links();
	if (!strcmp(name, "trunc"))
		return wl_trunc();
	if (!strcmp(name, "sqlite-wal"))
		return wl_sqlite("WAL");
	if (!strcmp(name, "sqlite-journal"))
		return wl_sqlite("DELETE");
	if (!strcmp(name, "git"))
		return wl_git();
	if (!strcmp(name, "snapshot"))
		return wl_snapshot();
	if (!strcmp(name, "full"))
		return wl_full();
	fprintf(stderr, "crashwork: unknown workload '%s'\n", name);
	return 2;
}

static void usage(void)
{
	fprintf(stderr,
	        "usage: crashwork WORKLOAD MNT ORACLE LOG [--ops N] [--seed S]\n"
	        "workloads: files rename dirsync links trunc sqlite-wal sqlite-journal git\n"
	        "           snapshot full\n");
	exit(2);
}

static uint64_t parse_u64(const char *s)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || *end)
		usage();
	return v;
}

static void parse_args(int argc, char **argv)
{
	const char *pos[4];
	int npos = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--ops") && i + 1 < argc)
			w.ops = (int)parse_u64(argv[++i]);
		else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
			w.rng = parse_u64(argv[++i]);
		else if (argv[i][0] == '-' || npos == 4)
			usage();
		else
			pos[npos++] = argv[i];
	}
	if (npos != 4)
		usage();
	w.workload = pos[0];
	w.mnt = pos[1];
	w.log = pos[3];
	w.oracle_fd = open(pos[2], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (w.oracle_fd < 0)
		die("open %s: %s", pos[2], strerror(errno));
}

int main(int argc, char **argv)
{
	int ret;

	if (argc == 1) {
		printf("1..0 # SKIP needs a mount: run by tests/crash/run-crashcheck.sh\n");
		return 0;
	}
	parse_args(argc, argv);
	/* the log is written by the daemon: it must exist from the mount on */
	(void)log_pos();
	iobuf = malloc(IO_CHUNK);
	if (!iobuf)
		die("out of memory");
	umask(022);
	setvbuf(stdout, NULL, _IOLBF, 0);
	ret = run_workload(w.workload);
	if (ret == 0)
		printf("crashwork: %s: %d operations, %lu oracle records, log %" PRIu64 " bytes\n",
		       w.workload, w.ops, w.records, log_pos());
	free(iobuf);
	close(w.oracle_fd);
	return ret;
}
