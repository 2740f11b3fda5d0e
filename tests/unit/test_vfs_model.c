/* SPDX-License-Identifier: MIT */
/*
 * test_vfs_model.c - randomized model test of the filesystem layer.
 *
 * An in-memory model holds a tree of directories, files (contents as byte
 * arrays), symlinks, hard links and extended attributes.  Each seed runs a
 * random mix of create, mkdir, symlink, write (a few bytes to a few MiB, at
 * any offset), truncate up and down, punch, zero range, preallocate, link,
 * unlink, rmdir, rename (plain, NOREPLACE, EXCHANGE), setxattr and
 * removexattr; every return code must be the one the model predicts (where
 * several errors apply, any of them).  After commits, reopens and reopens
 * without a commit (the changes must vanish) the whole tree is compared:
 * readdir, getattr, contents, symlink targets, xattrs; the subvolume tree
 * may hold items only of live inodes; arb_check must be clean.  At the end
 * everything is removed and the space must come back.
 *
 * Power cuts: a workload of several commits is recorded on the memdev; for
 * every event index (and some random reorders of unflushed writes) the
 * crash image must open as exactly the last durable commit, or the one in
 * flight if its superblock landed, never a mix, and check clean.
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

#define NR_SEEDS 16
#define OPS_PER_SEED 4000
#define NR_CRASH_SEEDS 5
#define CRASH_COMMITS 10
#define CRASH_OPS 20
#define CRASH_REORDERS 60

#define MIB (1ull << 20)
#define MAX_NODES 200
#define NAME_POOL 24
#define XATTR_POOL 5

static const struct arb_cred cred = {.uid = 0, .gid = 0};

/* ---- the model ---- */

struct mx {
	char *name;
	uint8_t *val;
	size_t len;
};

struct ment {
	char *name;
	unsigned node;
};

struct mnode {
	bool live;
	uint32_t type;   /* S_IFREG, S_IFDIR or S_IFLNK */
	uint32_t nlink;  /* non-directories */
	unsigned parent; /* directories */
	arb_ino_t ino;
	uint8_t *data; /* files: size bytes, zeros up to cap */
	uint64_t size, cap;
	char *target; /* symlinks */
	struct mx *x;
	size_t nx;
	struct ment *e; /* directories */
	size_t ne;
};

struct model {
	struct mnode n[MAX_NODES];
	unsigned nr; /* slots used so far (live or not) */
};

/* Limits of one run: files stay below file_cap, all of them below budget. */
struct limits {
	uint64_t file_cap, budget, big_write;
};

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	TU_ASSERT(p != NULL, "realloc(%zu)", n);
	return p;
}

static char *xstrdup(const char *s)
{
	char *d = strdup(s);

	TU_ASSERT(d != NULL);
	return d;
}

static void *xmemdup(const void *p, size_t n)
{
	void *d = xrealloc(NULL, n);

	memcpy(d, p, n);
	return d;
}

static void node_free(struct mnode *n)
{
	for (size_t i = 0; i < n->nx; i++) {
		free(n->x[i].name);
		free(n->x[i].val);
	}
	for (size_t i = 0; i < n->ne; i++)
		free(n->e[i].name);
	free(n->x);
	free(n->e);
	free(n->data);
	free(n->target);
	memset(n, 0, sizeof(*n));
}

static void node_copy(struct mnode *d, const struct mnode *s)
{
	*d = *s;
	d->data = s->cap ? xmemdup(s->data, s->cap) : NULL;
	d->target = s->target ? xstrdup(s->target) : NULL;
	d->x = s->nx ? xrealloc(NULL, s->nx * sizeof(*d->x)) : NULL;
	for (size_t i = 0; i < s->nx; i++) {
		d->x[i].name = xstrdup(s->x[i].name);
		d->x[i].val = xmemdup(s->x[i].val, s->x[i].len);
		d->x[i].len = s->x[i].len;
	}
	d->e = s->ne ? xrealloc(NULL, s->ne * sizeof(*d->e)) : NULL;
	for (size_t i = 0; i < s->ne; i++) {
		d->e[i].name = xstrdup(s->e[i].name);
		d->e[i].node = s->e[i].node;
	}
}

static void model_free(struct model *m)
{
	for (unsigned i = 0; i < m->nr; i++)
		node_free(&m->n[i]);
	m->nr = 0;
}

/* dst (initialised or zeroed) becomes an independent copy of src. */
static void model_copy(struct model *dst, const struct model *src)
{
	model_free(dst);
	for (unsigned i = 0; i < src->nr; i++)
		if (src->n[i].live)
			node_copy(&dst->n[i], &src->n[i]);
	dst->nr = src->nr;
}

static void model_init(struct model *m, arb_ino_t root)
{
	memset(m, 0, sizeof(*m));
	m->n[0] = (struct mnode){.live = true, .type = S_IFDIR, .ino = root};
	m->nr = 1;
}

static long dir_find(const struct model *m, unsigned dir, const char *name)
{
	const struct mnode *d = &m->n[dir];

	for (size_t i = 0; i < d->ne; i++)
		if (strcmp(d->e[i].name, name) == 0)
			return (long)i;
	return -1;
}

/* The node name stands for in dir, or -1. */
static int dir_node(const struct model *m, unsigned dir, const char *name)
{
	long i = dir_find(m, dir, name);

	return i < 0 ? -1 : (int)m->n[dir].e[i].node;
}

static void dir_add(struct model *m, unsigned dir, const char *name, unsigned node)
{
	struct mnode *d = &m->n[dir];

	d->e = xrealloc(d->e, (d->ne + 1) * sizeof(*d->e));
	d->e[d->ne++] = (struct ment){xstrdup(name), node};
	if (m->n[node].type == S_IFDIR)
		m->n[node].parent = dir;
}

static void dir_del(struct model *m, unsigned dir, const char *name)
{
	struct mnode *d = &m->n[dir];
	long i = dir_find(m, dir, name);

	TU_ASSERT(i >= 0);
	free(d->e[i].name);
	d->e[i] = d->e[--d->ne];
}

static unsigned subdirs(const struct model *m, unsigned dir)
{
	unsigned n = 0;

	for (size_t i = 0; i < m->n[dir].ne; i++)
		n += m->n[m->n[dir].e[i].node].type == S_IFDIR;
	return n;
}

static uint32_t model_nlink(const struct model *m, unsigned node)
{
	const struct mnode *n = &m->n[node];

	return n->type == S_IFDIR ? 2 + subdirs(m, node) : n->nlink;
}

/* Is node x the directory anc or below it? */
static bool is_under(const struct model *m, unsigned x, unsigned anc)
{
	for (;;) {
		if (x == anc)
			return true;
		if (x == 0)
			return false;
		x = m->n[x].parent;
	}
}

static int node_new(struct model *m, uint32_t type, arb_ino_t ino)
{
	unsigned i;

	for (i = 1; i < m->nr; i++)
		if (!m->n[i].live)
			break;
	if (i == MAX_NODES)
		return -1;
	if (i == m->nr)
		m->nr++;
	m->n[i] = (struct mnode){.live = true, .type = type, .nlink = 1, .ino = ino};
	return (int)i;
}

static unsigned live_nodes(const struct model *m)
{
	unsigned n = 0;

	for (unsigned i = 0; i < m->nr; i++)
		n += m->n[i].live;
	return n;
}

/* One name of node goes away. */
static void node_unlinked(struct model *m, unsigned node)
{
	struct mnode *n = &m->n[node];

	if (n->type != S_IFDIR && --n->nlink > 0)
		return;
	node_free(n);
}

static uint64_t model_bytes(const struct model *m)
{
	uint64_t b = 0;

	for (unsigned i = 0; i < m->nr; i++)
		if (m->n[i].live && m->n[i].type == S_IFREG)
			b += m->n[i].size;
	return b;
}

/* File content: grow the buffer (zeros) to hold size bytes. */
static void data_reserve(struct mnode *n, uint64_t size)
{
	uint64_t cap = n->cap ? n->cap : 4096;

	if (size <= n->cap)
		return;
	while (cap < size)
		cap *= 2;
	n->data = xrealloc(n->data, cap);
	memset(n->data + n->cap, 0, cap - n->cap);
	n->cap = cap;
}

static void data_resize(struct mnode *n, uint64_t size)
{
	data_reserve(n, size);
	if (size < n->size)
		memset(n->data + size, 0, n->size - size);
	n->size = size;
}

/* Zero [off, off + len) within the file. */
static void data_zero(struct mnode *n, uint64_t off, uint64_t len)
{
	uint64_t end = off + len < n->size ? off + len : n->size;

	if (off < end)
		memset(n->data + off, 0, end - off);
}

static long xattr_find(const struct mnode *n, const char *name)
{
	for (size_t i = 0; i < n->nx; i++)
		if (strcmp(n->x[i].name, name) == 0)
			return (long)i;
	return -1;
}

/* ---- a run ---- */

struct run {
	struct tu_fs t;
	struct tu_rng rng;
	struct model cur;       /* the running transaction */
	struct model committed; /* the last durable commit */
	struct limits lim;
	arb_ino_t root;
	uint8_t *buf; /* lim.file_cap bytes */
	uint64_t ops, commits, reopens, drops, compares, failed_ops;
	char last[160]; /* the last data operation, for failure reports */
};

/* The set of outcomes an operation may have: 0 if empty, else one of the
 * errors. */
struct outcome {
	int err[8];
	int n;
};

static void oc_add(struct outcome *o, int err)
{
	if (o->n < 8)
		o->err[o->n++] = err;
}

/* rc must be a predicted outcome; true if the operation happened. */
static bool oc_check(struct run *r, const struct outcome *o, int rc, const char *what)
{
	if (o->n == 0 && rc == 0)
		return true;
	for (int i = 0; i < o->n; i++)
		if (rc == o->err[i]) {
			r->failed_ops++;
			return false;
		}
	TU_FAIL("%s returned %s, expected %s%s%s", what, tu_strerr(rc),
	        o->n ? tu_strerr(o->err[0]) : "0", o->n > 1 ? " or " : "",
	        o->n > 1 ? tu_strerr(o->err[1]) : "");
}

static void name_of(unsigned k, char *buf)
{
	if (k % 8 == 7) {
		size_t len = 200 + k;

		memset(buf, 'a' + k % 26, len);
		buf[len] = 0;
		buf[0] = 'L';
	} else {
		snprintf(buf, ARB_NAME_MAX + 1, "n%u", k);
	}
}

static void pick_name(struct run *r, char *buf)
{
	name_of((unsigned)tu_rng_below(&r->rng, NAME_POOL), buf);
}

static const char *const xattr_pool[XATTR_POOL] = {
        "user.a",
        "user.bb",
        "trusted.t",
        "security.selinux",
        "user.a-rather-long-attribute-name-that-takes-up-some-room-in-the-item-0123456789",
};

/* A random live node whose type is in mask (S_IF* bits or'ed), or -1. */
static int pick_node(struct run *r, uint32_t mask)
{
	unsigned cand[MAX_NODES], n = 0;

	for (unsigned i = 0; i < r->cur.nr; i++)
		if (r->cur.n[i].live && (r->cur.n[i].type & mask) == r->cur.n[i].type)
			cand[n++] = i;
	return n ? (int)cand[tu_rng_below(&r->rng, n)] : -1;
}

static unsigned pick_dir(struct run *r)
{
	return (unsigned)pick_node(r, S_IFDIR); /* the root is always there */
}

static int pick_file(struct run *r)
{
	return pick_node(r, S_IFREG);
}

static arb_ino_t ino_of(const struct run *r, unsigned node)
{
	return r->cur.n[node].ino;
}

/* ---- namespace operations ---- */

static char *random_target(struct run *r)
{
	size_t len = tu_rng_pct(&r->rng, 5) ? tu_rng_range(&r->rng, 1000, 4095)
	                                    : tu_rng_range(&r->rng, 1, 120);
	char *t = xrealloc(NULL, len + 1);

	for (size_t i = 0; i < len; i++)
		t[i] = (char)('!' + tu_rng_below(&r->rng, 94));
	t[len] = 0;
	return t;
}

static int do_create(struct run *r, unsigned dir, const char *name, uint32_t type,
                     const char *target, struct arb_stat *st)
{
	struct arb_fs *fs = r->t.fs;

	if (type == S_IFDIR)
		return arb_vfs_mkdir(fs, ino_of(r, dir), name, 0755, &cred, st);
	if (type == S_IFLNK)
		return arb_vfs_symlink(fs, ino_of(r, dir), name, target, &cred, st);
	return arb_vfs_mknod(fs, ino_of(r, dir), name, S_IFREG | 0644, 0, &cred, st);
}

static void unlink_name(struct run *r, unsigned dir, const char *name);
static void rmdir_name(struct run *r, unsigned dir, const char *name);

/* Remove one existing entry: a non-directory, or an empty directory found
 * by descending from a random one. */
static void remove_one(struct run *r)
{
	unsigned dir = pick_dir(r);

	for (;;) {
		const struct mnode *d = &r->cur.n[dir];
		const struct ment *e;

		if (!d->ne)
			return;
		e = &d->e[tu_rng_below(&r->rng, d->ne)];
		if (r->cur.n[e->node].type != S_IFDIR) {
			unlink_name(r, dir, e->name);
			return;
		}
		if (!r->cur.n[e->node].ne) {
			rmdir_name(r, dir, e->name);
			return;
		}
		dir = e->node;
	}
}

/* Under node pressure: remove entries until some room is back. */
static void remove_some(struct run *r)
{
	for (int i = 0; i < 200 && live_nodes(&r->cur) > MAX_NODES * 3 / 4; i++)
		remove_one(r);
}

static void op_create(struct run *r)
{
	static const uint32_t types[] = {S_IFREG, S_IFREG, S_IFREG, S_IFDIR, S_IFDIR, S_IFLNK};
	uint32_t type = types[tu_rng_below(&r->rng, 6)];
	unsigned dir = pick_dir(r);
	char name[ARB_NAME_MAX + 1];
	char *target = type == S_IFLNK ? random_target(r) : NULL;
	struct outcome o = {0};
	struct arb_stat st;
	int node;

	pick_name(r, name);
	if (live_nodes(&r->cur) >= MAX_NODES - 1) {
		free(target);
		remove_some(r);
		return;
	}
	if (dir_node(&r->cur, dir, name) >= 0)
		oc_add(&o, -EEXIST);
	if (!oc_check(r, &o, do_create(r, dir, name, type, target, &st), "create")) {
		free(target);
		return;
	}
	node = node_new(&r->cur, type, st.ino);
	TU_ASSERT(node > 0);
	r->cur.n[node].target = target;
	dir_add(&r->cur, dir, name, (unsigned)node);
}

static void op_link(struct run *r)
{
	int node = pick_node(r, S_IFREG | S_IFLNK);
	unsigned dir = pick_dir(r);
	char name[ARB_NAME_MAX + 1];
	struct outcome o = {0};
	struct arb_stat st;

	if (node < 0)
		return;
	pick_name(r, name);
	if (dir_node(&r->cur, dir, name) >= 0)
		oc_add(&o, -EEXIST);
	if (!oc_check(r, &o,
	              arb_vfs_link(r->t.fs, ino_of(r, (unsigned)node), ino_of(r, dir), name, &st),
	              "link"))
		return;
	TU_EQ_U64(st.nlink, r->cur.n[node].nlink + 1);
	r->cur.n[node].nlink++;
	dir_add(&r->cur, dir, name, (unsigned)node);
}

static void op_unlink(struct run *r)
{
	char name[ARB_NAME_MAX + 1];

	pick_name(r, name);
	unlink_name(r, pick_dir(r), name);
}

static void unlink_name(struct run *r, unsigned dir, const char *name)
{
	struct outcome o = {0};
	int node = dir_node(&r->cur, dir, name);

	if (node < 0)
		oc_add(&o, -ENOENT);
	else if (r->cur.n[node].type == S_IFDIR)
		oc_add(&o, -EISDIR);
	if (!oc_check(r, &o, arb_vfs_unlink(r->t.fs, ino_of(r, dir), name), "unlink"))
		return;
	dir_del(&r->cur, dir, name);
	node_unlinked(&r->cur, (unsigned)node);
}

static void op_rmdir(struct run *r)
{
	char name[ARB_NAME_MAX + 1];

	pick_name(r, name);
	rmdir_name(r, pick_dir(r), name);
}

static void rmdir_name(struct run *r, unsigned dir, const char *name)
{
	struct outcome o = {0};
	int node = dir_node(&r->cur, dir, name);

	if (node < 0)
		oc_add(&o, -ENOENT);
	else if (r->cur.n[node].type != S_IFDIR)
		oc_add(&o, -ENOTDIR);
	else if (r->cur.n[node].ne)
		oc_add(&o, -ENOTEMPTY);
	if (!oc_check(r, &o, arb_vfs_rmdir(r->t.fs, ino_of(r, dir), name), "rmdir"))
		return;
	dir_del(&r->cur, dir, name);
	node_unlinked(&r->cur, (unsigned)node);
}

struct rename_args {
	unsigned odir, ndir;
	char oname[ARB_NAME_MAX + 1], nname[ARB_NAME_MAX + 1];
	unsigned flags;
	int src, dst; /* nodes, -1: none */
};

static void rename_predict(const struct model *m, const struct rename_args *a, struct outcome *o)
{
	const struct mnode *s, *d;

	if (a->src < 0 || (a->dst < 0 && (a->flags & ARB_RENAME_EXCHANGE))) {
		oc_add(o, -ENOENT);
		return;
	}
	s = &m->n[a->src];
	d = a->dst >= 0 ? &m->n[a->dst] : NULL;
	if (d && (a->flags & ARB_RENAME_NOREPLACE))
		oc_add(o, -EEXIST);
	if (a->src == a->dst) {
		/* the same inode: nothing to do (NOREPLACE may still refuse) */
		if (o->n)
			oc_add(o, 0);
		return;
	}
	if (s->type == S_IFDIR && is_under(m, a->ndir, (unsigned)a->src))
		oc_add(o, -EINVAL);
	if (d && (a->flags & ARB_RENAME_EXCHANGE) && d->type == S_IFDIR &&
	    is_under(m, a->odir, (unsigned)a->dst))
		oc_add(o, -EINVAL);
	if (!d || (a->flags & ARB_RENAME_EXCHANGE))
		return;
	if (s->type == S_IFDIR && d->type != S_IFDIR)
		oc_add(o, -ENOTDIR);
	if (s->type != S_IFDIR && d->type == S_IFDIR)
		oc_add(o, -EISDIR);
	if (s->type == S_IFDIR && d->type == S_IFDIR && d->ne)
		oc_add(o, -ENOTEMPTY);
}

static void rename_apply(struct model *m, const struct rename_args *a)
{
	if (a->src == a->dst)
		return;
	if (a->flags & ARB_RENAME_EXCHANGE) {
		dir_del(m, a->odir, a->oname);
		dir_del(m, a->ndir, a->nname);
		dir_add(m, a->odir, a->oname, (unsigned)a->dst);
		dir_add(m, a->ndir, a->nname, (unsigned)a->src);
		return;
	}
	if (a->dst >= 0) {
		dir_del(m, a->ndir, a->nname);
		node_unlinked(m, (unsigned)a->dst);
	}
	dir_del(m, a->odir, a->oname);
	dir_add(m, a->ndir, a->nname, (unsigned)a->src);
}

static void op_rename(struct run *r)
{
	struct rename_args a = {.odir = pick_dir(r), .ndir = pick_dir(r)};
	struct outcome o = {0};
	unsigned p = (unsigned)tu_rng_below(&r->rng, 100);
	int rc;

	a.flags = p < 70 ? 0 : p < 85 ? ARB_RENAME_NOREPLACE : ARB_RENAME_EXCHANGE;
	pick_name(r, a.oname);
	pick_name(r, a.nname);
	if (tu_rng_pct(&r->rng, 50) && r->cur.n[a.odir].ne) /* an existing source */
		snprintf(a.oname, sizeof(a.oname), "%s",
		         r->cur.n[a.odir].e[tu_rng_below(&r->rng, r->cur.n[a.odir].ne)].name);
	a.src = dir_node(&r->cur, a.odir, a.oname);
	a.dst = dir_node(&r->cur, a.ndir, a.nname);
	rename_predict(&r->cur, &a, &o);
	rc = arb_vfs_rename(r->t.fs, ino_of(r, a.odir), a.oname, ino_of(r, a.ndir), a.nname,
	                    a.flags);
	if (a.src >= 0 && a.src == a.dst && rc == 0)
		return;
	if (oc_check(r, &o, rc, "rename"))
		rename_apply(&r->cur, &a);
}

/* ---- extended attributes ---- */

static void op_setxattr(struct run *r)
{
	unsigned node = (unsigned)pick_node(r, S_IFREG | S_IFDIR | S_IFLNK);
	const char *name = xattr_pool[tu_rng_below(&r->rng, XATTR_POOL)];
	size_t len = tu_rng_pct(&r->rng, 10) ? tu_rng_range(&r->rng, 300, 3000)
	                                     : tu_rng_below(&r->rng, 100);
	int flags = (int)tu_rng_below(&r->rng, 3); /* 0, CREATE, REPLACE */
	struct mnode *n = &r->cur.n[node];
	long i = xattr_find(n, name);
	struct outcome o = {0};

	for (size_t k = 0; k < len; k++)
		r->buf[k] = (uint8_t)tu_rng_next(&r->rng);
	if (flags == ARB_XATTR_CREATE && i >= 0)
		oc_add(&o, -EEXIST);
	if (flags == ARB_XATTR_REPLACE && i < 0)
		oc_add(&o, -ENODATA);
	if (len > arb_vfs_xattr_max(r->t.fs))
		oc_add(&o, -E2BIG);
	if (!oc_check(r, &o, arb_vfs_setxattr(r->t.fs, n->ino, name, r->buf, len, flags),
	              "setxattr"))
		return;
	if (i < 0) {
		n->x = xrealloc(n->x, (n->nx + 1) * sizeof(*n->x));
		i = (long)n->nx++;
		n->x[i].name = xstrdup(name);
		n->x[i].val = NULL;
	}
	free(n->x[i].val);
	n->x[i].val = xmemdup(r->buf, len);
	n->x[i].len = len;
}

static void op_removexattr(struct run *r)
{
	unsigned node = (unsigned)pick_node(r, S_IFREG | S_IFDIR | S_IFLNK);
	const char *name = xattr_pool[tu_rng_below(&r->rng, XATTR_POOL)];
	struct mnode *n = &r->cur.n[node];
	long i = xattr_find(n, name);
	struct outcome o = {0};

	if (i < 0)
		oc_add(&o, -ENODATA);
	if (!oc_check(r, &o, arb_vfs_removexattr(r->t.fs, n->ino, name), "removexattr"))
		return;
	free(n->x[i].name);
	free(n->x[i].val);
	n->x[i] = n->x[--n->nx];
}

/* ---- data operations ---- */

static uint64_t write_len(struct run *r)
{
	unsigned p = (unsigned)tu_rng_below(&r->rng, 100);

	if (p < 3)
		return tu_rng_range(&r->rng, 1, r->lim.big_write);
	if (p < 25)
		return tu_rng_range(&r->rng, 4096, 200000);
	return tu_rng_range(&r->rng, 1, 5000);
}

/* Room left under the budget for a file to reach end. */
static bool fits(struct run *r, const struct mnode *n, uint64_t end)
{
	return end <= r->lim.file_cap &&
	       (end <= n->size || model_bytes(&r->cur) + (end - n->size) <= r->lim.budget);
}

static void op_write(struct run *r)
{
	int f = pick_file(r);
	uint64_t len = write_len(r), off;
	struct mnode *n;
	size_t done = 0;

	if (f < 0)
		return;
	n = &r->cur.n[f];
	off = tu_rng_pct(&r->rng, 30) ? n->size : tu_rng_below(&r->rng, n->size + 300000);
	if (!fits(r, n, off + len)) {
		/* near the limits: a small write inside the file */
		len = tu_rng_range(&r->rng, 1, 5000);
		off = tu_rng_below(&r->rng, n->size + 1);
		if (!fits(r, n, off + len))
			return;
	}
	for (uint64_t i = 0; i < len; i++)
		r->buf[i] = (uint8_t)tu_rng_next(&r->rng);
	snprintf(r->last, sizeof(r->last), "write ino %#" PRIx64 " off %" PRIu64 " len %" PRIu64,
	         n->ino, off, len);
	TU_RC(arb_vfs_write(r->t.fs, n->ino, off, r->buf, len, &done));
	TU_EQ_U64(done, len);
	data_reserve(n, off + len);
	memcpy(n->data + off, r->buf, len);
	if (off + len > n->size)
		n->size = off + len;
}

static void op_truncate(struct run *r)
{
	int f = pick_file(r);
	struct arb_setattr sa = {.valid = ARB_SET_SIZE};
	struct arb_stat st;
	struct mnode *n;

	if (f < 0)
		return;
	n = &r->cur.n[f];
	if (tu_rng_pct(&r->rng, model_bytes(&r->cur) > r->lim.budget / 2 ? 85 : 50))
		sa.size = tu_rng_below(&r->rng, n->size + 1);
	else
		sa.size = n->size + tu_rng_below(&r->rng, MIB);
	if (!fits(r, n, sa.size))
		return;
	snprintf(r->last, sizeof(r->last), "truncate ino %#" PRIx64 " from %" PRIu64 " to %" PRIu64,
	         n->ino, n->size, sa.size);
	TU_RC(arb_vfs_setattr(r->t.fs, n->ino, &sa, &st));
	TU_EQ_U64(st.size, sa.size);
	data_resize(n, sa.size);
}

/* Punch, zero range or preallocate. */
static void op_fallocate(struct run *r)
{
	static const int modes[] = {
	        ARB_FALLOC_PUNCH_HOLE | ARB_FALLOC_KEEP_SIZE,
	        ARB_FALLOC_ZERO_RANGE,
	        ARB_FALLOC_ZERO_RANGE | ARB_FALLOC_KEEP_SIZE,
	        0,
	        ARB_FALLOC_KEEP_SIZE,
	};
	int f = pick_file(r), mode = modes[tu_rng_below(&r->rng, 5)];
	uint64_t off, len, end;
	struct mnode *n;

	if (f < 0)
		return;
	n = &r->cur.n[f];
	off = tu_rng_below(&r->rng, n->size + 65536);
	len = tu_rng_range(&r->rng, 1, n->size / 2 + 65536);
	end = off + len;
	if (!(mode & ARB_FALLOC_KEEP_SIZE) && !fits(r, n, end))
		return;
	if ((mode & ARB_FALLOC_KEEP_SIZE) && end > r->lim.file_cap)
		return;
	snprintf(r->last, sizeof(r->last),
	         "fallocate ino %#" PRIx64 " mode %#x off %" PRIu64 " len %" PRIu64
	         " size %" PRIu64,
	         n->ino, mode, off, len, n->size);
	TU_RC(arb_vfs_fallocate(r->t.fs, n->ino, mode, off, len));
	if (mode & (ARB_FALLOC_PUNCH_HOLE | ARB_FALLOC_ZERO_RANGE))
		data_zero(n, off, len);
	if (!(mode & ARB_FALLOC_KEEP_SIZE) && end > n->size)
		data_resize(n, end);
}

/* Read a random range of a random file. */
static void op_read(struct run *r)
{
	int f = pick_file(r);
	uint64_t off, len;
	struct mnode *n;
	size_t got = SIZE_MAX;

	if (f < 0)
		return;
	n = &r->cur.n[f];
	off = tu_rng_below(&r->rng, n->size + 10);
	len = tu_rng_range(&r->rng, 1, 300000);
	if (len > r->lim.file_cap)
		len = r->lim.file_cap;
	TU_RC(arb_vfs_read(r->t.fs, n->ino, off, r->buf, len, &got));
	TU_EQ_U64(got, off >= n->size ? 0 : (n->size - off < len ? n->size - off : len));
	TU_ASSERT(got == 0 || memcmp(r->buf, n->data + off, got) == 0,
	          "read of %" PRIu64 " bytes at %" PRIu64 " differs", len, off);
}

/* ---- comparing the filesystem with a model ---- */

struct cmp {
	struct arb_fs *fs;
	const struct model *m;
	uint8_t *buf;
	size_t bufsize;
	bool seen[MAX_NODES];
	unsigned nodes;
};

struct lent {
	char name[ARB_NAME_MAX + 1];
	arb_ino_t ino;
	unsigned dtype;
	bool matched;
};

struct listing {
	struct lent *v;
	size_t n, cap;
	const char *bad;
};

static int listing_fn(void *ctx, const char *name, size_t name_len, arb_ino_t ino, unsigned dtype,
                      uint64_t cookie)
{
	struct listing *l = ctx;

	(void)cookie;
	if (name_len == 0 || name_len > ARB_NAME_MAX) {
		l->bad = "bad name length";
		return 1;
	}
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 32;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
		if (!l->v)
			abort();
	}
	memcpy(l->v[l->n].name, name, name_len);
	l->v[l->n].name[name_len] = 0;
	l->v[l->n].ino = ino;
	l->v[l->n].dtype = dtype;
	l->v[l->n].matched = false;
	l->n++;
	return 0;
}

static unsigned dtype_of(uint32_t type)
{
	return type == S_IFDIR ? DT_DIR : type == S_IFLNK ? DT_LNK : DT_REG;
}

static uint32_t perm_of(uint32_t type)
{
	return type == S_IFDIR ? 0755 : type == S_IFLNK ? 0777 : 0644;
}

static void cmp_xattrs(struct cmp *c, const struct mnode *n)
{
	size_t got = 0, total = 0, found = 0;

	for (size_t i = 0; i < n->nx; i++)
		total += strlen(n->x[i].name) + 1;
	TU_RC(arb_vfs_listxattr(c->fs, n->ino, (char *)c->buf, c->bufsize, &got));
	TU_EQ_U64(got, total);
	for (size_t off = 0; off < got; off += strlen((char *)c->buf + off) + 1) {
		TU_ASSERT(xattr_find(n, (char *)c->buf + off) >= 0, "unexpected xattr %.60s",
		          (char *)c->buf + off);
		found++;
	}
	TU_EQ_U64(found, n->nx);
	for (size_t i = 0; i < n->nx; i++) {
		TU_RC(arb_vfs_getxattr(c->fs, n->ino, n->x[i].name, c->buf, c->bufsize, &got));
		TU_EQ_U64(got, n->x[i].len);
		TU_ASSERT(memcmp(c->buf, n->x[i].val, got) == 0, "value of %s", n->x[i].name);
	}
}

static void cmp_content(struct cmp *c, const struct mnode *n)
{
	size_t got = SIZE_MAX;

	if (n->type == S_IFREG) {
		TU_ASSERT(n->size <= c->bufsize);
		TU_RC(arb_vfs_read(c->fs, n->ino, 0, c->buf, n->size + 1, &got));
		TU_EQ_U64(got, n->size);
		for (size_t i = 0; i < got; i++)
			if (c->buf[i] != n->data[i])
				TU_FAIL("ino %#" PRIx64 ": byte %zu is 0x%02x, expected 0x%02x",
				        n->ino, i, c->buf[i], n->data[i]);
	} else if (n->type == S_IFLNK) {
		TU_RC(arb_vfs_readlink(c->fs, n->ino, (char *)c->buf, c->bufsize, &got));
		TU_EQ_U64(got, strlen(n->target));
		TU_ASSERT(memcmp(c->buf, n->target, got) == 0, "symlink target");
	}
}

static void cmp_node(struct cmp *c, unsigned idx)
{
	const struct mnode *n = &c->m->n[idx];
	struct arb_stat st;

	TU_RC(arb_vfs_getattr(c->fs, n->ino, &st));
	TU_EQ_U64(st.mode, n->type | perm_of(n->type));
	TU_EQ_U64(st.nlink, model_nlink(c->m, idx));
	if (n->type == S_IFREG)
		TU_EQ_U64(st.size, n->size);
	if (n->type == S_IFLNK)
		TU_EQ_U64(st.size, strlen(n->target));
	cmp_content(c, n);
	cmp_xattrs(c, n);
}

static void cmp_dir(struct cmp *c, unsigned dir);

static void cmp_entry(struct cmp *c, struct listing *l, const struct ment *e)
{
	const struct mnode *n = &c->m->n[e->node];
	struct lent *hit = NULL;

	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i].name, e->name) == 0) {
			TU_ASSERT(!hit, "\"%.40s\" listed twice", e->name);
			hit = &l->v[i];
		}
	TU_ASSERT(hit, "\"%.40s\" (ino %#" PRIx64 ") not listed", e->name, n->ino);
	TU_EQ_U64(hit->ino, n->ino);
	TU_EQ_U64(hit->dtype, dtype_of(n->type));
	if (c->seen[e->node])
		return;
	c->seen[e->node] = true;
	c->nodes++;
	cmp_node(c, e->node);
	if (n->type == S_IFDIR)
		cmp_dir(c, e->node);
}

static void cmp_dir(struct cmp *c, unsigned dir)
{
	const struct mnode *d = &c->m->n[dir];
	struct listing l = {0};

	TU_RC(arb_vfs_readdir(c->fs, d->ino, 0, listing_fn, &l));
	TU_ASSERT(!l.bad, "%s", l.bad);
	TU_EQ_U64(l.n, d->ne);
	for (size_t i = 0; i < d->ne; i++)
		cmp_entry(c, &l, &d->e[i]);
	free(l.v);
}

/* The subvolume tree holds items of live inodes only (no leftovers of
 * freed ones, no orphans). */
static void cmp_items(struct arb_fs *fs, const struct model *m)
{
	struct arb_tree *t = tu_tree(fs, arb_ino_subvol(m->n[0].ino));
	struct arb_key start = ARB_KEY_MIN, k;
	struct arb_iter *it = NULL;
	uint64_t last = 0;
	bool ok = true;
	int rc;

	TU_RC(arb_iter_open(t, &start, ARB_ITER_FORWARD, &it));
	while ((rc = arb_iter_next(it, &k, NULL, NULL)) == 1) {
		if (k.objectid == last || k.objectid == ARB_SUBVOL_INFO_OBJ)
			continue;
		ok = false;
		for (unsigned i = 0; i < m->nr && !ok; i++)
			ok = m->n[i].live && arb_ino_local(m->n[i].ino) == k.objectid;
		if (!ok)
			break;
		last = k.objectid;
	}
	arb_iter_close(it);
	TU_ASSERT(rc >= 0, "iteration: %s", tu_strerr(rc));
	TU_ASSERT(ok, "item (%" PRIu64 ", %u, %" PRIu64 ") belongs to no live inode", k.objectid,
	          k.type, k.offset);
}

static void model_compare(struct arb_fs *fs, const struct model *m, uint8_t *buf, size_t bufsize)
{
	struct cmp *c = calloc(1, sizeof(*c));

	TU_ASSERT(c != NULL);
	*c = (struct cmp){.fs = fs, .m = m, .buf = buf, .bufsize = bufsize};
	c->seen[0] = true;
	c->nodes = 1;
	cmp_node(c, 0);
	cmp_dir(c, 0);
	TU_EQ_U64(c->nodes, live_nodes(m));
	free(c);
	cmp_items(fs, m);
}

/* ---- driving a run ---- */

static void run_setup(struct run *r, uint64_t seed, uint64_t dev_size, uint32_t nodesize,
                      const struct limits *lim)
{
	memset(r, 0, sizeof(*r));
	tu_rng_init(&r->rng, seed);
	r->lim = *lim;
	tu_fs_create(&r->t, dev_size, nodesize);
	TU_RC(arb_vfs_init(r->t.fs, 0755, &cred));
	TU_RC(arb_vfs_root(r->t.fs, 0, &r->root));
	model_init(&r->cur, r->root);
	model_init(&r->committed, r->root);
	r->buf = xrealloc(NULL, lim->file_cap + 1);
	tu_commit(r->t.fs);
}

static void run_free(struct run *r)
{
	model_free(&r->cur);
	model_free(&r->committed);
	free(r->buf);
	tu_fs_destroy(&r->t);
}

static void run_commit(struct run *r)
{
	tu_commit(r->t.fs);
	model_copy(&r->committed, &r->cur);
	r->commits++;
}

/* Reopen, with or without a commit first (then the changes vanish). */
static void run_reopen(struct run *r, bool commit)
{
	uint64_t freed = UINT64_MAX;
	arb_ino_t root = 0;

	if (commit)
		run_commit(r);
	tu_fs_reopen(&r->t);
	TU_RC(arb_vfs_orphan_cleanup(r->t.fs, &freed));
	TU_EQ_U64(freed, 0);
	TU_RC(arb_vfs_root(r->t.fs, 0, &root));
	TU_EQ_U64(root, r->root);
	if (!commit) {
		model_copy(&r->cur, &r->committed);
		r->drops++;
	}
	r->reopens++;
}

static void run_compare(struct run *r, const char *phase)
{
	tu_ctx_phase(phase);
	model_compare(r->t.fs, &r->cur, r->buf, r->lim.file_cap + 1);
	tu_check_clean(r->t.fs);
	r->compares++;
	tu_ctx_phase(NULL);
}

typedef void (*op_fn)(struct run *r);

static const struct {
	op_fn fn;
	unsigned weight;
} ops[] = {
        {op_create, 16},  {op_link, 6},   {op_unlink, 10},     {op_rmdir, 4},
        {op_rename, 14},  {op_write, 18}, {op_truncate, 6},    {op_fallocate, 8},
        {op_setxattr, 8}, {op_read, 5},   {op_removexattr, 4},
};

static void one_op(struct run *r)
{
	unsigned total = 0, p;

	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		total += ops[i].weight;
	p = (unsigned)tu_rng_below(&r->rng, total);
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		if (p < ops[i].weight) {
			ops[i].fn(r);
			r->ops++;
			return;
		}
		p -= ops[i].weight;
	}
}

/* nops operations with commits, compares and reopens at random.  Built
 * with -DVFS_MODEL_PARANOID, the tree is compared after every operation. */
static void run_ops(struct run *r, uint64_t nops)
{
	for (uint64_t i = 0; i < nops; i++) {
		tu_ctx_op(r->ops);
		one_op(r);
#ifdef VFS_MODEL_PARANOID
		tu_ctx_phase(r->last);
		model_compare(r->t.fs, &r->cur, r->buf, r->lim.file_cap + 1);
		tu_ctx_phase(NULL);
#endif
		if (tu_rng_below(&r->rng, 60) == 0) {
			run_commit(r);
			if (tu_rng_pct(&r->rng, 20))
				run_compare(r, "after a commit");
		}
		if (tu_rng_below(&r->rng, 300) == 0) {
			run_reopen(r, tu_rng_pct(&r->rng, 60));
			run_compare(r, "after a reopen");
		}
	}
	tu_ctx_op(UINT64_MAX);
}

/* Remove everything below dir, in the filesystem and the model. */
static void remove_all(struct run *r, unsigned dir)
{
	while (r->cur.n[dir].ne) {
		struct ment *e = &r->cur.n[dir].e[r->cur.n[dir].ne - 1];
		unsigned node = e->node;
		char *name = xstrdup(e->name);

		if (r->cur.n[node].type == S_IFDIR) {
			remove_all(r, node);
			TU_RC(arb_vfs_rmdir(r->t.fs, ino_of(r, dir), name));
		} else {
			TU_RC(arb_vfs_unlink(r->t.fs, ino_of(r, dir), name));
		}
		dir_del(&r->cur, dir, name);
		node_unlinked(&r->cur, node);
		free(name);
	}
	while (r->cur.n[dir].nx) {
		TU_RC(arb_vfs_removexattr(r->t.fs, ino_of(r, dir), r->cur.n[dir].x[0].name));
		free(r->cur.n[dir].x[0].name);
		free(r->cur.n[dir].x[0].val);
		r->cur.n[dir].x[0] = r->cur.n[dir].x[--r->cur.n[dir].nx];
	}
}

/* What the user trees hold beyond the engine's own trees. */
static uint64_t user_sectors(struct run *r)
{
	struct tu_space sp;

	tu_space_get(r->t.fs, &sp);
	return sp.live - sp.internal;
}

static void model_seed(uint64_t seed)
{
	const struct limits lim = {.file_cap = 6 * MIB, .budget = 24 * MIB, .big_write = 3 * MIB};
	uint32_t nodesize = seed % 3 == 2 ? 4096 : 0;
	struct run *r = calloc(1, sizeof(*r));
	uint64_t base, end;
	double t0 = tu_now_sec();

	TU_ASSERT(r != NULL);
	run_setup(r, seed, 160 * MIB, nodesize, &lim);
	base = user_sectors(r);
	run_ops(r, tu_scaled(OPS_PER_SEED));
	run_reopen(r, true);
	run_compare(r, "at the end");
	print_message("# seed %" PRIu64 ": %" PRIu64 " ops (%" PRIu64
	              " refused as predicted), %" PRIu64 " commits, %" PRIu64 " reopens (%" PRIu64
	              " without commit), %" PRIu64
	              " compares, %u inodes, %.1f MiB of files, %.2f s\n",
	              seed, r->ops, r->failed_ops, r->commits, r->reopens, r->drops, r->compares,
	              live_nodes(&r->cur), (double)model_bytes(&r->cur) / MIB, tu_now_sec() - t0);
	tu_ctx_phase("removing everything");
	remove_all(r, 0);
	run_reopen(r, true);
	run_compare(r, "everything removed");
	end = user_sectors(r);
	TU_ASSERT(end <= base + 2 * (nodesize ? nodesize : ARB_DEFAULT_NODESIZE) / ARB_SECTOR_SIZE,
	          "user trees hold %" PRIu64 " sectors, %" PRIu64 " when empty before", end, base);
	run_free(r);
	free(r);
}

/* ---- power cuts ---- */

/* The model as one commit left it, and the events recorded by then. */
struct snap {
	struct model m;
	uint64_t gen;
	size_t ev;
};

struct crash_stats {
	size_t states, durable, inflight;
};

static uint64_t fs_generation(struct arb_fs *fs)
{
	struct arb_fs_info info;

	arb_fs_info(fs, &info);
	return info.generation;
}

/* Commit and remember the state (a commit that wrote nothing new keeps
 * the generation: it replaces the last state). */
static void crash_commit(struct run *r, struct snap *s, unsigned *n)
{
	uint64_t gen;

	run_commit(r);
	gen = fs_generation(r->t.fs);
	if (*n && s[*n - 1].gen == gen)
		(*n)--;
	model_copy(&s[*n].m, &r->cur);
	s[*n].gen = gen;
	s[*n].ev = arb_memdev_events(r->t.dev);
	(*n)++;
}

/* The crash image opens as one recorded state, compares equal to it,
 * checks clean and takes new changes. */
static void crash_check(struct run *r, const struct snap *s, unsigned n, size_t cut, uint64_t rseed,
                        struct crash_stats *cs)
{
	struct tu_fs img = {0};
	unsigned k = 0, which;
	uint64_t gen, freed = UINT64_MAX;
	arb_ino_t root = 0;
	struct arb_stat st;

	for (unsigned i = 0; i < n; i++)
		if (s[i].ev <= cut)
			k = i;
	TU_RC(arb_memdev_crash_image(r->t.dev, cut, rseed, &img.dev));
	tu_fs_open(&img);
	gen = fs_generation(img.fs);
	if (gen == s[k].gen)
		which = k;
	else if (k + 1 < n && gen == s[k + 1].gen)
		which = k + 1;
	else
		TU_FAIL("cut %zu (reorder seed %" PRIu64 "): generation %" PRIu64
		        ", expected %" PRIu64 " or the next one",
		        cut, rseed, gen, s[k].gen);
	cs->states++;
	*(which == k ? &cs->durable : &cs->inflight) += 1;
	TU_RC(arb_vfs_root(img.fs, 0, &root));
	TU_EQ_U64(root, r->root);
	TU_RC(arb_vfs_orphan_cleanup(img.fs, &freed));
	TU_EQ_U64(freed, 0);
	model_compare(img.fs, &s[which].m, r->buf, r->lim.file_cap + 1);
	tu_check_clean(img.fs);
	TU_RC(arb_vfs_mknod(img.fs, root, "after-the-crash", S_IFREG | 0600, 0, &cred, &st));
	TU_RC(arb_commit(img.fs));
	tu_check_clean(img.fs);
	arb_close(img.fs);
	arb_dev_close(img.dev);
}

static void crash_seed(uint64_t seed)
{
	const struct limits lim = {
	        .file_cap = 256 * 1024, .budget = 2 * MIB, .big_write = 128 * 1024};
	struct snap s[CRASH_COMMITS + 1];
	struct crash_stats cs = {0};
	struct run *r = calloc(1, sizeof(*r));
	unsigned n = 0, reorders = (unsigned)tu_scaled(CRASH_REORDERS);
	size_t events;
	double t0 = tu_now_sec();

	TU_ASSERT(r != NULL);
	memset(s, 0, sizeof(s));
	run_setup(r, seed, 24 * MIB, seed % 2 ? 4096 : 0, &lim);
	run_ops(r, 40);
	run_commit(r);
	arb_memdev_record(r->t.dev);
	model_copy(&s[0].m, &r->cur);
	s[0].gen = fs_generation(r->t.fs);
	n = 1;
	for (unsigned c = 0; c < CRASH_COMMITS; c++) {
		for (unsigned i = 0; i < CRASH_OPS; i++)
			one_op(r);
		crash_commit(r, s, &n);
	}
	events = arb_memdev_events(r->t.dev);
	tu_ctx_phase("every cut");
	for (size_t cut = 0; cut <= events; cut++) {
		tu_ctx_op(cut);
		crash_check(r, s, n, cut, 0, &cs);
	}
	tu_ctx_phase("reordered writes");
	for (unsigned i = 0; i < reorders; i++) {
		size_t cut = (size_t)tu_rng_below(&r->rng, events + 1);

		tu_ctx_op(cut);
		crash_check(r, s, n, cut, tu_rng_next(&r->rng) | 1, &cs);
	}
	TU_ASSERT(cs.inflight > 0 && cs.durable > 0, "durable %zu in flight %zu", cs.durable,
	          cs.inflight);
	print_message("# crash seed %" PRIu64 ": %u commits, %zu events, %zu crash states (%zu "
	              "durable, %zu commit in flight), %.2f s\n",
	              seed, n, events, cs.states, cs.durable, cs.inflight, tu_now_sec() - t0);
	for (unsigned i = 0; i < n; i++)
		model_free(&s[i].m);
	run_free(r);
	free(r);
}

int main(void)
{
	struct tu_tests ts = {0};

	/* ARBOR_TEST_ONLY=pattern: run only the matching tests */
	if (getenv("ARBOR_TEST_ONLY"))
		cmocka_set_test_filter(getenv("ARBOR_TEST_ONLY"));
	tu_tests_add_seeds(&ts, "vfs model", model_seed, 1, NR_SEEDS);
	tu_tests_add_seeds(&ts, "vfs crash", crash_seed, 1001, NR_CRASH_SEEDS);
	return tu_tests_run(&ts, "vfs_model");
}
