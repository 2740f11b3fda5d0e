/* SPDX-License-Identifier: MIT */
/*
 * test_subvol.c - subvolumes and snapshots (arbor/vfs.h, core/subvol.c and
 * the subvolume links of core/dir.c).
 *
 *  - basics: a subvolume made in a directory is a directory entry naming
 *    the root of another tree (lookup, readdir, '..', the parent's nlink),
 *    the errors of make / snapshot / delete, rmdir and unlink of a link
 *    refused, the link renamed to a free name and surviving a reopen,
 *    rename onto names refused, a snapshot equal to its source, deletion
 *    (its inodes gone at once);
 *  - read-only snapshots: every mutating call fails with EROFS and changes
 *    nothing, the filesystem stays healthy, reads work, a writable
 *    snapshot of a read-only one is writable;
 *  - an isolation model: many subvolumes (files in a few directories) with
 *    random writes, truncates, copies across subvolumes, creates, unlinks,
 *    snapshots (chains, read-only, placed inside other subvolumes),
 *    subvolumes made, links renamed, snapshots deleted; every subvolume is
 *    compared with the model, across commits and reopens (with and
 *    without a commit), and arb_check stays clean;
 *  - space: many snapshots modified on both sides and deleted give back
 *    exactly the space they took;
 *  - inode numbers: one file in a source and three snapshots has four
 *    distinct numbers;
 *  - power cuts: a recorded workload of snapshots, deletions and writes;
 *    every prefix of its device events (and random subsets of unflushed
 *    writes) opens as the last durable commit or the one in flight, with
 *    every subvolume equal to that state.
 */
#include "testutil.h"

#include "arbor/vfs.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define KIB 1024ull
#define MIB (1ull << 20)
#define DEV_SIZE (128 * MIB)

static const struct arb_cred cred = {.uid = 1000, .gid = 100};

/* ---- helpers ---- */

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	TU_ASSERT(p != NULL, "realloc(%zu)", n);
	return p;
}

static arb_ino_t root_of(uint64_t id)
{
	return arb_ino_make(id, ARB_FIRST_INO);
}

static bool fs_failed(struct arb_fs *fs)
{
	return arb_fs_failed_reason(fs) != NULL;
}

static void expect_healthy(struct arb_fs *fs)
{
	const char *why = arb_fs_failed_reason(fs);

	TU_ASSERT(why == NULL, "filesystem failed: %s", why);
	tu_check_clean(fs);
}

static uint64_t fs_generation(struct arb_fs *fs)
{
	struct arb_fs_info info;

	arb_fs_info(fs, &info);
	return info.generation;
}

/* Bytes of content `tag` at file offset off. */
static uint8_t pat_byte(uint64_t tag, uint64_t off)
{
	return (uint8_t)(tu_mix64(tag * 0x100000001b3ull + (off >> 3)) >> ((off & 7) * 8));
}

static void pat_fill(uint8_t *buf, uint64_t off, size_t len, uint64_t tag)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = pat_byte(tag, off + i);
}

static void write_pat(struct arb_fs *fs, arb_ino_t ino, uint64_t off, size_t len, uint64_t tag)
{
	uint8_t *buf = xrealloc(NULL, len);
	size_t done = 0;

	pat_fill(buf, off, len, tag);
	TU_RC(arb_vfs_write(fs, ino, off, buf, len, &done));
	TU_EQ_U64(done, len);
	free(buf);
}

static struct arb_stat stat_of(struct arb_fs *fs, arb_ino_t ino)
{
	struct arb_stat st;

	TU_RC(arb_vfs_getattr(fs, ino, &st));
	TU_EQ_U64(st.ino, ino);
	return st;
}

static void expect_gone(struct arb_fs *fs, arb_ino_t ino)
{
	struct arb_stat st;
	uint8_t b;
	size_t got;

	TU_RC_EQ(arb_vfs_getattr(fs, ino, &st), -ENOENT);
	TU_RC_EQ(arb_vfs_read(fs, ino, 0, &b, 1, &got), -ENOENT);
}

static uint64_t subvol_of(struct arb_stat *st)
{
	return arb_ino_subvol(st->ino);
}

static struct arb_subvol sv_get(struct arb_fs *fs, uint64_t id)
{
	struct arb_subvol sv;

	TU_RC(arb_vfs_subvol_get(fs, id, &sv));
	TU_EQ_U64(sv.id, id);
	return sv;
}

static int count_fn(void *ctx, const struct arb_subvol *sv)
{
	(void)sv;
	(*(unsigned *)ctx)++;
	return 0;
}

static unsigned subvol_count(struct arb_fs *fs)
{
	unsigned n = 0;

	TU_RC(arb_vfs_subvol_list(fs, count_fn, &n));
	return n;
}

/* ---- listing a directory ---- */

struct lent {
	char name[ARB_NAME_MAX + 1];
	arb_ino_t ino;
	unsigned dtype;
};

struct listing {
	struct lent *v;
	size_t n;
};

static int listing_fn(void *ctx, const char *name, size_t name_len, arb_ino_t ino, unsigned dtype,
                      uint64_t cookie)
{
	struct listing *l = ctx;

	(void)cookie;
	TU_ASSERT(name_len >= 1 && name_len <= ARB_NAME_MAX);
	l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
	memcpy(l->v[l->n].name, name, name_len);
	l->v[l->n].name[name_len] = 0;
	l->v[l->n].ino = ino;
	l->v[l->n].dtype = dtype;
	l->n++;
	return 0;
}

static int lent_cmp(const void *a, const void *b)
{
	return strcmp(((const struct lent *)a)->name, ((const struct lent *)b)->name);
}

static void list_dir(struct arb_fs *fs, arb_ino_t dir, struct listing *l)
{
	memset(l, 0, sizeof(*l));
	TU_RC(arb_vfs_readdir(fs, dir, 0, listing_fn, l));
	if (l->n)
		qsort(l->v, l->n, sizeof(*l->v), lent_cmp);
}

static const struct lent *list_find(const struct listing *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i].name, name) == 0)
			return &l->v[i];
	return NULL;
}

/* ---- a dump of a subvolume, to compare trees ---- */

struct dump {
	char *s;
	size_t len, cap;
};

static void __attribute__((format(printf, 2, 3))) dump_add(struct dump *d, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(d->s ? d->s + d->len : NULL, d->s ? d->cap - d->len : 0, fmt, ap);
		va_end(ap);
		TU_ASSERT(n >= 0);
		if (d->s && d->len + (size_t)n < d->cap)
			break;
		d->cap = (d->cap + (size_t)n + 1) * 2;
		d->s = xrealloc(d->s, d->cap);
	}
	d->len += (size_t)n;
}

static uint64_t hash_bytes(const uint8_t *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h;
}

/* One line per inode: path, local number, type and mode, nlink, owner,
 * size, blocks, content hash, symlink target, xattrs, and with `times`
 * mtime, ctime and btime.  Subvolume links are listed, not entered. */
static void dump_inode(struct arb_fs *fs, arb_ino_t ino, const char *path, bool times,
                       struct dump *d)
{
	struct arb_stat st = stat_of(fs, ino);
	char xl[4096];
	size_t xlen = 0;

	dump_add(d,
	         "%s local=%" PRIu64 " mode=%o nlink=%u uid=%u gid=%u size=%" PRIu64
	         " blocks=%" PRIu64,
	         path, arb_ino_local(ino), st.mode, st.nlink, st.uid, st.gid, st.size, st.blocks);
	if (S_ISREG(st.mode)) {
		uint8_t *buf = xrealloc(NULL, st.size + 1);
		size_t got = 0;

		TU_RC(arb_vfs_read(fs, ino, 0, buf, st.size + 1, &got));
		TU_EQ_U64(got, st.size);
		dump_add(d, " data=%016" PRIx64, hash_bytes(buf, got));
		free(buf);
	} else if (S_ISLNK(st.mode)) {
		char t[4096];
		size_t tl = 0;

		TU_RC(arb_vfs_readlink(fs, ino, t, sizeof(t), &tl));
		dump_add(d, " target=%.*s", (int)tl, t);
	}
	TU_RC(arb_vfs_listxattr(fs, ino, xl, sizeof(xl), &xlen));
	for (size_t off = 0; off < xlen; off += strlen(xl + off) + 1) {
		uint8_t v[4096];
		size_t vl = 0;

		TU_RC(arb_vfs_getxattr(fs, ino, xl + off, v, sizeof(v), &vl));
		dump_add(d, " x:%s=%016" PRIx64, xl + off, hash_bytes(v, vl));
	}
	if (times)
		dump_add(d, " mtime=%lld.%09ld ctime=%lld.%09ld btime=%lld.%09ld",
		         (long long)st.mtime.tv_sec, st.mtime.tv_nsec, (long long)st.ctime.tv_sec,
		         st.ctime.tv_nsec, (long long)st.btime.tv_sec, st.btime.tv_nsec);
	dump_add(d, "\n");
}

static void dump_dir(struct arb_fs *fs, arb_ino_t dir, const char *path, bool times, struct dump *d)
{
	struct listing l;

	list_dir(fs, dir, &l);
	for (size_t i = 0; i < l.n; i++) {
		char *p = NULL;

		TU_ASSERT(asprintf(&p, "%s/%s", path, l.v[i].name) > 0);
		if (arb_ino_subvol(l.v[i].ino) != arb_ino_subvol(dir)) {
			TU_EQ_U64(arb_ino_local(l.v[i].ino), ARB_FIRST_INO);
			TU_EQ_U64(l.v[i].dtype, DT_DIR);
			dump_add(d, "%s subvolume %" PRIu64 "\n", p, arb_ino_subvol(l.v[i].ino));
		} else {
			dump_inode(fs, l.v[i].ino, p, times, d);
			TU_EQ_U64(l.v[i].dtype, (stat_of(fs, l.v[i].ino).mode & S_IFMT) >> 12);
			if (l.v[i].dtype == DT_DIR)
				dump_dir(fs, l.v[i].ino, p, times, d);
		}
		free(p);
	}
	free(l.v);
}

/* The whole subvolume below root, in a malloc'ed string. */
static char *dump_subvol(struct arb_fs *fs, arb_ino_t root, bool times)
{
	struct dump d = {0};

	dump_inode(fs, root, "", times, &d);
	dump_dir(fs, root, "", times, &d);
	return d.s;
}

static void expect_same_dump(const char *what, const char *a, const char *b)
{
	size_t i = 0, line = 0;

	if (strcmp(a, b) == 0)
		return;
	while (a[i] && a[i] == b[i]) {
		if (a[i] == '\n')
			line = i + 1;
		i++;
	}
	TU_FAIL("%s: trees differ at\n  %.300s\nvs\n  %.300s", what, a + line, b + line);
}

/* ---- a fixture ---- */

struct sfx {
	struct tu_fs t;
	arb_ino_t root;
	uint64_t top;
};

#define FS(x) ((x)->t.fs)

static void sfx_setup(struct sfx *x, uint64_t size, uint32_t nodesize)
{
	memset(x, 0, sizeof(*x));
	tu_fs_create(&x->t, size, nodesize);
	TU_RC(arb_vfs_init(FS(x), 0755, &cred));
	TU_RC(arb_vfs_root(FS(x), 0, &x->root));
	x->top = arb_ino_subvol(x->root);
	tu_commit(FS(x));
}

static void sfx_reopen(struct sfx *x)
{
	uint64_t freed = UINT64_MAX;

	tu_fs_reopen(&x->t);
	TU_RC(arb_vfs_orphan_cleanup(FS(x), &freed));
	TU_EQ_U64(freed, 0);
	TU_RC(arb_vfs_root(FS(x), 0, &x->root));
}

static void sfx_cycle(struct sfx *x)
{
	tu_commit(FS(x));
	sfx_reopen(x);
}

static void sfx_finish(struct sfx *x)
{
	expect_healthy(FS(x));
	sfx_cycle(x);
	expect_healthy(FS(x));
	tu_fs_destroy(&x->t);
}

/* A small tree of every kind of inode below dir. */
static void populate(struct arb_fs *fs, arb_ino_t dir, uint64_t tag)
{
	struct arb_stat st;
	arb_ino_t a = tu_mkdir(fs, &cred, dir, "a"), b = tu_mkdir(fs, &cred, a, "b");
	arb_ino_t f1 = tu_mkfile(fs, &cred, dir, "small"), f2 = tu_mkfile(fs, &cred, a, "big"),
	          f3 = tu_mkfile(fs, &cred, b, "sparse");

	write_pat(fs, f1, 0, 100, tag);
	write_pat(fs, f2, 0, 300 * KIB + 17, tag + 1);
	write_pat(fs, f3, 5 * MIB, 9000, tag + 2);
	TU_RC(arb_vfs_link(fs, f2, b, "big-link", &st));
	TU_RC(arb_vfs_symlink(fs, a, "sym", "../small", &cred, &st));
	TU_RC(arb_vfs_mknod(fs, b, "fifo", S_IFIFO | 0600, 0, &cred, &st));
	TU_RC(arb_vfs_setxattr(fs, f1, "user.tag", &tag, sizeof(tag), 0));
	TU_RC(arb_vfs_setxattr(fs, a, "user.dir", "value", 5, 0));
	(void)tu_mkdir(fs, &cred, dir, "empty");
}

/* ---- 1. basics ---- */

static void test_make(void **state)
{
	struct sfx x;
	struct arb_stat st, st2;
	struct arb_subvol sv;
	struct listing l;
	const struct lent *e;
	arb_ino_t d, p, svroot, svroot2;
	uint32_t nlink_root, nlink_d;

	(void)state;
	sfx_setup(&x, DEV_SIZE, 0);
	d = tu_mkdir(FS(&x), &cred, x.root, "dir");
	nlink_root = stat_of(FS(&x), x.root).nlink;
	TU_EQ_U64(nlink_root, 3);

	/* in the root directory */
	TU_RC(arb_vfs_subvol_make(FS(&x), x.root, "sv", 0750, &cred, &st));
	TU_ASSERT(subvol_of(&st) != x.top, "the subvolume is the top one");
	TU_EQ_U64(arb_ino_local(st.ino), ARB_FIRST_INO);
	TU_EQ_U64(st.mode, S_IFDIR | 0750);
	TU_EQ_U64(st.nlink, 2);
	TU_EQ_U64(st.uid, cred.uid);
	svroot = st.ino;
	TU_RC(arb_vfs_lookup(FS(&x), x.root, "sv", &st2));
	TU_EQ_U64(st2.ino, svroot);
	TU_EQ_U64(st2.mode, S_IFDIR | 0750);
	TU_RC(arb_vfs_root(FS(&x), subvol_of(&st), &p));
	TU_EQ_U64(p, svroot);
	list_dir(FS(&x), x.root, &l);
	TU_EQ_U64(l.n, 2);
	e = list_find(&l, "sv");
	TU_ASSERT(e != NULL, "sv not listed");
	TU_EQ_U64(e->ino, svroot);
	TU_EQ_U64(e->dtype, DT_DIR);
	free(l.v);
	TU_RC(arb_vfs_parent(FS(&x), svroot, &p));
	TU_EQ_U64(p, x.root);
	TU_RC(arb_vfs_parent(FS(&x), x.root, &p));
	TU_EQ_U64(p, x.root);
	TU_EQ_U64(stat_of(FS(&x), x.root).nlink, nlink_root + 1);
	sv = sv_get(FS(&x), arb_ino_subvol(svroot));
	TU_EQ_U64(sv.parent_id, x.top);
	TU_EQ_U64(sv.dirid, arb_ino_local(x.root));
	TU_ASSERT(strcmp(sv.name, "sv") == 0, "name %s", sv.name);
	TU_ASSERT(!sv.readonly && !sv.is_default);
	TU_EQ_U64(sv.source_id, 0);
	sv = sv_get(FS(&x), x.top);
	TU_EQ_U64(sv.parent_id, 0);
	TU_ASSERT(sv.is_default && !sv.readonly);

	/* in a subdirectory; files inside are in the new subvolume */
	nlink_d = stat_of(FS(&x), d).nlink;
	TU_RC(arb_vfs_subvol_make(FS(&x), d, "inner", 0755, &cred, &st));
	svroot2 = st.ino;
	TU_ASSERT(subvol_of(&st) != x.top && subvol_of(&st) != arb_ino_subvol(svroot));
	TU_EQ_U64(stat_of(FS(&x), d).nlink, nlink_d + 1);
	TU_EQ_U64(stat_of(FS(&x), x.root).nlink, nlink_root + 1);
	TU_RC(arb_vfs_parent(FS(&x), svroot2, &p));
	TU_EQ_U64(p, d);
	{
		arb_ino_t f = tu_mkfile(FS(&x), &cred, svroot2, "f"),
		          sub = tu_mkdir(FS(&x), &cred, svroot2, "sub");

		TU_EQ_U64(arb_ino_subvol(f), arb_ino_subvol(svroot2));
		TU_RC(arb_vfs_parent(FS(&x), sub, &p));
		TU_EQ_U64(p, svroot2);
		TU_EQ_U64(stat_of(FS(&x), svroot2).nlink, 3);
		TU_EQ_U64(tu_lookup(FS(&x), tu_lookup(FS(&x), d, "inner"), "f"), f);
	}
	TU_EQ_U64(subvol_count(FS(&x)), 3);

	/* all of it survives a reopen */
	sfx_cycle(&x);
	TU_EQ_U64(tu_lookup(FS(&x), x.root, "sv"), svroot);
	TU_EQ_U64(tu_lookup(FS(&x), d, "inner"), svroot2);
	TU_RC(arb_vfs_parent(FS(&x), svroot2, &p));
	TU_EQ_U64(p, d);
	TU_EQ_U64(stat_of(FS(&x), d).nlink, nlink_d + 1);
	sv = sv_get(FS(&x), arb_ino_subvol(svroot2));
	TU_EQ_U64(sv.parent_id, x.top);
	TU_EQ_U64(sv.dirid, arb_ino_local(d));
	TU_ASSERT(strcmp(sv.name, "inner") == 0);

	/* a subvolume inside a subvolume */
	TU_RC(arb_vfs_subvol_make(FS(&x), svroot, "nested", 0755, &cred, &st));
	sv = sv_get(FS(&x), subvol_of(&st));
	TU_EQ_U64(sv.parent_id, arb_ino_subvol(svroot));
	TU_EQ_U64(sv.dirid, ARB_FIRST_INO);
	TU_RC(arb_vfs_parent(FS(&x), st.ino, &p));
	TU_EQ_U64(p, svroot);
	sfx_finish(&x);
}

static void test_make_errors(void **state)
{
	struct sfx x;
	struct arb_stat st;
	char longname[ARB_NAME_MAX + 2];
	char *before, *after;
	arb_ino_t f;
	unsigned n;
	uint64_t id;
	static const char *const bad[] = {"", ".", "..", "a/b", "/"};

	(void)state;
	sfx_setup(&x, DEV_SIZE, 0);
	f = tu_mkfile(FS(&x), &cred, x.root, "file");
	(void)tu_mkdir(FS(&x), &cred, x.root, "dir");
	TU_RC(arb_vfs_subvol_make(FS(&x), x.root, "sv", 0755, &cred, &st));
	id = subvol_of(&st);
	populate(FS(&x), st.ino, 1);
	memset(longname, 'n', ARB_NAME_MAX + 1);
	longname[ARB_NAME_MAX + 1] = 0;
	tu_commit(FS(&x));
	before = dump_subvol(FS(&x), x.root, false);
	n = subvol_count(FS(&x));

	/* taken names: a file, a directory, a subvolume */
	TU_RC_EQ(arb_vfs_subvol_make(FS(&x), x.root, "file", 0755, &cred, &st), -EEXIST);
	TU_RC_EQ(arb_vfs_subvol_make(FS(&x), x.root, "dir", 0755, &cred, &st), -EEXIST);
	TU_RC_EQ(arb_vfs_subvol_make(FS(&x), x.root, "sv", 0755, &cred, &st), -EEXIST);
	TU_RC_EQ(arb_vfs_snapshot(FS(&x), id, x.root, "file", 0, &st), -EEXIST);
	TU_RC_EQ(arb_vfs_snapshot(FS(&x), id, x.root, "sv", ARB_SNAPSHOT_RDONLY, &st), -EEXIST);
	TU_RC_EQ(arb_vfs_snapshot(FS(&x), x.top, x.root, "dir", 0, &st), -EEXIST);
	/* not a directory */
	TU_RC_EQ(arb_vfs_subvol_make(FS(&x), f, "x", 0755, &cred, &st), -ENOTDIR);
	TU_RC_EQ(arb_vfs_snapshot(FS(&x), id, f, "x", 0, &st), -ENOTDIR);
	/* names */
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		TU_RC_EQ(arb_vfs_subvol_make(FS(&x), x.root, bad[i], 0755, &cred, &st), -EINVAL);
		TU_RC_EQ(arb_vfs_snapshot(FS(&x), id, x.root, bad[i], 0, &st), -EINVAL);
	}
	TU_RC_EQ(arb_vfs_subvol_make(FS(&x), x.root, longname, 0755, &cred, &st), -ENAMETOOLONG);
	TU_RC_EQ(arb_vfs_snapshot(FS(&x), id, x.root, longname, 0, &st), -ENAMETOOLONG);
	/* sources and flags */
	TU_RC_EQ(arb_vfs_snapshot(FS(&x), id + 100, x.root, "x", 0, &st), -ENOENT);
	TU_RC_EQ(arb_vfs_snapshot(FS(&x), 5, x.root, "x", 0, &st), -ENOENT);
	TU_RC_EQ(arb_vfs_snapshot(FS(&x), 0, x.root, "x", 0, &st), -ENOENT);
	TU_RC_EQ(arb_vfs_snapshot(FS(&x), id, x.root, "x", 2, &st), -EINVAL);
	/* a directory that does not exist */
	TU_RC_EQ(arb_vfs_subvol_make(FS(&x), arb_ino_make(x.top, 9999), "x", 0755, &cred, &st),
	         -ENOENT);
	TU_RC_EQ(arb_vfs_snapshot(FS(&x), id, arb_ino_make(x.top, 9999), "x", 0, &st), -ENOENT);
	/* a name of the maximal length is fine */
	longname[ARB_NAME_MAX] = 0;
	TU_RC(arb_vfs_subvol_make(FS(&x), x.root, longname, 0755, &cred, &st));
	TU_RC(arb_vfs_subvol_delete(FS(&x), x.root, longname));

	TU_EQ_U64(subvol_count(FS(&x)), n);
	after = dump_subvol(FS(&x), x.root, false);
	expect_same_dump("after refused calls", before, after);
	free(before);
	free(after);
	sfx_finish(&x);
}

/* A snapshot is its source, to every inode, attribute and byte. */
static void test_snapshot_equal(void **state)
{
	struct sfx x;
	struct arb_stat st;
	struct arb_subvol sv;
	char *src, *snap, *ro, *top;
	uint64_t id, sid, rid, tid;

	(void)state;
	sfx_setup(&x, DEV_SIZE, 0);
	TU_RC(arb_vfs_subvol_make(FS(&x), x.root, "sv", 0755, &cred, &st));
	id = subvol_of(&st);
	populate(FS(&x), st.ino, 7);
	populate(FS(&x), x.root, 9);
	tu_commit(FS(&x));
	/* one snapshot of a committed source, one of uncommitted changes */
	TU_RC(arb_vfs_snapshot(FS(&x), id, x.root, "snap", 0, &st));
	sid = subvol_of(&st);
	write_pat(FS(&x), tu_lookup(FS(&x), root_of(id), "small"), 50, 200, 11);
	(void)tu_mkfile(FS(&x), &cred, root_of(id), "new");
	TU_RC(arb_vfs_snapshot(FS(&x), id, root_of(id), "ro", ARB_SNAPSHOT_RDONLY, &st));
	rid = subvol_of(&st);
	/* the top subvolume, snapshot inside itself */
	TU_RC(arb_vfs_snapshot(FS(&x), x.top, x.root, "top-snap", 0, &st));
	tid = subvol_of(&st);

	sv = sv_get(FS(&x), sid);
	TU_EQ_U64(sv.source_id, id);
	TU_ASSERT(memcmp(sv.parent_uuid, sv_get(FS(&x), id).uuid, 16) == 0, "parent uuid");
	TU_ASSERT(!sv.readonly);
	TU_ASSERT(sv_get(FS(&x), rid).readonly);
	TU_EQ_U64(sv_get(FS(&x), rid).parent_id, id);
	TU_EQ_U64(sv_get(FS(&x), tid).source_id, x.top);

	for (int round = 0; round < 2; round++) {
		/* the snapshot of sv's current state */
		src = dump_subvol(FS(&x), root_of(id), true);
		ro = dump_subvol(FS(&x), root_of(rid), true);
		/* the source now holds the link "ro": its root differs by it */
		TU_ASSERT(strstr(src, "/ro subvolume") != NULL);
		snap = dump_subvol(FS(&x), root_of(sid), true);
		TU_ASSERT(strstr(ro, "/new local=") != NULL && strstr(snap, "/new local=") == NULL);
		free(src);
		free(snap);
		free(ro);
		/* the top snapshot: the top without the links (sv, snap,
		 * top-snap), which are not part of it */
		top = dump_subvol(FS(&x), root_of(tid), false);
		TU_ASSERT(strstr(top, "subvolume") == NULL, "links in the snapshot: %s", top);
		TU_ASSERT(strstr(top, "/a/b/big-link local=") != NULL);
		TU_EQ_U64(stat_of(FS(&x), root_of(tid)).nlink, 4); /* a, empty */
		free(top);
		sfx_cycle(&x);
	}

	/* an unchanged source and its snapshot: equal, times included */
	TU_RC(arb_vfs_subvol_make(FS(&x), x.root, "plain", 0700, &cred, &st));
	populate(FS(&x), st.ino, 21);
	id = subvol_of(&st);
	tu_commit(FS(&x));
	TU_RC(arb_vfs_snapshot(FS(&x), id, x.root, "plain-snap", 0, &st));
	TU_RC(arb_vfs_snapshot(FS(&x), id, x.root, "plain-ro", ARB_SNAPSHOT_RDONLY, &st));
	TU_RC(arb_vfs_snapshot(FS(&x), subvol_of(&st), x.root, "plain-ro-snap", 0, &st));
	src = dump_subvol(FS(&x), root_of(id), true);
	for (int i = 0; i < 3; i++) {
		static const char *const names[] = {"plain-snap", "plain-ro", "plain-ro-snap"};

		snap = dump_subvol(FS(&x), tu_lookup(FS(&x), x.root, names[i]), true);
		expect_same_dump(names[i], src, snap);
		free(snap);
	}
	/* then they part: changes to one are not seen in the other */
	write_pat(FS(&x), tu_lookup(FS(&x), tu_lookup(FS(&x), x.root, "plain-snap"), "small"), 0,
	          100, 99);
	TU_RC(arb_vfs_unlink(FS(&x), root_of(id), "small"));
	snap = dump_subvol(FS(&x), tu_lookup(FS(&x), x.root, "plain-ro"), true);
	expect_same_dump("read-only snapshot after changes to its source and a sibling", src, snap);
	free(snap);
	free(src);
	sfx_finish(&x);
}

static void test_link_protected(void **state)
{
	struct sfx x;
	struct arb_stat st;
	struct arb_setattr sa = {.valid = ARB_SET_SIZE, .size = 0};
	char *before, *after;
	arb_ino_t svroot;
	size_t done;

	(void)state;
	sfx_setup(&x, DEV_SIZE, 0);
	TU_RC(arb_vfs_subvol_make(FS(&x), x.root, "sv", 0755, &cred, &st));
	svroot = st.ino;
	(void)tu_mkfile(FS(&x), &cred, svroot, "f");
	tu_commit(FS(&x));
	before = dump_subvol(FS(&x), x.root, true);
	TU_RC_EQ(arb_vfs_rmdir(FS(&x), x.root, "sv"), -EPERM);
	TU_RC_EQ(arb_vfs_unlink(FS(&x), x.root, "sv"), -EISDIR);
	/* the subvolume root is a directory like others */
	TU_RC_EQ(arb_vfs_link(FS(&x), svroot, x.root, "hard", &st), -EPERM);
	TU_RC_EQ(arb_vfs_write(FS(&x), svroot, 0, "x", 1, &done), -EISDIR);
	TU_RC_EQ(arb_vfs_setattr(FS(&x), svroot, &sa, &st), -EISDIR);
	/* inside, the usual rules */
	TU_RC_EQ(arb_vfs_rmdir(FS(&x), svroot, "f"), -ENOTDIR);
	after = dump_subvol(FS(&x), x.root, true);
	expect_same_dump("after refused removals", before, after);
	free(after);
	TU_EQ_U64(tu_lookup(FS(&x), x.root, "sv"), svroot);
	TU_EQ_U64(subvol_count(FS(&x)), 2);
	expect_healthy(FS(&x));
	sfx_cycle(&x);
	after = dump_subvol(FS(&x), x.root, true);
	expect_same_dump("after refused removals and a reopen", before, after);
	free(after);
	free(before);
	sfx_finish(&x);
}

static void test_rename_link(void **state)
{
	struct sfx x;
	struct arb_stat st;
	struct arb_subvol sv;
	arb_ino_t d, svroot, p, other;
	uint64_t id;
	uint32_t nlr, nld;
	char *before, *after;

	(void)state;
	sfx_setup(&x, DEV_SIZE, 0);
	d = tu_mkdir(FS(&x), &cred, x.root, "d");
	(void)tu_mkfile(FS(&x), &cred, x.root, "file");
	(void)tu_mkdir(FS(&x), &cred, x.root, "dir");
	TU_RC(arb_vfs_subvol_make(FS(&x), x.root, "sv", 0755, &cred, &st));
	svroot = st.ino;
	id = subvol_of(&st);
	TU_RC(arb_vfs_subvol_make(FS(&x), x.root, "other", 0755, &cred, &st));
	other = st.ino;
	(void)tu_mkfile(FS(&x), &cred, svroot, "inside");
	nlr = stat_of(FS(&x), x.root).nlink;
	nld = stat_of(FS(&x), d).nlink;

	/* same directory */
	TU_RC(arb_vfs_rename(FS(&x), x.root, "sv", x.root, "sv2", 0));
	tu_expect_missing(FS(&x), x.root, "sv");
	TU_EQ_U64(tu_lookup(FS(&x), x.root, "sv2"), svroot);
	TU_ASSERT(strcmp(sv_get(FS(&x), id).name, "sv2") == 0);
	TU_EQ_U64(stat_of(FS(&x), x.root).nlink, nlr);
	sfx_cycle(&x);
	TU_EQ_U64(tu_lookup(FS(&x), x.root, "sv2"), svroot);
	tu_expect_missing(FS(&x), x.root, "sv");

	/* another directory, with NOREPLACE */
	TU_RC(arb_vfs_rename(FS(&x), x.root, "sv2", d, "moved", ARB_RENAME_NOREPLACE));
	tu_expect_missing(FS(&x), x.root, "sv2");
	TU_EQ_U64(tu_lookup(FS(&x), d, "moved"), svroot);
	TU_EQ_U64(stat_of(FS(&x), x.root).nlink, nlr - 1);
	TU_EQ_U64(stat_of(FS(&x), d).nlink, nld + 1);
	TU_RC(arb_vfs_parent(FS(&x), svroot, &p));
	TU_EQ_U64(p, d);
	sv = sv_get(FS(&x), id);
	TU_EQ_U64(sv.dirid, arb_ino_local(d));
	TU_ASSERT(strcmp(sv.name, "moved") == 0);
	sfx_cycle(&x);
	TU_EQ_U64(tu_lookup(FS(&x), d, "moved"), svroot);
	TU_EQ_U64(tu_lookup(FS(&x), svroot, "inside"), tu_lookup(FS(&x), svroot, "inside"));
	TU_RC(arb_vfs_parent(FS(&x), svroot, &p));
	TU_EQ_U64(p, d);
	TU_EQ_U64(stat_of(FS(&x), x.root).nlink, nlr - 1);
	TU_EQ_U64(stat_of(FS(&x), d).nlink, nld + 1);
	/* a snapshot taken after the move drops the moved link */
	TU_RC(arb_vfs_snapshot(FS(&x), x.top, x.root, "snap", 0, &st));
	tu_expect_missing(FS(&x), tu_lookup(FS(&x), st.ino, "d"), "moved");
	TU_EQ_U64(stat_of(FS(&x), tu_lookup(FS(&x), st.ino, "d")).nlink, nld);
	tu_commit(FS(&x));

	before = dump_subvol(FS(&x), x.root, true);
	/* onto existing names, either way, or exchanged */
	TU_RC_EQ(arb_vfs_rename(FS(&x), d, "moved", x.root, "file", 0), -EPERM);
	TU_RC_EQ(arb_vfs_rename(FS(&x), d, "moved", x.root, "dir", 0), -EPERM);
	TU_RC_EQ(arb_vfs_rename(FS(&x), d, "moved", x.root, "other", 0), -EPERM);
	TU_RC_EQ(arb_vfs_rename(FS(&x), x.root, "file", d, "moved", 0), -EPERM);
	TU_RC_EQ(arb_vfs_rename(FS(&x), x.root, "dir", d, "moved", 0), -EPERM);
	TU_RC_EQ(arb_vfs_rename(FS(&x), x.root, "other", d, "moved", 0), -EPERM);
	TU_RC_EQ(arb_vfs_rename(FS(&x), d, "moved", x.root, "file", ARB_RENAME_EXCHANGE), -EPERM);
	TU_RC_EQ(arb_vfs_rename(FS(&x), x.root, "dir", d, "moved", ARB_RENAME_EXCHANGE), -EPERM);
	TU_RC_EQ(arb_vfs_rename(FS(&x), x.root, "other", d, "moved", ARB_RENAME_EXCHANGE), -EPERM);
	TU_RC_EQ(arb_vfs_rename(FS(&x), d, "moved", x.root, "free", ARB_RENAME_EXCHANGE), -EPERM);
	/* (rename(2) says EEXIST here: the kernel checks it before the
	 * filesystem is asked; arb_vfs_rename refuses any taken name) */
	TU_RC_EQ(arb_vfs_rename(FS(&x), d, "moved", x.root, "file", ARB_RENAME_NOREPLACE), -EPERM);
	/* (rename(2) says ENOENT for a missing source and 0 for a name onto
	 * itself, both decided by the kernel before a FUSE filesystem is
	 * asked; arb_vfs_rename says EPERM as soon as a link is involved) */
	{
		int rc = arb_vfs_rename(FS(&x), x.root, "nothing", d, "moved", 0);

		TU_ASSERT(rc == -ENOENT || rc == -EPERM, "%s", tu_strerr(rc));
		rc = arb_vfs_rename(FS(&x), d, "moved", d, "moved", 0);
		TU_ASSERT(rc == 0 || rc == -EPERM, "%s", tu_strerr(rc));
	}
	/* to another subvolume, or below itself */
	TU_RC_EQ(arb_vfs_rename(FS(&x), d, "moved", other, "x", 0), -EXDEV);
	TU_RC_EQ(arb_vfs_rename(FS(&x), d, "moved", svroot, "x", 0), -EXDEV);
	/* bad flags and names */
	TU_RC_EQ(arb_vfs_rename(FS(&x), d, "moved", x.root, "x", 4), -EINVAL);
	TU_RC_EQ(arb_vfs_rename(FS(&x), d, "moved", x.root, "a/b", 0), -EINVAL);
	after = dump_subvol(FS(&x), x.root, true);
	expect_same_dump("after refused renames", before, after);
	free(after);
	free(before);
	expect_healthy(FS(&x));

	/* moving it back and forth, and the links of the snapshot */
	TU_RC(arb_vfs_rename(FS(&x), d, "moved", x.root, "back", 0));
	TU_RC(arb_vfs_rename(FS(&x), x.root, "snap", d, "snap", 0));
	TU_EQ_U64(stat_of(FS(&x), d).nlink, nld + 1);
	TU_EQ_U64(stat_of(FS(&x), x.root).nlink, nlr);
	sfx_cycle(&x);
	TU_EQ_U64(tu_lookup(FS(&x), x.root, "back"), svroot);
	TU_EQ_U64(sv_get(FS(&x), id).dirid, arb_ino_local(x.root));
	TU_RC(arb_vfs_subvol_delete(FS(&x), d, "snap"));
	TU_RC(arb_vfs_subvol_delete(FS(&x), x.root, "back"));
	expect_gone(FS(&x), svroot);
	TU_EQ_U64(stat_of(FS(&x), d).nlink, nld);
	sfx_finish(&x);
}

static void test_delete(void **state)
{
	struct sfx x;
	struct arb_stat st;
	arb_ino_t a, b, c, fa, fb, d, p;
	uint64_t ida, idb, idc, def;
	uint32_t nlr;
	char *before, *after;

	(void)state;
	sfx_setup(&x, DEV_SIZE, 0);
	(void)tu_mkfile(FS(&x), &cred, x.root, "file");
	d = tu_mkdir(FS(&x), &cred, x.root, "dir");
	TU_RC(arb_vfs_subvol_make(FS(&x), x.root, "a", 0755, &cred, &st));
	a = st.ino;
	ida = subvol_of(&st);
	fa = tu_mkfile(FS(&x), &cred, a, "fa");
	write_pat(FS(&x), fa, 0, 200 * KIB, 3);
	TU_RC(arb_vfs_subvol_make(FS(&x), tu_mkdir(FS(&x), &cred, a, "sub"), "b", 0755, &cred,
	                          &st));
	b = st.ino;
	idb = subvol_of(&st);
	fb = tu_mkfile(FS(&x), &cred, b, "fb");
	write_pat(FS(&x), fb, 0, 50 * KIB, 4);
	TU_RC(arb_vfs_snapshot(FS(&x), ida, d, "c", 0, &st));
	c = st.ino;
	idc = subvol_of(&st);
	nlr = stat_of(FS(&x), x.root).nlink;
	tu_commit(FS(&x));

	before = dump_subvol(FS(&x), x.root, true);
	TU_RC_EQ(arb_vfs_subvol_delete(FS(&x), x.root, "file"), -ENOTTY);
	TU_RC_EQ(arb_vfs_subvol_delete(FS(&x), x.root, "dir"), -ENOTTY);
	TU_RC_EQ(arb_vfs_subvol_delete(FS(&x), x.root, "nothing"), -ENOENT);
	TU_RC_EQ(arb_vfs_subvol_delete(FS(&x), x.root, ""), -EINVAL);
	TU_RC_EQ(arb_vfs_subvol_delete(FS(&x), tu_lookup(FS(&x), x.root, "file"), "x"), -ENOTDIR);
	/* b is linked inside a */
	TU_RC_EQ(arb_vfs_subvol_delete(FS(&x), x.root, "a"), -ENOTEMPTY);
	/* the default subvolume */
	TU_RC(arb_vfs_subvol_set_default(FS(&x), idc));
	TU_RC(arb_vfs_subvol_default(FS(&x), &def));
	TU_EQ_U64(def, idc);
	TU_ASSERT(sv_get(FS(&x), idc).is_default);
	TU_RC_EQ(arb_vfs_subvol_delete(FS(&x), d, "c"), -EBUSY);
	sfx_cycle(&x);
	TU_RC(arb_vfs_root(FS(&x), 0, &p));
	TU_EQ_U64(p, c);
	TU_RC_EQ(arb_vfs_subvol_delete(FS(&x), d, "c"), -EBUSY);
	TU_RC_EQ(arb_vfs_subvol_set_default(FS(&x), 77), -ENOENT);
	TU_RC(arb_vfs_subvol_set_default(FS(&x), x.top));
	x.root = root_of(x.top);
	after = dump_subvol(FS(&x), x.root, true);
	expect_same_dump("after refused deletions", before, after);
	free(after);
	free(before);
	expect_healthy(FS(&x));
	TU_EQ_U64(subvol_count(FS(&x)), 4);

	/* delete b, then a: gone at once and after a reopen */
	TU_RC(arb_vfs_subvol_delete(FS(&x), tu_lookup(FS(&x), a, "sub"), "b"));
	tu_expect_missing(FS(&x), tu_lookup(FS(&x), a, "sub"), "b");
	expect_gone(FS(&x), b);
	expect_gone(FS(&x), fb);
	TU_RC_EQ(arb_vfs_root(FS(&x), idb, &p), -ENOENT);
	{
		struct arb_subvol sv;

		TU_RC_EQ(arb_vfs_subvol_get(FS(&x), idb, &sv), -ENOENT);
	}
	TU_EQ_U64(stat_of(FS(&x), tu_lookup(FS(&x), a, "sub")).nlink, 2);
	TU_RC(arb_vfs_subvol_delete(FS(&x), x.root, "a"));
	tu_expect_missing(FS(&x), x.root, "a");
	expect_gone(FS(&x), a);
	expect_gone(FS(&x), fa);
	TU_RC_EQ(arb_vfs_snapshot(FS(&x), ida, x.root, "a2", 0, &st), -ENOENT);
	TU_RC_EQ(arb_vfs_subvol_delete(FS(&x), x.root, "a"), -ENOENT);
	TU_EQ_U64(stat_of(FS(&x), x.root).nlink, nlr - 1);
	expect_healthy(FS(&x));
	/* the snapshot of a is whole */
	TU_EQ_U64(stat_of(FS(&x), tu_lookup(FS(&x), c, "fa")).size, 200 * KIB);
	tu_expect_missing(FS(&x), tu_lookup(FS(&x), c, "sub"), "b");
	TU_EQ_U64(subvol_count(FS(&x)), 2);
	sfx_cycle(&x);
	tu_expect_missing(FS(&x), x.root, "a");
	expect_gone(FS(&x), a);
	expect_gone(FS(&x), fa);
	expect_gone(FS(&x), b);
	TU_RC_EQ(arb_vfs_root(FS(&x), ida, &p), -ENOENT);
	TU_EQ_U64(subvol_count(FS(&x)), 2);
	/* a new one reuses neither the name's past nor the ids */
	TU_RC(arb_vfs_subvol_make(FS(&x), x.root, "a", 0755, &cred, &st));
	TU_ASSERT(subvol_of(&st) > idc, "id %" PRIu64 " reused", subvol_of(&st));
	tu_expect_missing(FS(&x), st.ino, "fa");
	TU_RC(arb_vfs_subvol_delete(FS(&x), d, "c"));
	expect_gone(FS(&x), c);
	TU_EQ_U64(stat_of(FS(&x), d).nlink, 2);
	sfx_finish(&x);
}

/* ---- 2. read-only snapshots ---- */

static void test_readonly(void **state)
{
	struct sfx x;
	struct arb_stat st;
	struct arb_setattr sa;
	uint8_t buf[64 * 1024];
	char *before, *after, *src;
	arb_ino_t ro, small, big, a, b, sym, w, wf, outside;
	uint64_t id, rid, wid, copied, off;
	size_t got;
	char names[256];

	(void)state;
	sfx_setup(&x, DEV_SIZE, 0);
	TU_RC(arb_vfs_subvol_make(FS(&x), x.root, "sv", 0755, &cred, &st));
	id = subvol_of(&st);
	populate(FS(&x), st.ino, 5);
	TU_RC(arb_vfs_subvol_make(FS(&x), st.ino, "nested", 0755, &cred, &st));
	outside = tu_mkfile(FS(&x), &cred, x.root, "outside");
	write_pat(FS(&x), outside, 0, 40 * KIB, 6);
	tu_commit(FS(&x));
	TU_RC(arb_vfs_snapshot(FS(&x), id, x.root, "ro", ARB_SNAPSHOT_RDONLY, &st));
	ro = st.ino;
	rid = subvol_of(&st);
	TU_ASSERT(sv_get(FS(&x), rid).readonly);
	tu_expect_missing(FS(&x), ro, "nested");
	small = tu_lookup(FS(&x), ro, "small");
	a = tu_lookup(FS(&x), ro, "a");
	b = tu_lookup(FS(&x), a, "b");
	big = tu_lookup(FS(&x), a, "big");
	sym = tu_lookup(FS(&x), a, "sym");
	tu_commit(FS(&x));

	for (int round = 0; round < 2; round++) {
		before = dump_subvol(FS(&x), x.root, true);
		src = dump_subvol(FS(&x), ro, true);
		memset(&sa, 0, sizeof(sa));
		/* namespace */
		TU_RC_EQ(arb_vfs_mknod(FS(&x), ro, "n", S_IFREG | 0644, 0, &cred, &st), -EROFS);
		TU_RC_EQ(arb_vfs_mknod(FS(&x), b, "n", S_IFCHR | 0644, 0x0103, &cred, &st), -EROFS);
		TU_RC_EQ(arb_vfs_mkdir(FS(&x), ro, "n", 0755, &cred, &st), -EROFS);
		TU_RC_EQ(arb_vfs_symlink(FS(&x), a, "n", "t", &cred, &st), -EROFS);
		TU_RC_EQ(arb_vfs_link(FS(&x), small, b, "n", &st), -EROFS);
		TU_RC_EQ(arb_vfs_unlink(FS(&x), ro, "small"), -EROFS);
		TU_RC_EQ(arb_vfs_unlink(FS(&x), a, "sym"), -EROFS);
		TU_RC_EQ(arb_vfs_rmdir(FS(&x), ro, "empty"), -EROFS);
		TU_RC_EQ(arb_vfs_rmdir(FS(&x), ro, "a"), -EROFS);
		TU_RC_EQ(arb_vfs_rename(FS(&x), ro, "small", ro, "n", 0), -EROFS);
		TU_RC_EQ(arb_vfs_rename(FS(&x), ro, "small", a, "n", ARB_RENAME_NOREPLACE), -EROFS);
		TU_RC_EQ(arb_vfs_rename(FS(&x), ro, "small", a, "big", 0), -EROFS);
		TU_RC_EQ(arb_vfs_rename(FS(&x), ro, "a", ro, "empty", ARB_RENAME_EXCHANGE), -EROFS);
		TU_RC_EQ(arb_vfs_rename(FS(&x), ro, "empty", a, "moved", 0), -EROFS);
		/* attributes */
		sa.valid = ARB_SET_MODE;
		sa.mode = 0600;
		TU_RC_EQ(arb_vfs_setattr(FS(&x), small, &sa, &st), -EROFS);
		TU_RC_EQ(arb_vfs_setattr(FS(&x), ro, &sa, &st), -EROFS);
		sa.valid = ARB_SET_SIZE;
		sa.size = 3;
		TU_RC_EQ(arb_vfs_setattr(FS(&x), big, &sa, &st), -EROFS);
		sa.size = 1 * MIB;
		TU_RC_EQ(arb_vfs_setattr(FS(&x), small, &sa, &st), -EROFS);
		sa.valid = ARB_SET_UID | ARB_SET_GID;
		TU_RC_EQ(arb_vfs_setattr(FS(&x), sym, &sa, &st), -EROFS);
		sa.valid = ARB_SET_MTIME_NOW | ARB_SET_ATIME_NOW;
		TU_RC_EQ(arb_vfs_setattr(FS(&x), b, &sa, &st), -EROFS);
		sa.valid = ARB_SET_CTIME;
		TU_RC_EQ(arb_vfs_setattr(FS(&x), big, &sa, &st), -EROFS);
		/* data */
		memset(buf, 0x5a, sizeof(buf));
		TU_RC_EQ(arb_vfs_write(FS(&x), small, 0, buf, 10, &got), -EROFS);
		TU_RC_EQ(arb_vfs_write(FS(&x), big, 100 * KIB, buf, sizeof(buf), &got), -EROFS);
		TU_RC_EQ(arb_vfs_write(FS(&x), big, 10 * MIB, buf, 1, &got), -EROFS);
		TU_RC_EQ(arb_vfs_fallocate(FS(&x), big, 0, 0, 1 * MIB), -EROFS);
		TU_RC_EQ(arb_vfs_fallocate(FS(&x), big, ARB_FALLOC_KEEP_SIZE, 2 * MIB, 4096),
		         -EROFS);
		TU_RC_EQ(arb_vfs_fallocate(FS(&x), big,
		                           ARB_FALLOC_PUNCH_HOLE | ARB_FALLOC_KEEP_SIZE, 0, 8192),
		         -EROFS);
		TU_RC_EQ(arb_vfs_fallocate(FS(&x), big, ARB_FALLOC_ZERO_RANGE, 4096, 4096), -EROFS);
		TU_RC_EQ(arb_vfs_copy_range(FS(&x), outside, 0, big, 0, 8192, &copied), -EROFS);
		TU_RC_EQ(arb_vfs_copy_range(FS(&x), outside, 0, small, 0, 40 * KIB, &copied),
		         -EROFS);
		TU_RC_EQ(arb_vfs_copy_range(FS(&x), big, 0, small, 0, 4096, &copied), -EROFS);
		/* xattrs */
		TU_RC_EQ(arb_vfs_setxattr(FS(&x), small, "user.new", "v", 1, 0), -EROFS);
		TU_RC_EQ(arb_vfs_setxattr(FS(&x), small, "user.tag", "v", 1, ARB_XATTR_REPLACE),
		         -EROFS);
		TU_RC_EQ(arb_vfs_setxattr(FS(&x), ro, "user.x", "v", 1, 0), -EROFS);
		TU_RC_EQ(arb_vfs_removexattr(FS(&x), small, "user.tag"), -EROFS);
		TU_RC_EQ(arb_vfs_removexattr(FS(&x), a, "user.dir"), -EROFS);
		/* subvolumes into it */
		TU_RC_EQ(arb_vfs_subvol_make(FS(&x), ro, "n", 0755, &cred, &st), -EROFS);
		TU_RC_EQ(arb_vfs_subvol_make(FS(&x), b, "n", 0755, &cred, &st), -EROFS);
		TU_RC_EQ(arb_vfs_snapshot(FS(&x), id, ro, "n", 0, &st), -EROFS);
		TU_RC_EQ(arb_vfs_snapshot(FS(&x), rid, a, "n", ARB_SNAPSHOT_RDONLY, &st), -EROFS);
		TU_RC_EQ(arb_vfs_subvol_delete(FS(&x), ro, "a"), -EROFS);
		/* nothing changed, nothing failed */
		TU_ASSERT(!fs_failed(FS(&x)), "failed: %s", arb_fs_failed_reason(FS(&x)));
		after = dump_subvol(FS(&x), x.root, true);
		expect_same_dump("the top after refused changes", before, after);
		free(after);
		after = dump_subvol(FS(&x), ro, true);
		expect_same_dump("the read-only snapshot after refused changes", src, after);
		free(after);
		free(before);
		free(src);
		expect_healthy(FS(&x));

		/* reads work */
		TU_RC(arb_vfs_read(FS(&x), big, 4096, buf, sizeof(buf), &got));
		TU_EQ_U64(got, sizeof(buf));
		TU_EQ_U64(buf[0], pat_byte(6, 4096));
		TU_RC(arb_vfs_readlink(FS(&x), sym, names, sizeof(names), &got));
		TU_ASSERT(got == 8 && memcmp(names, "../small", 8) == 0);
		TU_RC(arb_vfs_getxattr(FS(&x), small, "user.tag", buf, sizeof(buf), &got));
		TU_EQ_U64(got, 8);
		TU_RC(arb_vfs_listxattr(FS(&x), a, names, sizeof(names), &got));
		TU_EQ_U64(got, 9);
		TU_RC(arb_vfs_lseek(FS(&x), tu_lookup(FS(&x), b, "sparse"), 0, SEEK_DATA, &off));
		TU_EQ_U64(off, 5 * MIB);
		TU_RC(arb_vfs_open(FS(&x), big));
		TU_RC(arb_vfs_fsync(FS(&x), big));
		TU_RC(arb_vfs_release(FS(&x), big));
		/* reading from it into a writable file shares its data */
		w = tu_mkfile(FS(&x), &cred, x.root, round ? "copy2" : "copy");
		TU_RC(arb_vfs_copy_range(FS(&x), big, 0, w, 0, 1 * MIB, &copied));
		TU_EQ_U64(copied, 300 * KIB + 17);
		TU_RC(arb_vfs_read(FS(&x), w, 4096, buf, sizeof(buf), &got));
		TU_EQ_U64(buf[0], pat_byte(6, 4096));
		/* its own link may be renamed in the writable parent */
		TU_RC(arb_vfs_rename(FS(&x), x.root, round ? "ro2" : "ro", x.root,
		                     round ? "ro" : "ro2", 0));
		expect_healthy(FS(&x));
		/* and it stays read-only across a reopen */
		sfx_cycle(&x);
		TU_ASSERT(sv_get(FS(&x), rid).readonly);
	}

	/* a writable snapshot of it is writable; a read-only one is not */
	TU_RC(arb_vfs_snapshot(FS(&x), rid, x.root, "w", 0, &st));
	w = st.ino;
	wid = subvol_of(&st);
	TU_ASSERT(!sv_get(FS(&x), wid).readonly);
	TU_EQ_U64(sv_get(FS(&x), wid).source_id, rid);
	src = dump_subvol(FS(&x), ro, true);
	after = dump_subvol(FS(&x), w, true);
	expect_same_dump("writable snapshot of a read-only one", src, after);
	free(after);
	wf = tu_lookup(FS(&x), w, "small");
	write_pat(FS(&x), wf, 0, 5000, 8);
	TU_RC_EQ(arb_vfs_unlink(FS(&x), w, "empty"), -EISDIR);
	TU_RC(arb_vfs_rmdir(FS(&x), w, "empty"));
	TU_RC(arb_vfs_setxattr(FS(&x), w, "user.x", "v", 1, 0));
	(void)tu_mkfile(FS(&x), &cred, tu_lookup(FS(&x), w, "a"), "n");
	TU_RC(arb_vfs_subvol_make(FS(&x), w, "sub", 0755, &cred, &st));
	TU_RC(arb_vfs_snapshot(FS(&x), wid, x.root, "w-ro", ARB_SNAPSHOT_RDONLY, &st));
	TU_RC_EQ(arb_vfs_unlink(FS(&x), st.ino, "small"), -EROFS);
	after = dump_subvol(FS(&x), ro, true);
	expect_same_dump("read-only snapshot after changes to its snapshot", src, after);
	free(after);
	free(src);
	expect_healthy(FS(&x));

	/* a read-only snapshot can be deleted */
	TU_RC(arb_vfs_subvol_delete(FS(&x), x.root, "ro"));
	expect_gone(FS(&x), small);
	TU_EQ_U64(stat_of(FS(&x), tu_lookup(FS(&x), w, "a")).nlink, 3);
	TU_RC(arb_vfs_subvol_delete(FS(&x), x.root, "w-ro"));
	sfx_finish(&x);
}

/* A file unlinked while open in the source: a read-only snapshot keeps
 * the orphan until it is deleted, a writable one frees it at the next
 * cleanup. */
static void test_snapshot_orphans(void **state)
{
	struct sfx x;
	struct arb_stat st;
	arb_ino_t f;
	uint64_t id, freed = 0;

	(void)state;
	sfx_setup(&x, DEV_SIZE, 0);
	TU_RC(arb_vfs_subvol_make(FS(&x), x.root, "sv", 0755, &cred, &st));
	id = subvol_of(&st);
	f = tu_mkfile(FS(&x), &cred, st.ino, "f");
	write_pat(FS(&x), f, 0, 100 * KIB, 1);
	TU_RC(arb_vfs_open(FS(&x), f));
	TU_RC(arb_vfs_unlink(FS(&x), root_of(id), "f"));
	TU_RC(arb_vfs_snapshot(FS(&x), id, x.root, "ro", ARB_SNAPSHOT_RDONLY, &st));
	TU_RC(arb_vfs_snapshot(FS(&x), id, x.root, "w", 0, &st));
	TU_RC(arb_vfs_release(FS(&x), f));
	expect_gone(FS(&x), f);
	expect_healthy(FS(&x));
	tu_commit(FS(&x));
	tu_fs_reopen(&x.t);
	TU_RC(arb_vfs_orphan_cleanup(FS(&x), &freed));
	TU_EQ_U64(freed, 1); /* the writable snapshot's */
	TU_RC(arb_vfs_orphan_cleanup(FS(&x), &freed));
	TU_EQ_U64(freed, 0);
	expect_healthy(FS(&x));
	TU_RC(arb_vfs_subvol_delete(FS(&x), x.root, "ro"));
	TU_RC(arb_vfs_subvol_delete(FS(&x), x.root, "w"));
	expect_healthy(FS(&x));
	sfx_finish(&x);
}

/* fsync of a file of a snapshot made since the last commit: the file's
 * tree is not durable yet, so the fsync log cannot describe it alone. */
static void test_snapshot_fsync(void **state)
{
	struct sfx x;
	struct arb_stat st;
	arb_ino_t f, g;
	uint64_t id;
	uint8_t buf[4096];
	size_t got;

	(void)state;
	sfx_setup(&x, DEV_SIZE, 0);
	TU_RC(arb_vfs_subvol_make(FS(&x), x.root, "sv", 0755, &cred, &st));
	id = subvol_of(&st);
	f = tu_mkfile(FS(&x), &cred, st.ino, "f");
	write_pat(FS(&x), f, 0, 64 * KIB, 1);
	TU_RC(arb_vfs_fsync(FS(&x), f)); /* a commit, and a log from now on */
	TU_RC(arb_vfs_snapshot(FS(&x), id, x.root, "snap", 0, &st));
	g = tu_lookup(FS(&x), st.ino, "f");
	write_pat(FS(&x), g, 8192, 4096, 2);
	TU_RC(arb_vfs_fsync(FS(&x), g));
	/* a power cut: nothing more reaches the device */
	sfx_reopen(&x);
	g = tu_lookup(FS(&x), tu_lookup(FS(&x), x.root, "snap"), "f");
	TU_RC(arb_vfs_read(FS(&x), g, 8192, buf, sizeof(buf), &got));
	TU_EQ_U64(got, sizeof(buf));
	for (size_t i = 0; i < sizeof(buf); i++)
		TU_ASSERT(buf[i] == pat_byte(2, 8192 + i), "byte %zu of the fsynced write", i);
	TU_RC(arb_vfs_read(FS(&x), f, 8192, buf, sizeof(buf), &got));
	TU_EQ_U64(buf[0], pat_byte(1, 8192));
	sfx_finish(&x);
}

/* More subvolumes than the orphan cleanup takes in one batch (64), each
 * with an orphan from its source; listing them all. */
static void test_many(void **state)
{
	struct sfx x;
	struct arb_stat st;
	arb_ino_t f;
	uint64_t id, freed = 0;
	char name[32];
	unsigned n = 0;

	(void)state;
	sfx_setup(&x, DEV_SIZE, 4096);
	TU_RC(arb_vfs_subvol_make(FS(&x), x.root, "sv", 0755, &cred, &st));
	id = subvol_of(&st);
	f = tu_mkfile(FS(&x), &cred, st.ino, "f");
	write_pat(FS(&x), f, 0, 20 * KIB, 1);
	TU_RC(arb_vfs_open(FS(&x), f));
	TU_RC(arb_vfs_unlink(FS(&x), root_of(id), "f"));
	for (unsigned i = 0; i < 150; i++) {
		snprintf(name, sizeof(name), "snap%u", i);
		TU_RC(arb_vfs_snapshot(FS(&x), i % 3 ? id : x.top, x.root, name,
		                       i % 10 == 9 ? ARB_SNAPSHOT_RDONLY : 0, &st));
		n += i % 3 && i % 10 != 9;
		if (i % 40 == 39)
			tu_commit(FS(&x));
	}
	TU_RC(arb_vfs_release(FS(&x), f));
	TU_EQ_U64(subvol_count(FS(&x)), 152);
	TU_EQ_U64(stat_of(FS(&x), x.root).nlink, 2 + 151);
	tu_commit(FS(&x));
	tu_fs_reopen(&x.t);
	TU_RC(arb_vfs_orphan_cleanup(FS(&x), &freed));
	TU_EQ_U64(freed, n); /* the writable snapshots of sv */
	expect_healthy(FS(&x));
	for (unsigned i = 0; i < 150; i++) {
		snprintf(name, sizeof(name), "snap%u", i);
		TU_RC(arb_vfs_subvol_delete(FS(&x), x.root, name));
	}
	TU_EQ_U64(subvol_count(FS(&x)), 2);
	TU_EQ_U64(stat_of(FS(&x), x.root).nlink, 3);
	sfx_finish(&x);
}

/* A subvolume deleted while a file of it is open: the file is gone too. */
static void test_open_delete(void **state)
{
	struct sfx x;
	struct arb_stat st;
	arb_ino_t f, g;
	uint8_t b;
	size_t got;
	int rc;

	(void)state;
	sfx_setup(&x, DEV_SIZE, 0);
	TU_RC(arb_vfs_subvol_make(FS(&x), x.root, "sv", 0755, &cred, &st));
	f = tu_mkfile(FS(&x), &cred, st.ino, "f");
	g = tu_mkfile(FS(&x), &cred, st.ino, "g");
	write_pat(FS(&x), f, 0, 100 * KIB, 1);
	tu_commit(FS(&x));
	TU_RC(arb_vfs_open(FS(&x), f));
	TU_RC(arb_vfs_open(FS(&x), g));
	TU_RC(arb_vfs_unlink(FS(&x), st.ino, "g")); /* an orphan */
	TU_RC(arb_vfs_subvol_delete(FS(&x), x.root, "sv"));
	expect_gone(FS(&x), f);
	expect_gone(FS(&x), g);
	TU_RC_EQ(arb_vfs_write(FS(&x), f, 0, "x", 1, &got), -ENOENT);
	TU_RC_EQ(arb_vfs_read(FS(&x), g, 0, &b, 1, &got), -ENOENT);
	rc = arb_vfs_fsync(FS(&x), f);
	TU_ASSERT(rc == 0 || rc == -ENOENT, "fsync: %s", tu_strerr(rc));
	rc = arb_vfs_release(FS(&x), f);
	TU_ASSERT(rc == 0 || rc == -ENOENT, "release: %s", tu_strerr(rc));
	rc = arb_vfs_release(FS(&x), g);
	TU_ASSERT(rc == 0 || rc == -ENOENT, "release: %s", tu_strerr(rc));
	expect_healthy(FS(&x));
	sfx_finish(&x);
}

/* ---- 5. inode numbers ---- */

static void test_inode_numbers(void **state)
{
	struct sfx x;
	struct arb_stat st;
	arb_ino_t ino[4], snap[3];
	uint64_t id;

	(void)state;
	sfx_setup(&x, DEV_SIZE, 0);
	TU_RC(arb_vfs_subvol_make(FS(&x), x.root, "src", 0755, &cred, &st));
	id = subvol_of(&st);
	ino[0] = tu_mkfile(FS(&x), &cred, tu_mkdir(FS(&x), &cred, st.ino, "d"), "f");
	write_pat(FS(&x), ino[0], 0, 12345, 1);
	TU_RC(arb_vfs_snapshot(FS(&x), id, x.root, "s1", 0, &st));
	snap[0] = st.ino;
	TU_RC(arb_vfs_snapshot(FS(&x), id, root_of(id), "s2", ARB_SNAPSHOT_RDONLY, &st));
	snap[1] = st.ino;
	/* a snapshot of a snapshot */
	TU_RC(arb_vfs_snapshot(FS(&x), arb_ino_subvol(snap[0]), x.root, "s3", 0, &st));
	snap[2] = st.ino;
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < 3; i++) {
			struct listing l;

			ino[i + 1] = tu_lookup(FS(&x), tu_lookup(FS(&x), snap[i], "d"), "f");
			list_dir(FS(&x), tu_lookup(FS(&x), snap[i], "d"), &l);
			TU_EQ_U64(l.n, 1);
			TU_EQ_U64(l.v[0].ino, ino[i + 1]);
			free(l.v);
			TU_EQ_U64(stat_of(FS(&x), ino[i + 1]).size, 12345);
		}
		for (int i = 0; i < 4; i++) {
			TU_EQ_U64(arb_ino_local(ino[i]), arb_ino_local(ino[0]));
			for (int j = 0; j < i; j++)
				TU_ASSERT(ino[i] != ino[j], "st_ino %" PRIx64 " twice", ino[i]);
		}
		TU_EQ_U64(arb_ino_subvol(ino[0]), id);
		for (int i = 0; i < 3; i++)
			TU_EQ_U64(arb_ino_subvol(ino[i + 1]), arb_ino_subvol(snap[i]));
		sfx_cycle(&x);
	}
	sfx_finish(&x);
}

/* ==== the model of many subvolumes (3 and 6) ============================ */

#define MAX_SV 40
#define NDIR 4  /* the root and d1..d3 */
#define NFILE 8 /* f0..f7 in each directory */
#define FILE_CAP (160 * KIB)

/* File contents, shared between model copies (copy on write). */
struct blob {
	unsigned refs;
	uint64_t size;
	uint8_t data[];
};

static struct blob *blob_get(struct blob *b)
{
	if (b)
		b->refs++;
	return b;
}

static void blob_put(struct blob *b)
{
	if (b && --b->refs == 0)
		free(b);
}

/* A private copy of *bp resized to size (zeros beyond the old end). */
static uint8_t *blob_mut(struct blob **bp, uint64_t size)
{
	struct blob *o = *bp, *n = xrealloc(NULL, sizeof(*n) + size);
	uint64_t keep = o ? (o->size < size ? o->size : size) : 0;

	n->refs = 1;
	n->size = size;
	if (keep)
		memcpy(n->data, o->data, keep);
	memset(n->data + keep, 0, size - keep);
	blob_put(o);
	*bp = n;
	return n->data;
}

static uint64_t blob_size(const struct blob *b)
{
	return b ? b->size : 0;
}

struct mfile {
	bool live;
	uint64_t local;
	struct blob *b;
};

struct mdir {
	bool live;
	uint64_t local;
	struct mfile f[NFILE];
};

struct msv {
	uint64_t id; /* 0: slot unused */
	bool live;
	bool ro;
	int parent;    /* slot holding the link, -1: none */
	unsigned pdir; /* directory of the parent holding the link */
	char name[24];
	uint64_t source; /* snapshot: the source's id */
	arb_ino_t probe; /* an inode of it, to check a deleted one is gone */
	struct mdir d[NDIR];
};

#define MAX_DEAD 32

struct model {
	struct msv sv[MAX_SV];
	unsigned nr; /* slots used so far (live or not) */
	/* the last subvolumes deleted: an inode of each must stay gone */
	struct {
		uint64_t id;
		arb_ino_t probe;
	} dead[MAX_DEAD];
	unsigned ndead;
};

static void model_free(struct model *m)
{
	for (unsigned s = 0; s < m->nr; s++)
		for (unsigned d = 0; d < NDIR; d++)
			for (unsigned f = 0; f < NFILE; f++)
				blob_put(m->sv[s].d[d].f[f].b);
	memset(m, 0, sizeof(*m));
}

static void model_copy(struct model *dst, const struct model *src)
{
	model_free(dst);
	*dst = *src;
	for (unsigned s = 0; s < dst->nr; s++)
		for (unsigned d = 0; d < NDIR; d++)
			for (unsigned f = 0; f < NFILE; f++)
				blob_get(dst->sv[s].d[d].f[f].b);
}

/* The content of subvolume src in slot dst (links not included). */
static void sv_copy_content(struct msv *dst, const struct msv *src)
{
	memcpy(dst->d, src->d, sizeof(dst->d));
	for (unsigned d = 0; d < NDIR; d++)
		for (unsigned f = 0; f < NFILE; f++)
			blob_get(dst->d[d].f[f].b);
}

static unsigned nr_links_in(const struct model *m, unsigned s, unsigned d)
{
	unsigned n = 0;

	for (unsigned c = 0; c < m->nr; c++)
		n += m->sv[c].live && m->sv[c].parent == (int)s && m->sv[c].pdir == d;
	return n;
}

static bool has_children(const struct model *m, unsigned s)
{
	for (unsigned d = 0; d < NDIR; d++)
		if (nr_links_in(m, s, d))
			return true;
	return false;
}

static unsigned nr_live(const struct model *m)
{
	unsigned n = 0;

	for (unsigned s = 0; s < m->nr; s++)
		n += m->sv[s].live;
	return n;
}

static arb_ino_t m_dir_ino(const struct model *m, unsigned s, unsigned d)
{
	return arb_ino_make(m->sv[s].id, m->sv[s].d[d].local);
}

static arb_ino_t m_file_ino(const struct model *m, unsigned s, unsigned d, unsigned f)
{
	return arb_ino_make(m->sv[s].id, m->sv[s].d[d].f[f].local);
}

/* ---- comparing ---- */

struct cmpctx {
	struct arb_fs *fs;
	const struct model *m;
	uint8_t *buf; /* FILE_CAP + 1 */
	uint64_t files, bytes;
};

static void cmp_file(struct cmpctx *c, unsigned s, unsigned d, unsigned f)
{
	const struct mfile *mf = &c->m->sv[s].d[d].f[f];
	arb_ino_t ino = m_file_ino(c->m, s, d, f);
	struct arb_stat st = stat_of(c->fs, ino);
	uint64_t size = blob_size(mf->b);
	size_t got = SIZE_MAX;

	TU_EQ_U64(st.mode, S_IFREG | 0644);
	TU_EQ_U64(st.nlink, 1);
	TU_EQ_U64(st.size, size);
	TU_RC(arb_vfs_read(c->fs, ino, 0, c->buf, FILE_CAP + 1, &got));
	TU_EQ_U64(got, size);
	if (size && memcmp(c->buf, mf->b->data, size) != 0)
		for (size_t i = 0; i < size; i++)
			if (c->buf[i] != mf->b->data[i])
				TU_FAIL("subvolume %" PRIu64 " d%u/f%u: byte %zu is 0x%02x, "
				        "expected 0x%02x",
				        c->m->sv[s].id, d, f, i, c->buf[i], mf->b->data[i]);
	c->files++;
	c->bytes += size;
}

static void cmp_dir(struct cmpctx *c, unsigned s, unsigned d)
{
	const struct model *m = c->m;
	const struct msv *sv = &m->sv[s];
	arb_ino_t dino = m_dir_ino(m, s, d);
	struct arb_stat st = stat_of(c->fs, dino);
	unsigned want = 0, subdirs = 0, links = nr_links_in(m, s, d);
	struct listing l;
	char name[32];

	list_dir(c->fs, dino, &l);
	for (unsigned f = 0; f < NFILE; f++) {
		const struct lent *e;

		if (!sv->d[d].f[f].live)
			continue;
		snprintf(name, sizeof(name), "f%u", f);
		e = list_find(&l, name);
		TU_ASSERT(e, "subvolume %" PRIu64 " d%u: %s not listed", sv->id, d, name);
		TU_EQ_U64(e->ino, m_file_ino(m, s, d, f));
		TU_EQ_U64(e->dtype, DT_REG);
		want++;
		cmp_file(c, s, d, f);
	}
	for (unsigned k = 1; d == 0 && k < NDIR; k++) {
		const struct lent *e;

		if (!sv->d[k].live)
			continue;
		snprintf(name, sizeof(name), "d%u", k);
		e = list_find(&l, name);
		TU_ASSERT(e, "subvolume %" PRIu64 ": %s not listed", sv->id, name);
		TU_EQ_U64(e->ino, m_dir_ino(m, s, k));
		TU_EQ_U64(e->dtype, DT_DIR);
		want++;
		subdirs++;
	}
	for (unsigned k = 0; k < m->nr; k++) {
		const struct lent *e;

		if (!m->sv[k].live || m->sv[k].parent != (int)s || m->sv[k].pdir != d)
			continue;
		e = list_find(&l, m->sv[k].name);
		TU_ASSERT(e, "subvolume %" PRIu64 " d%u: link %s not listed", sv->id, d,
		          m->sv[k].name);
		TU_EQ_U64(e->ino, root_of(m->sv[k].id));
		TU_EQ_U64(e->dtype, DT_DIR);
		want++;
	}
	if (l.n != want) {
		for (size_t i = 0; i < l.n; i++)
			print_message("#   listed %s ino %#" PRIx64 "\n", l.v[i].name, l.v[i].ino);
		TU_FAIL("subvolume %" PRIu64 " d%u: %zu entries listed, %u expected", sv->id, d,
		        l.n, want);
	}
	free(l.v);
	TU_EQ_U64(st.mode, S_IFDIR | 0755);
	TU_EQ_U64(st.nlink, 2 + subdirs + links);
	if (d) {
		arb_ino_t p;

		TU_RC(arb_vfs_parent(c->fs, dino, &p));
		TU_EQ_U64(p, root_of(sv->id));
	}
}

/* One subvolume against the model. */
static void cmp_sv(struct cmpctx *c, unsigned s)
{
	const struct model *m = c->m;
	const struct msv *sv = &m->sv[s];
	struct arb_subvol info;
	arb_ino_t p;

	if (!sv->live)
		return;
	TU_RC(arb_vfs_root(c->fs, sv->id, &p));
	info = sv_get(c->fs, sv->id);
	TU_ASSERT(info.readonly == sv->ro, "subvolume %" PRIu64 " read-only %d", sv->id,
	          info.readonly);
	TU_EQ_U64(info.source_id, sv->source);
	TU_RC(arb_vfs_parent(c->fs, root_of(sv->id), &p));
	if (sv->parent < 0) {
		TU_EQ_U64(info.parent_id, 0);
		TU_EQ_U64(p, root_of(sv->id));
	} else {
		TU_EQ_U64(info.parent_id, m->sv[sv->parent].id);
		TU_EQ_U64(info.dirid, m->sv[sv->parent].d[sv->pdir].local);
		TU_ASSERT(strcmp(info.name, sv->name) == 0, "name %s, expected %s", info.name,
		          sv->name);
		TU_EQ_U64(p, m_dir_ino(m, (unsigned)sv->parent, sv->pdir));
	}
	for (unsigned d = 0; d < NDIR; d++)
		if (sv->d[d].live)
			cmp_dir(c, s, d);
}

static int list_check_fn(void *ctx, const struct arb_subvol *info)
{
	struct cmpctx *c = ctx;
	bool found = false;

	for (unsigned s = 0; s < c->m->nr && !found; s++)
		found = c->m->sv[s].live && c->m->sv[s].id == info->id;
	TU_ASSERT(found, "subvolume %" PRIu64 " listed, not in the model", info->id);
	return 0;
}

static void model_compare(struct arb_fs *fs, const struct model *m, uint8_t *buf)
{
	struct cmpctx c = {.fs = fs, .m = m, .buf = buf};

	for (unsigned s = 0; s < m->nr; s++)
		cmp_sv(&c, s);
	for (unsigned i = 0; i < m->ndead; i++) {
		struct arb_subvol info;
		struct arb_stat st;
		arb_ino_t p;

		TU_RC_EQ(arb_vfs_root(fs, m->dead[i].id, &p), -ENOENT);
		TU_RC_EQ(arb_vfs_subvol_get(fs, m->dead[i].id, &info), -ENOENT);
		TU_RC_EQ(arb_vfs_getattr(fs, root_of(m->dead[i].id), &st), -ENOENT);
		expect_gone(fs, m->dead[i].probe);
	}
	TU_EQ_U64(subvol_count(fs), nr_live(m));
	TU_RC(arb_vfs_subvol_list(fs, list_check_fn, &c));
}

/* ---- a run ---- */

/* One state a power cut may leave (crash test): a commit, or an fsync
 * that went to the fsync log (the last commit plus the logged files). */
struct state {
	struct model m;
	uint64_t gen;
	size_t ev0, ev1; /* device events before and after */
	bool commit;
	unsigned s, d, f; /* fsync: the file */
	arb_ino_t ino;
};

struct run {
	struct tu_fs t;
	struct tu_rng rng;
	struct model cur;
	/* what a power cut (or a reopen without a commit) leaves: the last
	 * commit plus the files whose fsync went to the log */
	struct model committed;
	struct state *st; /* recorded states (crash test), NULL: none */
	unsigned nst, capst;
	uint8_t *buf;  /* FILE_CAP + 1 */
	uint8_t *data; /* FILE_CAP */
	unsigned name_seq;
	int touched[4];
	unsigned ntouched;
	uint64_t ops, commits, reopens, drops, compares, checks, refused;
	uint64_t snapshots, ro_snapshots, deletes, makes, renames, max_live;
	uint64_t fsync_logged, fsync_commits;
	bool data_phase;           /* only data writes and fsyncs for a while */
	unsigned data_pct;         /* chance of such a phase after a commit */
	bool lw;                   /* the file last written: */
	unsigned lw_s, lw_d, lw_f; /* fsync prefers it */
	char last[160];
};

static struct arb_fs *RFS(struct run *r)
{
	return r->t.fs;
}

/* Remember what an operation changed, to compare it right after. */
static void touch(struct run *r, unsigned s)
{
	if (r->ntouched < 4)
		r->touched[r->ntouched++] = (int)s;
}

static int pick_sv(struct run *r, bool writable)
{
	unsigned cand[MAX_SV], n = 0;

	for (unsigned s = 0; s < r->cur.nr; s++)
		if (r->cur.sv[s].live && (!writable || !r->cur.sv[s].ro))
			cand[n++] = s;
	return n ? (int)cand[tu_rng_below(&r->rng, n)] : -1;
}

static unsigned pick_dir(struct run *r, unsigned s)
{
	unsigned cand[NDIR], n = 0;

	for (unsigned d = 0; d < NDIR; d++)
		if (r->cur.sv[s].d[d].live)
			cand[n++] = d;
	return cand[tu_rng_below(&r->rng, n)];
}

/* A random live file of s: false if none. */
static bool pick_file(struct run *r, unsigned s, unsigned *rd, unsigned *rf)
{
	unsigned n = 0;

	for (unsigned d = 0; d < NDIR; d++)
		for (unsigned f = 0; f < NFILE; f++)
			n += r->cur.sv[s].d[d].live && r->cur.sv[s].d[d].f[f].live;
	if (!n)
		return false;
	n = (unsigned)tu_rng_below(&r->rng, n);
	for (unsigned d = 0; d < NDIR; d++)
		for (unsigned f = 0; f < NFILE; f++)
			if (r->cur.sv[s].d[d].live && r->cur.sv[s].d[d].f[f].live && n-- == 0) {
				*rd = d;
				*rf = f;
				return true;
			}
	return false;
}

static void fill_random(struct run *r, uint8_t *p, size_t len)
{
	uint64_t v = 0;

	for (size_t i = 0; i < len; i++) {
		if (i % 8 == 0)
			v = tu_rng_next(&r->rng);
		p[i] = (uint8_t)(v >> (8 * (i % 8)));
	}
}

static uint64_t random_len(struct run *r)
{
	unsigned p = (unsigned)tu_rng_below(&r->rng, 100);

	if (p < 60)
		return tu_rng_range(&r->rng, 1, 4096);
	if (p < 92)
		return tu_rng_range(&r->rng, 1, 32 * KIB);
	return tu_rng_range(&r->rng, 32 * KIB, 128 * KIB);
}

static uint64_t maybe_align(struct run *r, uint64_t v)
{
	return tu_rng_pct(&r->rng, 30) ? v / 4096 * 4096 : v;
}

static void new_link_name(struct run *r, char *buf, size_t size)
{
	snprintf(buf, size, "s%u", r->name_seq++);
}

/* ---- operations ---- */

static void do_create(struct run *r, unsigned s, unsigned d, unsigned f)
{
	struct mfile *mf = &r->cur.sv[s].d[d].f[f];
	char name[16];
	struct arb_stat st;
	int rc;

	snprintf(name, sizeof(name), "f%u", f);
	rc = arb_vfs_mknod(RFS(r), m_dir_ino(&r->cur, s, d), name, S_IFREG | 0644, 0, &cred, &st);
	if (mf->live) {
		TU_RC_EQ(rc, -EEXIST);
		r->refused++;
		return;
	}
	TU_RC(rc);
	TU_EQ_U64(arb_ino_subvol(st.ino), r->cur.sv[s].id);
	*mf = (struct mfile){.live = true, .local = arb_ino_local(st.ino)};
	if (!r->cur.sv[s].probe)
		r->cur.sv[s].probe = st.ino;
}

static void op_create(struct run *r)
{
	unsigned s = (unsigned)pick_sv(r, true), d = pick_dir(r, s);

	snprintf(r->last, sizeof(r->last), "create in %" PRIu64, r->cur.sv[s].id);
	do_create(r, s, d, (unsigned)tu_rng_below(&r->rng, NFILE));
	touch(r, s);
}

static void op_write(struct run *r)
{
	unsigned s = (unsigned)pick_sv(r, true), d = pick_dir(r, s),
	         f = (unsigned)tu_rng_below(&r->rng, NFILE);
	struct mfile *mf = &r->cur.sv[s].d[d].f[f];
	uint64_t size, off, len;
	size_t done = 0;
	uint8_t *p;

	if (!mf->live)
		do_create(r, s, d, f);
	size = blob_size(mf->b);
	off = tu_rng_pct(&r->rng, 40) ? size : tu_rng_below(&r->rng, size + 8 * KIB);
	off = maybe_align(r, off);
	len = random_len(r);
	if (off >= FILE_CAP)
		off = tu_rng_below(&r->rng, FILE_CAP / 2);
	if (off + len > FILE_CAP)
		len = FILE_CAP - off;
	snprintf(r->last, sizeof(r->last), "write %" PRIu64 "/d%u/f%u %" PRIu64 "+%" PRIu64,
	         r->cur.sv[s].id, d, f, off, len);
	fill_random(r, r->data, len);
	TU_RC(arb_vfs_write(RFS(r), m_file_ino(&r->cur, s, d, f), off, r->data, len, &done));
	TU_EQ_U64(done, len);
	p = blob_mut(&mf->b, off + len > size ? off + len : size);
	memcpy(p + off, r->data, len);
	r->lw = true;
	r->lw_s = s;
	r->lw_d = d;
	r->lw_f = f;
	touch(r, s);
}

static void op_truncate(struct run *r)
{
	unsigned s = (unsigned)pick_sv(r, true), d, f;
	struct arb_setattr sa = {.valid = ARB_SET_SIZE};
	struct arb_stat st;
	uint64_t size;

	if (!pick_file(r, s, &d, &f))
		return;
	size = blob_size(r->cur.sv[s].d[d].f[f].b);
	sa.size = tu_rng_pct(&r->rng, 50) ? tu_rng_below(&r->rng, size + 1)
	                                  : tu_rng_below(&r->rng, FILE_CAP + 1);
	sa.size = maybe_align(r, sa.size);
	snprintf(r->last, sizeof(r->last), "truncate %" PRIu64 "/d%u/f%u to %" PRIu64,
	         r->cur.sv[s].id, d, f, sa.size);
	TU_RC(arb_vfs_setattr(RFS(r), m_file_ino(&r->cur, s, d, f), &sa, &st));
	TU_EQ_U64(st.size, sa.size);
	if (sa.size != size)
		(void)blob_mut(&r->cur.sv[s].d[d].f[f].b, sa.size);
	touch(r, s);
}

static void op_unlink(struct run *r)
{
	unsigned s = (unsigned)pick_sv(r, true), d = pick_dir(r, s),
	         f = (unsigned)tu_rng_below(&r->rng, NFILE);
	struct mfile *mf = &r->cur.sv[s].d[d].f[f];
	char name[16];
	int rc;

	snprintf(name, sizeof(name), "f%u", f);
	snprintf(r->last, sizeof(r->last), "unlink %" PRIu64 "/d%u/f%u", r->cur.sv[s].id, d, f);
	rc = arb_vfs_unlink(RFS(r), m_dir_ino(&r->cur, s, d), name);
	if (!mf->live) {
		TU_RC_EQ(rc, -ENOENT);
		r->refused++;
		return;
	}
	TU_RC(rc);
	if (r->cur.sv[s].probe == m_file_ino(&r->cur, s, d, f))
		r->cur.sv[s].probe = 0;
	blob_put(mf->b);
	memset(mf, 0, sizeof(*mf));
	touch(r, s);
}

/* Copy a range from a file of any subvolume into one of a writable one. */
static void op_copy(struct run *r)
{
	int ss = pick_sv(r, false);
	unsigned s = (unsigned)ss, sd, sf, d, f, t = (unsigned)pick_sv(r, true);
	uint64_t soff, doff, len, ssize, dsize, copied = UINT64_MAX, n;
	struct blob *src;
	uint8_t *p;

	if (!pick_file(r, s, &sd, &sf) || !pick_file(r, t, &d, &f))
		return;
	if (s == t && sd == d && sf == f)
		return;
	src = blob_get(r->cur.sv[s].d[sd].f[sf].b); /* dst may share it */
	ssize = blob_size(src);
	dsize = blob_size(r->cur.sv[t].d[d].f[f].b);
	soff = maybe_align(r, tu_rng_below(&r->rng, ssize + 4096));
	len = random_len(r);
	doff = tu_rng_pct(&r->rng, 50) ? soff : maybe_align(r, tu_rng_below(&r->rng, dsize + 4096));
	if (doff >= FILE_CAP)
		doff = 0;
	if (doff + len > FILE_CAP)
		len = FILE_CAP - doff;
	snprintf(r->last, sizeof(r->last),
	         "copy %" PRIu64 "/d%u/f%u %" PRIu64 " -> %" PRIu64 "/d%u/f%u %" PRIu64
	         " len %" PRIu64,
	         r->cur.sv[s].id, sd, sf, soff, r->cur.sv[t].id, d, f, doff, len);
	TU_RC(arb_vfs_copy_range(RFS(r), m_file_ino(&r->cur, s, sd, sf), soff,
	                         m_file_ino(&r->cur, t, d, f), doff, len, &copied));
	n = soff >= ssize || !len ? 0 : (len < ssize - soff ? len : ssize - soff);
	TU_EQ_U64(copied, n);
	if (n) {
		p = blob_mut(&r->cur.sv[t].d[d].f[f].b, doff + n > dsize ? doff + n : dsize);
		memcpy(p + doff, src->data + soff, n);
	}
	blob_put(src);
	touch(r, t);
}

static void op_dir(struct run *r)
{
	unsigned s = (unsigned)pick_sv(r, true), k = (unsigned)tu_rng_range(&r->rng, 1, NDIR - 1);
	struct mdir *md = &r->cur.sv[s].d[k];
	char name[16];
	struct arb_stat st;
	int rc;

	snprintf(name, sizeof(name), "d%u", k);
	snprintf(r->last, sizeof(r->last), "mkdir/rmdir %" PRIu64 "/d%u", r->cur.sv[s].id, k);
	touch(r, s);
	if (!md->live) {
		TU_RC(arb_vfs_mkdir(RFS(r), root_of(r->cur.sv[s].id), name, 0755, &cred, &st));
		*md = (struct mdir){.live = true, .local = arb_ino_local(st.ino)};
		return;
	}
	rc = arb_vfs_rmdir(RFS(r), root_of(r->cur.sv[s].id), name);
	for (unsigned f = 0; f < NFILE; f++)
		if (md->f[f].live) {
			TU_RC_EQ(rc, -ENOTEMPTY);
			r->refused++;
			return;
		}
	if (nr_links_in(&r->cur, s, k)) {
		TU_RC_EQ(rc, -ENOTEMPTY);
		r->refused++;
		return;
	}
	TU_RC(rc);
	memset(md, 0, sizeof(*md));
}

/* A free slot (never used, or of a deleted subvolume), -1 if none. */
static int new_slot(struct run *r)
{
	for (unsigned s = 0; s < r->cur.nr; s++)
		if (!r->cur.sv[s].live)
			return (int)s;
	return r->cur.nr < MAX_SV ? (int)r->cur.nr++ : -1;
}

static bool id_known(const struct model *m, uint64_t id, unsigned except)
{
	for (unsigned s = 0; s < m->nr; s++)
		if (s != except && m->sv[s].live && m->sv[s].id == id)
			return true;
	for (unsigned i = 0; i < m->ndead; i++)
		if (m->dead[i].id == id)
			return true;
	return false;
}

static void op_snapshot(struct run *r)
{
	unsigned src = (unsigned)pick_sv(r, false), t = (unsigned)pick_sv(r, true),
	         d = pick_dir(r, t);
	bool ro = tu_rng_pct(&r->rng, 35);
	struct arb_stat st;
	struct msv *n;
	char name[24];
	int slot;

	if (tu_rng_pct(&r->rng, 5)) {
		/* onto a taken name */
		unsigned f = (unsigned)tu_rng_below(&r->rng, NFILE);

		snprintf(name, sizeof(name), "f%u", f);
		if (r->cur.sv[t].d[d].f[f].live) {
			TU_RC_EQ(arb_vfs_snapshot(RFS(r), r->cur.sv[src].id,
			                          m_dir_ino(&r->cur, t, d), name, 0, &st),
			         -EEXIST);
			r->refused++;
		}
		return;
	}
	slot = new_slot(r);
	if (slot < 0)
		return;
	new_link_name(r, name, sizeof(name));
	snprintf(r->last, sizeof(r->last), "snapshot %" PRIu64 " as %" PRIu64 "/d%u/%s%s",
	         r->cur.sv[src].id, r->cur.sv[t].id, d, name, ro ? " read-only" : "");
	TU_RC(arb_vfs_snapshot(RFS(r), r->cur.sv[src].id, m_dir_ino(&r->cur, t, d), name,
	                       ro ? ARB_SNAPSHOT_RDONLY : 0, &st));
	n = &r->cur.sv[slot];
	memset(n, 0, sizeof(*n));
	n->id = arb_ino_subvol(st.ino);
	TU_EQ_U64(arb_ino_local(st.ino), ARB_FIRST_INO);
	n->live = true;
	n->ro = ro;
	n->parent = (int)t;
	n->pdir = d;
	n->source = r->cur.sv[src].id;
	snprintf(n->name, sizeof(n->name), "%s", name);
	sv_copy_content(n, &r->cur.sv[src]);
	n->probe = r->cur.sv[src].probe ? arb_ino_make(n->id, arb_ino_local(r->cur.sv[src].probe))
	                                : root_of(n->id);
	TU_ASSERT(!id_known(&r->cur, n->id, (unsigned)slot), "subvolume id %" PRIu64 " reused",
	          n->id);
	r->snapshots++;
	r->ro_snapshots += ro;
	touch(r, (unsigned)slot);
	touch(r, src);
}

static void op_make(struct run *r)
{
	unsigned t = (unsigned)pick_sv(r, true), d = pick_dir(r, t);
	struct arb_stat st;
	struct msv *n;
	char name[24];
	int slot = new_slot(r);

	if (slot < 0)
		return;
	new_link_name(r, name, sizeof(name));
	snprintf(r->last, sizeof(r->last), "make %" PRIu64 "/d%u/%s", r->cur.sv[t].id, d, name);
	TU_RC(arb_vfs_subvol_make(RFS(r), m_dir_ino(&r->cur, t, d), name, 0755, &cred, &st));
	n = &r->cur.sv[slot];
	memset(n, 0, sizeof(*n));
	n->id = arb_ino_subvol(st.ino);
	TU_ASSERT(!id_known(&r->cur, n->id, (unsigned)slot), "subvolume id %" PRIu64 " reused",
	          n->id);
	n->live = true;
	n->parent = (int)t;
	n->pdir = d;
	n->probe = root_of(n->id);
	snprintf(n->name, sizeof(n->name), "%s", name);
	n->d[0] = (struct mdir){.live = true, .local = ARB_FIRST_INO};
	r->makes++;
	touch(r, (unsigned)slot);
}

/* Delete a subvolume with no links inside (or try one that has some). */
/* A step of the background cleaner, between the other changes: shared
 * nodes of a deleted snapshot lose their other owner mid-walk. */
static void op_clean(struct run *r)
{
	uint64_t left;

	snprintf(r->last, sizeof(r->last), "cleaner step");
	TU_RC(arb_fs_drop_step(RFS(r), 1 + tu_rng_below(&r->rng, 8), &left));
}

static void op_delete(struct run *r)
{
	unsigned cand[MAX_SV], n = 0, s;
	bool busy = tu_rng_pct(&r->rng, 10), nested = tu_rng_pct(&r->rng, 10);
	struct msv *sv;

	for (unsigned k = 0; k < r->cur.nr; k++)
		if (r->cur.sv[k].live && r->cur.sv[k].parent >= 0 &&
		    !r->cur.sv[r->cur.sv[k].parent].ro && has_children(&r->cur, k) == nested)
			cand[n++] = k;
	if (!n)
		return;
	s = cand[tu_rng_below(&r->rng, n)];
	sv = &r->cur.sv[s];
	snprintf(r->last, sizeof(r->last), "delete %" PRIu64 " (%s)", sv->id, sv->name);
	if (nested) {
		TU_RC_EQ(arb_vfs_subvol_delete(RFS(r),
		                               m_dir_ino(&r->cur, (unsigned)sv->parent, sv->pdir),
		                               sv->name),
		         -ENOTEMPTY);
		r->refused++;
		return;
	}
	if (busy) {
		TU_RC(arb_vfs_subvol_set_default(RFS(r), sv->id));
		TU_RC_EQ(arb_vfs_subvol_delete(RFS(r),
		                               m_dir_ino(&r->cur, (unsigned)sv->parent, sv->pdir),
		                               sv->name),
		         -EBUSY);
		TU_RC(arb_vfs_subvol_set_default(RFS(r), r->cur.sv[0].id));
		r->refused++;
	}
	TU_RC(arb_vfs_subvol_delete(RFS(r), m_dir_ino(&r->cur, (unsigned)sv->parent, sv->pdir),
	                            sv->name));
	touch(r, (unsigned)sv->parent);
	if (r->cur.ndead == MAX_DEAD)
		memmove(&r->cur.dead[0], &r->cur.dead[1], (MAX_DEAD - 1) * sizeof(r->cur.dead[0]));
	else
		r->cur.ndead++;
	r->cur.dead[r->cur.ndead - 1].id = sv->id;
	r->cur.dead[r->cur.ndead - 1].probe = sv->probe ? sv->probe : root_of(sv->id);
	for (unsigned d = 0; d < NDIR; d++)
		for (unsigned f = 0; f < NFILE; f++)
			blob_put(sv->d[d].f[f].b);
	memset(sv, 0, sizeof(*sv));
	r->deletes++;
}

/* Move a link to a free name in a directory of the same subvolume. */
static void op_rename_link(struct run *r)
{
	unsigned cand[MAX_SV], n = 0, s, d;
	char name[24];
	struct msv *sv;
	int rc;

	for (unsigned k = 0; k < r->cur.nr; k++)
		if (r->cur.sv[k].live && r->cur.sv[k].parent >= 0 &&
		    !r->cur.sv[r->cur.sv[k].parent].ro)
			cand[n++] = k;
	if (!n)
		return;
	s = cand[tu_rng_below(&r->rng, n)];
	sv = &r->cur.sv[s];
	d = pick_dir(r, (unsigned)sv->parent);
	if (tu_rng_pct(&r->rng, 10)) {
		/* onto a name that is taken */
		unsigned f = (unsigned)tu_rng_below(&r->rng, NFILE);

		snprintf(name, sizeof(name), "f%u", f);
		if (!r->cur.sv[sv->parent].d[d].f[f].live)
			return;
		rc = arb_vfs_rename(RFS(r), m_dir_ino(&r->cur, (unsigned)sv->parent, sv->pdir),
		                    sv->name, m_dir_ino(&r->cur, (unsigned)sv->parent, d), name,
		                    tu_rng_pct(&r->rng, 50) ? ARB_RENAME_EXCHANGE : 0);
		TU_RC_EQ(rc, -EPERM);
		r->refused++;
		return;
	} else {
		new_link_name(r, name, sizeof(name));
		snprintf(r->last, sizeof(r->last), "rename link %s of %" PRIu64 " to d%u/%s",
		         sv->name, sv->id, d, name);
		TU_RC(arb_vfs_rename(RFS(r), m_dir_ino(&r->cur, (unsigned)sv->parent, sv->pdir),
		                     sv->name, m_dir_ino(&r->cur, (unsigned)sv->parent, d), name,
		                     tu_rng_pct(&r->rng, 50) ? ARB_RENAME_NOREPLACE : 0));
	}
	snprintf(sv->name, sizeof(sv->name), "%s", name);
	sv->pdir = d;
	r->renames++;
	touch(r, (unsigned)sv->parent);
	touch(r, s);
}

static struct state *state_new(struct run *r, size_t ev0, bool commit);
static void run_committed(struct run *r, uint64_t gen0, size_t ev0);

/* fsync of a file: a commit, or its content goes to the fsync log (and a
 * power cut keeps it). */
static void op_fsync(struct run *r)
{
	unsigned s = (unsigned)pick_sv(r, false), d, f;
	uint64_t gen0 = fs_generation(RFS(r)), writes0 = arb_memdev_write_count(r->t.dev);
	size_t ev0 = arb_memdev_events(r->t.dev);
	struct mfile *cf, *lf;
	struct state *x;

	if (r->lw && tu_rng_pct(&r->rng, 75) && r->cur.sv[r->lw_s].live &&
	    r->cur.sv[r->lw_s].d[r->lw_d].live && r->cur.sv[r->lw_s].d[r->lw_d].f[r->lw_f].live) {
		s = r->lw_s;
		d = r->lw_d;
		f = r->lw_f;
	} else if (!pick_file(r, s, &d, &f)) {
		return;
	}
	snprintf(r->last, sizeof(r->last), "fsync %" PRIu64 "/d%u/f%u", r->cur.sv[s].id, d, f);
	TU_RC(arb_vfs_fsync(RFS(r), m_file_ino(&r->cur, s, d, f)));
	if (fs_generation(RFS(r)) != gen0) {
		run_committed(r, gen0, ev0);
		r->fsync_commits++;
		return;
	}
	if (arb_memdev_write_count(r->t.dev) == writes0)
		return; /* nothing new to write */
	/* logged: the file exists as it is in the last commit's trees */
	cf = &r->cur.sv[s].d[d].f[f];
	lf = &r->committed.sv[s].d[d].f[f];
	TU_ASSERT(r->committed.sv[s].live && r->committed.sv[s].id == r->cur.sv[s].id &&
	                  r->committed.sv[s].d[d].live && lf->live && lf->local == cf->local,
	          "an fsync of %s went to the log, but its inode is not in the last commit",
	          r->last);
	blob_put(lf->b);
	lf->b = blob_get(cf->b);
	r->fsync_logged++;
	if (!r->st)
		return;
	x = state_new(r, ev0, false);
	x->s = s;
	x->d = d;
	x->f = f;
	x->ino = m_file_ino(&r->cur, s, d, f);
}

/* Any change to a read-only subvolume fails with EROFS. */
static void op_readonly(struct run *r)
{
	unsigned cand[MAX_SV], n = 0, s, d, f, t = (unsigned)pick_sv(r, true);
	struct arb_setattr sa = {.valid = ARB_SET_SIZE, .size = 1};
	struct arb_stat st;
	size_t done;
	uint64_t copied;
	bool file;
	int rc = 0;

	for (unsigned k = 0; k < r->cur.nr; k++)
		if (r->cur.sv[k].live && r->cur.sv[k].ro)
			cand[n++] = k;
	if (!n)
		return;
	s = cand[tu_rng_below(&r->rng, n)];
	file = pick_file(r, s, &d, &f);
	if (!file)
		d = pick_dir(r, s);
	snprintf(r->last, sizeof(r->last), "change read-only %" PRIu64, r->cur.sv[s].id);
	switch (tu_rng_below(&r->rng, 8)) {
	case 0:
		rc = arb_vfs_mknod(RFS(r), m_dir_ino(&r->cur, s, d), "x", S_IFREG | 0644, 0, &cred,
		                   &st);
		break;
	case 1:
		rc = arb_vfs_mkdir(RFS(r), m_dir_ino(&r->cur, s, d), "x", 0755, &cred, &st);
		break;
	case 2:
		rc = arb_vfs_subvol_make(RFS(r), m_dir_ino(&r->cur, s, d), "x", 0755, &cred, &st);
		break;
	case 3:
		rc = arb_vfs_snapshot(RFS(r), r->cur.sv[t].id, m_dir_ino(&r->cur, s, d), "x", 0,
		                      &st);
		break;
	case 4:
		if (!file)
			return;
		rc = arb_vfs_write(RFS(r), m_file_ino(&r->cur, s, d, f), 0, "x", 1, &done);
		break;
	case 5:
		if (!file)
			return;
		rc = arb_vfs_setattr(RFS(r), m_file_ino(&r->cur, s, d, f), &sa, &st);
		break;
	case 6:
		if (!file)
			return;
		rc = arb_vfs_unlink(RFS(r), m_dir_ino(&r->cur, s, d), "f0");
		break;
	default: {
		unsigned td, tf;

		if (!file || !pick_file(r, t, &td, &tf))
			return;
		rc = arb_vfs_copy_range(RFS(r), m_file_ino(&r->cur, t, td, tf), 0,
		                        m_file_ino(&r->cur, s, d, f), 0, 8192, &copied);
		break;
	}
	}
	TU_RC_EQ(rc, -EROFS);
	r->refused++;
	touch(r, s);
}

/* ---- driving ---- */

static void run_setup(struct run *r, uint64_t seed, uint64_t dev_size, uint32_t nodesize)
{
	arb_ino_t root;

	memset(r, 0, sizeof(*r));
	tu_rng_init(&r->rng, seed);
	tu_fs_create(&r->t, dev_size, nodesize);
	TU_RC(arb_vfs_init(RFS(r), 0755, &cred));
	TU_RC(arb_vfs_root(RFS(r), 0, &root));
	r->cur.sv[0] = (struct msv){.id = arb_ino_subvol(root), .live = true, .parent = -1};
	r->cur.sv[0].d[0] = (struct mdir){.live = true, .local = ARB_FIRST_INO};
	r->cur.sv[0].probe = root;
	r->cur.nr = 1;
	r->buf = xrealloc(NULL, FILE_CAP + 1);
	r->data = xrealloc(NULL, FILE_CAP);
	r->data_pct = 30;
	tu_commit(RFS(r));
	model_copy(&r->committed, &r->cur);
}

static void run_free(struct run *r)
{
	model_free(&r->cur);
	model_free(&r->committed);
	for (unsigned i = 0; i < r->nst; i++)
		model_free(&r->st[i].m);
	free(r->st);
	free(r->buf);
	free(r->data);
	tu_fs_destroy(&r->t);
}

static struct state *state_new(struct run *r, size_t ev0, bool commit)
{
	struct state *x;

	if (r->nst == r->capst) {
		r->capst = r->capst ? 2 * r->capst : 16;
		r->st = xrealloc(r->st, r->capst * sizeof(*r->st));
	}
	x = &r->st[r->nst++];
	memset(x, 0, sizeof(*x));
	model_copy(&x->m, &r->committed);
	x->gen = fs_generation(RFS(r));
	x->ev0 = ev0;
	x->ev1 = arb_memdev_events(r->t.dev);
	x->commit = commit;
	return x;
}

/* The running transaction has been committed (by a commit, or an fsync
 * that committed) since gen0; ev0 device events before. */
static void run_committed(struct run *r, uint64_t gen0, size_t ev0)
{
	model_copy(&r->committed, &r->cur);
	r->commits++;
	r->data_phase = tu_rng_pct(&r->rng, r->data_pct);
	if (r->st && fs_generation(RFS(r)) != gen0)
		state_new(r, ev0, true);
}

static void run_commit(struct run *r)
{
	uint64_t gen0 = fs_generation(RFS(r));
	size_t ev0 = arb_memdev_events(r->t.dev);

	tu_commit(RFS(r));
	run_committed(r, gen0, ev0);
}

static void run_reopen(struct run *r, bool commit)
{
	uint64_t freed = UINT64_MAX;
	arb_ino_t root = 0;

	if (commit)
		run_commit(r);
	tu_fs_reopen(&r->t);
	TU_RC(arb_vfs_orphan_cleanup(RFS(r), &freed));
	TU_EQ_U64(freed, 0);
	TU_RC(arb_vfs_root(RFS(r), 0, &root));
	TU_EQ_U64(root, root_of(r->cur.sv[0].id));
	if (!commit) {
		/* the last commit, and what the fsync log replayed */
		model_copy(&r->cur, &r->committed);
		r->drops++;
	}
	r->reopens++;
}

static void run_compare(struct run *r, const char *phase, bool check)
{
	tu_ctx_phase(phase);
	model_compare(RFS(r), &r->cur, r->buf);
	r->compares++;
	if (check) {
		expect_healthy(RFS(r));
		r->checks++;
	}
	tu_ctx_phase(NULL);
}

typedef void (*op_fn)(struct run *r);

struct op_weight {
	op_fn fn;
	unsigned weight;
};

static const struct op_weight model_ops[] = {
        {op_write, 26},   {op_create, 8},   {op_truncate, 7}, {op_unlink, 7}, {op_copy, 6},
        {op_dir, 4},      {op_snapshot, 9}, {op_make, 2},     {op_delete, 7}, {op_rename_link, 4},
        {op_readonly, 3}, {op_fsync, 5},    {op_clean, 6},
};

static const struct op_weight crash_ops[] = {
        {op_write, 20},  {op_create, 5},      {op_truncate, 4},  {op_unlink, 4},
        {op_copy, 4},    {op_dir, 2},         {op_snapshot, 12}, {op_make, 2},
        {op_delete, 10}, {op_rename_link, 3}, {op_fsync, 10},    {op_clean, 8},
};

/* Phases of data writes and fsyncs only, so that fsyncs go to the log
 * (a snapshot, a new file, a truncate make the next fsync commit). */
static const struct op_weight data_ops[] = {
        {op_write, 10},
        {op_fsync, 6},
};

static void one_op(struct run *r, const struct op_weight *ops, size_t nops)
{
	unsigned total = 0, p;

	if (r->data_phase) {
		ops = data_ops;
		nops = sizeof(data_ops) / sizeof(data_ops[0]);
	}
	for (size_t i = 0; i < nops; i++)
		total += ops[i].weight;
	p = (unsigned)tu_rng_below(&r->rng, total);
	r->last[0] = 0;
	r->ntouched = 0;
	for (size_t i = 0; i < nops; i++) {
		if (p < ops[i].weight) {
			ops[i].fn(r);
			r->ops++;
			break;
		}
		p -= ops[i].weight;
	}
	if (nr_live(&r->cur) > r->max_live)
		r->max_live = nr_live(&r->cur);
}

#define NR_MODEL_SEEDS 6
#define MODEL_OPS 1500

static void model_seed(uint64_t seed)
{
	struct run *r = calloc(1, sizeof(*r));
	uint64_t nops = tu_scaled(MODEL_OPS);
	double t0 = tu_now_sec();

	TU_ASSERT(r != NULL);
	run_setup(r, seed, DEV_SIZE, seed % 3 == 2 ? 4096 : 0);
	for (uint64_t i = 0; i < nops; i++) {
		tu_ctx_op(i);
		one_op(r, model_ops, sizeof(model_ops) / sizeof(model_ops[0]));
		/* what the operation touched, after every step */
		tu_ctx_phase(r->last);
		for (unsigned k = 0; k < r->ntouched; k++) {
			struct cmpctx c = {.fs = RFS(r), .m = &r->cur, .buf = r->buf};

			cmp_sv(&c, (unsigned)r->touched[k]);
		}
		tu_ctx_phase(NULL);
		if (i % 16 == 15)
			run_compare(r, "every 16 operations", i % 64 == 63);
		if (tu_rng_below(&r->rng, 30) == 0) {
			run_commit(r);
			run_compare(r, "after a commit", true);
		}
		if (tu_rng_below(&r->rng, 120) == 0) {
			run_reopen(r, tu_rng_pct(&r->rng, 60));
			run_compare(r, "after a reopen", true);
		}
	}
	tu_ctx_op(UINT64_MAX);
	run_reopen(r, true);
	run_compare(r, "at the end", true);
	print_message(
	        "# seed %" PRIu64 ": %" PRIu64 " ops (%" PRIu64 " refused as predicted), %" PRIu64
	        " snapshots (%" PRIu64 " read-only), %" PRIu64 " made, %" PRIu64
	        " deleted, %" PRIu64 " links renamed, at most %" PRIu64 " subvolumes, %" PRIu64
	        " commits, %" PRIu64 " fsyncs (%" PRIu64 " logged), %" PRIu64 " reopens (%" PRIu64
	        " without commit), %" PRIu64 " compares, %" PRIu64 " checks, %.2f s\n",
	        seed, r->ops, r->refused, r->snapshots, r->ro_snapshots, r->makes, r->deletes,
	        r->renames, r->max_live, r->commits, r->fsync_commits + r->fsync_logged,
	        r->fsync_logged, r->reopens, r->drops, r->compares, r->checks, tu_now_sec() - t0);
	run_free(r);
	free(r);
}

/* ---- 4. space ---- */

/* Sectors held by the nodes of the live user trees.  A B-tree's shape
 * depends on its history (the same items may sit in two leaves or three),
 * so the space test compares what is used beside these nodes exactly. */
static uint64_t user_node_sectors(struct arb_fs *fs)
{
	struct arb_fs_info info;
	uint64_t total = 0;

	arb_fs_info(fs, &info);
	for (uint64_t id = ARB_SPACE_TREE_ID + 1; id < info.next_tree_id; id++) {
		struct arb_tree *t;
		struct arb_tree_usage u;

		if (arb_tree_get(fs, id, &t) == 0 && arb_tree_usage(t, &u) == 0)
			total += u.ref_nodes * (info.nodesize / info.sectorsize);
	}
	return total;
}

#define SPACE_SNAPSHOTS 16

/* The background cleaner, as the daemon runs it: small steps, commits in
 * between, every step leaving a filesystem that checks clean. */
static void run_cleaner(struct arb_fs *fs, struct tu_rng *rng)
{
	uint64_t left = 0, steps = 0;

	TU_RC(arb_fs_dropping(fs, &left));
	TU_ASSERT(left > 0, "deleted subvolumes freed before the cleaner ran");
	do {
		TU_RC(arb_fs_drop_step(fs, 1 + tu_rng_below(rng, 64), &left));
		if (tu_rng_pct(rng, 30))
			tu_commit(fs);
		if (++steps % 16 == 0)
			expect_healthy(fs);
	} while (left);
	expect_healthy(fs);
}

static void space_seed(uint64_t seed)
{
	struct sfx x;
	struct tu_rng rng;
	struct arb_stat st;
	struct arb_fs_info info;
	struct {
		arb_ino_t dir;
		char name[16];
		arb_ino_t root;
		bool ro;
	} snaps[SPACE_SNAPSHOTS];
	arb_ino_t files[24], src;
	uint64_t fsize[24], used0, id, nodes0, nodes1;
	unsigned nf = 0, n = 0, settle0, settle1;
	char name[32];
	double t0 = tu_now_sec();

	tu_rng_init(&rng, seed);
	sfx_setup(&x, DEV_SIZE, seed % 2 ? 4096 : 0);
	TU_RC(arb_vfs_subvol_make(FS(&x), x.root, "src", 0755, &cred, &st));
	src = st.ino;
	id = subvol_of(&st);
	for (unsigned d = 0; d < 3; d++) {
		arb_ino_t dir;

		snprintf(name, sizeof(name), "dir%u", d);
		dir = tu_mkdir(FS(&x), &cred, src, name);
		for (unsigned f = 0; f < 8; f++, nf++) {
			snprintf(name, sizeof(name), "f%u", f);
			files[nf] = tu_mkfile(FS(&x), &cred, dir, name);
			fsize[nf] = tu_rng_pct(&rng, 30) ? tu_rng_range(&rng, 1, 3000)
			                                 : tu_rng_range(&rng, 4096, 400 * KIB);
			write_pat(FS(&x), files[nf], 0, fsize[nf], seed * 100 + nf);
		}
	}
	tu_commit(FS(&x));
	settle0 = tu_settle(FS(&x), x.root);
	arb_fs_info(FS(&x), &info);
	used0 = info.used_sectors;
	nodes0 = user_node_sectors(FS(&x));
	expect_healthy(FS(&x));

	/* many snapshots: of the source, of snapshots, inside the source and
	 * inside other snapshots, some read-only */
	for (n = 0; n < SPACE_SNAPSHOTS; n++) {
		uint64_t from = id;
		arb_ino_t where = x.root;

		if (n && tu_rng_pct(&rng, 40))
			from = arb_ino_subvol(snaps[tu_rng_below(&rng, n)].root);
		if (tu_rng_pct(&rng, 30))
			where = src;
		else if (n && tu_rng_pct(&rng, 40) && !snaps[n - 1].ro)
			where = snaps[n - 1].root;
		snaps[n].ro = tu_rng_pct(&rng, 30);
		snaps[n].dir = where;
		snprintf(snaps[n].name, sizeof(snaps[n].name), "snap%u", n);
		TU_RC(arb_vfs_snapshot(FS(&x), from, where, snaps[n].name,
		                       snaps[n].ro ? ARB_SNAPSHOT_RDONLY : 0, &st));
		snaps[n].root = st.ino;
		/* the source: every file rewritten whole, same sizes */
		for (unsigned k = 0; k < 3; k++) {
			unsigned i = (unsigned)tu_rng_below(&rng, nf);

			write_pat(FS(&x), files[i], 0, fsize[i], tu_rng_next(&rng));
		}
		/* the writable snapshots: anything */
		for (unsigned k = 0; k <= n; k++) {
			arb_ino_t dir, f;
			struct arb_setattr sa = {.valid = ARB_SET_SIZE};

			if (snaps[k].ro || !tu_rng_pct(&rng, 50))
				continue;
			snprintf(name, sizeof(name), "dir%u", (unsigned)tu_rng_below(&rng, 3));
			dir = tu_lookup(FS(&x), snaps[k].root, name);
			snprintf(name, sizeof(name), "f%u", (unsigned)tu_rng_below(&rng, 8));
			switch (tu_rng_below(&rng, 4)) {
			case 0:
				f = tu_lookup(FS(&x), dir, name);
				write_pat(FS(&x), f, tu_rng_below(&rng, 300 * KIB),
				          tu_rng_range(&rng, 1, 64 * KIB), tu_rng_next(&rng));
				break;
			case 1:
				f = tu_lookup(FS(&x), dir, name);
				sa.size = tu_rng_below(&rng, 200 * KIB);
				TU_RC(arb_vfs_setattr(FS(&x), f, &sa, &st));
				break;
			case 2:
				TU_RC(arb_vfs_unlink(FS(&x), dir, name));
				f = tu_mkfile(FS(&x), &cred, dir, name);
				write_pat(FS(&x), f, 0, tu_rng_range(&rng, 1, 100 * KIB),
				          tu_rng_next(&rng));
				break;
			default:
				snprintf(name, sizeof(name), "new%u", n);
				if (arb_vfs_lookup(FS(&x), dir, name, &st) == -ENOENT)
					write_pat(FS(&x), tu_mkfile(FS(&x), &cred, dir, name), 0,
					          50 * KIB, tu_rng_next(&rng));
				break;
			}
		}
		if (tu_rng_pct(&rng, 40))
			tu_commit(FS(&x));
	}
	tu_commit(FS(&x));
	expect_healthy(FS(&x));
	arb_fs_info(FS(&x), &info);
	TU_ASSERT(info.used_sectors > used0, "snapshots took no space");

	/* delete every snapshot, the nested ones first */
	for (unsigned k = n; k-- > 0;) {
		TU_RC(arb_vfs_subvol_delete(FS(&x), snaps[k].dir, snaps[k].name));
		if (tu_rng_pct(&rng, 30))
			tu_commit(FS(&x));
	}
	expect_healthy(FS(&x));
	TU_EQ_U64(subvol_count(FS(&x)), 2);
	run_cleaner(FS(&x), &rng);
	settle1 = tu_settle(FS(&x), x.root);
	arb_fs_info(FS(&x), &info);
	nodes1 = user_node_sectors(FS(&x));
	TU_ASSERT(info.used_sectors - nodes1 == used0 - nodes0,
	          "used %" PRIu64 " sectors (%" PRIu64 " in live tree nodes) after deleting the "
	          "snapshots, %" PRIu64 " (%" PRIu64 ") before them",
	          info.used_sectors, nodes1, used0, nodes0);
	expect_healthy(FS(&x));
	sfx_cycle(&x);
	arb_fs_info(FS(&x), &info);
	TU_EQ_U64(info.used_sectors - nodes1, used0 - nodes0);
	print_message("# space seed %" PRIu64 ": %u snapshots, %" PRIu64
	              " sectors used before, %" PRIu64 " after (live tree nodes %" PRIu64
	              " and %" PRIu64 "), settled in %u and %u commits, %.2f s\n",
	              seed, n, used0, info.used_sectors, nodes0, nodes1, settle0, settle1,
	              tu_now_sec() - t0);
	sfx_finish(&x);
}

/* ---- 6. power cuts ---- */

#define NR_CRASH_SEEDS 4
#define CRASH_COMMITS 8
#define CRASH_OPS 10
#define CRASH_REORDERS 40

struct crash_stats {
	size_t states, durable, inflight, replayed;
};

/* Does the image hold, for every file fsynced into the log since commit
 * a, the content state j says? */
static bool log_state_matches(struct run *r, struct arb_fs *fs, unsigned a, unsigned end,
                              unsigned j)
{
	for (unsigned i = a + 1; i < end; i++) {
		const struct state *x = &r->st[i];
		const struct mfile *mf = &r->st[j].m.sv[x->s].d[x->d].f[x->f];
		uint64_t size = blob_size(mf->b);
		struct arb_stat st;
		size_t got = 0;

		if (arb_vfs_getattr(fs, x->ino, &st) || st.size != size ||
		    arb_vfs_read(fs, x->ino, 0, r->buf, FILE_CAP + 1, &got) || got != size ||
		    (size && memcmp(r->buf, mf->b->data, size) != 0))
			return false;
	}
	return true;
}

/* The image of a power cut before event `cut` opens (read-only: as it
 * is, with the fsync log replayed in memory) as the last durable commit
 * plus a prefix of the fsyncs logged since (at least those that had
 * flushed, at most those that had started), or as the commit in flight;
 * every subvolume equals that state; it checks clean; opened read-write it
 * replays, commits, still equals that state and takes new changes. */
static void crash_check(struct run *r, size_t cut, uint64_t rseed, struct crash_stats *cs)
{
	struct tu_fs img = {0};
	unsigned a = 0, b, which, kmin = 0, kmax = 0;
	uint64_t gen, gen2, freed = UINT64_MAX;
	arb_ino_t root = 0;
	struct arb_stat st;

	for (unsigned i = 0; i < r->nst; i++)
		if (r->st[i].commit && r->st[i].ev1 <= cut)
			a = i;
	for (b = a + 1; b < r->nst && !r->st[b].commit; b++) {
		kmin += r->st[b].ev1 <= cut;
		kmax += r->st[b].ev0 < cut;
	}
	TU_RC(arb_memdev_crash_image(r->t.dev, cut, rseed, &img.dev));
	img.read_only = true;
	tu_fs_open(&img);
	gen = fs_generation(img.fs);
	if (b < r->nst && gen == r->st[b].gen) {
		TU_ASSERT(r->st[b].ev0 < cut, "cut %zu: generation %" PRIu64 " before its commit",
		          cut, gen);
		which = b;
		cs->inflight++;
	} else if (gen == r->st[a].gen) {
		which = a + kmax + 1;
		while (which-- > a + kmin + 1 && !log_state_matches(r, img.fs, a, b, which))
			;
		if (which > a + kmin && !log_state_matches(r, img.fs, a, b, which))
			TU_FAIL("cut %zu (reorder seed %" PRIu64 "): the logged files match none "
			        "of the %u to %u fsyncs since generation %" PRIu64,
			        cut, rseed, kmin, kmax, gen);
		cs->durable++;
		cs->replayed += which > a;
	} else {
		TU_FAIL("cut %zu (reorder seed %" PRIu64 "): generation %" PRIu64
		        ", expected %" PRIu64 " or the next one",
		        cut, rseed, gen, r->st[a].gen);
	}
	cs->states++;
	model_compare(img.fs, &r->st[which].m, r->buf);
	tu_check_clean(img.fs);
	arb_close(img.fs);
	img.fs = NULL;

	img.read_only = false;
	tu_fs_open(&img);
	gen2 = fs_generation(img.fs);
	TU_ASSERT(gen2 == gen || (which > a && which < b && gen2 > gen),
	          "generation %" PRIu64 " read-only, %" PRIu64 " read-write", gen, gen2);
	TU_RC(arb_vfs_orphan_cleanup(img.fs, &freed));
	TU_EQ_U64(freed, 0);
	TU_RC(arb_vfs_root(img.fs, 0, &root));
	TU_EQ_U64(root, root_of(r->st[which].m.sv[0].id));
	model_compare(img.fs, &r->st[which].m, r->buf);
	tu_check_clean(img.fs);
	TU_RC(arb_vfs_snapshot(img.fs, r->st[which].m.sv[0].id, root, "after-the-crash", 0, &st));
	TU_RC(arb_vfs_mknod(img.fs, st.ino, "f", S_IFREG | 0600, 0, &cred, &st));
	TU_RC(arb_commit(img.fs));
	expect_healthy(img.fs);
	arb_close(img.fs);
	arb_dev_close(img.dev);
}

static void crash_seed(uint64_t seed)
{
	struct crash_stats cs = {0};
	struct run *r = calloc(1, sizeof(*r));
	unsigned reorders = (unsigned)tu_scaled(CRASH_REORDERS), commits = 0;
	size_t events;
	double t0 = tu_now_sec();

	TU_ASSERT(r != NULL);
	run_setup(r, seed, 24 * MIB, seed % 2 ? 4096 : 0);
	r->data_pct = 50;
	for (unsigned i = 0; i < 30; i++)
		one_op(r, crash_ops, sizeof(crash_ops) / sizeof(crash_ops[0]));
	run_commit(r);
	arb_memdev_record(r->t.dev);
	r->st = xrealloc(NULL, sizeof(*r->st));
	r->capst = 1;
	state_new(r, 0, true);
	for (unsigned c = 0; c < CRASH_COMMITS; c++) {
		for (unsigned i = 0; i < CRASH_OPS; i++) {
			tu_ctx_op(r->ops);
			one_op(r, crash_ops, sizeof(crash_ops) / sizeof(crash_ops[0]));
		}
		run_commit(r);
	}
	for (unsigned i = 0; i < r->nst; i++)
		commits += r->st[i].commit;
	events = arb_memdev_events(r->t.dev);
	run_compare(r, "before the cuts", true);
	tu_ctx_phase("every cut");
	for (size_t cut = 0; cut <= events; cut++) {
		tu_ctx_op(cut);
		crash_check(r, cut, 0, &cs);
	}
	tu_ctx_phase("reordered writes");
	for (unsigned i = 0; i < reorders; i++) {
		size_t cut = (size_t)tu_rng_below(&r->rng, events + 1);

		tu_ctx_op(cut);
		crash_check(r, cut, tu_rng_next(&r->rng) | 1, &cs);
	}
	TU_ASSERT(cs.inflight > 0 && cs.durable > 0, "durable %zu in flight %zu", cs.durable,
	          cs.inflight);
	print_message("# crash seed %" PRIu64 ": %u commits, %u fsyncs logged, %" PRIu64
	              " snapshots (%" PRIu64 " read-only), %" PRIu64 " deleted, %zu events, "
	              "%zu crash states (%zu durable, %zu of them with fsyncs replayed, %zu "
	              "commit in flight), %.2f s\n",
	              seed, commits, r->nst - commits, r->snapshots, r->ro_snapshots, r->deletes,
	              events, cs.states, cs.durable, cs.replayed, cs.inflight, tu_now_sec() - t0);
	run_free(r);
	free(r);
}

int main(void)
{
	struct tu_tests ts = {0};

	/* ARBOR_TEST_ONLY=pattern: run only the matching tests */
	if (getenv("ARBOR_TEST_ONLY"))
		cmocka_set_test_filter(getenv("ARBOR_TEST_ONLY"));
	tu_tests_add(&ts, "make", test_make);
	tu_tests_add(&ts, "make_errors", test_make_errors);
	tu_tests_add(&ts, "snapshot_equal", test_snapshot_equal);
	tu_tests_add(&ts, "link_protected", test_link_protected);
	tu_tests_add(&ts, "rename_link", test_rename_link);
	tu_tests_add(&ts, "delete", test_delete);
	tu_tests_add(&ts, "readonly", test_readonly);
	tu_tests_add(&ts, "snapshot_orphans", test_snapshot_orphans);
	tu_tests_add(&ts, "snapshot_fsync", test_snapshot_fsync);
	tu_tests_add(&ts, "many", test_many);
	tu_tests_add(&ts, "open_delete", test_open_delete);
	tu_tests_add(&ts, "inode_numbers", test_inode_numbers);
	tu_tests_add_seeds(&ts, "space", space_seed, 1, 3);
	tu_tests_add_seeds(&ts, "isolation model", model_seed, 1, NR_MODEL_SEEDS);
	tu_tests_add_seeds(&ts, "crash", crash_seed, 1001, NR_CRASH_SEEDS);
	return tu_tests_run(&ts, "subvol");
}
