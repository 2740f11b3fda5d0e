/* SPDX-License-Identifier: MIT */
/*
 * diff.c - what changed between two subvolumes (a snapshot and its source,
 * two snapshots of one source, ...), as paths: added, changed, deleted.
 *
 * arb_tree_diff yields the items that differ, reading only unshared
 * subtrees, in key order - so all the differing items of one inode come
 * together.  Each such inode is then named in both trees through its
 * back-references (INODE_REF: parent directory and name), directories'
 * paths memoized: the work is per changed inode and per level of its
 * path, never per file of the subvolume.
 *
 *   A path  the name exists only in the second tree
 *   D path  only in the first
 *   C path  in both, and the inode it names changed (content, attributes,
 *           entries of a directory); a name that names another inode in
 *           the second tree (replaced) is C too
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vfs_internal.h"

struct changed {
	uint64_t local;
	bool meta; /* items other than back-references differ */
};

struct entry {
	char kind;
	char *path;
};

struct dslot {
	uint64_t local; /* 0: empty */
	char *path;
};

struct dcache { /* directory paths of one tree, memoized (open addressing) */
	struct dslot *v;
	size_t n, cap; /* cap: a power of two */
};

struct differ {
	struct arb_fs *fs;
	struct arb_tree *t[2];
	struct dcache dc[2];
	struct changed *ch;
	size_t nch, capch;
	struct entry *ent;
	size_t nent, capent;
};

static int grow(void **v, size_t *cap, size_t n, size_t size)
{
	if (n < *cap)
		return 0;
	size_t c = *cap ? 2 * *cap : 64;
	void *p = realloc(*v, c * size);

	if (!p)
		return -ENOMEM;
	*v = p;
	*cap = c;
	return 0;
}

static int collect_cb(void *ctx, const struct arb_key *key, const void *a, uint32_t alen,
                      const void *b, uint32_t blen)
{
	struct differ *d = ctx;

	(void)a, (void)alen, (void)b, (void)blen;
	if (key->objectid < ARB_FIRST_INO)
		return 0; /* subvolume bookkeeping */
	if (!d->nch || d->ch[d->nch - 1].local != key->objectid) {
		if (grow((void **)&d->ch, &d->capch, d->nch, sizeof(*d->ch)))
			return -ENOMEM;
		d->ch[d->nch++] = (struct changed){key->objectid, false};
	}
	d->ch[d->nch - 1].meta |= key->type != ARB_INODE_REF_KEY;
	return 0;
}

/* ---- naming inodes ---------------------------------------------------------------- */

typedef int (*ref_fn)(void *ctx, uint64_t parent, const char *name, size_t nlen);

/* Every back-reference (parent, name) of inode local in t. */
static int for_refs(struct arb_tree *t, uint64_t local, ref_fn fn, void *ctx)
{
	struct arb_key start = {local, ARB_INODE_REF_KEY, 0}, k;
	struct arb_iter *it;
	const void *data;
	uint32_t len;
	int ret = arb_iter_open(t, &start, ARB_ITER_FORWARD, &it);

	if (ret)
		return ret;
	while ((ret = arb_iter_next(it, &k, &data, &len)) == 1 && k.objectid == local &&
	       k.type == ARB_INODE_REF_KEY) {
		const uint8_t *p = data;

		for (uint32_t off = 0; off < len && ret >= 0;) {
			struct arb_inode_ref r;

			if (len - off < sizeof(r) ||
			    le16toh(((const struct arb_inode_ref *)(p + off))->name_len) >
			            len - off - sizeof(r)) {
				ret = -EUCLEAN;
				break;
			}
			memcpy(&r, p + off, sizeof(r));
			off += (uint32_t)sizeof(r);
			ret = fn(ctx, le64toh(r.parent), (const char *)p + off,
			         le16toh(r.name_len));
			off += le16toh(r.name_len);
		}
		if (ret < 0)
			break;
	}
	arb_iter_close(it);
	return ret < 0 ? ret : 0;
}

struct one_ref {
	uint64_t parent;
	char name[ARB_NAME_MAX + 1];
	bool found;
};

static int first_ref_cb(void *ctx, uint64_t parent, const char *name, size_t nlen)
{
	struct one_ref *r = ctx;

	if (!r->found) {
		r->parent = parent;
		memcpy(r->name, name, nlen);
		r->name[nlen] = 0;
		r->found = true;
	}
	return 0;
}

static struct dslot *dcache_slot(const struct dcache *c, uint64_t local)
{
	size_t i = (size_t)(local * 0x9e3779b97f4a7c15ull >> 20) & (c->cap - 1);

	while (c->v[i].local && c->v[i].local != local)
		i = (i + 1) & (c->cap - 1);
	return &c->v[i];
}

static int dcache_put(struct dcache *c, uint64_t local, char *path)
{
	if ((c->n + 1) * 2 > c->cap) {
		struct dcache g = {calloc(c->cap ? 2 * c->cap : 64, sizeof(struct dslot)), c->n,
		                   c->cap ? 2 * c->cap : 64};

		if (!g.v)
			return -ENOMEM;
		for (size_t i = 0; i < c->cap; i++)
			if (c->v[i].local)
				*dcache_slot(&g, c->v[i].local) = c->v[i];
		free(c->v);
		*c = g;
	}
	*dcache_slot(c, local) = (struct dslot){local, path};
	c->n++;
	return 0;
}

/* The path of directory dir in tree side ("" for the root), memoized. */
static int dir_path(struct differ *d, int side, uint64_t dir, const char **ret)
{
	struct dcache *c = &d->dc[side];
	struct one_ref r = {0};
	const char *up;
	int err;

	if (dir == ARB_FIRST_INO) {
		*ret = "";
		return 0;
	}
	if (c->cap && dcache_slot(c, dir)->local) {
		*ret = dcache_slot(c, dir)->path;
		return 0;
	}
	err = for_refs(d->t[side], dir, first_ref_cb, &r);
	if (!err && !r.found)
		err = -EUCLEAN; /* a directory always has its name */
	if (!err)
		err = dir_path(d, side, r.parent, &up);
	if (err)
		return err;
	size_t n = strlen(up) + 1 + strlen(r.name) + 1;
	char *p = malloc(n);

	if (!p || dcache_put(c, dir, p)) {
		free(p);
		return -ENOMEM;
	}
	snprintf(p, n, "%s/%s", up, r.name);
	*ret = p;
	return 0;
}

/* Paths of one inode in one tree. */
struct names {
	struct differ *d;
	int side;
	char **v;
	size_t n, cap;
};

static int name_cb(void *ctx, uint64_t parent, const char *name, size_t nlen)
{
	struct names *s = ctx;
	const char *up;
	int err = dir_path(s->d, s->side, parent, &up);

	if (err)
		return err;
	size_t n = strlen(up) + 1 + nlen + 1;
	char *p = malloc(n);

	if (!p || grow((void **)&s->v, &s->cap, s->n, sizeof(*s->v))) {
		free(p);
		return -ENOMEM;
	}
	snprintf(p, n, "%s/%.*s", up, (int)nlen, name);
	s->v[s->n++] = p;
	return 0;
}

static void names_free(struct names *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
}

static bool has_name(const struct names *s, const char *path)
{
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->v[i], path))
			return true;
	return false;
}

static int add_entry(struct differ *d, char kind, const char *path)
{
	char *p = strdup(path);

	if (!p || grow((void **)&d->ent, &d->capent, d->nent, sizeof(*d->ent))) {
		free(p);
		return -ENOMEM;
	}
	d->ent[d->nent].kind = kind;
	d->ent[d->nent++].path = p;
	return 0;
}

static int name_inode(struct differ *d, const struct changed *c)
{
	struct names a = {d, 0, NULL, 0, 0}, b = {d, 1, NULL, 0, 0};
	int err = 0;

	if (c->local != ARB_FIRST_INO) { /* the root has no name to show */
		err = for_refs(d->t[0], c->local, name_cb, &a);
		if (!err)
			err = for_refs(d->t[1], c->local, name_cb, &b);
	}
	for (size_t i = 0; i < b.n && !err; i++)
		if (!has_name(&a, b.v[i]))
			err = add_entry(d, 'A', b.v[i]);
		else if (c->meta)
			err = add_entry(d, 'C', b.v[i]);
	for (size_t i = 0; i < a.n && !err; i++)
		if (!has_name(&b, a.v[i]))
			err = add_entry(d, 'D', a.v[i]);
	names_free(&a);
	names_free(&b);
	return err;
}

/* ---- output ------------------------------------------------------------------------ */

static int cmp_entry(const void *x, const void *y)
{
	const struct entry *a = x, *b = y;
	int c = strcmp(a->path, b->path);

	return c ? c : (a->kind > b->kind) - (a->kind < b->kind);
}

/* Sorted by path; a path both added and deleted was replaced: changed. */
static int emit(struct differ *d, arb_vfs_diff_fn fn, void *ctx)
{
	if (d->nent)
		qsort(d->ent, d->nent, sizeof(*d->ent), cmp_entry);
	for (size_t i = 0; i < d->nent;) {
		size_t j = i;
		char kind = d->ent[i].kind;

		while (j < d->nent && !strcmp(d->ent[j].path, d->ent[i].path)) {
			if (d->ent[j].kind != kind)
				kind = 'C';
			j++;
		}
		int ret = fn(ctx, kind, d->ent[i].path);

		if (ret)
			return ret < 0 ? ret : 0;
		i = j;
	}
	return 0;
}

static void differ_free(struct differ *d)
{
	for (int s = 0; s < 2; s++) {
		for (size_t i = 0; i < d->dc[s].cap; i++)
			free(d->dc[s].v[i].path);
		free(d->dc[s].v);
	}
	for (size_t i = 0; i < d->nent; i++)
		free(d->ent[i].path);
	free(d->ent);
	free(d->ch);
}

int arb_vfs_diff(struct arb_fs *fs, uint64_t a_id, uint64_t b_id, arb_vfs_diff_fn fn, void *ctx,
                 uint64_t *ret_nodes_read)
{
	struct differ d = {.fs = fs};
	int err = a_id >= ARB_FIRST_USER_TREE && b_id >= ARB_FIRST_USER_TREE ? 0 : -ENOENT;

	if (!err)
		err = arb_tree_get(fs, a_id, &d.t[0]);
	if (!err)
		err = arb_tree_get(fs, b_id, &d.t[1]);
	if (!err)
		err = arb_tree_diff(d.t[0], d.t[1], collect_cb, &d, ret_nodes_read);
	for (size_t i = 0; i < d.nch && !err; i++)
		err = name_inode(&d, &d.ch[i]);
	if (!err)
		err = emit(&d, fn, ctx);
	differ_free(&d);
	return err;
}
