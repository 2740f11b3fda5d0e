/* SPDX-License-Identifier: MIT */
/*
 * btree.h - the generic copy-on-write B+tree: keys (objectid, type, offset)
 * compared field by field, variable-size items in leaves.  Every Arbor
 * structure is an instance of it (see arbor_format.h).
 *
 * Mutations shadow the path from the root to the leaf once per transaction
 * and reuse the copies afterwards.  Iterators are invalidated by any
 * mutation of their tree (arb_iter_next then returns -ESTALE).
 */
#ifndef ARBOR_BTREE_H
#define ARBOR_BTREE_H

#include <stdbool.h>
#include <stdint.h>

#include "arbor/fs.h"

struct arb_key {
	uint64_t objectid;
	uint8_t type;
	uint64_t offset;
};

static inline int arb_key_cmp(const struct arb_key *a, const struct arb_key *b)
{
	if (a->objectid != b->objectid)
		return a->objectid < b->objectid ? -1 : 1;
	if (a->type != b->type)
		return a->type < b->type ? -1 : 1;
	if (a->offset != b->offset)
		return a->offset < b->offset ? -1 : 1;
	return 0;
}

#define ARB_KEY_MIN ((struct arb_key){0, 0, 0})
#define ARB_KEY_MAX ((struct arb_key){UINT64_MAX, UINT8_MAX, UINT64_MAX})

/* Largest item data a leaf of this filesystem accepts. */
uint32_t arb_max_item_size(const struct arb_fs *fs);

uint64_t arb_tree_id(const struct arb_tree *tree);

/* Copy the item's data (at most bufsize bytes) and its size. -ENOENT. */
int arb_lookup(struct arb_tree *tree, const struct arb_key *key, void *buf, uint32_t bufsize,
               uint32_t *ret_len);
/* -EEXIST if the key is present, -E2BIG if len > arb_max_item_size. */
int arb_insert(struct arb_tree *tree, const struct arb_key *key, const void *data, uint32_t len);
/* Replace an existing item's data (size may change). -ENOENT. */
int arb_update(struct arb_tree *tree, const struct arb_key *key, const void *data, uint32_t len);
/* Insert or replace. */
int arb_put(struct arb_tree *tree, const struct arb_key *key, const void *data, uint32_t len);
/* -ENOENT. */
int arb_delete(struct arb_tree *tree, const struct arb_key *key);

/* ---- range iteration -------------------------------------------------- */

enum arb_iter_dir { ARB_ITER_FORWARD = 0, ARB_ITER_BACKWARD = 1 };
struct arb_iter;

/* Forward: first item with key >= start.  Backward: last item <= start. */
int arb_iter_open(struct arb_tree *tree, const struct arb_key *start, enum arb_iter_dir dir,
                  struct arb_iter **ret_iter);
/* 1 and the item (data valid until the next call), 0 at the end, or <0. */
int arb_iter_next(struct arb_iter *it, struct arb_key *ret_key, const void **ret_data,
                  uint32_t *ret_len);
void arb_iter_close(struct arb_iter *it);

/* ---- node walk (inspect, check) --------------------------------------- */

struct arb_node_view {
	uint64_t bytenr, generation, owner;
	uint8_t level;
	uint16_t nritems;
	uint32_t csum;
	uint32_t used_bytes; /* headers + items + data */
	int depth;           /* 0 for the root */
	const void *raw;     /* nodesize bytes, read-only */
};
/* Entry i of a node: its key, and for internal nodes the child pointer, for
 * leaves the data. */
void arb_node_view_key(const struct arb_node_view *v, int i, struct arb_key *ret_key);
void arb_node_view_ptr(const struct arb_node_view *v, int i, uint64_t *ret_bytenr,
                       uint64_t *ret_gen, uint64_t *ret_csum);
const void *arb_node_view_data(const struct arb_node_view *v, int i, uint32_t *ret_len);

/* Pre-order walk of every node of a tree (children in key order).  The
 * callback returns 0 to go on, 1 to skip the node's children, <0 to stop. */
typedef int (*arb_walk_fn)(void *ctx, const struct arb_node_view *node);
int arb_tree_walk(struct arb_tree *tree, arb_walk_fn fn, void *ctx);

/* ---- differences (treediff.c) ------------------------------------------ */

/* An item that differs: only in the first tree (b NULL), only in the
 * second (a NULL), or in both with other data.  Data valid during the
 * call; a non-zero return stops (negative: an error). */
typedef int (*arb_diff_fn)(void *ctx, const struct arb_key *key, const void *a, uint32_t alen,
                           const void *b, uint32_t blen);
/* Every item that differs between trees a and b, in key order, reading
 * only subtrees that are not shared (the cost follows the size of the
 * difference).  *ret_nodes_read (may be NULL): nodes read. */
int arb_tree_diff(struct arb_tree *a, struct arb_tree *b, arb_diff_fn fn, void *ctx,
                  uint64_t *ret_nodes_read);

/* What a user tree references (kept by every edit: no walk) and what it
 * holds alone (walked: only its unshared part, so a fresh snapshot costs
 * one node).  Data sectors are counted once per item that names them. */
struct arb_tree_usage {
	uint64_t ref_nodes, ref_data_sectors;
	uint64_t excl_nodes, excl_data_sectors;
	uint64_t nodes_read;
};
int arb_tree_usage(struct arb_tree *t, struct arb_tree_usage *u);

#endif
