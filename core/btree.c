/* SPDX-License-Identifier: MIT */
/*
 * btree.c - the copy-on-write B+tree.
 *
 * Every modifying operation first walks from the root to the leaf and
 * shadows ("COWs") each node on the way that is not already private to the
 * running transaction; then it changes the leaf and, bottom-up along that
 * path, splits nodes that overflow or merges/rebalances nodes that
 * underflow.  Reference counts follow Rodeh: shadowing a shared node takes
 * a reference on each of its children and drops one on the original.
 *
 * Nodes are pinned in the cache while a path holds them; no pin outlives a
 * public call (iterators keep a private copy of their leaf instead).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fs_internal.h"
#include "node.h"

struct path {
	struct arb_node *nodes[ARB_MAX_LEVEL];
	uint32_t slots[ARB_MAX_LEVEL];
	int height;
};

/* One entry of a node being repacked (split, merge, rebalance). */
struct ventry {
	struct arb_disk_key key;
	const uint8_t *data; /* leaves */
	uint32_t len;
	struct arb_key_ptr kp; /* internal nodes */
};

static void path_release(struct arb_fs *fs, struct path *p)
{
	for (int i = 0; i < ARB_MAX_LEVEL; i++) {
		if (p->nodes[i])
			arb_cache_unpin(&fs->cache, p->nodes[i]);
		p->nodes[i] = NULL;
	}
}

uint32_t arb_max_item_size(const struct arb_fs *fs)
{
	/* half a leaf: a leaf overflowing by one such item always splits into
	 * two that fit (the largest prefix that fits leaves less than a leaf) */
	return node_usable(fs->nodesize) / 2 - ITEM_SZ;
}

uint64_t arb_tree_id(const struct arb_tree *tree)
{
	return tree->id;
}

int arb_check_mutable(struct arb_fs *fs)
{
	if (fs->failed || fs->read_only)
		return -EROFS;
	return 0;
}

/* ---- reading and verifying nodes -------------------------------------- */

static int verify_loaded(struct arb_fs *fs, const struct arb_ptr *ptr, const uint8_t *buf,
                         bool is_root)
{
	const struct arb_node_header *h = node_chdr(buf);
	uint32_t csum = node_csum(buf, fs->nodesize);
	const char *why;

	if (csum != node_stored_csum(buf)) {
		arb_msgf(fs, ARB_MSG_ERR,
		         "node %llu: checksum mismatch (stored %08x, computed %08x)",
		         (unsigned long long)ptr->bytenr, node_stored_csum(buf), csum);
		return -EBADMSG;
	}
	if (csum != ptr->csum) {
		arb_msgf(fs, ARB_MSG_ERR,
		         "node %llu: checksum %08x differs from its parent's record %08llx",
		         (unsigned long long)ptr->bytenr, csum, (unsigned long long)ptr->csum);
		return -EBADMSG;
	}
	if (le32toh(h->magic) != ARB_NODE_MAGIC || memcmp(h->fsid, fs->fsid, 16) ||
	    node_bytenr(buf) != ptr->bytenr) {
		arb_msgf(fs, ARB_MSG_ERR,
		         "node %llu: not a node of this filesystem at this address",
		         (unsigned long long)ptr->bytenr);
		return -EUCLEAN;
	}
	if (node_gen(buf) != ptr->generation || h->level != ptr->level) {
		arb_msgf(fs, ARB_MSG_ERR,
		         "node %llu: generation %llu level %u, parent expects %llu level %u",
		         (unsigned long long)ptr->bytenr, (unsigned long long)node_gen(buf),
		         h->level, (unsigned long long)ptr->generation, ptr->level);
		return -EUCLEAN;
	}
	why = node_check(buf, fs->nodesize, fs->total_bytes, is_root);
	if (why) {
		arb_msgf(fs, ARB_MSG_ERR, "node %llu: %s", (unsigned long long)ptr->bytenr, why);
		return -EUCLEAN;
	}
	return 0;
}

static int read_node_ex(struct arb_fs *fs, const struct arb_ptr *ptr, bool is_root,
                        struct arb_node **ret)
{
	struct arb_node *n = arb_cache_get(&fs->cache, ptr->bytenr);
	int err;

	if (n) {
		if (node_gen(n->buf) != ptr->generation || node_level(n->buf) != ptr->level) {
			arb_cache_unpin(&fs->cache, n);
			arb_msgf(fs, ARB_MSG_ERR, "node %llu: cached generation/level mismatch",
			         (unsigned long long)ptr->bytenr);
			return -EUCLEAN;
		}
		*ret = n;
		return 0;
	}
	if (!arb_sm_valid_range(&fs->sm, ptr->bytenr, fs->node_sectors) ||
	    ptr->level >= ARB_MAX_LEVEL) {
		arb_msgf(fs, ARB_MSG_ERR, "pointer to %llu level %u is outside the device",
		         (unsigned long long)ptr->bytenr, ptr->level);
		return -EUCLEAN;
	}
	n = arb_cache_add(&fs->cache, ptr->bytenr);
	if (!n)
		return -ENOMEM;
	err = arb_dev_read(fs->dev, n->buf, fs->nodesize, ptr->bytenr);
	if (err) {
		arb_msgf(fs, ARB_MSG_ERR, "node %llu: read failed (%d)",
		         (unsigned long long)ptr->bytenr, err);
		err = -EIO;
	} else {
		err = verify_loaded(fs, ptr, n->buf, is_root);
	}
	if (err) {
		arb_cache_forget(&fs->cache, n);
		return err;
	}
	n->csum = node_stored_csum(n->buf);
	*ret = n;
	return 0;
}

int arb_read_node(struct arb_fs *fs, const struct arb_ptr *ptr, bool is_root, struct arb_node **ret)
{
	return read_node_ex(fs, ptr, is_root, ret);
}

static void child_ptr(const uint8_t *buf, uint32_t slot, struct arb_ptr *p)
{
	const struct arb_key_ptr *kp = node_ckptr(buf, slot);

	p->bytenr = le64toh(kp->bytenr);
	p->generation = le64toh(kp->generation);
	p->csum = le64toh(kp->csum);
	p->level = (uint8_t)(node_level(buf) - 1);
}

/* The child of an internal node that may hold key: the last one whose key is
 * <= key (the first child if key sorts before all). */
static uint32_t child_slot(const uint8_t *buf, const struct arb_key *key)
{
	uint32_t lb = node_lower_bound(buf, key);

	if (lb < node_nritems(buf) && dkey_cmp(node_dkey(buf, lb), key) == 0)
		return lb;
	return lb ? lb - 1 : 0;
}

static int read_root(struct arb_tree *t, struct path *p)
{
	struct arb_node *n;
	int err = read_node_ex(t->fs, &t->root, true, &n);

	if (err)
		return err;
	p->height = t->root.level + 1;
	p->nodes[t->root.level] = n;
	return 0;
}

/* Read-only descent.  Returns 1 if key is present (path at it), 0 if not
 * (leaf slot = where it would go), or a negative errno. */
static int search(struct arb_tree *t, const struct arb_key *key, struct path *p)
{
	int err = read_root(t, p);

	if (err)
		return err;
	for (int level = p->height - 1; level > 0; level--) {
		const uint8_t *buf = p->nodes[level]->buf;
		struct arb_ptr cp;

		p->slots[level] = child_slot(buf, key);
		child_ptr(buf, p->slots[level], &cp);
		err = read_node_ex(t->fs, &cp, false, &p->nodes[level - 1]);
		if (err)
			return err;
	}
	const uint8_t *leaf = p->nodes[0]->buf;
	uint32_t slot = node_lower_bound(leaf, key);

	p->slots[0] = slot;
	return slot < node_nritems(leaf) && dkey_cmp(node_dkey(leaf, slot), key) == 0;
}

/* ---- reference counting and freeing ------------------------------------ */

static bool node_is_shared(struct arb_tree *t, const struct arb_node *n)
{
	/* a node born after the tree's last clone cannot be shared (btrfs's
	 * last_snapshot shortcut): no count lookup on the common path */
	if (!t->shareable || node_gen(n->buf) > t->last_snapshot)
		return false;
	return arb_sm_get(&t->fs->sm, n->bytenr) > 1;
}

/* One more (delta=+1) or one less reference on everything a node points to. */
static int ref_children(struct arb_tree *t, const uint8_t *buf, int delta)
{
	struct arb_fs *fs = t->fs;
	uint32_t n = node_nritems(buf);

	if (node_level(buf) > 0) {
		for (uint32_t i = 0; i < n; i++) {
			int err = arb_sm_add(&fs->sm, le64toh(node_ckptr(buf, i)->bytenr),
			                     fs->node_sectors, delta);
			if (err)
				return err;
		}
		return 0;
	}
	/* leaves: data extents their items point to (filesystem layer) */
	for (uint32_t i = 0; t->shareable && i < n; i++) {
		struct arb_key k;
		uint64_t bytenr, nsectors;

		arb_key_from_disk(&leaf_citem(buf, i)->key, &k);
		if (!arb_item_extent(&k, buf + NODE_HDR + item_off(buf, i), item_size(buf, i),
		                     &bytenr, &nsectors))
			continue;
		int err = arb_data_ref(fs, bytenr, nsectors, delta);

		if (err)
			return err;
	}
	return 0;
}

/*
 * The tree no longer references node n (count 1): a node born in this
 * transaction was never durable and is reused at once; an older one waits
 * ARB_DEFER_COMMITS commits (invariant 4).  Consumes the caller's pin.
 */
static int release_node(struct arb_fs *fs, struct arb_node *n)
{
	uint64_t bytenr = n->bytenr;

	if (n->dirty && node_gen(n->buf) == fs->transid) {
		arb_cache_forget(&fs->cache, n);
		return arb_sm_add(&fs->sm, bytenr, fs->node_sectors, -1);
	}
	arb_cache_unpin(&fs->cache, n);
	arb_cache_drop_clean(&fs->cache, bytenr);
	return arb_sm_defer(&fs->sm, bytenr, fs->node_sectors);
}

/*
 * Dropping a deleted tree in steps (ARB_ROOT_DROPPING in arbor_format.h):
 * the tree never changes again, so a key cursor says how far the walk
 * got.  A subtree whose range ends at or before the cursor has given its
 * references back; one that starts at or after it is untouched; a node
 * whose range straddles it was found held by this tree alone (count 1:
 * no one else can take a reference to a dead tree's node) and is freed
 * after its last child.  A shared subtree gives back one count and is not
 * entered; a leaf goes in one piece, with its data extents.
 */
struct drop_walk {
	struct arb_fs *fs;
	struct arb_tree *t;
	struct arb_key *cursor;
	uint64_t budget; /* nodes it may still take up */
	bool done;       /* the root is gone */
};

static void drop_advance(struct drop_walk *w, const struct arb_key *hi)
{
	if (hi)
		*w->cursor = *hi;
	else
		w->done = true;
}

static int drop_children(struct drop_walk *w, const uint8_t *buf, const struct arb_key *hi);

/* 0: the subtree is gone (the cursor is at hi), 1: the budget ran out,
 * or -errno.  fresh: the subtree starts at or after the cursor. */
static int drop_subtree(struct drop_walk *w, const struct arb_ptr *ptr, const struct arb_key *hi,
                        bool fresh)
{
	struct arb_fs *fs = w->fs;
	struct arb_node *n;
	int err;

	if (fresh) {
		if (w->budget == 0)
			return 1;
		w->budget--;
		if (arb_sm_get(&fs->sm, ptr->bytenr) > 1) {
			err = arb_sm_add(&fs->sm, ptr->bytenr, fs->node_sectors, -1);
			if (!err)
				drop_advance(w, hi);
			return err;
		}
	}
	err = read_node_ex(fs, ptr, false, &n);
	if (err)
		return err;
	if (node_level(n->buf) == 0)
		err = ref_children(w->t, n->buf, -1);
	else
		err = drop_children(w, n->buf, hi);
	if (err) {
		arb_cache_unpin(&fs->cache, n);
		return err;
	}
	err = release_node(fs, n);
	if (!err)
		drop_advance(w, hi);
	return err;
}

static int drop_children(struct drop_walk *w, const uint8_t *buf, const struct arb_key *hi)
{
	uint32_t nr = node_nritems(buf);

	for (uint32_t i = 0; i < nr; i++) {
		struct arb_key lo, next;
		const struct arb_key *child_hi = hi;
		struct arb_ptr cp;

		if (i + 1 < nr) {
			arb_key_from_disk(node_dkey(buf, i + 1), &next);
			child_hi = &next;
		}
		if (child_hi && arb_key_cmp(child_hi, w->cursor) <= 0)
			continue; /* given back in an earlier step */
		arb_key_from_disk(node_dkey(buf, i), &lo);
		child_ptr(buf, i, &cp);
		int r = drop_subtree(w, &cp, child_hi, arb_key_cmp(&lo, w->cursor) >= 0);

		if (r)
			return r;
	}
	return 0;
}

int arb_tree_drop_some(struct arb_tree *t, struct arb_key *cursor, uint64_t *budget)
{
	struct drop_walk w = {t->fs, t, cursor, *budget, false};
	static const struct arb_key start = {0, 0, 0};
	int r = drop_subtree(&w, &t->root, NULL, arb_key_cmp(cursor, &start) == 0);

	*budget = w.budget;
	t->modseq++;
	if (r < 0)
		return r;
	return w.done ? 1 : 0;
}

/* ---- allocation and shadowing ------------------------------------------- */

/* A fresh dirty block in the cache, its content left to the caller. */
static int alloc_block(struct arb_tree *t, struct arb_node **ret)
{
	struct arb_fs *fs = t->fs;
	uint64_t bytenr;
	struct arb_node *n;
	uint64_t keep = fs->in_commit ? 0 : arb_sm_commit_quarter(&fs->sm);
	int err = arb_sm_alloc(&fs->sm, fs->node_sectors, fs->node_sectors, keep, &bytenr);

	if (err)
		return err;
	n = arb_cache_add(&fs->cache, bytenr);
	if (!n)
		return -ENOMEM;
	arb_cache_set_dirty(&fs->cache, n);
	*ret = n;
	return 0;
}

/* A new node of the tree (not a shadow of an old one: those replace it). */
static int alloc_node(struct arb_tree *t, uint8_t level, struct arb_node **ret)
{
	struct arb_fs *fs = t->fs;
	int err = alloc_block(t, ret);

	if (!err) {
		node_init((*ret)->buf, fs->nodesize, fs->fsid, (*ret)->bytenr, fs->transid, t->id,
		          level);
		t->ref_nodes++;
		t->item_dirty = true;
	}
	return err;
}

/* Data sectors an item names (filesystem extents; 0 for anything else). */
static uint64_t item_data_sectors(const struct arb_tree *t, const struct arb_key *k,
                                  const void *data, uint32_t len)
{
	uint64_t bytenr, nsectors;

	if (!t->shareable || !arb_item_extent(k, data, len, &bytenr, &nsectors))
		return 0;
	return nsectors;
}

static void account_item(struct arb_tree *t, const struct arb_key *k, const void *data,
                         uint32_t len, int sign)
{
	uint64_t n = item_data_sectors(t, k, data, len);

	if (n) {
		t->ref_data += sign > 0 ? n : -n;
		t->item_dirty = true;
	}
}

/* The item at slot of a leaf, for account_item. */
static void account_slot(struct arb_tree *t, const uint8_t *leaf, uint32_t slot, int sign)
{
	struct arb_key k;

	arb_key_from_disk(&leaf_citem(leaf, slot)->key, &k);
	account_item(t, &k, leaf + NODE_HDR + item_off(leaf, slot), item_size(leaf, slot), sign);
}

static void set_parent_ptr(struct arb_tree *t, struct arb_node *parent, uint32_t pslot,
                           const struct arb_node *child)
{
	if (!parent) {
		t->root.bytenr = child->bytenr;
		t->root.generation = t->fs->transid;
		t->root.csum = 0; /* known at commit */
		t->root.level = node_level(child->buf);
		t->item_dirty = true;
		return;
	}
	struct arb_key_ptr *kp = node_kptr(parent->buf, pslot);

	kp->bytenr = htole64(child->bytenr);
	kp->generation = htole64(t->fs->transid);
	kp->csum = 0; /* filled in when the child is finalized at commit */
}

/*
 * Make *np private to this transaction: a no-op for a node already shadowed
 * and not shared; otherwise copy it to fresh space, move or split its
 * references, and point the parent (or the tree root) at the copy.  *np is
 * pinned and stays pinned (the copy replaces it).
 */
static int cow_node(struct arb_tree *t, struct arb_node **np, struct arb_node *parent,
                    uint32_t pslot)
{
	struct arb_fs *fs = t->fs;
	struct arb_node *old = *np, *copy;
	bool shared = node_is_shared(t, old);
	int err;

	if (old->dirty && node_gen(old->buf) == fs->transid && !shared)
		return 0;
	err = alloc_block(t, &copy);
	if (err)
		return err;
	/* the checksum field is rewritten when the copy is finalized */
	memcpy(copy->buf, old->buf, fs->nodesize);
	copy->insert_hint = old->insert_hint;
	node_hdr(copy->buf)->bytenr = htole64(copy->bytenr);
	node_hdr(copy->buf)->generation = htole64(fs->transid);
	node_hdr(copy->buf)->owner = htole64(t->id);
	if (shared) {
		/* Rodeh: the copy takes a reference on each child, the old
		 * node loses the one this tree held */
		err = ref_children(t, old->buf, +1);
		if (!err)
			err = arb_sm_add(&fs->sm, old->bytenr, fs->node_sectors, -1);
		arb_cache_unpin(&fs->cache, old);
	} else {
		err = release_node(fs, old);
	}
	set_parent_ptr(t, parent, pslot, copy);
	*np = copy;
	return err;
}

/* Read the child at pslot of a (private) parent and make it private. */
static int cow_child(struct arb_tree *t, struct arb_node *parent, uint32_t pslot,
                     struct arb_node **ret)
{
	struct arb_ptr cp;
	int err;

	child_ptr(parent->buf, pslot, &cp);
	err = read_node_ex(t->fs, &cp, false, ret);
	if (err)
		return err;
	err = cow_node(t, ret, parent, pslot);
	if (err) {
		arb_cache_unpin(&t->fs->cache, *ret);
		*ret = NULL;
	}
	return err;
}

/* Free space for the worst case of one operation: a shadow and a split at
 * every level plus a new root. */
static int reserve_for_op(struct arb_tree *t)
{
	uint64_t need = (uint64_t)(t->root.level + 2) * 2 * t->fs->node_sectors;
	uint64_t free_now = arb_sm_free_sectors(&t->fs->sm);

	/* The reserve is tiered: a filesystem-level operation checks its
	 * whole worst case against all of it (ordinary writes) or half of it
	 * (deletes) before starting; single tree edits keep the last quarter
	 * for commits, which may use everything. */
	if (t->fs->in_commit)
		return free_now >= need ? 0 : -ENOSPC;
	return free_now >= need + t->fs->sm.reserve_sectors / 4 ? 0 : -ENOSPC;
}

/* Descend to key shadowing every node on the way. Same returns as search. */
static int search_cow(struct arb_tree *t, const struct arb_key *key, struct path *p)
{
	int err = read_root(t, p);

	if (err)
		return err;
	int top = p->height - 1;

	err = cow_node(t, &p->nodes[top], NULL, 0);
	for (int level = top; level > 0 && !err; level--) {
		p->slots[level] = child_slot(p->nodes[level]->buf, key);
		err = cow_child(t, p->nodes[level], p->slots[level], &p->nodes[level - 1]);
	}
	if (err)
		return err;
	t->modseq++;
	const uint8_t *leaf = p->nodes[0]->buf;
	uint32_t slot = node_lower_bound(leaf, key);

	p->slots[0] = slot;
	return slot < node_nritems(leaf) && dkey_cmp(node_dkey(leaf, slot), key) == 0;
}

/* ---- in-node edits ------------------------------------------------------- */

static void leaf_insert_at(uint8_t *buf, uint32_t nodesize, uint32_t slot,
                           const struct arb_disk_key *key, const void *data, uint32_t len)
{
	uint32_t n = node_nritems(buf), usable = node_usable(nodesize);
	uint32_t prev_end = slot == 0 ? usable : item_off(buf, slot - 1);
	uint32_t low = n == 0 ? usable : item_off(buf, n - 1);
	uint8_t *d = buf + NODE_HDR;

	if (slot < n) {
		/* slide the data of items slot.. down, then their headers right */
		memmove(d + low - len, d + low, prev_end - low);
		for (uint32_t i = slot; i < n; i++)
			leaf_item(buf, i)->offset = htole32(item_off(buf, i) - len);
		memmove(leaf_item(buf, slot + 1), leaf_item(buf, slot), (n - slot) * ITEM_SZ);
	}
	struct arb_item *it = leaf_item(buf, slot);

	it->key = *key;
	it->offset = htole32(prev_end - len);
	it->size = htole32(len);
	if (len)
		memcpy(d + prev_end - len, data, len);
	node_set_nritems(buf, n + 1);
}

static void leaf_delete_at(uint8_t *buf, uint32_t slot)
{
	uint32_t n = node_nritems(buf);
	uint32_t size = item_size(buf, slot), off = item_off(buf, slot);
	uint32_t low = item_off(buf, n - 1);
	uint8_t *d = buf + NODE_HDR;

	memmove(d + low + size, d + low, off - low);
	for (uint32_t i = slot + 1; i < n; i++)
		leaf_item(buf, i)->offset = htole32(item_off(buf, i) + size);
	memmove(leaf_item(buf, slot), leaf_item(buf, slot + 1), (n - slot - 1) * ITEM_SZ);
	node_set_nritems(buf, n - 1);
}

static void kptr_insert_at(uint8_t *buf, uint32_t slot, const struct arb_key_ptr *kp)
{
	uint32_t n = node_nritems(buf);

	memmove(node_kptr(buf, slot + 1), node_kptr(buf, slot), (n - slot) * KPTR_SZ);
	memcpy(node_kptr(buf, slot), kp, KPTR_SZ);
	node_set_nritems(buf, n + 1);
}

static void kptr_delete_at(uint8_t *buf, uint32_t slot)
{
	uint32_t n = node_nritems(buf);

	memmove(node_kptr(buf, slot), node_kptr(buf, slot + 1), (n - slot - 1) * KPTR_SZ);
	node_set_nritems(buf, n - 1);
}

/* Keep "parent key == first key of child" after the first key of the node
 * at `level` changed. */
static void fix_first_key(struct path *p, int level)
{
	for (int l = level; l + 1 < p->height; l++) {
		const uint8_t *buf = p->nodes[l]->buf;

		if (node_nritems(buf) == 0)
			return;
		memcpy(&node_kptr(p->nodes[l + 1]->buf, p->slots[l + 1])->key, node_dkey(buf, 0),
		       sizeof(struct arb_disk_key));
		if (p->slots[l + 1] != 0)
			return;
	}
}

static void make_kptr(const struct arb_node *child, uint64_t transid, struct arb_key_ptr *kp)
{
	memcpy(&kp->key, node_dkey(child->buf, 0), sizeof(kp->key));
	kp->bytenr = htole64(child->bytenr);
	kp->generation = htole64(transid);
	kp->csum = 0;
}

/* ---- repacking: splits, merges, rebalancing ----------------------------- */

/* Entries of a node (copied to scratch first, so data pointers stay valid
 * while the node is rewritten). */
static uint32_t gather(struct arb_fs *fs, const uint8_t *buf, uint8_t *scratch, struct ventry *e)
{
	uint32_t n = node_nritems(buf);

	memcpy(scratch, buf, fs->nodesize);
	for (uint32_t i = 0; i < n; i++) {
		if (node_level(scratch) == 0) {
			e[i].key = leaf_citem(scratch, i)->key;
			e[i].data = scratch + NODE_HDR + item_off(scratch, i);
			e[i].len = item_size(scratch, i);
		} else {
			memcpy(&e[i].kp, node_ckptr(scratch, i), KPTR_SZ);
		}
	}
	return n;
}

static void fill(struct arb_fs *fs, uint8_t *buf, const struct ventry *e, uint32_t cnt)
{
	node_set_nritems(buf, 0);
	for (uint32_t i = 0; i < cnt; i++) {
		if (node_level(buf) == 0)
			leaf_insert_at(buf, fs->nodesize, i, &e[i].key, e[i].data, e[i].len);
		else
			kptr_insert_at(buf, i, &e[i].kp);
	}
}

/* Where to cut a run of entries between two nodes: the most even split
 * (by bytes for leaves, by count for internal nodes). */
static uint32_t best_cut(const struct arb_fs *fs, const struct ventry *e, uint32_t cnt, bool leaf)
{
	if (!leaf)
		return cnt / 2;
	uint64_t total = 0, left = 0;
	uint32_t best = 1;
	uint64_t best_max = UINT64_MAX;

	for (uint32_t i = 0; i < cnt; i++)
		total += e[i].len + ITEM_SZ;
	for (uint32_t k = 1; k < cnt; k++) {
		left += e[k - 1].len + ITEM_SZ;
		uint64_t worst = left > total - left ? left : total - left;

		if (worst < best_max) {
			best_max = worst;
			best = k;
		}
	}
	(void)fs;
	return best;
}

static int insert_ptr(struct arb_tree *t, struct path *p, int level, struct arb_node *right);

/* A new root above the current one, holding it and its new right sibling. */
static int grow_root(struct arb_tree *t, struct path *p, struct arb_node *right)
{
	struct arb_node *left = p->nodes[p->height - 1], *root;
	struct arb_key_ptr kp;
	int err;

	if (p->height >= ARB_MAX_LEVEL)
		return -EFBIG;
	err = alloc_node(t, (uint8_t)p->height, &root);
	if (err)
		return err;
	make_kptr(left, t->fs->transid, &kp);
	kptr_insert_at(root->buf, 0, &kp);
	make_kptr(right, t->fs->transid, &kp);
	kptr_insert_at(root->buf, 1, &kp);
	set_parent_ptr(t, NULL, 0, root);
	p->nodes[p->height] = root;
	p->slots[p->height] = 0;
	p->height++;
	return 0;
}

/* Link `right`, the new right sibling of p->nodes[level-1], into the node at
 * `level`, splitting upwards as needed. */
static int insert_ptr(struct arb_tree *t, struct path *p, int level, struct arb_node *right)
{
	struct arb_fs *fs = t->fs;
	struct arb_key_ptr kp;

	if (level == p->height)
		return grow_root(t, p, right);
	struct arb_node *node = p->nodes[level], *sib;
	uint32_t slot = p->slots[level] + 1, n = node_nritems(node->buf);

	make_kptr(right, fs->transid, &kp);
	if (n < node_max_ptrs(fs->nodesize)) {
		kptr_insert_at(node->buf, slot, &kp);
		node->insert_hint = slot + 1;
		return 0;
	}
	int err = alloc_node(t, node_level(node->buf), &sib);

	if (err)
		return err;
	struct ventry *e = fs->vent;

	gather(fs, node->buf, fs->scratch, e);
	memmove(&e[slot + 1], &e[slot], (n - slot) * sizeof(*e));
	e[slot].kp = kp;
	/* the same reasoning as leaf_cut: a run of splits going right; but
	 * each half keeps two children, so that every node has a sibling to
	 * merge with */
	uint32_t cut = node->insert_hint == slot && slot + 2 < n + 1 ? slot + 1
	               : node->insert_hint == slot && slot >= 3      ? slot - 1
	                                                        : best_cut(fs, e, n + 1, false);

	fill(fs, node->buf, e, cut);
	fill(fs, sib->buf, e + cut, n + 1 - cut);
	node->insert_hint = slot < cut ? slot + 1 : 0;
	sib->insert_hint = slot < cut ? 0 : slot - cut + 1;
	err = insert_ptr(t, p, level + 1, sib);
	arb_cache_unpin(&fs->cache, sib);
	return err;
}

static uint64_t entries_bytes(const struct ventry *e, uint32_t cnt)
{
	uint64_t total = 0;

	for (uint32_t i = 0; i < cnt; i++)
		total += e[i].len + ITEM_SZ;
	return total;
}

/*
 * Where to cut a leaf that overflows while `slot` takes a new entry, given
 * the cnt entries with the new one at e[slot].  An insert right after the
 * previous one is a run of ascending keys (new inodes at the end of the
 * tree, a growing directory index, a file written front to back): cutting in
 * the middle would leave half-empty leaves behind the run forever, so the
 * cut goes just after the new entry (or just before it when it does not fit
 * on the left), and the run goes on filling the right-hand leaf.  Anything
 * else gets the even cut.
 */
static uint32_t leaf_cut(const struct arb_fs *fs, const struct arb_node *leaf, uint32_t slot,
                         const struct ventry *e, uint32_t cnt)
{
	uint64_t usable = node_usable(fs->nodesize);

	if (slot > 0 && leaf->insert_hint == slot) {
		if (slot + 1 < cnt && entries_bytes(e, slot + 1) <= usable &&
		    entries_bytes(e + slot + 1, cnt - slot - 1) <= usable)
			return slot + 1;
		if (entries_bytes(e, slot) <= usable &&
		    entries_bytes(e + slot, cnt - slot) <= usable)
			return slot;
	}
	return best_cut(fs, e, cnt, true);
}

static int split_leaf_insert(struct arb_tree *t, struct path *p, const struct arb_disk_key *key,
                             const void *data, uint32_t len)
{
	struct arb_fs *fs = t->fs;
	struct arb_node *leaf = p->nodes[0], *right;
	uint32_t slot = p->slots[0], n = node_nritems(leaf->buf);
	struct ventry *e = fs->vent;
	int err = alloc_node(t, 0, &right);

	if (err)
		return err;
	gather(fs, leaf->buf, fs->scratch, e);
	memmove(&e[slot + 1], &e[slot], (n - slot) * sizeof(*e));
	e[slot].key = *key;
	e[slot].data = data;
	e[slot].len = len;
	uint32_t cut = leaf_cut(fs, leaf, slot, e, n + 1);

	fill(fs, leaf->buf, e, cut);
	fill(fs, right->buf, e + cut, n + 1 - cut);
	leaf->insert_hint = slot < cut ? slot + 1 : 0;
	right->insert_hint = slot < cut ? 0 : slot - cut + 1;
	if (slot == 0)
		fix_first_key(p, 0);
	err = insert_ptr(t, p, 1, right);
	arb_cache_unpin(&fs->cache, right);
	return err;
}

static bool underfull(const struct arb_fs *fs, const uint8_t *buf)
{
	if (node_level(buf) == 0)
		return leaf_used(buf, fs->nodesize) < node_usable(fs->nodesize) / 4;
	return node_nritems(buf) < node_max_ptrs(fs->nodesize) / 4;
}

static bool fits_merged(const struct arb_fs *fs, const uint8_t *l, const uint8_t *r)
{
	if (node_level(l) == 0)
		return leaf_used(l, fs->nodesize) + leaf_used(r, fs->nodesize) <=
		       node_usable(fs->nodesize);
	return node_nritems(l) + node_nritems(r) <= node_max_ptrs(fs->nodesize);
}

/* Spread the entries of two siblings evenly (they do not fit in one). */
static void redistribute(struct arb_fs *fs, struct arb_node *left, struct arb_node *right)
{
	struct ventry *e = fs->vent;
	uint32_t nl = gather(fs, left->buf, fs->scratch, e);
	uint32_t nr = gather(fs, right->buf, fs->scratch + fs->nodesize, e + nl);
	uint32_t cut = best_cut(fs, e, nl + nr, node_level(left->buf) == 0);

	fill(fs, left->buf, e, cut);
	fill(fs, right->buf, e + cut, nl + nr - cut);
}

static void append_all(struct arb_fs *fs, struct arb_node *left, struct arb_node *right)
{
	struct ventry *e = fs->vent;
	uint32_t nl = node_nritems(left->buf);
	uint32_t nr = gather(fs, right->buf, fs->scratch, e);

	for (uint32_t i = 0; i < nr; i++) {
		if (node_level(left->buf) == 0)
			leaf_insert_at(left->buf, fs->nodesize, nl + i, &e[i].key, e[i].data,
			               e[i].len);
		else
			kptr_insert_at(left->buf, nl + i, &e[i].kp);
	}
}

/*
 * The node at `level` of the path may have become underfull: merge it with
 * a sibling or even them out.  Returns 1 if a merge removed a pointer from
 * the parent (which may now be underfull in turn), 0 otherwise.
 */
static int rebalance_level(struct arb_tree *t, struct path *p, int level)
{
	struct arb_fs *fs = t->fs;
	struct arb_node *node = p->nodes[level], *parent = p->nodes[level + 1], *sib;
	uint32_t ps = p->slots[level + 1];

	if (!underfull(fs, node->buf) || node_nritems(parent->buf) < 2)
		return 0;
	uint32_t li = ps > 0 ? ps - 1 : ps, sibslot = ps > 0 ? ps - 1 : ps + 1;
	int err = cow_child(t, parent, sibslot, &sib);

	if (err)
		return err;
	struct arb_node *left = sibslot < ps ? sib : node, *right = sibslot < ps ? node : sib;

	if (!fits_merged(fs, left->buf, right->buf)) {
		redistribute(fs, left, right);
		memcpy(&node_kptr(parent->buf, li + 1)->key, node_dkey(right->buf, 0),
		       sizeof(struct arb_disk_key));
		arb_cache_unpin(&fs->cache, sib);
		/* the path now points at the node holding the old slot's data;
		 * only the levels above are used from here on */
		return 0;
	}
	append_all(fs, left, right);
	kptr_delete_at(parent->buf, li + 1);
	t->ref_nodes--;
	/* the path continues through left; right goes away */
	p->nodes[level] = left;
	p->slots[level + 1] = li;
	fix_first_key(p, level);
	err = release_node(fs, right); /* consumes the path's or our pin */
	return err ? err : 1;
}

/* An internal root with a single child hands the root role to the child. */
static int collapse_root(struct arb_tree *t, struct path *p)
{
	struct arb_fs *fs = t->fs;

	while (p->height > 1 && node_nritems(p->nodes[p->height - 1]->buf) == 1) {
		struct arb_node *root = p->nodes[p->height - 1];
		struct arb_node *child = p->nodes[p->height - 2];

		p->nodes[p->height - 1] = NULL;
		p->height--;
		t->ref_nodes--;
		set_parent_ptr(t, NULL, 0, child);
		int err = release_node(fs, root);

		if (err)
			return err;
	}
	return 0;
}

static int rebalance(struct arb_tree *t, struct path *p)
{
	for (int level = 0; level + 1 < p->height; level++) {
		int ret = rebalance_level(t, p, level);

		if (ret < 0)
			return ret;
		if (ret == 0)
			break;
	}
	return collapse_root(t, p);
}

/* ---- public item operations --------------------------------------------- */

/* Errors found before anything changed leave the filesystem usable; any
 * other failure may have left a half-done edit in memory. */
static int fail_op(struct arb_tree *t, int err, const char *what)
{
	if (err == -ENOENT || err == -EEXIST || err == -E2BIG || err == -EPERM || err == -EROFS ||
	    (err == -ENOSPC && !t->fs->failed))
		return err;
	return arb_fail(t->fs, err, "%s in tree %llu failed", what, (unsigned long long)t->id);
}

/* The engine's own trees (root, space) change only through the engine. */
static int user_mutable(struct arb_tree *t, uint32_t len, bool sys)
{
	int err = arb_check_mutable(t->fs);

	if (err)
		return err;
	if (t->id < ARB_FIRST_USER_TREE && !sys)
		return -EPERM;
	if (le64toh(t->item.flags) & ARB_ROOT_RDONLY)
		return -EROFS; /* a read-only subvolume */
	if (len > arb_max_item_size(t->fs))
		return -E2BIG;
	return 0;
}

int arb_lookup(struct arb_tree *tree, const struct arb_key *key, void *buf, uint32_t bufsize,
               uint32_t *ret_len)
{
	struct path p = {0};
	int ret = search(tree, key, &p);

	if (ret == 1) {
		const uint8_t *leaf = p.nodes[0]->buf;
		uint32_t len = item_size(leaf, p.slots[0]);

		if (buf && bufsize)
			memcpy(buf, leaf + NODE_HDR + item_off(leaf, p.slots[0]),
			       len < bufsize ? len : bufsize);
		if (ret_len)
			*ret_len = len;
		ret = 0;
	} else if (ret == 0) {
		ret = -ENOENT;
	}
	path_release(tree->fs, &p);
	return ret;
}

/* Is the key present?  1, 0 or <0; also returns the item size. */
static int probe(struct arb_tree *t, const struct arb_key *key, uint32_t *ret_len)
{
	int ret = arb_lookup(t, key, NULL, 0, ret_len);

	return ret == 0 ? 1 : ret == -ENOENT ? 0 : ret;
}

/* Reserve for one edit and shadow the path to key.  Returns 1 with the
 * path at the item when present, 0 with the path where it would go, or
 * -ENOENT instead of 0 when the item must exist. */
static int prepare_edit(struct arb_tree *t, const struct arb_key *key, struct path *p,
                        bool must_exist)
{
	int ret = reserve_for_op(t);

	if (!ret)
		ret = search_cow(t, key, p);
	return ret == 0 && must_exist ? -ENOENT : ret;
}

static int insert_locked(struct arb_tree *t, const struct arb_key *key, const void *data,
                         uint32_t len)
{
	struct arb_fs *fs = t->fs;
	struct path p = {0};
	struct arb_disk_key dk;
	int ret = prepare_edit(t, key, &p, false);

	if (ret == 1)
		ret = -EEXIST;
	if (ret == 0) {
		arb_key_to_disk(key, &dk);
		struct arb_node *leaf = p.nodes[0];

		if (leaf_free(leaf->buf, fs->nodesize) >= len + ITEM_SZ) {
			leaf_insert_at(leaf->buf, fs->nodesize, p.slots[0], &dk, data, len);
			leaf->insert_hint = p.slots[0] + 1;
			if (p.slots[0] == 0)
				fix_first_key(&p, 0);
		} else {
			ret = split_leaf_insert(t, &p, &dk, data, len);
		}
		if (!ret)
			account_item(t, key, data, len, +1);
	}
	path_release(fs, &p);
	return ret;
}

static int delete_locked(struct arb_tree *t, const struct arb_key *key)
{
	struct path p = {0};
	int ret = prepare_edit(t, key, &p, true);

	if (ret == 1) {
		account_slot(t, p.nodes[0]->buf, p.slots[0], -1);
		leaf_delete_at(p.nodes[0]->buf, p.slots[0]);
		if (p.slots[0] == 0)
			fix_first_key(&p, 0);
		ret = rebalance(t, &p);
	}
	path_release(t->fs, &p);
	return ret;
}

/* Replace the data of a present item whose new size fits in its leaf. */
static int update_in_leaf(struct arb_tree *t, const struct arb_key *key, const void *data,
                          uint32_t len)
{
	struct arb_fs *fs = t->fs;
	struct path p = {0};
	int ret = prepare_edit(t, key, &p, true);

	if (ret == 1) {
		uint8_t *buf = p.nodes[0]->buf;
		uint32_t slot = p.slots[0];

		account_slot(t, buf, slot, -1);
		account_item(t, key, data, len, +1);
		if (item_size(buf, slot) == len) {
			memcpy(buf + NODE_HDR + item_off(buf, slot), data, len);
		} else {
			struct arb_disk_key dk = leaf_citem(buf, slot)->key;

			leaf_delete_at(buf, slot);
			leaf_insert_at(buf, fs->nodesize, slot, &dk, data, len);
		}
		ret = 0;
	}
	path_release(fs, &p);
	return ret;
}

static int update_locked(struct arb_tree *t, const struct arb_key *key, const void *data,
                         uint32_t len)
{
	struct path p = {0};
	int ret = search(t, key, &p);
	bool fits = false;

	if (ret == 1) {
		const uint8_t *leaf = p.nodes[0]->buf;

		fits = leaf_free(leaf, t->fs->nodesize) + item_size(leaf, p.slots[0]) >= len;
	}
	path_release(t->fs, &p);
	if (ret <= 0)
		return ret == 0 ? -ENOENT : ret;
	if (fits)
		return update_in_leaf(t, key, data, len);
	ret = delete_locked(t, key);
	return ret ? ret : insert_locked(t, key, data, len);
}

static int do_insert(struct arb_tree *tree, const struct arb_key *key, const void *data,
                     uint32_t len, bool sys)
{
	int ret = user_mutable(tree, len, sys);

	if (!ret)
		ret = probe(tree, key, NULL);
	if (ret < 0 || ret == 1)
		return ret == 1 ? -EEXIST : ret;
	ret = insert_locked(tree, key, data, len);
	return ret ? fail_op(tree, ret, "insert") : 0;
}

static int do_put(struct arb_tree *tree, const struct arb_key *key, const void *data, uint32_t len,
                  bool sys)
{
	int ret = user_mutable(tree, len, sys);

	if (!ret)
		ret = probe(tree, key, NULL);
	if (ret < 0)
		return ret;
	ret = ret == 1 ? update_locked(tree, key, data, len) : insert_locked(tree, key, data, len);
	return ret ? fail_op(tree, ret, "put") : 0;
}

static int do_delete(struct arb_tree *tree, const struct arb_key *key, bool sys)
{
	int ret = user_mutable(tree, 0, sys);

	if (!ret)
		ret = probe(tree, key, NULL);
	if (ret <= 0)
		return ret == 0 ? -ENOENT : ret;
	ret = delete_locked(tree, key);
	return ret ? fail_op(tree, ret, "delete") : 0;
}

int arb_insert(struct arb_tree *tree, const struct arb_key *key, const void *data, uint32_t len)
{
	return do_insert(tree, key, data, len, false);
}

int arb_update(struct arb_tree *tree, const struct arb_key *key, const void *data, uint32_t len)
{
	int ret = user_mutable(tree, len, false);

	if (!ret)
		ret = update_locked(tree, key, data, len);
	return ret ? fail_op(tree, ret, "update") : 0;
}

int arb_put(struct arb_tree *tree, const struct arb_key *key, const void *data, uint32_t len)
{
	return do_put(tree, key, data, len, false);
}

int arb_delete(struct arb_tree *tree, const struct arb_key *key)
{
	return do_delete(tree, key, false);
}

int arb_sys_insert(struct arb_tree *tree, const struct arb_key *key, const void *data, uint32_t len)
{
	return do_insert(tree, key, data, len, true);
}

int arb_sys_put(struct arb_tree *tree, const struct arb_key *key, const void *data, uint32_t len)
{
	return do_put(tree, key, data, len, true);
}

int arb_sys_delete(struct arb_tree *tree, const struct arb_key *key)
{
	return do_delete(tree, key, true);
}

/* ---- commit: checksums bottom-up ------------------------------------------ */

static int cmp_level_addr(const void *a, const void *b)
{
	const struct arb_node *x = *(struct arb_node *const *)a, *y = *(struct arb_node *const *)b;
	uint8_t lx = node_level(x->buf), ly = node_level(y->buf);

	if (lx != ly)
		return lx < ly ? -1 : 1;
	return x->bytenr < y->bytenr ? -1 : x->bytenr > y->bytenr;
}

/* A node of a tree being dropped, written in this transaction, can still
 * point to children the dropper gave back (never the last one: the node
 * goes with it).  Those pointers are never followed again. */
static bool child_given_back(struct arb_fs *fs, const uint8_t *buf, uint32_t i)
{
	struct arb_tree *t;
	struct arb_key cursor, next;

	if (i + 1 >= node_nritems(buf) || arb_tree_get_any(fs, node_owner(buf), &t) ||
	    !arb_tree_dropping(t))
		return false;
	arb_key_from_disk(&t->item.drop_key, &cursor);
	arb_key_from_disk(node_dkey(buf, i + 1), &next);
	return arb_key_cmp(&next, &cursor) <= 0;
}

/* Store the checksums of a node's children written in this transaction. */
static int fill_child_csums(struct arb_fs *fs, struct arb_node *n)
{
	for (uint32_t i = 0; i < node_nritems(n->buf); i++) {
		struct arb_key_ptr *kp = node_kptr(n->buf, i);

		if (le64toh(kp->generation) != fs->transid)
			continue;
		struct arb_node *c = arb_cache_get(&fs->cache, le64toh(kp->bytenr));

		if (!c && child_given_back(fs, n->buf, i))
			continue;
		if (!c || !c->finalized) {
			if (c)
				arb_cache_unpin(&fs->cache, c);
			return arb_fail(fs, -EUCLEAN, "node %llu: child %llu not ready at commit",
			                (unsigned long long)n->bytenr,
			                (unsigned long long)le64toh(kp->bytenr));
		}
		kp->csum = htole64(c->csum);
		arb_cache_unpin(&fs->cache, c);
	}
	return 0;
}

/*
 * Compute the checksum of every dirty node of the user trees (or of the
 * engine's trees), children before parents so that each parent records its
 * children's checksums (the Merkle chain), and run the structure checker
 * before anything reaches the disk.
 */
int arb_finalize_dirty(struct arb_fs *fs, bool user_trees)
{
	size_t n = 0, cap = fs->cache.dirty.count ? fs->cache.dirty.count : 1;
	struct arb_node **v = malloc(cap * sizeof(*v));
	int err = 0;

	if (!v)
		return -ENOMEM;
	for (struct arb_node *x = fs->cache.dirty.head; x; x = x->next)
		if (!x->finalized && (node_owner(x->buf) >= ARB_FIRST_USER_TREE) == user_trees)
			v[n++] = x;
	qsort(v, n, sizeof(*v), cmp_level_addr);
	for (size_t i = 0; i < n && !err; i++) {
		struct arb_node *x = v[i];

		if (node_level(x->buf) > 0)
			err = fill_child_csums(fs, x);
		if (err)
			break;
		node_set_csum(x->buf, fs->nodesize);
		x->csum = node_stored_csum(x->buf);
		const char *why = node_check(x->buf, fs->nodesize, fs->total_bytes, true);

		if (why)
			err = arb_fail(fs, -EUCLEAN, "refusing to write node %llu: %s",
			               (unsigned long long)x->bytenr, why);
		x->finalized = true;
	}
	free(v);
	return err;
}

int arb_btree_scratch_init(struct arb_fs *fs)
{
	size_t max_entries = 2 * (node_usable(fs->nodesize) / ITEM_SZ) + 2;

	fs->scratch = aligned_alloc(4096, 2 * (size_t)fs->nodesize);
	fs->vent = calloc(max_entries, sizeof(*fs->vent));
	return fs->scratch && fs->vent ? 0 : -ENOMEM;
}

void arb_btree_scratch_free(struct arb_fs *fs)
{
	free(fs->scratch);
	free(fs->vent);
	fs->scratch = NULL;
	fs->vent = NULL;
}

/* ---- trees --------------------------------------------------------------- */

int arb_tree_init_empty(struct arb_fs *fs, struct arb_tree *t, uint64_t id)
{
	struct arb_node *leaf;
	int err;

	t->fs = fs;
	t->id = id;
	t->shareable = id >= ARB_FIRST_USER_TREE;
	err = alloc_node(t, 0, &leaf);
	if (err)
		return err;
	set_parent_ptr(t, NULL, 0, leaf);
	arb_cache_unpin(&fs->cache, leaf);
	return 0;
}

/* ---- iteration ----------------------------------------------------------- */

struct arb_iter {
	struct arb_tree *t;
	enum arb_iter_dir dir;
	uint64_t modseq;
	uint8_t *leaf; /* private copy of the current leaf */
	int pos;       /* next entry to return; out of range: load the next leaf */
	bool done;
};

static int descend_edge(struct arb_fs *fs, struct path *p, int level, bool leftmost)
{
	for (int l = level; l > 0; l--) {
		struct arb_ptr cp;

		child_ptr(p->nodes[l]->buf, p->slots[l], &cp);
		if (p->nodes[l - 1])
			arb_cache_unpin(&fs->cache, p->nodes[l - 1]);
		p->nodes[l - 1] = NULL;
		int err = read_node_ex(fs, &cp, false, &p->nodes[l - 1]);

		if (err)
			return err;
		uint32_t n = node_nritems(p->nodes[l - 1]->buf);

		p->slots[l - 1] = leftmost ? 0 : (n ? n - 1 : 0);
	}
	return 0;
}

/* Move the path to the next (or previous) leaf: 1, 0 at the end, <0. */
static int step_leaf(struct arb_fs *fs, struct path *p, bool forward)
{
	for (int level = 1; level < p->height; level++) {
		uint32_t n = node_nritems(p->nodes[level]->buf), s = p->slots[level];

		if (forward ? s + 1 < n : s > 0) {
			p->slots[level] = forward ? s + 1 : s - 1;
			int err = descend_edge(fs, p, level, forward);

			return err ? err : 1;
		}
	}
	return 0;
}

static void iter_take_leaf(struct arb_iter *it, const struct path *p, int pos)
{
	memcpy(it->leaf, p->nodes[0]->buf, it->t->fs->nodesize);
	it->pos = pos;
}

/* Position on the first/last entry relative to key, moving across leaves
 * while the current one has nothing in that direction. */
static int iter_seek(struct arb_iter *it, const struct arb_key *key, bool strictly_after)
{
	struct arb_fs *fs = it->t->fs;
	bool fwd = it->dir == ARB_ITER_FORWARD;
	struct path p = {0};
	int ret = search(it->t, key, &p);

	if (ret < 0)
		goto out;
	int pos = (int)p.slots[0];

	if (fwd)
		pos += ret == 1 && strictly_after;
	else
		pos -= !(ret == 1 && !strictly_after);
	while (pos < 0 || pos >= (int)node_nritems(p.nodes[0]->buf)) {
		ret = step_leaf(fs, &p, fwd);
		if (ret <= 0) {
			it->done = ret == 0;
			goto out;
		}
		pos = fwd ? 0 : (int)node_nritems(p.nodes[0]->buf) - 1;
	}
	iter_take_leaf(it, &p, pos);
	ret = 0;
out:
	path_release(fs, &p);
	return ret < 0 ? ret : 0;
}

int arb_iter_open(struct arb_tree *tree, const struct arb_key *start, enum arb_iter_dir dir,
                  struct arb_iter **ret_iter)
{
	struct arb_iter *it = calloc(1, sizeof(*it));
	int err;

	if (!it)
		return -ENOMEM;
	it->leaf = malloc(tree->fs->nodesize);
	if (!it->leaf) {
		free(it);
		return -ENOMEM;
	}
	it->t = tree;
	it->dir = dir;
	it->modseq = tree->modseq;
	err = iter_seek(it, start, false);
	if (err) {
		arb_iter_close(it);
		return err;
	}
	*ret_iter = it;
	return 0;
}

int arb_iter_next(struct arb_iter *it, struct arb_key *ret_key, const void **ret_data,
                  uint32_t *ret_len)
{
	if (it->t->modseq != it->modseq)
		return -ESTALE;
	if (it->done)
		return 0;
	int n = (int)node_nritems(it->leaf);

	if (it->pos < 0 || it->pos >= n) {
		struct arb_key edge;
		int err;

		arb_key_from_disk(node_dkey(it->leaf, it->pos < 0 ? 0 : (uint32_t)n - 1), &edge);
		err = iter_seek(it, &edge, true);
		if (err)
			return err;
		if (it->done)
			return 0;
	}
	uint32_t i = (uint32_t)it->pos;

	arb_key_from_disk(&leaf_citem(it->leaf, i)->key, ret_key);
	if (ret_data)
		*ret_data = it->leaf + NODE_HDR + item_off(it->leaf, i);
	if (ret_len)
		*ret_len = item_size(it->leaf, i);
	it->pos += it->dir == ARB_ITER_FORWARD ? 1 : -1;
	return 1;
}

void arb_iter_close(struct arb_iter *it)
{
	if (!it)
		return;
	free(it->leaf);
	free(it);
}

/* ---- walking nodes --------------------------------------------------------- */

void arb_node_view_key(const struct arb_node_view *v, int i, struct arb_key *ret_key)
{
	arb_key_from_disk(node_dkey(v->raw, (uint32_t)i), ret_key);
}

void arb_node_view_ptr(const struct arb_node_view *v, int i, uint64_t *ret_bytenr,
                       uint64_t *ret_gen, uint64_t *ret_csum)
{
	const struct arb_key_ptr *kp = node_ckptr(v->raw, (uint32_t)i);

	*ret_bytenr = le64toh(kp->bytenr);
	*ret_gen = le64toh(kp->generation);
	*ret_csum = le64toh(kp->csum);
}

const void *arb_node_view_data(const struct arb_node_view *v, int i, uint32_t *ret_len)
{
	const uint8_t *buf = v->raw;

	*ret_len = item_size(buf, (uint32_t)i);
	return buf + NODE_HDR + item_off(buf, (uint32_t)i);
}

static int walk_node(struct arb_fs *fs, const struct arb_ptr *ptr, bool is_root, int depth,
                     arb_walk_fn fn, void *ctx)
{
	struct arb_node *n;
	int err = read_node_ex(fs, ptr, is_root, &n);

	if (err)
		return err;
	const uint8_t *buf = n->buf;
	struct arb_node_view v = {
	        .bytenr = n->bytenr,
	        .generation = node_gen(buf),
	        .owner = node_owner(buf),
	        .level = node_level(buf),
	        .nritems = (uint16_t)node_nritems(buf),
	        .csum = n->dirty ? 0 : n->csum,
	        .used_bytes = NODE_HDR + (node_level(buf) ? node_nritems(buf) * KPTR_SZ
	                                                  : leaf_used(buf, fs->nodesize)),
	        .depth = depth,
	        .raw = buf,
	};
	int ret = fn(ctx, &v);

	for (uint32_t i = 0; ret == 0 && v.level > 0 && i < v.nritems; i++) {
		struct arb_ptr cp;

		child_ptr(buf, i, &cp);
		ret = walk_node(fs, &cp, false, depth + 1, fn, ctx);
	}
	arb_cache_unpin(&fs->cache, n);
	return ret < 0 ? ret : 0;
}

int arb_tree_walk(struct arb_tree *tree, arb_walk_fn fn, void *ctx)
{
	return walk_node(tree->fs, &tree->root, true, 0, fn, ctx);
}
