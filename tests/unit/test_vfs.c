/* SPDX-License-Identifier: MIT */
/*
 * test_vfs.c - unit tests of the filesystem layer (arbor/vfs.h): every call
 * with its success and error cases, on a memdev.  Every test ends with a
 * commit, a reopen (contents must survive it) and a clean arb_check.
 *
 * A second subvolume (arb_vfs_subvol_create) covers -EXDEV and the
 * uniqueness of inode numbers across subvolumes.
 */
#include "testutil.h"

#include "arbor/vfs.h"

#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#define DEV_SIZE (256ull << 20)
#define SECTOR ((uint64_t)ARB_SECTOR_SIZE)
#define MIB (1ull << 20)
#define GIB (1ull << 30)

static const struct arb_cred cred = {.uid = 1000, .gid = 100};
static const struct timespec old_ts = {.tv_sec = 1000000000, .tv_nsec = 123456789};

/* ---- fixture ---- */

struct vt {
	struct tu_fs t;
	arb_ino_t root;
};

#define FS(v) ((v)->t.fs)

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	TU_ASSERT(p != NULL, "malloc(%zu)", n);
	return p;
}

static void *xcalloc(size_t n)
{
	void *p = calloc(1, n ? n : 1);

	TU_ASSERT(p != NULL, "calloc(%zu)", n);
	return p;
}

static void vt_setup(struct vt *v)
{
	memset(v, 0, sizeof(*v));
	tu_fs_create(&v->t, DEV_SIZE, 0);
	TU_RC(arb_vfs_init(FS(v), 0755, &cred));
	TU_RC(arb_vfs_root(FS(v), 0, &v->root));
	tu_commit(FS(v));
}

/* Close (dropping what was not committed), open, clean up orphans; returns
 * the number of orphans freed. */
static uint64_t vt_reopen(struct vt *v)
{
	uint64_t freed = UINT64_MAX;

	tu_fs_reopen(&v->t);
	TU_RC(arb_vfs_orphan_cleanup(FS(v), &freed));
	TU_ASSERT(freed != UINT64_MAX);
	TU_RC(arb_vfs_root(FS(v), 0, &v->root));
	return freed;
}

/* Commit and reopen: no orphans are expected. */
static void vt_cycle(struct vt *v)
{
	tu_commit(FS(v));
	TU_EQ_U64(vt_reopen(v), 0);
}

static void vt_finish(struct vt *v)
{
	tu_check_clean(FS(v));
	vt_cycle(v);
	tu_check_clean(FS(v));
	tu_fs_destroy(&v->t);
}

static uint64_t vt_transid(struct vt *v)
{
	struct arb_fs_info info;

	arb_fs_info(FS(v), &info);
	return info.generation + 1;
}

/* ---- namespace helpers ---- */

static struct arb_stat vt_stat(struct vt *v, arb_ino_t ino)
{
	struct arb_stat st;

	memset(&st, 0xa5, sizeof(st));
	TU_RC(arb_vfs_getattr(FS(v), ino, &st));
	TU_EQ_U64(st.ino, ino);
	return st;
}

static arb_ino_t vt_mknod(struct vt *v, arb_ino_t dir, const char *name, uint32_t mode,
                          uint64_t rdev)
{
	struct arb_stat st;

	memset(&st, 0, sizeof(st));
	TU_RC(arb_vfs_mknod(FS(v), dir, name, mode, rdev, &cred, &st));
	TU_ASSERT(st.ino != 0 && st.mode == mode, "mode %o", st.mode);
	return st.ino;
}

static arb_ino_t vt_file(struct vt *v, arb_ino_t dir, const char *name)
{
	return vt_mknod(v, dir, name, S_IFREG | 0644, 0);
}

static arb_ino_t vt_mkdir(struct vt *v, arb_ino_t dir, const char *name)
{
	struct arb_stat st;

	memset(&st, 0, sizeof(st));
	TU_RC(arb_vfs_mkdir(FS(v), dir, name, 0755, &cred, &st));
	TU_ASSERT(st.mode == (S_IFDIR | 0755), "mode %o", st.mode);
	TU_EQ_U64(st.nlink, 2);
	return st.ino;
}

static arb_ino_t vt_lookup(struct vt *v, arb_ino_t dir, const char *name)
{
	struct arb_stat st;
	int rc = arb_vfs_lookup(FS(v), dir, name, &st);

	if (rc)
		TU_FAIL("lookup of \"%.40s\" returned %s", name, tu_strerr(rc));
	return st.ino;
}

static void vt_expect_entry(struct vt *v, arb_ino_t dir, const char *name, arb_ino_t ino)
{
	TU_EQ_U64(vt_lookup(v, dir, name), ino);
}

static void vt_expect_missing(struct vt *v, arb_ino_t dir, const char *name)
{
	struct arb_stat st;

	TU_RC_EQ(arb_vfs_lookup(FS(v), dir, name, &st), -ENOENT);
}

static void vt_expect_gone(struct vt *v, arb_ino_t ino)
{
	struct arb_stat st;

	TU_RC_EQ(arb_vfs_getattr(FS(v), ino, &st), -ENOENT);
}

static void vt_expect_nlink(struct vt *v, arb_ino_t ino, uint32_t nlink)
{
	TU_EQ_U64(vt_stat(v, ino).nlink, nlink);
}

static void vt_setattr(struct vt *v, arb_ino_t ino, const struct arb_setattr *sa)
{
	struct arb_stat st;

	TU_RC(arb_vfs_setattr(FS(v), ino, sa, &st));
	TU_EQ_U64(st.ino, ino);
}

static void vt_truncate(struct vt *v, arb_ino_t ino, uint64_t size)
{
	struct arb_setattr sa = {.valid = ARB_SET_SIZE, .size = size};

	vt_setattr(v, ino, &sa);
	TU_EQ_U64(vt_stat(v, ino).size, size);
}

/* ---- data helpers ---- */

/* The byte at file offset off of the content named tag. */
static uint8_t pat_byte(uint64_t tag, uint64_t off)
{
	return (uint8_t)(tu_mix64(tag * 0x100000001b3ull + (off >> 3)) >> ((off & 7) * 8));
}

static void pat_fill(void *buf, uint64_t off, size_t len, uint64_t tag)
{
	uint8_t *p = buf;

	for (size_t i = 0; i < len; i++)
		p[i] = pat_byte(tag, off + i);
}

static void vt_write(struct vt *v, arb_ino_t ino, uint64_t off, const void *buf, size_t len)
{
	size_t done = SIZE_MAX;
	int rc = arb_vfs_write(FS(v), ino, off, buf, len, &done);

	if (rc)
		TU_FAIL("write of %zu bytes at %" PRIu64 " returned %s", len, off, tu_strerr(rc));
	TU_EQ_U64(done, len);
}

/* Write len bytes of content tag at off. */
static void vt_write_pat(struct vt *v, arb_ino_t ino, uint64_t off, size_t len, uint64_t tag)
{
	uint8_t *buf = xmalloc(len);

	pat_fill(buf, off, len, tag);
	vt_write(v, ino, off, buf, len);
	free(buf);
}

/* Read exactly len bytes at off: they must equal want. */
static void vt_expect_data(struct vt *v, arb_ino_t ino, uint64_t off, const void *want, size_t len)
{
	uint8_t *buf = xmalloc(len);
	size_t got = SIZE_MAX;
	int rc = arb_vfs_read(FS(v), ino, off, buf, len, &got);

	if (rc)
		TU_FAIL("read of %zu bytes at %" PRIu64 " returned %s", len, off, tu_strerr(rc));
	TU_EQ_U64(got, len);
	for (size_t i = 0; i < len; i++)
		if (buf[i] != ((const uint8_t *)want)[i])
			TU_FAIL("byte at %" PRIu64 " is 0x%02x, expected 0x%02x", off + i, buf[i],
			        ((const uint8_t *)want)[i]);
	free(buf);
}

static void vt_expect_pat(struct vt *v, arb_ino_t ino, uint64_t off, size_t len, uint64_t tag)
{
	uint8_t *want = xmalloc(len);

	pat_fill(want, off, len, tag);
	vt_expect_data(v, ino, off, want, len);
	free(want);
}

static void vt_expect_zero(struct vt *v, arb_ino_t ino, uint64_t off, size_t len)
{
	uint8_t *want = xcalloc(len);

	vt_expect_data(v, ino, off, want, len);
	free(want);
}

/* Bytes a read of len at off returns. */
static size_t vt_read_len(struct vt *v, arb_ino_t ino, uint64_t off, size_t len)
{
	uint8_t *buf = xmalloc(len);
	size_t got = SIZE_MAX;

	TU_RC(arb_vfs_read(FS(v), ino, off, buf, len, &got));
	free(buf);
	return got;
}

static uint64_t vt_live(struct vt *v)
{
	return tu_live_sectors(FS(v));
}

/* ---- time helpers ---- */

struct span {
	struct timespec lo, hi;
};

static int ts_cmp(const struct timespec *a, const struct timespec *b)
{
	if (a->tv_sec != b->tv_sec)
		return a->tv_sec < b->tv_sec ? -1 : 1;
	if (a->tv_nsec != b->tv_nsec)
		return a->tv_nsec < b->tv_nsec ? -1 : 1;
	return 0;
}

static bool ts_eq(const struct timespec *a, const struct timespec *b)
{
	return ts_cmp(a, b) == 0;
}

/* A coarse clock reads at most the precise one: whichever the layer uses,
 * its time lies between the two readings. */
static void span_begin(struct span *s)
{
	clock_gettime(CLOCK_REALTIME_COARSE, &s->lo);
}

static void span_end(struct span *s)
{
	clock_gettime(CLOCK_REALTIME, &s->hi);
}

static void ts_expect_in(const char *what, struct timespec ts, const struct span *sp,
                         const char *file, int line)
{
	if (ts_cmp(&ts, &sp->lo) < 0 || ts_cmp(&ts, &sp->hi) > 0)
		tu_fail_at(file, line, "%s = %lld.%09ld not in [%lld.%09ld, %lld.%09ld]", what,
		           (long long)ts.tv_sec, ts.tv_nsec, (long long)sp->lo.tv_sec,
		           sp->lo.tv_nsec, (long long)sp->hi.tv_sec, sp->hi.tv_nsec);
}

static void ts_expect_old(const char *what, struct timespec ts, const char *file, int line)
{
	if (!ts_eq(&ts, &old_ts))
		tu_fail_at(file, line, "%s = %lld.%09ld, expected the old time %lld.%09ld", what,
		           (long long)ts.tv_sec, ts.tv_nsec, (long long)old_ts.tv_sec,
		           old_ts.tv_nsec);
}

#define TS_IN(ts, sp) ts_expect_in(#ts, (ts), (sp), __FILE__, __LINE__)
#define TS_OLD(ts) ts_expect_old(#ts, (ts), __FILE__, __LINE__)

/* atime, mtime and ctime of ino become old_ts. */
static void set_old_times(struct vt *v, arb_ino_t ino)
{
	struct arb_setattr sa = {
	        .valid = ARB_SET_ATIME | ARB_SET_MTIME | ARB_SET_CTIME,
	        .atime = old_ts,
	        .mtime = old_ts,
	        .ctime = old_ts,
	};
	struct arb_stat st;

	vt_setattr(v, ino, &sa);
	st = vt_stat(v, ino);
	TS_OLD(st.atime);
	TS_OLD(st.mtime);
	TS_OLD(st.ctime);
}

/* ---- readdir helpers ---- */

struct dent {
	char name[ARB_NAME_MAX + 1];
	arb_ino_t ino;
	unsigned dtype;
	uint64_t cookie;
};

struct dlist {
	struct dent *v;
	size_t n, cap;
	size_t limit; /* stop once this many were collected (0: all) */
	const char *bad;
};

static int dlist_fn(void *ctx, const char *name, size_t name_len, arb_ino_t ino, unsigned dtype,
                    uint64_t cookie)
{
	struct dlist *l = ctx;
	struct dent *d;

	if (name_len == 0 || name_len > ARB_NAME_MAX || memchr(name, '/', name_len)) {
		l->bad = "bad name";
		return 1;
	}
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 64;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
		if (!l->v)
			abort();
	}
	d = &l->v[l->n++];
	memcpy(d->name, name, name_len);
	d->name[name_len] = 0;
	d->ino = ino;
	d->dtype = dtype;
	d->cookie = cookie;
	return l->limit && l->n >= l->limit;
}

/* Append the entries after pos (at most limit, 0: all); returns how many. */
static size_t vt_readdir(struct vt *v, arb_ino_t dir, uint64_t pos, size_t limit, struct dlist *l)
{
	size_t before = l->n;

	l->limit = limit ? before + limit : 0;
	TU_RC(arb_vfs_readdir(FS(v), dir, pos, dlist_fn, l));
	TU_ASSERT(l->bad == NULL, "%s", l->bad);
	return l->n - before;
}

static void dlist_free(struct dlist *l)
{
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static const struct dent *dlist_find(const struct dlist *l, const char *name)
{
	const struct dent *found = NULL;

	for (size_t i = 0; i < l->n; i++) {
		if (strcmp(l->v[i].name, name))
			continue;
		TU_ASSERT(found == NULL, "\"%s\" listed twice", name);
		found = &l->v[i];
	}
	return found;
}

static void expect_listed(const struct dlist *l, const char *name, arb_ino_t ino, unsigned dtype)
{
	const struct dent *d = dlist_find(l, name);

	TU_ASSERT(d != NULL, "\"%s\" not listed", name);
	TU_EQ_U64(d->ino, ino);
	TU_EQ_U64(d->dtype, dtype);
}

static size_t vt_count_entries(struct vt *v, arb_ino_t dir)
{
	struct dlist l = {0};
	size_t n = vt_readdir(v, dir, 0, 0, &l);

	dlist_free(&l);
	return n;
}

/* ---- setup and the root ---- */

static void test_root(void **state)
{
	struct vt v;
	struct arb_stat st;
	arb_ino_t ino = 0;

	(void)state;
	vt_setup(&v);
	TU_EQ_U64(v.root, arb_ino_make(256, 256));
	TU_EQ_U64(v.root, (1ull << ARB_SUBVOL_SHIFT) | ARB_FIRST_INO);
	TU_EQ_U64(arb_ino_subvol(v.root), 256);
	TU_EQ_U64(arb_ino_local(v.root), 256);
	TU_EQ_U64(arb_ino_make(257, 1000), (2ull << ARB_SUBVOL_SHIFT) | 1000);
	TU_EQ_U64(arb_ino_subvol(arb_ino_make(300, 77)), 300);
	TU_EQ_U64(arb_ino_local(arb_ino_make(300, 77)), 77);

	st = vt_stat(&v, v.root);
	TU_EQ_U64(st.mode, S_IFDIR | 0755);
	TU_EQ_U64(st.nlink, 2);
	TU_EQ_U64(st.uid, cred.uid);
	TU_EQ_U64(st.gid, cred.gid);
	TU_RC(arb_vfs_root(FS(&v), 256, &ino));
	TU_EQ_U64(ino, v.root);
	TU_RC_EQ(arb_vfs_root(FS(&v), 4242, &ino), -ENOENT);
	TU_RC_EQ(arb_vfs_init(FS(&v), 0700, &cred), -EEXIST);
	TU_RC_EQ(arb_vfs_getattr(FS(&v), v.root + 5000, &st), -ENOENT);
	TU_EQ_U64(vt_count_entries(&v, v.root), 0);

	vt_cycle(&v);
	TU_EQ_U64(v.root, arb_ino_make(256, 256));
	TU_RC_EQ(arb_vfs_init(FS(&v), 0700, &cred), -EEXIST);
	TU_EQ_U64(vt_stat(&v, v.root).mode, S_IFDIR | 0755);
	vt_finish(&v);
}

/* ---- lookup and names ---- */

static void expect_bad_name(struct vt *v, const char *name, int err)
{
	struct arb_stat st;

	TU_RC_EQ(arb_vfs_lookup(FS(v), v->root, name, &st), err);
	TU_RC_EQ(arb_vfs_mknod(FS(v), v->root, name, S_IFREG | 0644, 0, &cred, &st), err);
	TU_RC_EQ(arb_vfs_mkdir(FS(v), v->root, name, 0755, &cred, &st), err);
	TU_RC_EQ(arb_vfs_symlink(FS(v), v->root, name, "t", &cred, &st), err);
}

static void test_lookup(void **state)
{
	struct vt v;
	struct arb_stat st;
	char name[ARB_NAME_MAX + 2];
	const char odd[] = "\x01\xff sp\xc3\xa9\t.x";
	arb_ino_t f, d, g, o;

	(void)state;
	vt_setup(&v);
	f = vt_file(&v, v.root, "f");
	d = vt_mkdir(&v, v.root, "d");
	TU_RC(arb_vfs_lookup(FS(&v), v.root, "f", &st));
	TU_EQ_U64(st.ino, f);
	TU_EQ_U64(st.mode, S_IFREG | 0644);
	vt_expect_entry(&v, v.root, "d", d);
	vt_expect_missing(&v, v.root, "nope");
	vt_expect_missing(&v, d, "f");
	TU_RC_EQ(arb_vfs_lookup(FS(&v), f, "x", &st), -ENOTDIR);
	TU_RC_EQ(arb_vfs_lookup(FS(&v), v.root + 9999, "x", &st), -ENOENT);

	memset(name, 'a', sizeof(name));
	name[ARB_NAME_MAX + 1] = 0; /* 256 bytes */
	expect_bad_name(&v, name, -ENAMETOOLONG);
	name[ARB_NAME_MAX] = 0; /* 255 bytes */
	vt_expect_missing(&v, v.root, name);
	g = vt_file(&v, d, name);
	vt_expect_entry(&v, d, name, g);
	expect_bad_name(&v, ".", -EINVAL);
	expect_bad_name(&v, "..", -EINVAL);
	expect_bad_name(&v, "a/b", -EINVAL);
	expect_bad_name(&v, "/", -EINVAL);
	expect_bad_name(&v, "", -EINVAL);
	o = vt_file(&v, d, odd);
	vt_expect_entry(&v, d, odd, o);
	vt_expect_missing(&v, d, "...");

	vt_cycle(&v);
	vt_expect_entry(&v, v.root, "f", f);
	vt_expect_entry(&v, d, name, g);
	vt_expect_entry(&v, d, odd, o);
	vt_finish(&v);
}

/* ---- mknod, mkdir, symlink ---- */

struct node_kind {
	const char *name;
	uint32_t mode;
	uint64_t rdev;
	unsigned dtype;
};

static const struct node_kind kinds[] = {
        {"reg", S_IFREG | 0640, 0, DT_REG},
        {"fifo", S_IFIFO | 0600, 0, DT_FIFO},
        {"sock", S_IFSOCK | 0755, 0, DT_SOCK},
        {"chr", S_IFCHR | 0620, 0x0000000100000005ull, DT_CHR},
        {"blk", S_IFBLK | 0660, 0x00000fff000fffffull, DT_BLK},
};
#define NR_KINDS (sizeof(kinds) / sizeof(kinds[0]))

static void expect_kind(struct vt *v, const struct node_kind *k, arb_ino_t ino)
{
	struct arb_stat st = vt_stat(v, ino);

	TU_EQ_U64(st.mode, k->mode);
	TU_EQ_U64(st.nlink, 1);
	TU_EQ_U64(st.size, 0);
	TU_EQ_U64(st.uid, cred.uid);
	TU_EQ_U64(st.gid, cred.gid);
	if (S_ISCHR(k->mode) || S_ISBLK(k->mode))
		TU_EQ_U64(st.rdev, k->rdev);
}

static void check_kinds(struct vt *v, arb_ino_t dir, const arb_ino_t *ino)
{
	struct dlist l = {0};

	TU_EQ_U64(vt_readdir(v, dir, 0, 0, &l), NR_KINDS);
	for (size_t i = 0; i < NR_KINDS; i++) {
		expect_kind(v, &kinds[i], ino[i]);
		expect_listed(&l, kinds[i].name, ino[i], kinds[i].dtype);
	}
	dlist_free(&l);
}

static void test_mknod(void **state)
{
	struct vt v;
	struct arb_stat st;
	arb_ino_t ino[NR_KINDS], d, f;
	struct span sp;

	(void)state;
	vt_setup(&v);
	d = vt_mkdir(&v, v.root, "d");
	for (size_t i = 0; i < NR_KINDS; i++) {
		span_begin(&sp);
		TU_RC(arb_vfs_mknod(FS(&v), d, kinds[i].name, kinds[i].mode, kinds[i].rdev, &cred,
		                    &st));
		span_end(&sp);
		ino[i] = st.ino;
		TU_EQ_U64(arb_ino_subvol(st.ino), 256);
		TU_ASSERT(arb_ino_local(st.ino) > ARB_FIRST_INO);
		TU_EQ_U64(st.generation, vt_transid(&v));
		TS_IN(st.btime, &sp);
		TS_IN(st.mtime, &sp);
		TS_IN(st.ctime, &sp);
		TS_IN(st.atime, &sp);
		TU_RC_EQ(arb_vfs_mknod(FS(&v), d, kinds[i].name, S_IFREG | 0644, 0, &cred, &st),
		         -EEXIST);
	}
	for (size_t i = 1; i < NR_KINDS; i++)
		TU_ASSERT(ino[i] != ino[i - 1]);
	check_kinds(&v, d, ino);
	f = ino[0];
	TU_RC_EQ(arb_vfs_mknod(FS(&v), f, "x", S_IFREG | 0644, 0, &cred, &st), -ENOTDIR);
	TU_RC_EQ(arb_vfs_mknod(FS(&v), v.root + 9999, "x", S_IFREG | 0644, 0, &cred, &st), -ENOENT);
	TU_RC_EQ(arb_vfs_mkdir(FS(&v), d, "reg", 0755, &cred, &st), -EEXIST);
	/* directories and symlinks have their own calls */
	TU_RC_EQ(arb_vfs_mknod(FS(&v), d, "x", S_IFDIR | 0755, 0, &cred, &st), -EINVAL);
	TU_RC_EQ(arb_vfs_mknod(FS(&v), d, "x", S_IFLNK | 0777, 0, &cred, &st), -EINVAL);
	TU_RC_EQ(arb_vfs_mknod(FS(&v), d, "x", 0644, 0, &cred, &st), -EINVAL);
	vt_expect_missing(&v, d, "x");
	vt_cycle(&v);
	check_kinds(&v, d, ino);
	vt_finish(&v);
}

static void test_mkdir(void **state)
{
	struct vt v;
	struct arb_stat st;
	arb_ino_t d, e, f;

	(void)state;
	vt_setup(&v);
	d = vt_mkdir(&v, v.root, "d");
	vt_expect_nlink(&v, v.root, 3);
	TU_EQ_U64(vt_stat(&v, d).uid, cred.uid);
	e = vt_mkdir(&v, d, "e");
	f = vt_file(&v, d, "f");
	vt_expect_nlink(&v, d, 3);
	vt_expect_nlink(&v, v.root, 3);
	TU_RC_EQ(arb_vfs_mkdir(FS(&v), v.root, "d", 0755, &cred, &st), -EEXIST);
	TU_RC_EQ(arb_vfs_mkdir(FS(&v), d, "f", 0755, &cred, &st), -EEXIST);
	TU_RC_EQ(arb_vfs_mkdir(FS(&v), f, "x", 0755, &cred, &st), -ENOTDIR);
	TU_RC(arb_vfs_mkdir(FS(&v), d, "p", 0700, &cred, &st));
	TU_EQ_U64(st.mode, S_IFDIR | 0700);
	vt_expect_nlink(&v, d, 4);
	TU_EQ_U64(vt_count_entries(&v, d), 3);
	TU_EQ_U64(vt_count_entries(&v, e), 0);
	vt_cycle(&v);
	vt_expect_nlink(&v, v.root, 3);
	vt_expect_nlink(&v, d, 4);
	vt_expect_nlink(&v, e, 2);
	vt_expect_entry(&v, d, "e", e);
	TU_EQ_U64(vt_stat(&v, vt_lookup(&v, d, "p")).mode, S_IFDIR | 0700);
	vt_finish(&v);
}

/* A symlink target of len bytes (any byte but NUL). */
static char *link_target(size_t len, uint64_t tag)
{
	char *t = xmalloc(len + 1);

	for (size_t i = 0; i < len; i++)
		t[i] = (i % 9 == 8) ? '/' : (char)('a' + pat_byte(tag, i) % 26);
	t[len] = 0;
	return t;
}

static void expect_readlink(struct vt *v, arb_ino_t ino, const char *target)
{
	size_t len = strlen(target), got = SIZE_MAX;
	char *buf = xmalloc(len + 16);
	struct arb_stat st = vt_stat(v, ino);

	TU_EQ_U64(st.mode, S_IFLNK | 0777);
	TU_EQ_U64(st.size, len);
	memset(buf, 0x7f, len + 16);
	TU_RC(arb_vfs_readlink(FS(v), ino, buf, len + 16, &got));
	TU_EQ_U64(got, len);
	TU_ASSERT(memcmp(buf, target, len) == 0);
	/* a short buffer: a prefix, the full length, nothing past the buffer */
	memset(buf, 0x7f, len + 16);
	TU_RC(arb_vfs_readlink(FS(v), ino, buf, len / 2, &got));
	TU_EQ_U64(got, len);
	TU_ASSERT(memcmp(buf, target, len / 2) == 0);
	TU_EQ_U64((uint8_t)buf[len / 2], 0x7f);
	free(buf);
}

static const size_t link_lens[] = {1, 60, 1000, 4000, 4095};
#define NR_LINKS (sizeof(link_lens) / sizeof(link_lens[0]))

static void test_symlink(void **state)
{
	struct vt v;
	struct arb_stat st;
	char *target[NR_LINKS], *toolong, name[16];
	arb_ino_t ino[NR_LINKS], f;
	size_t got;
	struct dlist l = {0};

	(void)state;
	vt_setup(&v);
	f = vt_file(&v, v.root, "file");
	for (size_t i = 0; i < NR_LINKS; i++) {
		target[i] = link_target(link_lens[i], i);
		snprintf(name, sizeof(name), "l%zu", i);
		TU_RC(arb_vfs_symlink(FS(&v), v.root, name, target[i], &cred, &st));
		ino[i] = st.ino;
		TU_EQ_U64(st.uid, cred.uid);
		expect_readlink(&v, ino[i], target[i]);
	}
	TU_RC_EQ(arb_vfs_symlink(FS(&v), v.root, "l0", "x", &cred, &st), -EEXIST);
	TU_RC_EQ(arb_vfs_symlink(FS(&v), v.root, "empty", "", &cred, &st), -ENOENT);
	toolong = link_target(4096, 99);
	TU_RC_EQ(arb_vfs_symlink(FS(&v), v.root, "long", toolong, &cred, &st), -ENAMETOOLONG);
	free(toolong);
	vt_expect_missing(&v, v.root, "empty");
	vt_expect_missing(&v, v.root, "long");
	TU_RC_EQ(arb_vfs_symlink(FS(&v), f, "x", "y", &cred, &st), -ENOTDIR);
	TU_RC_EQ(arb_vfs_readlink(FS(&v), f, name, sizeof(name), &got), -EINVAL);
	TU_RC_EQ(arb_vfs_readlink(FS(&v), v.root, name, sizeof(name), &got), -EINVAL);
	vt_cycle(&v);
	vt_readdir(&v, v.root, 0, 0, &l);
	for (size_t i = 0; i < NR_LINKS; i++) {
		snprintf(name, sizeof(name), "l%zu", i);
		expect_listed(&l, name, ino[i], DT_LNK);
		expect_readlink(&v, ino[i], target[i]);
		free(target[i]);
	}
	dlist_free(&l);
	vt_finish(&v);
}

/* ---- link, unlink, rmdir ---- */

static void test_link(void **state)
{
	struct vt v;
	struct arb_stat st;
	arb_ino_t f, d, g;
	struct span sp;

	(void)state;
	vt_setup(&v);
	f = vt_file(&v, v.root, "f");
	d = vt_mkdir(&v, v.root, "d");
	g = vt_file(&v, v.root, "g");
	vt_write_pat(&v, f, 0, 10000, 1);
	set_old_times(&v, f);
	span_begin(&sp);
	TU_RC(arb_vfs_link(FS(&v), f, d, "f2", &st));
	span_end(&sp);
	TU_EQ_U64(st.ino, f);
	TU_EQ_U64(st.nlink, 2);
	st = vt_stat(&v, f);
	TS_IN(st.ctime, &sp);
	TS_OLD(st.mtime);
	vt_expect_entry(&v, d, "f2", f);
	TU_RC(arb_vfs_link(FS(&v), f, v.root, "f3", &st));
	vt_expect_nlink(&v, f, 3);
	vt_expect_nlink(&v, d, 2); /* files do not count */

	TU_RC_EQ(arb_vfs_link(FS(&v), d, v.root, "d2", &st), -EPERM);
	TU_RC_EQ(arb_vfs_link(FS(&v), v.root, d, "r", &st), -EPERM);
	TU_RC_EQ(arb_vfs_link(FS(&v), f, v.root, "g", &st), -EEXIST);
	TU_RC_EQ(arb_vfs_link(FS(&v), f, v.root, "d", &st), -EEXIST);
	TU_RC_EQ(arb_vfs_link(FS(&v), f, g, "x", &st), -ENOTDIR);
	TU_RC_EQ(arb_vfs_link(FS(&v), f, d, "a/b", &st), -EINVAL);
	TU_RC_EQ(arb_vfs_link(FS(&v), v.root + 9999, d, "x", &st), -ENOENT);
	vt_expect_nlink(&v, f, 3);

	TU_RC(arb_vfs_unlink(FS(&v), v.root, "f"));
	vt_expect_nlink(&v, f, 2);
	vt_expect_pat(&v, vt_lookup(&v, d, "f2"), 0, 10000, 1);
	vt_cycle(&v);
	vt_expect_nlink(&v, f, 2);
	vt_expect_entry(&v, v.root, "f3", f);
	vt_expect_pat(&v, f, 0, 10000, 1);
	vt_finish(&v);
}

static void test_unlink(void **state)
{
	struct vt v;
	arb_ino_t d, f, s, n;
	struct arb_stat st;

	(void)state;
	vt_setup(&v);
	d = vt_mkdir(&v, v.root, "d");
	f = vt_file(&v, d, "f");
	vt_write_pat(&v, f, 0, 3 * MIB + 17, 2);
	TU_RC(arb_vfs_symlink(FS(&v), d, "s", "target", &cred, &st));
	s = st.ino;
	n = vt_mknod(&v, d, "n", S_IFIFO | 0644, 0);
	vt_cycle(&v);

	TU_RC_EQ(arb_vfs_unlink(FS(&v), v.root, "d"), -EISDIR);
	TU_RC_EQ(arb_vfs_unlink(FS(&v), d, "nope"), -ENOENT);
	TU_RC_EQ(arb_vfs_unlink(FS(&v), f, "x"), -ENOTDIR);
	TU_RC_EQ(arb_vfs_unlink(FS(&v), d, "."), -EINVAL);
	TU_RC(arb_vfs_unlink(FS(&v), d, "f"));
	TU_RC(arb_vfs_unlink(FS(&v), d, "s"));
	TU_RC(arb_vfs_unlink(FS(&v), d, "n"));
	TU_RC_EQ(arb_vfs_unlink(FS(&v), d, "f"), -ENOENT);
	vt_expect_missing(&v, d, "f");
	vt_expect_gone(&v, f);
	vt_expect_gone(&v, s);
	vt_expect_gone(&v, n);
	TU_EQ_U64(vt_count_entries(&v, d), 0);
	vt_expect_nlink(&v, d, 2);
	vt_cycle(&v);
	vt_expect_gone(&v, f);
	TU_EQ_U64(vt_count_entries(&v, d), 0);
	vt_finish(&v);
}

static void test_rmdir(void **state)
{
	struct vt v;
	arb_ino_t d, e, f;

	(void)state;
	vt_setup(&v);
	d = vt_mkdir(&v, v.root, "d");
	e = vt_mkdir(&v, d, "e");
	f = vt_file(&v, e, "f");
	vt_expect_nlink(&v, v.root, 3);
	TU_RC_EQ(arb_vfs_rmdir(FS(&v), v.root, "d"), -ENOTEMPTY);
	TU_RC_EQ(arb_vfs_rmdir(FS(&v), d, "e"), -ENOTEMPTY);
	TU_RC_EQ(arb_vfs_rmdir(FS(&v), e, "f"), -ENOTDIR);
	TU_RC_EQ(arb_vfs_rmdir(FS(&v), d, "nope"), -ENOENT);
	TU_RC_EQ(arb_vfs_rmdir(FS(&v), f, "x"), -ENOTDIR);
	TU_RC_EQ(arb_vfs_rmdir(FS(&v), d, "."), -EINVAL);
	TU_RC_EQ(arb_vfs_rmdir(FS(&v), d, ".."), -EINVAL);
	vt_cycle(&v);
	vt_expect_nlink(&v, d, 3);
	TU_RC(arb_vfs_unlink(FS(&v), e, "f"));
	TU_RC(arb_vfs_rmdir(FS(&v), d, "e"));
	vt_expect_gone(&v, e);
	vt_expect_nlink(&v, d, 2);
	TU_RC(arb_vfs_rmdir(FS(&v), v.root, "d"));
	vt_expect_gone(&v, d);
	vt_expect_nlink(&v, v.root, 2);
	TU_EQ_U64(vt_count_entries(&v, v.root), 0);
	vt_cycle(&v);
	vt_expect_missing(&v, v.root, "d");
	vt_expect_nlink(&v, v.root, 2);
	vt_finish(&v);
}

/* Directories count 2 + their subdirectories, whatever else they hold. */
static void test_dir_nlink(void **state)
{
	struct vt v;
	arb_ino_t d, e;
	char name[16];

	(void)state;
	vt_setup(&v);
	d = vt_mkdir(&v, v.root, "d");
	e = vt_mkdir(&v, v.root, "e");
	for (int i = 0; i < 12; i++) {
		snprintf(name, sizeof(name), "s%d", i);
		if (i % 3 == 0)
			vt_file(&v, d, name);
		else
			vt_mkdir(&v, d, name);
	}
	vt_expect_nlink(&v, d, 2 + 8);
	TU_RC(arb_vfs_rename(FS(&v), d, "s1", e, "m", 0));
	TU_RC(arb_vfs_rename(FS(&v), d, "s0", e, "n", 0));
	vt_expect_nlink(&v, d, 2 + 7);
	vt_expect_nlink(&v, e, 2 + 1);
	TU_RC(arb_vfs_rmdir(FS(&v), d, "s2"));
	vt_expect_nlink(&v, d, 2 + 6);
	vt_expect_nlink(&v, v.root, 2 + 2);
	vt_cycle(&v);
	vt_expect_nlink(&v, d, 2 + 6);
	vt_expect_nlink(&v, e, 2 + 1);
	vt_finish(&v);
}

/* ---- rename ---- */

static void test_rename_move(void **state)
{
	struct vt v;
	arb_ino_t d1, d2, a, sub, in;
	struct arb_stat st;
	struct span sp;

	(void)state;
	vt_setup(&v);
	d1 = vt_mkdir(&v, v.root, "d1");
	d2 = vt_mkdir(&v, v.root, "d2");
	a = vt_file(&v, d1, "a");
	vt_write_pat(&v, a, 0, 5000, 3);
	sub = vt_mkdir(&v, d1, "sub");
	in = vt_file(&v, sub, "in");
	TU_RC(arb_vfs_rename(FS(&v), d1, "a", d1, "b", 0));
	vt_expect_missing(&v, d1, "a");
	vt_expect_entry(&v, d1, "b", a);
	set_old_times(&v, d1);
	set_old_times(&v, d2);
	span_begin(&sp);
	TU_RC(arb_vfs_rename(FS(&v), d1, "b", d2, "c", 0));
	span_end(&sp);
	st = vt_stat(&v, d1);
	TS_IN(st.mtime, &sp);
	TS_IN(st.ctime, &sp);
	st = vt_stat(&v, d2);
	TS_IN(st.mtime, &sp);
	TS_IN(st.ctime, &sp);
	vt_expect_missing(&v, d1, "b");
	vt_expect_entry(&v, d2, "c", a);
	vt_expect_nlink(&v, a, 1);

	TU_RC(arb_vfs_rename(FS(&v), d1, "sub", d2, "sub2", 0));
	vt_expect_nlink(&v, d1, 2);
	vt_expect_nlink(&v, d2, 3);
	vt_expect_entry(&v, vt_lookup(&v, d2, "sub2"), "in", in);
	TU_RC_EQ(arb_vfs_rename(FS(&v), d1, "gone", d2, "x", 0), -ENOENT);
	TU_RC_EQ(arb_vfs_rename(FS(&v), a, "x", d2, "y", 0), -ENOTDIR);
	TU_RC_EQ(arb_vfs_rename(FS(&v), d2, "c", a, "y", 0), -ENOTDIR);
	TU_RC_EQ(arb_vfs_rename(FS(&v), d2, "c", d2, ".", 0), -EINVAL);
	TU_RC_EQ(arb_vfs_rename(FS(&v), d2, "..", d2, "z", 0), -EINVAL);
	TU_RC_EQ(arb_vfs_rename(FS(&v), d2, "c", d2, "", 0), -EINVAL);
	vt_expect_entry(&v, d2, "c", a);
	vt_cycle(&v);
	vt_expect_entry(&v, d2, "c", a);
	vt_expect_pat(&v, a, 0, 5000, 3);
	vt_expect_nlink(&v, d2, 3);
	TU_EQ_U64(vt_count_entries(&v, d1), 0);
	vt_finish(&v);
}

/* Renaming a name onto itself or onto another link of the same inode
 * changes nothing. */
static void test_rename_same(void **state)
{
	struct vt v;
	arb_ino_t d, a, e;
	struct arb_stat st;

	(void)state;
	vt_setup(&v);
	d = vt_mkdir(&v, v.root, "d");
	a = vt_file(&v, d, "a");
	e = vt_mkdir(&v, d, "e");
	TU_RC(arb_vfs_link(FS(&v), a, v.root, "h", &st));
	TU_RC(arb_vfs_rename(FS(&v), d, "a", d, "a", 0));
	TU_RC(arb_vfs_rename(FS(&v), d, "e", d, "e", 0));
	TU_RC(arb_vfs_rename(FS(&v), d, "a", v.root, "h", 0));
	vt_expect_entry(&v, d, "a", a);
	vt_expect_entry(&v, v.root, "h", a);
	vt_expect_entry(&v, d, "e", e);
	vt_expect_nlink(&v, a, 2);
	vt_expect_nlink(&v, d, 3);
	TU_EQ_U64(vt_count_entries(&v, d), 2);
	vt_cycle(&v);
	vt_expect_nlink(&v, a, 2);
	vt_expect_entry(&v, d, "a", a);
	vt_finish(&v);
}

static void test_rename_over(void **state)
{
	struct vt v;
	arb_ino_t d, p, a, b, c, x, y, z, q;
	struct arb_stat st;

	(void)state;
	vt_setup(&v);
	d = vt_mkdir(&v, v.root, "d");
	p = vt_mkdir(&v, v.root, "p");
	a = vt_file(&v, d, "a");
	b = vt_file(&v, d, "b");
	c = vt_file(&v, d, "c");
	vt_write_pat(&v, a, 0, 70000, 1);
	vt_write_pat(&v, b, 0, 90000, 2);
	TU_RC(arb_vfs_link(FS(&v), c, p, "c2", &st));
	x = vt_mkdir(&v, v.root, "x");
	vt_file(&v, x, "inside");
	y = vt_mkdir(&v, p, "y");
	z = vt_mkdir(&v, p, "z");
	vt_file(&v, z, "full");
	q = vt_file(&v, p, "q");
	vt_cycle(&v);

	/* a file over a file: the target's inode goes with its last link */
	TU_RC(arb_vfs_rename(FS(&v), d, "a", d, "b", 0));
	vt_expect_missing(&v, d, "a");
	vt_expect_entry(&v, d, "b", a);
	vt_expect_gone(&v, b);
	vt_expect_pat(&v, a, 0, 70000, 1);
	/* over a file with another link: it keeps that one */
	TU_RC(arb_vfs_rename(FS(&v), d, "b", d, "c", 0));
	vt_expect_entry(&v, d, "c", a);
	vt_expect_nlink(&v, c, 1);
	vt_expect_entry(&v, p, "c2", c);

	/* type mismatches and a non-empty target */
	TU_RC_EQ(arb_vfs_rename(FS(&v), d, "c", p, "y", 0), -EISDIR);
	TU_RC_EQ(arb_vfs_rename(FS(&v), v.root, "x", p, "q", 0), -ENOTDIR);
	TU_RC_EQ(arb_vfs_rename(FS(&v), v.root, "x", p, "z", 0), -ENOTEMPTY);
	TU_RC_EQ(arb_vfs_rename(FS(&v), p, "y", v.root, "p", 0), -ENOTEMPTY);
	vt_expect_entry(&v, p, "y", y);
	vt_expect_entry(&v, p, "q", q);

	/* a directory over an empty directory */
	TU_RC(arb_vfs_rename(FS(&v), v.root, "x", p, "y", 0));
	vt_expect_gone(&v, y);
	vt_expect_entry(&v, p, "y", x);
	vt_expect_missing(&v, v.root, "x");
	vt_expect_nlink(&v, p, 4);
	vt_expect_nlink(&v, v.root, 4);
	vt_expect_nlink(&v, x, 2);
	vt_cycle(&v);
	vt_expect_entry(&v, vt_lookup(&v, p, "y"), "inside", vt_lookup(&v, x, "inside"));
	vt_expect_nlink(&v, p, 4);
	vt_expect_pat(&v, a, 0, 70000, 1);
	TU_EQ_U64(vt_count_entries(&v, d), 1);
	vt_finish(&v);
}

/* A directory never moves below itself. */
static void test_rename_loop(void **state)
{
	struct vt v;
	arb_ino_t a, b, c;

	(void)state;
	vt_setup(&v);
	a = vt_mkdir(&v, v.root, "a");
	b = vt_mkdir(&v, a, "b");
	c = vt_mkdir(&v, b, "c");
	TU_RC_EQ(arb_vfs_rename(FS(&v), v.root, "a", a, "x", 0), -EINVAL);
	TU_RC_EQ(arb_vfs_rename(FS(&v), v.root, "a", c, "x", 0), -EINVAL);
	TU_RC_EQ(arb_vfs_rename(FS(&v), a, "b", c, "x", ARB_RENAME_NOREPLACE), -EINVAL);
	TU_RC_EQ(arb_vfs_rename(FS(&v), v.root, "a", b, "c", ARB_RENAME_EXCHANGE), -EINVAL);
	TU_RC_EQ(arb_vfs_rename(FS(&v), b, "c", v.root, "a", ARB_RENAME_EXCHANGE), -EINVAL);
	vt_expect_entry(&v, v.root, "a", a);
	vt_expect_entry(&v, a, "b", b);
	vt_expect_entry(&v, b, "c", c);
	/* moving up is fine */
	TU_RC(arb_vfs_rename(FS(&v), b, "c", v.root, "c", 0));
	vt_expect_nlink(&v, v.root, 4);
	vt_expect_nlink(&v, b, 2);
	vt_finish(&v);
}

static void test_rename_noreplace(void **state)
{
	struct vt v;
	arb_ino_t d, a, b, e;

	(void)state;
	vt_setup(&v);
	d = vt_mkdir(&v, v.root, "d");
	a = vt_file(&v, d, "a");
	b = vt_file(&v, d, "b");
	e = vt_mkdir(&v, d, "e");
	TU_RC_EQ(arb_vfs_rename(FS(&v), d, "a", d, "b", ARB_RENAME_NOREPLACE), -EEXIST);
	TU_RC_EQ(arb_vfs_rename(FS(&v), d, "a", d, "e", ARB_RENAME_NOREPLACE), -EEXIST);
	TU_RC_EQ(arb_vfs_rename(FS(&v), d, "e", v.root, "d", ARB_RENAME_NOREPLACE), -EEXIST);
	vt_expect_entry(&v, d, "a", a);
	vt_expect_entry(&v, d, "b", b);
	TU_RC(arb_vfs_rename(FS(&v), d, "a", e, "a2", ARB_RENAME_NOREPLACE));
	vt_expect_missing(&v, d, "a");
	vt_expect_entry(&v, e, "a2", a);
	vt_cycle(&v);
	vt_expect_entry(&v, e, "a2", a);
	vt_finish(&v);
}

static void test_rename_exchange(void **state)
{
	struct vt v;
	arb_ino_t d1, d2, f, sub, in, g;

	(void)state;
	vt_setup(&v);
	d1 = vt_mkdir(&v, v.root, "d1");
	d2 = vt_mkdir(&v, v.root, "d2");
	f = vt_file(&v, d1, "f");
	vt_write_pat(&v, f, 0, 12345, 4);
	g = vt_file(&v, d1, "g");
	sub = vt_mkdir(&v, d2, "sub");
	in = vt_file(&v, sub, "in");
	vt_expect_nlink(&v, d1, 2);
	vt_expect_nlink(&v, d2, 3);

	TU_RC(arb_vfs_rename(FS(&v), d1, "f", d2, "sub", ARB_RENAME_EXCHANGE));
	vt_expect_entry(&v, d1, "f", sub);
	vt_expect_entry(&v, d2, "sub", f);
	vt_expect_nlink(&v, d1, 3);
	vt_expect_nlink(&v, d2, 2);
	vt_expect_nlink(&v, sub, 2);
	vt_expect_nlink(&v, f, 1);
	vt_expect_entry(&v, vt_lookup(&v, d1, "f"), "in", in);

	/* two files in one directory */
	TU_RC(arb_vfs_rename(FS(&v), d1, "g", d2, "sub", ARB_RENAME_EXCHANGE));
	vt_expect_entry(&v, d1, "g", f);
	vt_expect_entry(&v, d2, "sub", g);
	TU_RC_EQ(arb_vfs_rename(FS(&v), d1, "g", d2, "none", ARB_RENAME_EXCHANGE), -ENOENT);
	TU_RC_EQ(arb_vfs_rename(FS(&v), d1, "none", d2, "sub", ARB_RENAME_EXCHANGE), -ENOENT);
	vt_expect_entry(&v, d1, "g", f);
	vt_cycle(&v);
	vt_expect_entry(&v, d1, "f", sub);
	vt_expect_entry(&v, d1, "g", f);
	vt_expect_entry(&v, d2, "sub", g);
	vt_expect_nlink(&v, d1, 3);
	vt_expect_nlink(&v, d2, 2);
	vt_expect_pat(&v, f, 0, 12345, 4);
	vt_finish(&v);
}

static void test_rename_flags_invalid(void **state)
{
	static const unsigned bad[] = {
	        ARB_RENAME_NOREPLACE | ARB_RENAME_EXCHANGE,
	        1u << 2,
	        ARB_RENAME_NOREPLACE | (1u << 5),
	        1u << 31,
	};
	struct vt v;
	arb_ino_t d, a, b;

	(void)state;
	vt_setup(&v);
	d = vt_mkdir(&v, v.root, "d");
	a = vt_file(&v, d, "a");
	b = vt_file(&v, d, "b");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		TU_RC_EQ(arb_vfs_rename(FS(&v), d, "a", d, "b", bad[i]), -EINVAL);
		TU_RC_EQ(arb_vfs_rename(FS(&v), d, "a", d, "new", bad[i]), -EINVAL);
	}
	vt_expect_entry(&v, d, "a", a);
	vt_expect_entry(&v, d, "b", b);
	vt_expect_missing(&v, d, "new");
	vt_finish(&v);
}

/* ---- timestamps ---- */

static void expect_dir_touched(struct vt *v, arb_ino_t dir, const struct span *sp)
{
	struct arb_stat st = vt_stat(v, dir);

	TS_IN(st.mtime, sp);
	TS_IN(st.ctime, sp);
}

/* Create, unlink, mkdir and rmdir change the parent's mtime and ctime. */
static void test_times_parent(void **state)
{
	struct vt v;
	arb_ino_t d, f;
	struct arb_stat st;
	struct span sp;

	(void)state;
	vt_setup(&v);
	d = vt_mkdir(&v, v.root, "d");
	set_old_times(&v, d);
	span_begin(&sp);
	f = vt_file(&v, d, "f");
	span_end(&sp);
	expect_dir_touched(&v, d, &sp);
	st = vt_stat(&v, f);
	TS_IN(st.btime, &sp);
	TS_IN(st.mtime, &sp);
	TS_OLD(vt_stat(&v, d).atime);

	set_old_times(&v, d);
	span_begin(&sp);
	TU_RC(arb_vfs_unlink(FS(&v), d, "f"));
	span_end(&sp);
	expect_dir_touched(&v, d, &sp);

	set_old_times(&v, d);
	span_begin(&sp);
	vt_mkdir(&v, d, "e");
	span_end(&sp);
	expect_dir_touched(&v, d, &sp);

	set_old_times(&v, d);
	span_begin(&sp);
	TU_RC(arb_vfs_rmdir(FS(&v), d, "e"));
	span_end(&sp);
	expect_dir_touched(&v, d, &sp);

	set_old_times(&v, d);
	TU_RC_EQ(arb_vfs_rmdir(FS(&v), d, "e"), -ENOENT);
	TS_OLD(vt_stat(&v, d).mtime);
	vt_finish(&v);
}

/* link and chmod change ctime only; write and truncate mtime and ctime. */
static void test_times_inode(void **state)
{
	struct vt v;
	arb_ino_t f;
	struct arb_stat st;
	struct arb_setattr sa = {.valid = ARB_SET_MODE, .mode = 0600};
	struct span sp;

	(void)state;
	vt_setup(&v);
	f = vt_file(&v, v.root, "f");
	set_old_times(&v, f);
	span_begin(&sp);
	vt_setattr(&v, f, &sa);
	span_end(&sp);
	st = vt_stat(&v, f);
	TS_IN(st.ctime, &sp);
	TS_OLD(st.mtime);
	TS_OLD(st.atime);

	set_old_times(&v, f);
	span_begin(&sp);
	vt_write_pat(&v, f, 100, 5000, 1);
	span_end(&sp);
	st = vt_stat(&v, f);
	TS_IN(st.mtime, &sp);
	TS_IN(st.ctime, &sp);

	set_old_times(&v, f);
	span_begin(&sp);
	vt_truncate(&v, f, 77);
	span_end(&sp);
	st = vt_stat(&v, f);
	TS_IN(st.mtime, &sp);
	TS_IN(st.ctime, &sp);

	set_old_times(&v, f);
	sa = (struct arb_setattr){.valid = ARB_SET_ATIME_NOW | ARB_SET_MTIME_NOW};
	span_begin(&sp);
	vt_setattr(&v, f, &sa);
	span_end(&sp);
	st = vt_stat(&v, f);
	TS_IN(st.atime, &sp);
	TS_IN(st.mtime, &sp);
	TS_IN(st.ctime, &sp);
	vt_finish(&v);
}

/* Explicit times keep their nanoseconds across a commit and a reopen. */
static void test_times_explicit(void **state)
{
	struct vt v;
	arb_ino_t f;
	struct arb_stat st;
	struct arb_setattr sa = {
	        .valid = ARB_SET_ATIME | ARB_SET_MTIME,
	        .atime = {.tv_sec = 1234567890, .tv_nsec = 999999999},
	        .mtime = {.tv_sec = 4102444800, .tv_nsec = 1},
	};
	struct span sp;

	(void)state;
	vt_setup(&v);
	f = vt_file(&v, v.root, "f");
	span_begin(&sp);
	TU_RC(arb_vfs_setattr(FS(&v), f, &sa, &st));
	span_end(&sp);
	TU_ASSERT(ts_eq(&st.atime, &sa.atime) && ts_eq(&st.mtime, &sa.mtime));
	TS_IN(st.ctime, &sp);
	vt_cycle(&v);
	st = vt_stat(&v, f);
	TU_ASSERT(ts_eq(&st.atime, &sa.atime), "atime %lld.%09ld", (long long)st.atime.tv_sec,
	          st.atime.tv_nsec);
	TU_ASSERT(ts_eq(&st.mtime, &sa.mtime), "mtime %lld.%09ld", (long long)st.mtime.tv_sec,
	          st.mtime.tv_nsec);
	TS_IN(st.ctime, &sp);
	vt_finish(&v);
}

/* ---- setattr ---- */

static void test_setattr_owner_mode(void **state)
{
	struct vt v;
	arb_ino_t f, d;
	struct arb_stat st;
	struct arb_setattr sa = {.valid = ARB_SET_MODE, .mode = 04751};

	(void)state;
	vt_setup(&v);
	f = vt_file(&v, v.root, "f");
	d = vt_mkdir(&v, v.root, "d");
	TU_RC(arb_vfs_setattr(FS(&v), f, &sa, &st));
	TU_EQ_U64(st.mode, S_IFREG | 04751);
	sa.mode = 01700;
	vt_setattr(&v, d, &sa);
	TU_EQ_U64(vt_stat(&v, d).mode, S_IFDIR | 01700);
	sa = (struct arb_setattr){.valid = ARB_SET_UID, .uid = 4000, .gid = 1};
	vt_setattr(&v, f, &sa);
	st = vt_stat(&v, f);
	TU_EQ_U64(st.uid, 4000);
	TU_EQ_U64(st.gid, cred.gid);
	sa = (struct arb_setattr){.valid = ARB_SET_GID, .uid = 1, .gid = 5000};
	vt_setattr(&v, f, &sa);
	st = vt_stat(&v, f);
	TU_EQ_U64(st.uid, 4000);
	TU_EQ_U64(st.gid, 5000);
	TU_EQ_U64(st.mode, S_IFREG | 04751);
	sa = (struct arb_setattr){.valid = ARB_SET_SIZE, .size = 10};
	TU_RC_EQ(arb_vfs_setattr(FS(&v), d, &sa, &st), -EISDIR);
	TU_RC_EQ(arb_vfs_setattr(FS(&v), v.root + 9999, &sa, &st), -ENOENT);
	vt_cycle(&v);
	st = vt_stat(&v, f);
	TU_EQ_U64(st.mode, S_IFREG | 04751);
	TU_EQ_U64(st.uid, 4000);
	TU_EQ_U64(st.gid, 5000);
	TU_EQ_U64(vt_stat(&v, d).mode, S_IFDIR | 01700);
	vt_finish(&v);
}

/* Shrink to cut, grow back to len: the bytes past cut read as zeros. */
static void shrink_regrow(struct vt *v, arb_ino_t f, uint64_t len, uint64_t cut, uint64_t tag)
{
	vt_write_pat(v, f, 0, len, tag);
	vt_truncate(v, f, cut);
	vt_expect_pat(v, f, 0, cut, tag);
	TU_EQ_U64(vt_read_len(v, f, 0, len), cut);
	vt_truncate(v, f, len);
	vt_expect_pat(v, f, 0, cut, tag);
	vt_expect_zero(v, f, cut, len - cut);
}

static void test_setattr_size(void **state)
{
	static const uint64_t cases[][2] = {
	        {100, 50},           /* inline */
	        {10000, 5000},       /* inside a sector */
	        {3 * MIB, MIB + 77}, /* big */
	        {8192, 4096},        /* on a sector boundary */
	        {300000, 0},
	};
	struct vt v;
	arb_ino_t f[5];
	char name[8];

	(void)state;
	vt_setup(&v);
	for (int i = 0; i < 5; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		f[i] = vt_file(&v, v.root, name);
		shrink_regrow(&v, f[i], cases[i][0], cases[i][1], 10 + i);
	}
	/* commit in between: the cut crosses committed extents */
	vt_cycle(&v);
	for (int i = 0; i < 5; i++) {
		vt_expect_pat(&v, f[i], 0, cases[i][1], 10 + i);
		vt_expect_zero(&v, f[i], cases[i][1], cases[i][0] - cases[i][1]);
		shrink_regrow(&v, f[i], cases[i][0], cases[i][1] / 2 + 1, 20 + i);
	}
	vt_cycle(&v);
	for (int i = 0; i < 5; i++) {
		uint64_t cut = cases[i][1] / 2 + 1;

		vt_expect_pat(&v, f[i], 0, cut, 20 + i);
		vt_expect_zero(&v, f[i], cut, cases[i][0] - cut);
	}
	vt_finish(&v);
}

/* ---- readdir ---- */

static void make_entries(struct vt *v, arb_ino_t dir, unsigned from, unsigned to, arb_ino_t *ino)
{
	char name[32];

	for (unsigned i = from; i < to; i++) {
		snprintf(name, sizeof(name), "entry-%u", i);
		if (i % 5 == 0)
			ino[i] = vt_mkdir(v, dir, name);
		else
			ino[i] = vt_file(v, dir, name);
	}
}

static void expect_entries(const struct dlist *l, unsigned n, const arb_ino_t *ino)
{
	char name[32];

	TU_EQ_U64(l->n, n);
	for (unsigned i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "entry-%u", i);
		expect_listed(l, name, ino[i], i % 5 == 0 ? DT_DIR : DT_REG);
	}
}

/* One entry per call, each resuming from the cookie of the previous one:
 * the same sequence as one full listing. */
static void expect_resumable(struct vt *v, arb_ino_t dir, const struct dlist *full)
{
	struct dlist l = {0};
	uint64_t pos = 0;

	while (vt_readdir(v, dir, pos, 1, &l) == 1)
		pos = l.v[l.n - 1].cookie;
	TU_EQ_U64(l.n, full->n);
	for (size_t i = 0; i < l.n; i++) {
		TU_ASSERT(strcmp(l.v[i].name, full->v[i].name) == 0, "entry %zu", i);
		TU_EQ_U64(l.v[i].cookie, full->v[i].cookie);
		TU_ASSERT(l.v[i].cookie != 0);
	}
	dlist_free(&l);
}

static void test_readdir(void **state)
{
	enum { N = 300 };
	struct vt v;
	arb_ino_t d, f, ino[N];
	struct dlist full = {0}, again = {0};

	(void)state;
	vt_setup(&v);
	d = vt_mkdir(&v, v.root, "d");
	f = vt_file(&v, v.root, "f");
	TU_EQ_U64(vt_count_entries(&v, d), 0);
	make_entries(&v, d, 0, N, ino);
	vt_readdir(&v, d, 0, 0, &full);
	expect_entries(&full, N, ino);
	expect_resumable(&v, d, &full);
	TU_EQ_U64(vt_readdir(&v, d, full.v[N - 1].cookie, 0, &again), 0);
	TU_RC_EQ(arb_vfs_readdir(FS(&v), f, 0, dlist_fn, &again), -ENOTDIR);
	TU_RC_EQ(arb_vfs_readdir(FS(&v), v.root + 9999, 0, dlist_fn, &again), -ENOENT);
	vt_cycle(&v);
	/* the order and the cookies survive a reopen */
	vt_readdir(&v, d, 0, 0, &again);
	TU_EQ_U64(again.n, N);
	for (size_t i = 0; i < N; i++) {
		TU_ASSERT(strcmp(again.v[i].name, full.v[i].name) == 0);
		TU_EQ_U64(again.v[i].cookie, full.v[i].cookie);
	}
	expect_resumable(&v, d, &full);
	dlist_free(&full);
	dlist_free(&again);
	vt_finish(&v);
}

/* Listing state of one name while entries come and go. */
enum { NS_NEVER, NS_PRE, NS_REMOVED, NS_ADDED };

struct mut_state {
	unsigned n, next;
	unsigned char *kind; /* NS_* */
	unsigned *seen;
	arb_ino_t *ino;
};

static void mut_init(struct mut_state *m, unsigned cap)
{
	m->kind = xcalloc(cap);
	m->seen = xcalloc(cap * sizeof(*m->seen));
	m->ino = xcalloc(cap * sizeof(*m->ino));
}

static void mut_free(struct mut_state *m)
{
	free(m->kind);
	free(m->seen);
	free(m->ino);
}

static unsigned entry_index(const char *name)
{
	unsigned i = 0;

	TU_ASSERT(sscanf(name, "entry-%u", &i) == 1, "unexpected entry \"%s\"", name);
	return i;
}

/* Add two entries (up to m->n in all), remove three existing ones (listed
 * or not yet). */
static void mut_step(struct vt *v, arb_ino_t d, struct mut_state *m, struct tu_rng *rng)
{
	char name[32];

	for (int k = 0; k < 2 && m->next < m->n; k++) {
		make_entries(v, d, m->next, m->next + 1, m->ino);
		m->kind[m->next++] = NS_ADDED;
	}
	for (int k = 0; k < 3; k++) {
		unsigned i = (unsigned)tu_rng_below(rng, m->next);

		if (m->kind[i] == NS_REMOVED || m->kind[i] == NS_NEVER)
			continue;
		snprintf(name, sizeof(name), "entry-%u", i);
		if (i % 5 == 0)
			TU_RC(arb_vfs_rmdir(FS(v), d, name));
		else
			TU_RC(arb_vfs_unlink(FS(v), d, name));
		m->kind[i] = NS_REMOVED;
	}
}

static void mut_check(const struct mut_state *m)
{
	for (unsigned i = 0; i < m->next; i++) {
		if (m->kind[i] == NS_PRE)
			TU_ASSERT(m->seen[i] == 1, "entry-%u seen %u times", i, m->seen[i]);
		else
			TU_ASSERT(m->seen[i] <= 1, "entry-%u (kind %u) seen %u times", i,
			          m->kind[i], m->seen[i]);
	}
}

/* List in chunks; between chunks add and remove entries, among them the
 * one the listing resumes after. */
static void list_mutating(struct vt *v, arb_ino_t d, struct mut_state *m, struct tu_rng *rng)
{
	struct dlist l = {0};
	uint64_t pos = 0;
	size_t got;

	while ((got = vt_readdir(v, d, pos, 1 + tu_rng_below(rng, 9), &l)) > 0) {
		for (size_t k = l.n - got; k < l.n; k++) {
			unsigned i = entry_index(l.v[k].name);

			TU_ASSERT(i < m->next && m->kind[i] != NS_NEVER, "entry-%u", i);
			TU_EQ_U64(l.v[k].ino, m->ino[i]);
			m->seen[i]++;
		}
		pos = l.v[l.n - 1].cookie;
		if (tu_rng_pct(rng, 30)) {
			char name[ARB_NAME_MAX + 1];

			snprintf(name, sizeof(name), "%s", l.v[l.n - 1].name);
			if (m->kind[entry_index(name)] != NS_REMOVED) {
				TU_RC(entry_index(name) % 5 ? arb_vfs_unlink(FS(v), d, name)
				                            : arb_vfs_rmdir(FS(v), d, name));
				m->kind[entry_index(name)] = NS_REMOVED;
			}
		}
		mut_step(v, d, m, rng);
	}
	dlist_free(&l);
	mut_check(m);
}

static void test_readdir_mutating(void **state)
{
	enum { N = 400, CAP = N + N / 2 };
	struct vt v;
	struct mut_state m = {0};
	struct tu_rng rng;
	arb_ino_t d;

	(void)state;
	vt_setup(&v);
	tu_rng_init(&rng, 42);
	mut_init(&m, CAP);
	d = vt_mkdir(&v, v.root, "d");
	make_entries(&v, d, 0, N, m.ino);
	memset(m.kind, NS_PRE, N);
	m.next = N;
	m.n = N + N / 2;
	vt_cycle(&v);
	list_mutating(&v, d, &m, &rng);
	TU_ASSERT(m.next == CAP, "only %u entries added", m.next - N);
	mut_free(&m);
	vt_finish(&v);
}

/* ---- the file's extent items ---- */

struct ext {
	uint64_t off, len, disk;
	uint8_t type;
};

/* The EXTENT_DATA items of ino, at most max of them; returns how many. */
static size_t vt_extents(struct vt *v, arb_ino_t ino, struct ext *out, size_t max)
{
	struct arb_tree *t = tu_tree(FS(v), arb_ino_subvol(ino));
	struct arb_key start = {arb_ino_local(ino), ARB_EXTENT_DATA_KEY, 0}, k;
	struct arb_file_extent fe;
	struct arb_iter *it = NULL;
	const void *data;
	uint32_t len;
	size_t n = 0;
	int rc;

	TU_RC(arb_iter_open(t, &start, ARB_ITER_FORWARD, &it));
	while ((rc = arb_iter_next(it, &k, &data, &len)) == 1) {
		if (k.objectid != start.objectid || k.type != ARB_EXTENT_DATA_KEY)
			break;
		TU_ASSERT(len >= sizeof(fe), "extent item of %u bytes", len);
		memcpy(&fe, data, sizeof(fe));
		if (fe.type == ARB_EXTENT_INLINE)
			TU_EQ_U64(len, sizeof(fe) + le64toh(fe.num_bytes));
		else if (fe.type == ARB_EXTENT_REG)
			TU_EQ_U64(len, sizeof(fe) + 4 * (le64toh(fe.num_bytes) / SECTOR));
		else
			TU_EQ_U64(len, sizeof(fe)); /* PREALLOC: no checksums */
		if (n < max)
			out[n] = (struct ext){k.offset, le64toh(fe.num_bytes),
			                      le64toh(fe.disk_bytenr), fe.type};
		n++;
	}
	arb_iter_close(it);
	TU_ASSERT(rc >= 0, "iteration: %s", tu_strerr(rc));
	return n;
}

static bool has_inline(struct vt *v, arb_ino_t ino)
{
	struct ext e[64];
	size_t n = vt_extents(v, ino, e, 64);

	for (size_t i = 0; i < n && i < 64; i++)
		if (e[i].type == ARB_EXTENT_INLINE)
			return true;
	return false;
}

/* ---- read and write ---- */

/* The whole file must equal the model, and reads stop at its end. */
static void expect_model(struct vt *v, arb_ino_t ino, const uint8_t *model, uint64_t size)
{
	TU_EQ_U64(vt_stat(v, ino).size, size);
	vt_expect_data(v, ino, 0, model, size);
	TU_EQ_U64(vt_read_len(v, ino, size, 100), 0);
	TU_EQ_U64(vt_read_len(v, ino, size + 100000, 100), 0);
	if (size >= 5)
		TU_EQ_U64(vt_read_len(v, ino, size - 5, 100), 5);
}

static void random_write(struct vt *v, arb_ino_t ino, uint8_t *model, uint64_t *size, uint64_t cap,
                         struct tu_rng *rng)
{
	uint64_t len = tu_rng_pct(rng, 30) ? tu_rng_range(rng, 1, 20) : tu_rng_range(rng, 1, 70000);
	uint64_t off = tu_rng_below(rng, cap - len);
	uint8_t *buf = model + off;

	for (uint64_t i = 0; i < len; i++)
		buf[i] = (uint8_t)tu_rng_next(rng);
	vt_write(v, ino, off, buf, len);
	if (off + len > *size)
		*size = off + len;
}

static void random_reads(struct vt *v, arb_ino_t ino, const uint8_t *model, uint64_t size,
                         struct tu_rng *rng)
{
	for (int i = 0; i < 20 && size > 0; i++) {
		uint64_t off = tu_rng_below(rng, size);
		uint64_t len = tu_rng_range(rng, 1, size - off);

		vt_expect_data(v, ino, off, model + off, len);
	}
}

static void test_rw_unaligned(void **state)
{
	const uint64_t cap = 2 * MIB + 12345;
	struct vt v;
	struct tu_rng rng;
	uint8_t *model = xcalloc(cap);
	uint64_t size = 0;
	arb_ino_t f;

	(void)state;
	vt_setup(&v);
	tu_rng_init(&rng, 7);
	f = vt_file(&v, v.root, "f");
	for (int op = 0; op < 300; op++) {
		tu_ctx_op((uint64_t)op);
		random_write(&v, f, model, &size, cap, &rng);
		if (op % 25 == 24) {
			random_reads(&v, f, model, size, &rng);
			expect_model(&v, f, model, size);
		}
		if (op % 100 == 99)
			vt_cycle(&v);
	}
	tu_ctx_op(UINT64_MAX);
	vt_cycle(&v);
	expect_model(&v, f, model, size);
	free(model);
	vt_finish(&v);
}

static void test_rw_sparse(void **state)
{
	struct vt v;
	arb_ino_t f;
	struct arb_stat st;

	(void)state;
	vt_setup(&v);
	f = vt_file(&v, v.root, "f");
	vt_write_pat(&v, f, 0, 10, 1);
	vt_write_pat(&v, f, MIB + 5, 100, 1);
	st = vt_stat(&v, f);
	TU_EQ_U64(st.size, MIB + 105);
	TU_EQ_U64(st.blocks, 16);
	vt_expect_pat(&v, f, 0, 10, 1);
	vt_expect_zero(&v, f, 10, MIB - 5);
	vt_expect_pat(&v, f, MIB + 5, 100, 1);
	vt_cycle(&v);
	vt_expect_zero(&v, f, 10, MIB - 5);
	vt_write_pat(&v, f, 500000, 3, 2);
	vt_expect_zero(&v, f, 10, 500000 - 10);
	vt_expect_pat(&v, f, 500000, 3, 2);
	vt_expect_zero(&v, f, 500003, MIB + 5 - 500003);
	vt_expect_pat(&v, f, MIB + 5, 100, 1);
	TU_EQ_U64(vt_stat(&v, f).blocks, 24);
	vt_cycle(&v);
	vt_expect_pat(&v, f, 500000, 3, 2);
	vt_finish(&v);
}

/* A small file may be inline; once it outgrows any item it must not be. */
static void test_inline_grow(void **state)
{
	static const uint64_t steps[] = {100, 3000, 9000, 69000, 300000};
	struct vt v;
	arb_ino_t f, g;
	uint64_t size = 0;

	(void)state;
	vt_setup(&v);
	f = vt_file(&v, v.root, "f");
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		vt_write_pat(&v, f, size, steps[i] - size, 5);
		size = steps[i];
		vt_expect_pat(&v, f, 0, size, 5);
		vt_cycle(&v);
		vt_expect_pat(&v, f, 0, size, 5);
		TU_EQ_U64(vt_stat(&v, f).size, size);
		if (size > arb_max_item_size(FS(&v)))
			TU_ASSERT(!has_inline(&v, f), "inline item in a file of %" PRIu64, size);
	}
	TU_EQ_U64(vt_stat(&v, f).blocks, (300000 + SECTOR - 1) / SECTOR * 8);
	/* a small write after a hole, and an inline file truncated upwards */
	g = vt_file(&v, v.root, "g");
	vt_write_pat(&v, g, 0, 100, 6);
	vt_truncate(&v, g, 200000);
	vt_expect_pat(&v, g, 0, 100, 6);
	vt_expect_zero(&v, g, 100, 200000 - 100);
	vt_write_pat(&v, g, 150000, 50, 6);
	vt_cycle(&v);
	vt_expect_pat(&v, g, 0, 100, 6);
	vt_expect_zero(&v, g, 100, 150000 - 100);
	vt_expect_pat(&v, g, 150000, 50, 6);
	vt_expect_zero(&v, g, 150050, 200000 - 150050);
	vt_finish(&v);
}

/* Overwriting the middle of an extent frees the middle at once. */
static void test_overwrite_middle(void **state)
{
	struct vt v;
	arb_ino_t f;
	uint64_t live0;

	(void)state;
	vt_setup(&v);
	f = vt_file(&v, v.root, "f");
	vt_write_pat(&v, f, 0, 2 * MIB, 1);
	vt_cycle(&v);
	live0 = vt_live(&v);
	vt_write_pat(&v, f, 768 * 1024, 512 * 1024, 2);
	TU_ASSERT(vt_live(&v) < live0 + 64, "live sectors %" PRIu64 " -> %" PRIu64, live0,
	          vt_live(&v));
	TU_EQ_U64(vt_stat(&v, f).blocks, 2 * MIB / 512);
	vt_expect_pat(&v, f, 0, 768 * 1024, 1);
	vt_expect_pat(&v, f, 768 * 1024, 512 * 1024, 2);
	vt_expect_pat(&v, f, 1280 * 1024, 768 * 1024, 1);
	vt_write_pat(&v, f, 1536 * 1024 + 3, 10, 3);
	vt_write_pat(&v, f, 1280 * 1024 - 50000, 100000, 4);
	vt_cycle(&v);
	vt_expect_pat(&v, f, 0, 768 * 1024, 1);
	vt_expect_pat(&v, f, 768 * 1024, 512 * 1024 - 50000, 2);
	vt_expect_pat(&v, f, 1280 * 1024 - 50000, 100000, 4);
	vt_expect_pat(&v, f, 1280 * 1024 + 50000, 256 * 1024 - 50000 + 3, 1);
	vt_expect_pat(&v, f, 1536 * 1024 + 3, 10, 3);
	vt_expect_pat(&v, f, 1536 * 1024 + 13, 512 * 1024 - 13, 1);
	TU_EQ_U64(vt_stat(&v, f).size, 2 * MIB);
	vt_finish(&v);
}

static void test_big_sparse(void **state)
{
	const uint64_t at = 5 * GIB + 123;
	struct vt v;
	arb_ino_t f;
	struct arb_stat st;

	(void)state;
	vt_setup(&v);
	f = vt_file(&v, v.root, "f");
	vt_write_pat(&v, f, 7, 10, 8);
	vt_write_pat(&v, f, at, SECTOR, 8);
	st = vt_stat(&v, f);
	TU_EQ_U64(st.size, at + SECTOR);
	TU_EQ_U64(st.blocks, 3 * 8);
	vt_expect_zero(&v, f, 4 * GIB - 4096, 8192);
	vt_expect_zero(&v, f, 5 * GIB - 1000, 1123);
	vt_expect_pat(&v, f, at, SECTOR, 8);
	vt_cycle(&v);
	vt_expect_pat(&v, f, 7, 10, 8);
	vt_expect_zero(&v, f, 17, 100000);
	vt_expect_zero(&v, f, 2 * GIB + 5, 100000);
	vt_expect_zero(&v, f, at - 1, 1);
	vt_expect_pat(&v, f, at, SECTOR, 8);
	TU_EQ_U64(vt_read_len(&v, f, at + 100, 2 * SECTOR), SECTOR - 100);
	vt_finish(&v);
}

static void test_max_file_size(void **state)
{
	const uint64_t max = ARB_MAX_FILE_SIZE;
	struct vt v;
	arb_ino_t f, g;
	uint8_t buf[100] = {1, 2, 3};
	size_t done = SIZE_MAX;
	struct arb_setattr sa = {.valid = ARB_SET_SIZE, .size = max + 1};
	struct arb_stat st;
	int rc;

	(void)state;
	vt_setup(&v);
	f = vt_file(&v, v.root, "f");
	g = vt_file(&v, v.root, "g");
	TU_RC_EQ(arb_vfs_write(FS(&v), f, max, buf, 1, &done), -EFBIG);
	TU_RC_EQ(arb_vfs_write(FS(&v), f, max + 4096, buf, 1, &done), -EFBIG);
	TU_RC_EQ(arb_vfs_write(FS(&v), f, UINT64_MAX - 10, buf, 100, &done), -EFBIG);
	TU_EQ_U64(vt_stat(&v, f).size, 0);
	/* across the limit: refused, or short up to it */
	rc = arb_vfs_write(FS(&v), g, max - 10, buf, 100, &done);
	TU_ASSERT(rc == -EFBIG || (rc == 0 && done == 10), "rc %s done %zu", tu_strerr(rc), done);
	TU_EQ_U64(vt_stat(&v, g).size, rc ? 0 : max);
	vt_write_pat(&v, f, max - SECTOR, SECTOR, 9);
	TU_EQ_U64(vt_stat(&v, f).size, max);
	rc = arb_vfs_setattr(FS(&v), f, &sa, &st);
	TU_ASSERT(rc == -EFBIG || rc == -EINVAL, "truncate past the limit: %s", tu_strerr(rc));
	TU_EQ_U64(vt_stat(&v, f).size, max);
	vt_cycle(&v);
	vt_expect_pat(&v, f, max - SECTOR, SECTOR, 9);
	vt_expect_zero(&v, f, max / 2, 10000);
	TU_EQ_U64(vt_read_len(&v, f, max, 10), 0);
	vt_finish(&v);
}

static void test_rw_errors(void **state)
{
	struct vt v;
	arb_ino_t f, d;
	uint8_t buf[16] = {0};
	size_t done = SIZE_MAX;

	(void)state;
	vt_setup(&v);
	f = vt_file(&v, v.root, "f");
	d = vt_mkdir(&v, v.root, "d");
	TU_RC_EQ(arb_vfs_write(FS(&v), d, 0, buf, 16, &done), -EISDIR);
	TU_RC_EQ(arb_vfs_write(FS(&v), v.root, 0, buf, 16, &done), -EISDIR);
	TU_RC_EQ(arb_vfs_read(FS(&v), d, 0, buf, 16, &done), -EISDIR);
	TU_RC_EQ(arb_vfs_write(FS(&v), v.root + 9999, 0, buf, 16, &done), -ENOENT);
	TU_RC_EQ(arb_vfs_read(FS(&v), v.root + 9999, 0, buf, 16, &done), -ENOENT);
	TU_RC(arb_vfs_write(FS(&v), f, 1000, buf, 0, &done));
	TU_EQ_U64(done, 0);
	TU_EQ_U64(vt_stat(&v, f).size, 0);
	TU_RC(arb_vfs_read(FS(&v), f, 0, buf, 16, &done));
	TU_EQ_U64(done, 0);
	TU_EQ_U64(vt_count_entries(&v, d), 0);
	vt_finish(&v);
}

/* ---- fallocate ---- */

static void test_falloc_prealloc(void **state)
{
	struct vt v;
	arb_ino_t f, g;
	struct arb_stat st;

	(void)state;
	vt_setup(&v);
	f = vt_file(&v, v.root, "f");
	TU_RC(arb_vfs_fallocate(FS(&v), f, 0, 0, MIB));
	st = vt_stat(&v, f);
	TU_EQ_U64(st.size, MIB);
	TU_ASSERT(st.blocks >= MIB / 512, "blocks %" PRIu64, st.blocks);
	vt_expect_zero(&v, f, 0, MIB);
	vt_write_pat(&v, f, 300000, 100, 1);
	vt_expect_zero(&v, f, 0, 300000);
	vt_expect_pat(&v, f, 300000, 100, 1);
	vt_expect_zero(&v, f, 300100, MIB - 300100);

	g = vt_file(&v, v.root, "g");
	vt_write_pat(&v, g, 0, 5000, 2);
	TU_RC(arb_vfs_fallocate(FS(&v), g, ARB_FALLOC_KEEP_SIZE, 0, 2 * MIB));
	st = vt_stat(&v, g);
	TU_EQ_U64(st.size, 5000);
	TU_ASSERT(st.blocks >= 2 * MIB / 512, "blocks %" PRIu64, st.blocks);
	TU_EQ_U64(vt_read_len(&v, g, 5000, 100), 0);
	vt_cycle(&v);
	vt_expect_pat(&v, g, 0, 5000, 2);
	vt_truncate(&v, g, MIB);
	vt_expect_pat(&v, g, 0, 5000, 2);
	vt_expect_zero(&v, g, 5000, MIB - 5000);
	vt_expect_zero(&v, f, 300100, MIB - 300100);
	vt_expect_pat(&v, f, 300000, 100, 1);
	vt_finish(&v);
}

static void test_falloc_punch(void **state)
{
	struct vt v;
	arb_ino_t f;
	struct arb_stat st;

	(void)state;
	vt_setup(&v);
	f = vt_file(&v, v.root, "f");
	vt_write_pat(&v, f, 0, MIB, 3);
	vt_cycle(&v);
	TU_RC(arb_vfs_fallocate(FS(&v), f, ARB_FALLOC_PUNCH_HOLE | ARB_FALLOC_KEEP_SIZE, 100000,
	                        300000));
	st = vt_stat(&v, f);
	TU_EQ_U64(st.size, MIB);
	/* sectors 25..96 are wholly inside the hole */
	TU_EQ_U64(st.blocks, (256 - 72) * 8);
	vt_expect_pat(&v, f, 0, 100000, 3);
	vt_expect_zero(&v, f, 100000, 300000);
	vt_expect_pat(&v, f, 400000, MIB - 400000, 3);
	TU_RC(arb_vfs_fallocate(FS(&v), f, ARB_FALLOC_PUNCH_HOLE | ARB_FALLOC_KEEP_SIZE, 2 * MIB,
	                        MIB));
	TU_EQ_U64(vt_stat(&v, f).size, MIB);
	TU_RC_EQ(arb_vfs_fallocate(FS(&v), f, ARB_FALLOC_PUNCH_HOLE, 0, 4096), -EOPNOTSUPP);
	vt_expect_pat(&v, f, 0, 4096, 3);
	vt_cycle(&v);
	vt_expect_pat(&v, f, 0, 100000, 3);
	vt_expect_zero(&v, f, 100000, 300000);
	vt_expect_pat(&v, f, 400000, MIB - 400000, 3);
	vt_finish(&v);
}

/* Punching or zeroing with KEEP_SIZE across the end of file keeps the size. */
static void test_falloc_across_eof(void **state)
{
	struct vt v;
	arb_ino_t f, g, h;

	(void)state;
	vt_setup(&v);
	f = vt_file(&v, v.root, "f");
	g = vt_file(&v, v.root, "g");
	h = vt_file(&v, v.root, "h");
	vt_write_pat(&v, f, 0, 5000, 5);
	vt_write_pat(&v, g, 0, 5000, 5);
	vt_write_pat(&v, h, 0, 100, 5);
	TU_RC(arb_vfs_fallocate(FS(&v), f, ARB_FALLOC_PUNCH_HOLE | ARB_FALLOC_KEEP_SIZE, 4500,
	                        10000));
	TU_RC(arb_vfs_fallocate(FS(&v), g, ARB_FALLOC_ZERO_RANGE | ARB_FALLOC_KEEP_SIZE, 4700,
	                        10000));
	TU_RC(arb_vfs_fallocate(FS(&v), h, ARB_FALLOC_PUNCH_HOLE | ARB_FALLOC_KEEP_SIZE, 50,
	                        10000));
	TU_EQ_U64(vt_stat(&v, f).size, 5000);
	TU_EQ_U64(vt_stat(&v, g).size, 5000);
	TU_EQ_U64(vt_stat(&v, h).size, 100);
	vt_cycle(&v);
	vt_expect_pat(&v, f, 0, 4500, 5);
	vt_expect_zero(&v, f, 4500, 500);
	vt_expect_pat(&v, g, 0, 4700, 5);
	vt_expect_zero(&v, g, 4700, 300);
	vt_expect_pat(&v, h, 0, 50, 5);
	vt_expect_zero(&v, h, 50, 50);
	TU_EQ_U64(vt_read_len(&v, f, 0, 10000), 5000);
	vt_finish(&v);
}

static void test_falloc_zero_range(void **state)
{
	static const int bad[] = {0x04, 0x08, 0x20, 0x40, 0x03 | 0x10, 0x100};
	struct vt v;
	arb_ino_t f, d;

	(void)state;
	vt_setup(&v);
	f = vt_file(&v, v.root, "f");
	d = vt_mkdir(&v, v.root, "d");
	vt_write_pat(&v, f, 0, MIB, 4);
	TU_RC(arb_vfs_fallocate(FS(&v), f, ARB_FALLOC_ZERO_RANGE, 5000, 10000));
	vt_expect_pat(&v, f, 0, 5000, 4);
	vt_expect_zero(&v, f, 5000, 10000);
	vt_expect_pat(&v, f, 15000, MIB - 15000, 4);
	TU_EQ_U64(vt_stat(&v, f).size, MIB);
	TU_RC(arb_vfs_fallocate(FS(&v), f, ARB_FALLOC_ZERO_RANGE | ARB_FALLOC_KEEP_SIZE, MIB - 100,
	                        1000));
	TU_EQ_U64(vt_stat(&v, f).size, MIB);
	vt_expect_zero(&v, f, MIB - 100, 100);
	TU_RC(arb_vfs_fallocate(FS(&v), f, ARB_FALLOC_ZERO_RANGE, MIB - 50, 1000));
	TU_EQ_U64(vt_stat(&v, f).size, MIB + 950);
	vt_expect_zero(&v, f, MIB - 100, 1050);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		TU_RC_EQ(arb_vfs_fallocate(FS(&v), f, bad[i], 0, 4096), -EOPNOTSUPP);
	TU_RC_EQ(arb_vfs_fallocate(FS(&v), d, 0, 0, 4096), -EISDIR);
	vt_expect_pat(&v, f, 0, 5000, 4);
	vt_cycle(&v);
	vt_expect_pat(&v, f, 0, 5000, 4);
	vt_expect_zero(&v, f, 5000, 10000);
	vt_expect_pat(&v, f, 15000, MIB - 15100, 4);
	vt_expect_zero(&v, f, MIB - 100, 1050);
	vt_finish(&v);
}

/* ---- lseek ---- */

static void expect_seek(struct vt *v, arb_ino_t ino, uint64_t off, int whence, int64_t want)
{
	uint64_t got = UINT64_MAX;
	int rc = arb_vfs_lseek(FS(v), ino, off, whence, &got);

	if (want < 0 && rc != (int)want)
		TU_FAIL("lseek(%" PRIu64 ", %s) returned %s, offset %" PRIu64 ", expected %s", off,
		        whence == SEEK_DATA ? "SEEK_DATA" : "SEEK_HOLE", tu_strerr(rc), got,
		        tu_strerr((int)want));
	if (want >= 0 && (rc != 0 || got != (uint64_t)want))
		TU_FAIL("lseek(%" PRIu64 ", %s) returned %s, offset %" PRIu64 ", expected %" PRId64,
		        off, whence == SEEK_DATA ? "SEEK_DATA" : "SEEK_HOLE", tu_strerr(rc), got,
		        want);
}

static void check_seeks(struct vt *v, arb_ino_t f, arb_ino_t full, arb_ino_t empty, arb_ino_t small)
{
	const int64_t m = (int64_t)MIB;

	expect_seek(v, f, 0, SEEK_DATA, 0);
	expect_seek(v, f, 0, SEEK_HOLE, 4096);
	expect_seek(v, f, 100, SEEK_DATA, 100);
	expect_seek(v, f, 100, SEEK_HOLE, 4096);
	expect_seek(v, f, 5000, SEEK_DATA, m);
	expect_seek(v, f, 5000, SEEK_HOLE, 5000);
	expect_seek(v, f, MIB, SEEK_HOLE, m + 4096);
	expect_seek(v, f, MIB + 4096, SEEK_DATA, -ENXIO);
	expect_seek(v, f, 2 * MIB, SEEK_HOLE, 2 * m);
	expect_seek(v, f, 3 * MIB, SEEK_DATA, -ENXIO);
	expect_seek(v, f, 3 * MIB, SEEK_HOLE, -ENXIO);
	expect_seek(v, f, 10 * MIB, SEEK_DATA, -ENXIO);
	expect_seek(v, full, 0, SEEK_HOLE, 20000);
	expect_seek(v, full, 19999, SEEK_DATA, 19999);
	expect_seek(v, full, 20000, SEEK_DATA, -ENXIO);
	expect_seek(v, empty, 0, SEEK_DATA, -ENXIO);
	expect_seek(v, empty, 0, SEEK_HOLE, -ENXIO);
	expect_seek(v, small, 0, SEEK_DATA, 0);
	expect_seek(v, small, 0, SEEK_HOLE, 100);
	expect_seek(v, small, 100, SEEK_HOLE, -ENXIO);
}

static void test_lseek(void **state)
{
	struct vt v;
	arb_ino_t f, full, empty, small;

	(void)state;
	vt_setup(&v);
	f = vt_file(&v, v.root, "f");
	full = vt_file(&v, v.root, "full");
	empty = vt_file(&v, v.root, "empty");
	small = vt_file(&v, v.root, "small");
	vt_write_pat(&v, f, 0, SECTOR, 1);
	vt_write_pat(&v, f, MIB, SECTOR, 1);
	vt_truncate(&v, f, 3 * MIB);
	vt_write_pat(&v, full, 0, 20000, 1);
	vt_write_pat(&v, small, 0, 100, 1);
	check_seeks(&v, f, full, empty, small);
	vt_cycle(&v);
	check_seeks(&v, f, full, empty, small);
	vt_finish(&v);
}

/* ---- extended attributes ---- */

static void expect_xattr(struct vt *v, arb_ino_t ino, const char *name, const void *val, size_t len)
{
	uint8_t *buf = xmalloc(len + 8);
	size_t got = SIZE_MAX;
	int rc;

	TU_RC(arb_vfs_getxattr(FS(v), ino, name, NULL, 0, &got));
	TU_EQ_U64(got, len);
	got = SIZE_MAX;
	rc = arb_vfs_getxattr(FS(v), ino, name, buf, len + 8, &got);
	if (rc)
		TU_FAIL("getxattr(%.60s) returned %s", name, tu_strerr(rc));
	TU_EQ_U64(got, len);
	TU_ASSERT(memcmp(buf, val, len) == 0, "value of %.60s", name);
	if (len > 1) /* (size 0 would be a query) */
		TU_RC_EQ(arb_vfs_getxattr(FS(v), ino, name, buf, len - 1, &got), -ERANGE);
	free(buf);
}

static void expect_no_xattr(struct vt *v, arb_ino_t ino, const char *name)
{
	char buf[8];
	size_t got;

	TU_RC_EQ(arb_vfs_getxattr(FS(v), ino, name, buf, sizeof(buf), &got), -ENODATA);
	TU_RC_EQ(arb_vfs_getxattr(FS(v), ino, name, NULL, 0, &got), -ENODATA);
}

/* The list: each of names[] exactly once, nothing else. */
static void expect_xattr_list(struct vt *v, arb_ino_t ino, const char *const *names, size_t n)
{
	size_t total = 0, got = SIZE_MAX, seen = 0;
	char *buf;

	for (size_t i = 0; i < n; i++)
		total += strlen(names[i]) + 1;
	TU_RC(arb_vfs_listxattr(FS(v), ino, NULL, 0, &got));
	TU_EQ_U64(got, total);
	buf = xmalloc(total + 8);
	TU_RC(arb_vfs_listxattr(FS(v), ino, buf, total + 8, &got));
	TU_EQ_U64(got, total);
	for (size_t off = 0; off < total; off += strlen(buf + off) + 1) {
		size_t hits = 0;

		for (size_t i = 0; i < n; i++)
			hits += strcmp(buf + off, names[i]) == 0;
		TU_ASSERT(hits == 1, "listed \"%.60s\" matches %zu names", buf + off, hits);
		seen++;
	}
	TU_EQ_U64(seen, n);
	if (total > 1) /* (size 0 would be a query) */
		TU_RC_EQ(arb_vfs_listxattr(FS(v), ino, buf, total - 1, &got), -ERANGE);
	free(buf);
}

static void test_xattr_basic(void **state)
{
	const char *const names[] = {"user.a", "user.empty", "trusted.t"};
	struct vt v;
	arb_ino_t f;
	struct span sp;
	size_t got;

	(void)state;
	vt_setup(&v);
	f = vt_file(&v, v.root, "f");
	expect_xattr_list(&v, f, names, 0);
	set_old_times(&v, f);
	span_begin(&sp);
	TU_RC(arb_vfs_setxattr(FS(&v), f, "user.a", "hello", 5, 0));
	span_end(&sp);
	TS_IN(vt_stat(&v, f).ctime, &sp);
	TS_OLD(vt_stat(&v, f).mtime);
	TU_RC(arb_vfs_setxattr(FS(&v), f, "user.empty", "", 0, 0));
	TU_RC(arb_vfs_setxattr(FS(&v), f, "trusted.t", "0123456789", 10, 0));
	expect_xattr(&v, f, "user.a", "hello", 5);
	expect_xattr(&v, f, "user.empty", "", 0);
	expect_xattr_list(&v, f, names, 3);
	TU_RC(arb_vfs_setxattr(FS(&v), f, "user.a", "a longer value", 14, 0));
	expect_xattr(&v, f, "user.a", "a longer value", 14);
	expect_no_xattr(&v, f, "user.b");
	vt_cycle(&v);
	expect_xattr(&v, f, "user.a", "a longer value", 14);
	expect_xattr_list(&v, f, names, 3);
	TU_RC(arb_vfs_removexattr(FS(&v), f, "user.a"));
	expect_no_xattr(&v, f, "user.a");
	TU_RC_EQ(arb_vfs_removexattr(FS(&v), f, "user.a"), -ENODATA);
	expect_xattr_list(&v, f, names + 1, 2);
	TU_RC_EQ(arb_vfs_getxattr(FS(&v), v.root + 9999, "user.a", NULL, 0, &got), -ENOENT);
	TU_RC_EQ(arb_vfs_setxattr(FS(&v), v.root + 9999, "user.a", "x", 1, 0), -ENOENT);
	vt_cycle(&v);
	expect_no_xattr(&v, f, "user.a");
	expect_xattr_list(&v, f, names + 1, 2);
	vt_finish(&v);
}

static void test_xattr_flags(void **state)
{
	struct vt v;
	arb_ino_t f;

	(void)state;
	vt_setup(&v);
	f = vt_mkdir(&v, v.root, "d");
	TU_RC_EQ(arb_vfs_setxattr(FS(&v), f, "user.x", "1", 1, ARB_XATTR_REPLACE), -ENODATA);
	expect_no_xattr(&v, f, "user.x");
	TU_RC(arb_vfs_setxattr(FS(&v), f, "user.x", "1", 1, ARB_XATTR_CREATE));
	TU_RC_EQ(arb_vfs_setxattr(FS(&v), f, "user.x", "22", 2, ARB_XATTR_CREATE), -EEXIST);
	expect_xattr(&v, f, "user.x", "1", 1);
	TU_RC(arb_vfs_setxattr(FS(&v), f, "user.x", "333", 3, ARB_XATTR_REPLACE));
	expect_xattr(&v, f, "user.x", "333", 3);
	TU_RC(arb_vfs_removexattr(FS(&v), f, "user.x"));
	TU_RC_EQ(arb_vfs_setxattr(FS(&v), f, "user.x", "4", 1, ARB_XATTR_REPLACE), -ENODATA);
	vt_finish(&v);
}

static void test_xattr_sizes(void **state)
{
	struct vt v;
	arb_ino_t f;
	size_t max, got;
	uint8_t *val;
	char name[ARB_XATTR_NAME_MAX + 2];
	int rc;

	(void)state;
	vt_setup(&v);
	f = vt_file(&v, v.root, "f");
	max = arb_vfs_xattr_max(FS(&v));
	TU_ASSERT(max >= 1024 && max <= 65535, "xattr max %zu", max);
	val = xmalloc(max + 1);
	pat_fill(val, 0, max + 1, 11);
	TU_RC_EQ(arb_vfs_setxattr(FS(&v), f, "user.big", val, max + 1, 0), -E2BIG);
	expect_no_xattr(&v, f, "user.big");
	TU_RC(arb_vfs_setxattr(FS(&v), f, "user.big", val, max, 0));
	memset(name, 'n', sizeof(name));
	memcpy(name, "user.", 5);
	name[ARB_XATTR_NAME_MAX] = 0;
	TU_RC(arb_vfs_setxattr(FS(&v), f, name, val + 1, max, 0));
	name[ARB_XATTR_NAME_MAX] = 'n';
	name[ARB_XATTR_NAME_MAX + 1] = 0;
	rc = arb_vfs_setxattr(FS(&v), f, name, "x", 1, 0);
	TU_ASSERT(rc == -ERANGE || rc == -ENAMETOOLONG, "256-byte name: %s", tu_strerr(rc));
	name[ARB_XATTR_NAME_MAX] = 0;
	vt_cycle(&v);
	expect_xattr(&v, f, "user.big", val, max);
	expect_xattr(&v, f, name, val + 1, max);
	TU_RC_EQ(arb_vfs_getxattr(FS(&v), f, "user.big", val, 10, &got), -ERANGE);
	free(val);
	vt_finish(&v);
}

/* A minimal valid POSIX ACL: user::rw-, group::r--, other::r--. */
static const uint8_t acl[] = {2,    0,    0, 0, 1,    0,    6,    0,    0xff, 0xff,
                              0xff, 0xff, 4, 0, 4,    0,    0xff, 0xff, 0xff, 0xff,
                              0x20, 0,    4, 0, 0xff, 0xff, 0xff, 0xff};

static void test_xattr_namespaces(void **state)
{
	static const char *const names[] = {"user.u", "trusted.t", "security.s",
	                                    "system.posix_acl_access", "system.posix_acl_default"};
	static const char *const bad[] = {"foo.bar", "system.other", "os2.x", "user", "xattr"};
	struct vt v;
	arb_ino_t d;
	size_t got;

	(void)state;
	vt_setup(&v);
	d = vt_mkdir(&v, v.root, "d");
	for (size_t i = 0; i < 5; i++)
		TU_RC(arb_vfs_setxattr(FS(&v), d, names[i], acl, sizeof(acl), ARB_XATTR_CREATE));
	for (size_t i = 0; i < 5; i++) {
		TU_RC_EQ(arb_vfs_setxattr(FS(&v), d, bad[i], "x", 1, 0), -EOPNOTSUPP);
		TU_RC_EQ(arb_vfs_getxattr(FS(&v), d, bad[i], NULL, 0, &got), -EOPNOTSUPP);
		TU_RC_EQ(arb_vfs_removexattr(FS(&v), d, bad[i]), -EOPNOTSUPP);
	}
	expect_xattr_list(&v, d, names, 5);
	vt_cycle(&v);
	for (size_t i = 0; i < 5; i++)
		expect_xattr(&v, d, names[i], acl, sizeof(acl));
	expect_xattr_list(&v, d, names, 5);
	TU_RC(arb_vfs_removexattr(FS(&v), d, "system.posix_acl_access"));
	TU_RC(arb_vfs_removexattr(FS(&v), d, "system.posix_acl_default"));
	expect_xattr_list(&v, d, names, 3);
	expect_no_xattr(&v, d, "system.posix_acl_access");
	vt_finish(&v);
}

/* Many attributes on one inode, values of many sizes. */
static void test_xattr_many(void **state)
{
	enum { N = 80 };
	struct vt v;
	arb_ino_t f;
	char name[N][32];
	const char *names[N];
	uint8_t val[4000];

	(void)state;
	vt_setup(&v);
	f = vt_file(&v, v.root, "f");
	pat_fill(val, 0, sizeof(val), 12);
	for (int i = 0; i < N; i++) {
		snprintf(name[i], sizeof(name[i]), "user.attr-%d", i);
		names[i] = name[i];
		TU_RC(arb_vfs_setxattr(FS(&v), f, name[i], val + i, (size_t)i * 47, 0));
	}
	expect_xattr_list(&v, f, names, N);
	vt_cycle(&v);
	for (int i = 0; i < N; i++)
		expect_xattr(&v, f, name[i], val + i, (size_t)i * 47);
	for (int i = 0; i < N; i += 2)
		TU_RC(arb_vfs_removexattr(FS(&v), f, name[i]));
	for (int i = 0; i < N / 2; i++)
		names[i] = name[2 * i + 1];
	expect_xattr_list(&v, f, names, N / 2);
	vt_finish(&v);
}

/* ---- open files and orphans ---- */

static void test_unlinked_open(void **state)
{
	struct vt v;
	arb_ino_t f, g;
	uint64_t live;
	struct arb_stat st;

	(void)state;
	vt_setup(&v);
	f = vt_file(&v, v.root, "f");
	g = vt_file(&v, v.root, "g");
	vt_write_pat(&v, f, 0, 4 * MIB, 1);
	vt_cycle(&v);
	TU_RC_EQ(arb_vfs_open(FS(&v), v.root + 9999), -ENOENT);
	TU_RC(arb_vfs_open(FS(&v), g));
	TU_RC(arb_vfs_release(FS(&v), g));
	vt_expect_nlink(&v, g, 1);
	TU_RC(arb_vfs_open(FS(&v), f));
	TU_RC(arb_vfs_open(FS(&v), f));
	TU_RC(arb_vfs_unlink(FS(&v), v.root, "f"));
	vt_expect_missing(&v, v.root, "f");
	st = vt_stat(&v, f);
	TU_EQ_U64(st.nlink, 0);
	TU_EQ_U64(st.size, 4 * MIB);
	vt_expect_pat(&v, f, 0, 4 * MIB, 1);
	vt_write_pat(&v, f, 4 * MIB, 10, 1);
	tu_commit(FS(&v));
	vt_expect_pat(&v, f, 0, 4 * MIB + 10, 1);
	TU_RC(arb_vfs_release(FS(&v), f));
	vt_expect_pat(&v, f, 4 * MIB - 10, 20, 1);
	live = vt_live(&v);
	TU_RC(arb_vfs_release(FS(&v), f));
	vt_expect_gone(&v, f);
	TU_ASSERT(vt_live(&v) + 1024 <= live, "live sectors %" PRIu64 " -> %" PRIu64, live,
	          vt_live(&v));
	TU_EQ_U64(vt_count_entries(&v, v.root), 1);
	vt_finish(&v);
}

/* forget drops n opens at once; the last one frees an unlinked inode. */
static void test_forget(void **state)
{
	struct vt v;
	arb_ino_t f;
	uint64_t live;

	(void)state;
	vt_setup(&v);
	f = vt_file(&v, v.root, "f");
	vt_write_pat(&v, f, 0, 2 * MIB, 3);
	vt_cycle(&v);
	for (int i = 0; i < 5; i++)
		TU_RC(arb_vfs_open(FS(&v), f));
	TU_RC(arb_vfs_unlink(FS(&v), v.root, "f"));
	TU_RC(arb_vfs_forget(FS(&v), f, 0));
	TU_RC(arb_vfs_forget(FS(&v), f, 3));
	vt_expect_pat(&v, f, 0, 2 * MIB, 3);
	TU_RC(arb_vfs_release(FS(&v), f));
	vt_expect_nlink(&v, f, 0);
	live = vt_live(&v);
	TU_RC(arb_vfs_forget(FS(&v), f, 1));
	vt_expect_gone(&v, f);
	TU_ASSERT(vt_live(&v) + 512 <= live, "live sectors %" PRIu64 " -> %" PRIu64, live,
	          vt_live(&v));
	vt_finish(&v);
}

static void test_orphan_cleanup(void **state)
{
	struct vt v;
	arb_ino_t f, g;
	uint64_t live, freed = UINT64_MAX;

	(void)state;
	vt_setup(&v);
	f = vt_file(&v, v.root, "f");
	g = vt_file(&v, v.root, "g");
	vt_write_pat(&v, f, 0, 4 * MIB, 1);
	vt_write_pat(&v, g, 0, 100, 2);
	vt_cycle(&v);
	/* not committed: the unlink vanishes, nothing to clean up */
	TU_RC(arb_vfs_open(FS(&v), f));
	TU_RC(arb_vfs_unlink(FS(&v), v.root, "f"));
	TU_EQ_U64(vt_reopen(&v), 0);
	vt_expect_entry(&v, v.root, "f", f);
	vt_expect_nlink(&v, f, 1);
	/* committed while open: freed at the next open */
	TU_RC(arb_vfs_open(FS(&v), f));
	TU_RC(arb_vfs_open(FS(&v), g));
	TU_RC(arb_vfs_unlink(FS(&v), v.root, "f"));
	TU_RC(arb_vfs_unlink(FS(&v), v.root, "g"));
	tu_commit(FS(&v));
	tu_fs_reopen(&v.t);
	live = vt_live(&v);
	TU_RC(arb_vfs_orphan_cleanup(FS(&v), &freed));
	TU_EQ_U64(freed, 2);
	TU_ASSERT(vt_live(&v) + 1024 <= live, "live sectors %" PRIu64 " -> %" PRIu64, live,
	          vt_live(&v));
	vt_expect_gone(&v, f);
	vt_expect_gone(&v, g);
	TU_RC(arb_vfs_orphan_cleanup(FS(&v), &freed));
	TU_EQ_U64(freed, 0);
	TU_EQ_U64(vt_count_entries(&v, v.root), 0);
	vt_finish(&v);
}

/* ---- statfs ---- */

/* Commits that each change something, so deferred frees come back. */
static void vt_churn(struct vt *v, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		struct arb_setattr sa = {.valid = ARB_SET_ATIME, .atime = {.tv_sec = 1000 + i}};

		vt_setattr(v, v->root, &sa);
		tu_commit(FS(v));
	}
}

static struct arb_statfs vt_statfs(struct vt *v)
{
	struct arb_statfs sf;
	struct arb_fs_info info;

	TU_RC(arb_vfs_statfs(FS(v), &sf));
	arb_fs_info(FS(v), &info);
	TU_EQ_U64(sf.frsize, ARB_SECTOR_SIZE);
	TU_ASSERT(sf.bsize >= ARB_SECTOR_SIZE, "bsize %u", sf.bsize);
	TU_EQ_U64(sf.namemax, ARB_NAME_MAX);
	TU_EQ_U64(sf.blocks, info.total_sectors);
	TU_ASSERT(sf.blocks >= sf.bfree && sf.bfree >= sf.bavail,
	          "blocks %" PRIu64 " bfree %" PRIu64 " bavail %" PRIu64, sf.blocks, sf.bfree,
	          sf.bavail);
	TU_ASSERT(sf.files >= sf.ffree && sf.ffree > 0);
	return sf;
}

static void expect_drop(uint64_t base, uint64_t now, uint64_t lo, uint64_t hi)
{
	TU_ASSERT(now <= base && base - now >= lo && base - now <= hi,
	          "bfree %" PRIu64 " -> %" PRIu64 ", expected a drop in [%" PRIu64 ", %" PRIu64 "]",
	          base, now, lo, hi);
}

static void test_statfs(void **state)
{
	const uint64_t sectors = 8 * MIB / SECTOR;
	struct vt v;
	arb_ino_t f;
	uint64_t base;
	struct arb_statfs sf;

	(void)state;
	vt_setup(&v);
	vt_churn(&v, TU_DRAIN_COMMITS);
	base = vt_statfs(&v).bfree;
	f = vt_file(&v, v.root, "f");
	vt_write_pat(&v, f, 0, 8 * MIB, 1);
	expect_drop(base, vt_statfs(&v).bfree, sectors, sectors + 512);
	tu_commit(FS(&v));
	expect_drop(base, vt_statfs(&v).bfree, sectors, sectors + 1024);
	TU_RC(arb_vfs_unlink(FS(&v), v.root, "f"));
	vt_churn(&v, TU_DRAIN_COMMITS);
	sf = vt_statfs(&v);
	TU_ASSERT(sf.bfree + 64 >= base && sf.bfree <= base + 64,
	          "bfree %" PRIu64 " after freeing, %" PRIu64 " before", sf.bfree, base);
	vt_finish(&v);
}

/*
 * Space freed by a delete is usable at once: a write that needs it finds
 * it quarantined (waiting out the superblock ring) and the layer commits
 * until it is released, instead of failing with ENOSPC while statfs says
 * the space is free.
 */
static void test_space_reuse(void **state)
{
	struct vt v;
	struct tu_fs small;
	arb_ino_t root, f;
	struct arb_statfs sf;
	uint64_t len;
	uint8_t *buf;
	size_t n;

	(void)state;
	memset(&v, 0, sizeof(v));
	tu_fs_create(&small, 32 * MIB, 0);
	v.t = small;
	TU_RC(arb_vfs_init(FS(&v), 0755, &cred));
	TU_RC(arb_vfs_root(FS(&v), 0, &root));
	v.root = root;
	tu_commit(FS(&v));
	sf = vt_statfs(&v);
	len = (sf.bavail - 256) * SECTOR; /* room for the metadata */
	buf = xmalloc(len);
	memset(buf, 0x5a, len);
	f = vt_file(&v, root, "a");
	TU_RC(arb_vfs_write(FS(&v), f, 0, buf, len, &n));
	tu_commit(FS(&v));
	TU_RC(arb_vfs_unlink(FS(&v), root, "a"));
	tu_commit(FS(&v));
	sf = vt_statfs(&v);
	TU_ASSERT(sf.bavail * SECTOR >= len, "bavail %" PRIu64 " after the delete",
	          sf.bavail * SECTOR);
	f = vt_file(&v, root, "b");
	TU_RC(arb_vfs_write(FS(&v), f, 0, buf, len, &n));
	TU_EQ_U64(n, len);
	free(buf);
	vt_finish(&v);
}

/* copy_file_range: aligned parts share extents (no new data sectors),
 * unaligned parts are copied; the copies stay independent afterwards. */
static void test_copy_range(void **state)
{
	struct vt v;
	arb_ino_t a, b;
	uint64_t copied, before, after;
	uint8_t *want = xmalloc(4 * MIB);
	size_t got;

	(void)state;
	vt_setup(&v);
	a = vt_file(&v, v.root, "a");
	b = vt_file(&v, v.root, "b");
	vt_write_pat(&v, a, 0, 3 * MIB + 1, 1);
	tu_commit(FS(&v));
	before = tu_used_sectors(FS(&v));
	TU_RC(arb_vfs_copy_range(FS(&v), a, 0, b, 0, UINT64_MAX, &copied));
	TU_EQ_U64(copied, 3 * MIB + 1);
	after = tu_used_sectors(FS(&v));
	TU_ASSERT(after < before + 64, "a shared copy took %" PRIu64 " sectors", after - before);
	TU_RC(arb_vfs_read(FS(&v), a, 0, want, 4 * MIB, &got));
	expect_model(&v, b, want, 3 * MIB + 1);
	/* the source changes, the copy does not */
	vt_write_pat(&v, a, 100000, 5000, 7);
	expect_model(&v, b, want, 3 * MIB + 1);
	/* unaligned: copied */
	TU_RC(arb_vfs_copy_range(FS(&v), a, 12345, b, 777, 500000, &copied));
	TU_EQ_U64(copied, 500000);
	TU_RC(arb_vfs_read(FS(&v), a, 12345, want + 777, 500000, &got));
	expect_model(&v, b, want, 3 * MIB + 1);
	/* past the end of the source: clamped; overlapping a file with itself */
	TU_RC(arb_vfs_copy_range(FS(&v), a, 3 * MIB, b, 0, 10, &copied));
	TU_EQ_U64(copied, 1);
	TU_RC(arb_vfs_copy_range(FS(&v), a, 4 * MIB, b, 0, 10, &copied));
	TU_EQ_U64(copied, 0);
	TU_RC_EQ(arb_vfs_copy_range(FS(&v), a, 0, a, 4096, 8192, &copied), -EINVAL);
	TU_RC_EQ(arb_vfs_copy_range(FS(&v), a, 0, v.root, 0, 10, &copied), -EISDIR);
	free(want);
	vt_finish(&v);
}

/* ---- data checksums ---- */

/* Device address of file offset off (inside a REG extent). */
static uint64_t data_address(struct vt *v, arb_ino_t ino, uint64_t off)
{
	struct ext e[64];
	size_t n = vt_extents(v, ino, e, 64);

	for (size_t i = 0; i < n && i < 64; i++)
		if (e[i].type == ARB_EXTENT_REG && off >= e[i].off && off < e[i].off + e[i].len)
			return e[i].disk + (off - e[i].off);
	TU_FAIL("no data extent covers offset %" PRIu64, off);
}

static void expect_eio(struct vt *v, arb_ino_t ino, uint64_t off, size_t len)
{
	uint8_t *buf = xmalloc(len);
	size_t got = 0;

	TU_RC_EQ(arb_vfs_read(FS(v), ino, off, buf, len, &got), -EIO);
	free(buf);
}

static void test_data_csum(void **state)
{
	const uint64_t bad = 3 * SECTOR;
	struct vt v;
	arb_ino_t f;
	uint64_t addr;
	uint8_t want[ARB_SECTOR_SIZE], *dev;

	(void)state;
	vt_setup(&v);
	f = vt_file(&v, v.root, "f");
	vt_write_pat(&v, f, 0, 8 * SECTOR, 13);
	vt_cycle(&v);
	addr = data_address(&v, f, bad);
	TU_ASSERT(addr % SECTOR == 0 && addr + SECTOR <= DEV_SIZE, "address %" PRIu64, addr);
	dev = arb_memdev_data(v.t.dev);
	pat_fill(want, bad, SECTOR, 13);
	TU_ASSERT(memcmp(dev + addr, want, SECTOR) == 0, "the data is not at %" PRIu64, addr);
	dev[addr + 100] ^= 0x20;
	TU_EQ_U64(vt_reopen(&v), 0);
	expect_eio(&v, f, 0, 8 * SECTOR);
	expect_eio(&v, f, bad + 100, 1);
	expect_eio(&v, f, bad + 2000, 10);
	expect_eio(&v, f, bad - 10, 20);
	vt_expect_pat(&v, f, 0, bad, 13);
	vt_expect_pat(&v, f, bad + SECTOR, 4 * SECTOR, 13);
	/* overwriting the whole sector replaces it */
	vt_write_pat(&v, f, bad, SECTOR, 14);
	vt_expect_pat(&v, f, bad, SECTOR, 14);
	vt_expect_pat(&v, f, 0, bad, 13);
	vt_finish(&v);
}

/* A write into part of a corrupt sector fails with -EIO (it must not
 * launder the bad bytes) and, as nothing changed, leaves the filesystem
 * usable. */
static void test_data_csum_partial_write(void **state)
{
	const uint64_t bad = 2 * SECTOR;
	struct vt v;
	arb_ino_t f;
	uint8_t buf[10] = {0};
	size_t done = 0;

	(void)state;
	vt_setup(&v);
	f = vt_file(&v, v.root, "f");
	vt_write_pat(&v, f, 0, 4 * SECTOR, 15);
	vt_cycle(&v);
	arb_memdev_data(v.t.dev)[data_address(&v, f, bad) + 7] ^= 1;
	TU_EQ_U64(vt_reopen(&v), 0);
	TU_RC_EQ(arb_vfs_write(FS(&v), f, bad + 5, buf, sizeof(buf), &done), -EIO);
	expect_eio(&v, f, bad, SECTOR);
	vt_expect_pat(&v, f, bad + SECTOR, SECTOR, 15);
	vt_write_pat(&v, f, 0, 100, 16);
	vt_write_pat(&v, f, bad, SECTOR, 16);
	vt_expect_pat(&v, f, bad, SECTOR, 16);
	vt_finish(&v);
}

/* ---- link count limit ---- */

static void test_link_max(void **state)
{
	struct vt v;
	arb_ino_t f, d;
	struct arb_stat st;
	char name[16];

	(void)state;
	vt_setup(&v);
	d = vt_mkdir(&v, v.root, "d");
	f = vt_file(&v, v.root, "f");
	for (unsigned i = 2; i <= ARB_LINK_MAX; i++) {
		snprintf(name, sizeof(name), "%x", i);
		TU_RC(arb_vfs_link(FS(&v), f, d, name, &st));
	}
	vt_expect_nlink(&v, f, ARB_LINK_MAX);
	TU_RC_EQ(arb_vfs_link(FS(&v), f, d, "one-more", &st), -EMLINK);
	vt_expect_missing(&v, d, "one-more");
	TU_RC(arb_vfs_unlink(FS(&v), d, "2"));
	TU_RC(arb_vfs_link(FS(&v), f, d, "one-more", &st));
	TU_EQ_U64(st.nlink, ARB_LINK_MAX);
	vt_finish(&v);
}

/* Two subvolumes: separate numbering spaces that never collide, and no
 * link or rename between them. */
static void test_subvolumes(void **state)
{
	struct vt v;
	struct arb_stat st;
	arb_ino_t root2, f1, f2;
	uint64_t id;

	(void)state;
	vt_setup(&v);
	TU_RC(arb_vfs_subvol_create(FS(&v), 0700, &cred, &id));
	TU_RC(arb_vfs_root(FS(&v), id, &root2));
	TU_ASSERT(root2 != v.root, "both roots are %" PRIu64, root2);
	TU_EQ_U64(arb_ino_subvol(root2), id);
	TU_EQ_U64(arb_ino_local(root2), arb_ino_local(v.root));
	st = vt_stat(&v, root2);
	TU_EQ_U64(st.mode, S_IFDIR | 0700);
	TU_EQ_U64(st.uid, cred.uid);
	f1 = vt_file(&v, v.root, "f");
	f2 = vt_file(&v, root2, "f");
	/* same local number in each subvolume, distinct numbers overall */
	TU_EQ_U64(arb_ino_local(f1), arb_ino_local(f2));
	TU_ASSERT(f1 != f2, "inode %" PRIu64 " in both subvolumes", f1);
	vt_write_pat(&v, f1, 0, 10000, 1);
	vt_write_pat(&v, f2, 0, 20000, 2);
	TU_RC_EQ(arb_vfs_link(FS(&v), f1, root2, "g", &st), -EXDEV);
	TU_RC_EQ(arb_vfs_rename(FS(&v), v.root, "f", root2, "g", 0), -EXDEV);
	TU_RC_EQ(arb_vfs_rename(FS(&v), root2, "f", v.root, "f", ARB_RENAME_EXCHANGE), -EXDEV);
	vt_expect_missing(&v, root2, "g");
	tu_commit(FS(&v));
	tu_fs_reopen(&v.t);
	TU_RC(arb_vfs_root(FS(&v), id, &root2));
	vt_expect_entry(&v, root2, "f", f2);
	vt_expect_entry(&v, v.root, "f", f1);
	TU_EQ_U64(vt_stat(&v, f1).size, 10000);
	TU_EQ_U64(vt_stat(&v, f2).size, 20000);
	TU_RC_EQ(arb_vfs_root(FS(&v), id + 1, &root2), -ENOENT);
	vt_finish(&v);
}

int main(void)
{
	struct tu_tests ts = {0};

	/* ARBOR_TEST_ONLY=pattern: run only the matching tests */
	if (getenv("ARBOR_TEST_ONLY"))
		cmocka_set_test_filter(getenv("ARBOR_TEST_ONLY"));

	tu_tests_add(&ts, "root", test_root);
	tu_tests_add(&ts, "lookup", test_lookup);
	tu_tests_add(&ts, "mknod", test_mknod);
	tu_tests_add(&ts, "mkdir", test_mkdir);
	tu_tests_add(&ts, "symlink", test_symlink);
	tu_tests_add(&ts, "link", test_link);
	tu_tests_add(&ts, "link_max", test_link_max);
	tu_tests_add(&ts, "unlink", test_unlink);
	tu_tests_add(&ts, "rmdir", test_rmdir);
	tu_tests_add(&ts, "dir_nlink", test_dir_nlink);
	tu_tests_add(&ts, "rename_move", test_rename_move);
	tu_tests_add(&ts, "rename_same", test_rename_same);
	tu_tests_add(&ts, "rename_over", test_rename_over);
	tu_tests_add(&ts, "rename_loop", test_rename_loop);
	tu_tests_add(&ts, "rename_noreplace", test_rename_noreplace);
	tu_tests_add(&ts, "rename_exchange", test_rename_exchange);
	tu_tests_add(&ts, "rename_flags_invalid", test_rename_flags_invalid);
	tu_tests_add(&ts, "times_parent", test_times_parent);
	tu_tests_add(&ts, "times_inode", test_times_inode);
	tu_tests_add(&ts, "times_explicit", test_times_explicit);
	tu_tests_add(&ts, "setattr_owner_mode", test_setattr_owner_mode);
	tu_tests_add(&ts, "setattr_size", test_setattr_size);
	tu_tests_add(&ts, "readdir", test_readdir);
	tu_tests_add(&ts, "readdir_mutating", test_readdir_mutating);
	tu_tests_add(&ts, "rw_unaligned", test_rw_unaligned);
	tu_tests_add(&ts, "rw_sparse", test_rw_sparse);
	tu_tests_add(&ts, "inline_grow", test_inline_grow);
	tu_tests_add(&ts, "overwrite_middle", test_overwrite_middle);
	tu_tests_add(&ts, "big_sparse", test_big_sparse);
	tu_tests_add(&ts, "max_file_size", test_max_file_size);
	tu_tests_add(&ts, "rw_errors", test_rw_errors);
	tu_tests_add(&ts, "falloc_prealloc", test_falloc_prealloc);
	tu_tests_add(&ts, "falloc_punch", test_falloc_punch);
	tu_tests_add(&ts, "falloc_zero_range", test_falloc_zero_range);
	tu_tests_add(&ts, "falloc_across_eof", test_falloc_across_eof);
	tu_tests_add(&ts, "lseek", test_lseek);
	tu_tests_add(&ts, "xattr_basic", test_xattr_basic);
	tu_tests_add(&ts, "xattr_flags", test_xattr_flags);
	tu_tests_add(&ts, "xattr_sizes", test_xattr_sizes);
	tu_tests_add(&ts, "xattr_namespaces", test_xattr_namespaces);
	tu_tests_add(&ts, "xattr_many", test_xattr_many);
	tu_tests_add(&ts, "unlinked_open", test_unlinked_open);
	tu_tests_add(&ts, "forget", test_forget);
	tu_tests_add(&ts, "orphan_cleanup", test_orphan_cleanup);
	tu_tests_add(&ts, "statfs", test_statfs);
	tu_tests_add(&ts, "data_csum", test_data_csum);
	tu_tests_add(&ts, "data_csum_partial_write", test_data_csum_partial_write);
	tu_tests_add(&ts, "subvolumes", test_subvolumes);
	tu_tests_add(&ts, "space_reuse", test_space_reuse);
	tu_tests_add(&ts, "copy_range", test_copy_range);
	return tu_tests_run(&ts, "vfs");
}
