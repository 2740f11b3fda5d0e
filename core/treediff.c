/* SPDX-License-Identifier: MIT */
/*
 * treediff.c - the items that differ between two trees, reading only the
 * parts of them that differ.
 *
 * Nodes are never overwritten, so two pointers to the same address are the
 * same subtree: a snapshot and its source share everything that neither
 * changed.  Each tree is seen as a stream of elements in key order - child
 * pointers not yet opened, and items - kept on a stack whose top is the
 * element with the smallest key.  While both tops are the same node, both
 * are dropped unopened; otherwise the top with the higher level (or, at
 * equal levels, the smaller first key) is replaced by its children, until
 * two items meet and are compared.  The nodes read are those on the paths
 * to the changes and their immediate neighbours: the cost follows the
 * size of the change, not of the trees.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fs_internal.h"
#include "node.h"

struct elem {
	struct arb_key key; /* first key of the subtree, or the item's key */
	int level;          /* -1: an item */
	struct arb_ptr ptr; /* level >= 0 */
	uint8_t *data;      /* an item's data (malloc'ed) */
	uint32_t len;
};

struct stream {
	struct arb_fs *fs;
	struct elem *v; /* a stack: the top is the next element in key order */
	size_t n, cap;
	uint64_t nodes_read;
};

static int push(struct stream *s, const struct elem *e)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 64;
		struct elem *v = realloc(s->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = *e;
	return 0;
}

static void pop(struct stream *s)
{
	free(s->v[--s->n].data);
}

static void stream_free(struct stream *s)
{
	while (s->n)
		pop(s);
	free(s->v);
}

/* Replace the top (a subtree) by its entries, pushed last-first. */
static int expand(struct stream *s)
{
	struct elem top = s->v[s->n - 1];
	struct arb_node *n;
	int err = arb_read_node(s->fs, &top.ptr, top.level == -2, &n);

	if (err)
		return err;
	s->nodes_read++;
	s->n--;
	const uint8_t *buf = n->buf;
	uint32_t nr = node_nritems(buf);
	uint8_t level = node_level(buf);

	for (uint32_t i = nr; i-- > 0 && !err;) {
		struct elem e = {.level = level ? level - 1 : -1};

		arb_key_from_disk(node_dkey(buf, i), &e.key);
		if (level) {
			const struct arb_key_ptr *kp = node_ckptr(buf, i);

			e.ptr = (struct arb_ptr){le64toh(kp->bytenr), le64toh(kp->generation),
			                         le64toh(kp->csum), (uint8_t)(level - 1)};
		} else {
			e.len = item_size(buf, i);
			e.data = malloc(e.len ? e.len : 1);
			if (!e.data) {
				err = -ENOMEM;
				break;
			}
			memcpy(e.data, buf + NODE_HDR + item_off(buf, i), e.len);
		}
		err = push(s, &e);
		if (err)
			free(e.data);
	}
	arb_cache_unpin(&s->fs->cache, n);
	return err;
}

static int stream_init(struct stream *s, struct arb_tree *t)
{
	/* level -2 marks the root pointer (checked as a root when read) */
	struct elem root = {.level = -2, .ptr = t->root};

	s->fs = t->fs;
	if (!t->root.bytenr)
		return 0; /* an empty tree */
	int err = push(s, &root);

	return err ? err : expand(s);
}

/* One step on two non-empty streams. */
static int step(struct stream *a, struct stream *b, arb_diff_fn fn, void *ctx)
{
	struct elem *x = &a->v[a->n - 1], *y = &b->v[b->n - 1];
	int c = arb_key_cmp(&x->key, &y->key);

	if (x->level >= 0 && y->level >= 0 && x->ptr.bytenr == y->ptr.bytenr) {
		pop(a); /* the same subtree on both sides */
		pop(b);
		return 0;
	}
	if (x->level < 0 && y->level < 0) {
		int ret = 0;

		if (c < 0)
			ret = fn(ctx, &x->key, x->data, x->len, NULL, 0);
		else if (c > 0)
			ret = fn(ctx, &y->key, NULL, 0, y->data, y->len);
		else if (x->len != y->len || memcmp(x->data, y->data, x->len))
			ret = fn(ctx, &x->key, x->data, x->len, y->data, y->len);
		if (c <= 0)
			pop(a);
		if (c >= 0)
			pop(b);
		return ret;
	}
	/* open the higher subtree; at equal levels the one that starts first
	 * (both when they start together) */
	int lx = x->level, ly = y->level, err = 0;

	if (lx > ly || (lx == ly && c <= 0))
		err = expand(a);
	if (!err && (ly > lx || (lx == ly && c >= 0)))
		err = expand(b);
	return err;
}

/* The rest of one stream is all additions (or all removals). */
static int drain(struct stream *s, bool removed, arb_diff_fn fn, void *ctx)
{
	while (s->n) {
		struct elem *e = &s->v[s->n - 1];
		int ret;

		if (e->level >= 0) {
			ret = expand(s);
		} else {
			ret = removed ? fn(ctx, &e->key, e->data, e->len, NULL, 0)
			              : fn(ctx, &e->key, NULL, 0, e->data, e->len);
			pop(s);
		}
		if (ret)
			return ret;
	}
	return 0;
}

int arb_tree_diff(struct arb_tree *ta, struct arb_tree *tb, arb_diff_fn fn, void *ctx,
                  uint64_t *ret_nodes_read)
{
	struct stream a = {0}, b = {0};
	int ret = 0;

	if (ta->fs != tb->fs)
		return -EINVAL;
	if (ta->root.bytenr != tb->root.bytenr || ta->root.bytenr == 0) {
		ret = stream_init(&a, ta);
		if (!ret)
			ret = stream_init(&b, tb);
		while (!ret && a.n && b.n)
			ret = step(&a, &b, fn, ctx);
		if (!ret)
			ret = drain(&a, true, fn, ctx);
		if (!ret)
			ret = drain(&b, false, fn, ctx);
	}
	if (ret_nodes_read)
		*ret_nodes_read = a.nodes_read + b.nodes_read;
	stream_free(&a);
	stream_free(&b);
	return ret < 0 ? ret : 0;
}

/* ---- what a tree holds alone ------------------------------------------------------- */

/* Nodes counted once (no other tree or node points to them) hold exclusive
 * subtrees; under a shared node everything is shared.  Data sectors are
 * exclusive when an exclusive leaf holds their only reference. */
static int exclusive_walk(struct arb_fs *fs, const struct arb_ptr *ptr, bool is_root,
                          struct arb_tree_usage *u)
{
	struct arb_node *n;
	int err;

	if (arb_sm_get(&fs->sm, ptr->bytenr) != 1)
		return 0;
	err = arb_read_node(fs, ptr, is_root, &n);
	if (err)
		return err;
	u->nodes_read++;
	u->excl_nodes++;
	const uint8_t *buf = n->buf;

	for (uint32_t i = 0; i < node_nritems(buf) && !err; i++) {
		if (node_level(buf)) {
			const struct arb_key_ptr *kp = node_ckptr(buf, i);
			struct arb_ptr cp = {le64toh(kp->bytenr), le64toh(kp->generation),
			                     le64toh(kp->csum), (uint8_t)(node_level(buf) - 1)};

			err = exclusive_walk(fs, &cp, false, u);
			continue;
		}
		struct arb_key k;
		uint64_t bytenr, nsec;

		arb_key_from_disk(node_dkey(buf, i), &k);
		if (!arb_item_extent(&k, buf + NODE_HDR + item_off(buf, i), item_size(buf, i),
		                     &bytenr, &nsec))
			continue;
		for (uint64_t s = 0; s < nsec; s++)
			u->excl_data_sectors +=
			        arb_sm_get(&fs->sm, bytenr + s * fs->sectorsize) == 1;
	}
	arb_cache_unpin(&fs->cache, n);
	return err;
}

int arb_tree_usage(struct arb_tree *t, struct arb_tree_usage *u)
{
	memset(u, 0, sizeof(*u));
	u->ref_nodes = t->ref_nodes;
	u->ref_data_sectors = t->ref_data;
	return t->root.bytenr ? exclusive_walk(t->fs, &t->root, true, u) : 0;
}
