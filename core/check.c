/* SPDX-License-Identifier: MIT */
/*
 * check.c - recompute every reference count from all roots and compare with
 * the space map (invariant 5 of arbor_format.h), verifying every node on
 * the way.
 *
 * A node is counted once per parent that points to it (a node shared by two
 * trees after a clone has count 2 while its children, reached through it,
 * have count 1), so the walk descends into each node only on its first
 * visit.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "arbor/check.h"
#include "fs_internal.h"
#include "node.h"

/* What a subtree holds: nodes, and data sectors its items name. */
struct subtotal {
	uint64_t nodes, data;
};

struct memo_slot {
	uint64_t bytenr; /* 0: empty */
	struct subtotal sum;
};

struct checker {
	struct arb_fs *fs;
	struct arb_check_report *r;
	uint32_t **expect;      /* per space-map chunk, lazily allocated */
	struct memo_slot *memo; /* subtotals of nodes seen, for shared subtrees */
	size_t memo_cap, memo_used;
	/* a dropping tree's cursor: subtrees whose range ends at or before it
	 * were given back (ARB_ROOT_DROPPING in arbor_format.h) */
	const struct arb_key *drop_cursor;
	bool fix;    /* make the map and the trees' totals agree with the walk */
	int fix_err; /* the first repair that failed */
	const struct arb_check_opts *opts;
	uint64_t progress_total;
};

static struct memo_slot *memo_slot(struct memo_slot *v, size_t cap, uint64_t bytenr)
{
	size_t i = (size_t)(bytenr * 0x9e3779b97f4a7c15ull >> 24) & (cap - 1);

	while (v[i].bytenr && v[i].bytenr != bytenr)
		i = (i + 1) & (cap - 1);
	return &v[i];
}

static int memo_put(struct checker *c, uint64_t bytenr, struct subtotal sum)
{
	if ((c->memo_used + 1) * 2 > c->memo_cap) {
		size_t cap = c->memo_cap ? 2 * c->memo_cap : 1024;
		struct memo_slot *v = calloc(cap, sizeof(*v));

		if (!v)
			return -ENOMEM;
		for (size_t i = 0; i < c->memo_cap; i++)
			if (c->memo[i].bytenr)
				*memo_slot(v, cap, c->memo[i].bytenr) = c->memo[i];
		free(c->memo);
		c->memo = v;
		c->memo_cap = cap;
	}
	*memo_slot(c->memo, c->memo_cap, bytenr) = (struct memo_slot){bytenr, sum};
	c->memo_used++;
	return 0;
}

static struct subtotal memo_get(const struct checker *c, uint64_t bytenr)
{
	struct memo_slot *s = c->memo_cap ? memo_slot(c->memo, c->memo_cap, bytenr) : NULL;

	return s && s->bytenr ? s->sum : (struct subtotal){0, 0};
}

static uint32_t *expect_slot(struct checker *c, uint64_t sector)
{
	const struct arb_spacemap *sm = &c->fs->sm;
	uint64_t idx = sector / sm->chunk_sectors;

	if (!c->expect[idx]) {
		c->expect[idx] = calloc(sm->chunk_sectors, sizeof(uint32_t));
		if (!c->expect[idx])
			return NULL;
	}
	return &c->expect[idx][sector % sm->chunk_sectors];
}

/* Count one reference to a range; returns the count its first sector had
 * before, or -errno. */
static int64_t add_ref(struct checker *c, uint64_t bytenr, uint64_t nsectors)
{
	const struct arb_spacemap *sm = &c->fs->sm;
	uint64_t first = bytenr / sm->sectorsize;
	int64_t before = -1;

	if (!arb_sm_valid_range(sm, bytenr, nsectors)) {
		arb_msgf(c->fs, ARB_MSG_ERR,
		         "reference to %llu (+%llu sectors) outside allocatable space",
		         (unsigned long long)bytenr, (unsigned long long)nsectors);
		c->r->bad_nodes++;
		return -EUCLEAN;
	}
	for (uint64_t s = first; s < first + nsectors; s++) {
		uint32_t *e = expect_slot(c, s);

		if (!e)
			return -ENOMEM;
		if (before < 0)
			before = *e;
		(*e)++;
	}
	return before;
}

static int check_child_keys(struct checker *c, const uint8_t *parent, uint32_t i,
                            const uint8_t *child)
{
	uint32_t n = node_nritems(child);
	struct arb_key pk, next;

	if (n == 0)
		return 0;
	arb_key_from_disk(node_dkey(parent, i), &pk);
	if (dkey_cmp(node_dkey(child, 0), &pk) != 0) {
		arb_msgf(c->fs, ARB_MSG_ERR, "node %llu: first key differs from its parent's key",
		         (unsigned long long)node_bytenr(child));
		return -EUCLEAN;
	}
	if (i + 1 < node_nritems(parent)) {
		arb_key_from_disk(node_dkey(parent, i + 1), &next);
		if (dkey_cmp(node_dkey(child, n - 1), &next) >= 0) {
			arb_msgf(c->fs, ARB_MSG_ERR, "node %llu: keys beyond its parent's range",
			         (unsigned long long)node_bytenr(child));
			return -EUCLEAN;
		}
	}
	return 0;
}

/* Data extents referenced by the items of a leaf of a filesystem tree. */
static int count_leaf_extents(struct checker *c, const uint8_t *leaf, struct subtotal *sum)
{
	for (uint32_t i = 0; i < node_nritems(leaf); i++) {
		struct arb_key k;
		uint64_t bytenr, nsectors;

		arb_key_from_disk(&leaf_citem(leaf, i)->key, &k);
		if (!arb_item_extent(&k, leaf + NODE_HDR + item_off(leaf, i), item_size(leaf, i),
		                     &bytenr, &nsectors))
			continue;
		sum->data += nsectors;
		if (!arb_sm_valid_range(&c->fs->sm, bytenr, nsectors)) {
			/* a sound node naming impossible data: the item is the
			 * problem (fsck removes it), not the tree */
			arb_msgf(c->fs, ARB_MSG_ERR,
			         "node %llu: extent item (%llu %u %llu) names sectors outside "
			         "allocatable space",
			         (unsigned long long)node_bytenr(leaf),
			         (unsigned long long)k.objectid, k.type,
			         (unsigned long long)k.offset);
			c->r->bad_extents++;
			continue;
		}
		if (add_ref(c, bytenr, nsectors) == -ENOMEM)
			return -ENOMEM;
	}
	return 0;
}

static int visit(struct checker *c, const struct arb_ptr *ptr, bool is_root, const uint8_t *parent,
                 uint32_t pslot, const struct arb_key *hi, bool user, struct subtotal *sum);

/* Ask the device for every child of an internal node at once, in runs of
 * adjacent blocks: a walk that reads one node at a time would leave the
 * disk idle while it checks each one. */
static void prefetch_children(struct arb_fs *fs, const uint8_t *buf)
{
	uint64_t start = 0, len = 0;

	for (uint32_t i = 0; i < node_nritems(buf); i++) {
		uint64_t at = le64toh(node_ckptr(buf, i)->bytenr);

		if (len && at == start + len) {
			len += fs->nodesize;
			continue;
		}
		if (len)
			arb_dev_prefetch(fs->dev, start, len);
		start = at;
		len = fs->nodesize;
	}
	if (len)
		arb_dev_prefetch(fs->dev, start, len);
}

/* The children of node buf, whose range ends at hi (NULL: no end). */
static int visit_children(struct checker *c, const uint8_t *buf, const struct arb_key *hi,
                          bool user, struct subtotal *sum)
{
	int err = 0;

	prefetch_children(c->fs, buf);
	for (uint32_t i = 0; i < node_nritems(buf) && !err; i++) {
		const struct arb_key_ptr *kp = node_ckptr(buf, i);
		struct arb_ptr cp = {le64toh(kp->bytenr), le64toh(kp->generation),
		                     le64toh(kp->csum), (uint8_t)(node_level(buf) - 1)};
		struct arb_key next;
		const struct arb_key *child_hi = hi;

		if (i + 1 < node_nritems(buf)) {
			arb_key_from_disk(node_dkey(buf, i + 1), &next);
			child_hi = &next;
		}
		if (c->drop_cursor && child_hi && arb_key_cmp(child_hi, c->drop_cursor) <= 0)
			continue; /* a dropping tree gave it back */
		err = visit(c, &cp, false, buf, i, child_hi, user, sum);
	}
	return err;
}

/* Count the references of a subtree (its keys below hi) and add what it
 * holds to *sum. */
static int visit(struct checker *c, const struct arb_ptr *ptr, bool is_root, const uint8_t *parent,
                 uint32_t pslot, const struct arb_key *hi, bool user, struct subtotal *sum)
{
	struct arb_fs *fs = c->fs;
	struct subtotal mine = {1, 0};
	struct arb_node *n;
	int64_t before = add_ref(c, ptr->bytenr, fs->node_sectors);
	int err;

	if (before < 0)
		return before == -ENOMEM ? -ENOMEM : 0;
	if (before > 0) {
		/* shared: its subtree was counted on the first visit */
		struct subtotal s = memo_get(c, ptr->bytenr);

		sum->nodes += s.nodes;
		sum->data += s.data;
		return 0;
	}
	err = arb_read_node(fs, ptr, is_root, &n);
	if (err) {
		c->r->bad_nodes++;
		return err == -ENOMEM ? err : 0;
	}
	c->r->nodes++;
	if (c->opts && c->opts->progress && c->r->nodes % 1024 == 0)
		c->opts->progress(c->opts->progress_ctx, c->r->nodes, c->progress_total);
	if (parent && check_child_keys(c, parent, pslot, n->buf))
		c->r->bad_nodes++;
	if (user && node_level(n->buf) == 0)
		err = count_leaf_extents(c, n->buf, &mine);
	if (!err && node_level(n->buf) > 0)
		err = visit_children(c, n->buf, hi, user, &mine);
	arb_cache_unpin(&fs->cache, n);
	if (!err && user)
		err = memo_put(c, ptr->bytenr, mine);
	sum->nodes += mine.nodes;
	sum->data += mine.data;
	return err;
}

/* The counts a tree keeps of what it references must be what it holds. */
static void check_tree_totals(struct checker *c, struct arb_tree *t, const struct subtotal *sum)
{
	if (sum->nodes == t->ref_nodes && sum->data == t->ref_data)
		return;
	arb_msgf(c->fs, ARB_MSG_ERR,
	         "tree %llu: holds %llu nodes and %llu data sectors, counts %llu and %llu",
	         (unsigned long long)t->id, (unsigned long long)sum->nodes,
	         (unsigned long long)sum->data, (unsigned long long)t->ref_nodes,
	         (unsigned long long)t->ref_data);
	c->r->tree_totals++;
	if (c->fix && !c->r->bad_nodes) {
		t->ref_nodes = sum->nodes;
		t->ref_data = sum->data;
		t->item_dirty = true;
	}
}

/* What the walk will visit, roughly (shared nodes count once per tree):
 * for the progress display only. */
static uint64_t nodes_to_visit(struct arb_fs *fs, const uint64_t *ids, size_t n)
{
	uint64_t total = 2;

	for (size_t i = 0; i < n; i++) {
		struct arb_tree *t;

		if (arb_tree_get_any(fs, ids[i], &t) == 0)
			total += t->ref_nodes;
	}
	return total;
}

static int visit_user_trees(struct checker *c)
{
	struct arb_fs *fs = c->fs;
	struct arb_key start = {ARB_FIRST_USER_TREE, ARB_ROOT_ITEM_KEY, 0}, k;
	uint64_t *ids = NULL;
	size_t n = 0, cap = 0;
	struct arb_iter *it;
	int ret = arb_iter_open(&fs->root_tree, &start, ARB_ITER_FORWARD, &it);

	if (ret) {
		c->r->bad_nodes++;
		return ret == -ENOMEM ? ret : 0;
	}
	while ((ret = arb_iter_next(it, &k, NULL, NULL)) == 1) {
		if (k.type != ARB_ROOT_ITEM_KEY)
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 64;
			uint64_t *p = realloc(ids, cap * sizeof(*p));

			if (!p) {
				ret = -ENOMEM;
				break;
			}
			ids = p;
		}
		ids[n++] = k.objectid;
	}
	arb_iter_close(it);
	if (ret < 0)
		c->r->bad_nodes++;
	if (c->opts && c->opts->progress)
		c->progress_total = nodes_to_visit(fs, ids, n);
	for (size_t i = 0; i < n && ret != -ENOMEM; i++) {
		struct arb_tree *t;

		ret = arb_tree_get_any(fs, ids[i], &t);
		if (ret) {
			c->r->bad_nodes++;
			continue;
		}
		struct subtotal sum = {0, 0};
		struct arb_key cursor;

		uint64_t bad_before = c->r->bad_nodes;

		c->r->trees++;
		c->drop_cursor = NULL;
		if (arb_tree_dropping(t)) {
			/* what it still holds: no totals are kept for it */
			arb_key_from_disk(&t->item.drop_key, &cursor);
			c->drop_cursor = &cursor;
			c->r->dropping++;
		}
		ret = visit(c, &t->root, true, NULL, 0, NULL, true, &sum);
		/* an unreadable subtree: its totals are not known */
		if (!ret && !c->drop_cursor && c->r->bad_nodes == bad_before)
			check_tree_totals(c, t, &sum);
		c->drop_cursor = NULL;
	}
	free(ids);
	return ret == -ENOMEM ? ret : 0;
}

static int count_deferred(struct checker *c)
{
	struct arb_fs *fs = c->fs;
	struct arb_defer_rec *recs = NULL;
	size_t n = 0;
	int ret = arb_collect_defer_items(fs, UINT64_MAX, &recs, &n);

	for (size_t i = 0; i < n && ret >= 0; i++)
		if (add_ref(c, recs[i].bytenr, recs[i].nsectors) == -ENOMEM)
			ret = -ENOMEM;
	free(recs);
	for (size_t i = 0; i < fs->sm.npending && ret >= 0; i++)
		if (add_ref(c, fs->sm.pending[i].bytenr, fs->sm.pending[i].nsectors) == -ENOMEM)
			ret = -ENOMEM;
	/* the fsync log's blocks stay allocated until the next commit */
	for (size_t i = 0; i < fs->log.nblocks && ret >= 0; i++)
		if (add_ref(c, fs->log.blocks[i], 1) == -ENOMEM)
			ret = -ENOMEM;
	return ret < 0 ? ret : 0;
}

/* Make the map say what the trees say.  A count that goes to zero is
 * deferred like any free, so that the roots older commits left in the
 * superblock ring stay intact until the ring has moved past them. */
static int fix_count(struct checker *c, uint64_t bytenr, uint32_t want, uint32_t have)
{
	struct arb_spacemap *sm = &c->fs->sm;
	int err;

	if (want > 0)
		return arb_sm_add(sm, bytenr, 1, (int)want - (int)have);
	err = have > 1 ? arb_sm_add(sm, bytenr, 1, 1 - (int)have) : 0;
	return err ? err : arb_sm_defer(sm, bytenr, 1);
}

static void compare_counts(struct checker *c)
{
	struct arb_spacemap *sm = &c->fs->sm;

	for (uint64_t s = 0; s < sm->total_sectors; s++) {
		uint64_t idx = s / sm->chunk_sectors;

		if (!c->expect[idx] && !sm->chunks[idx]) {
			s = (idx + 1) * sm->chunk_sectors - 1; /* nothing on either side */
			continue;
		}
		uint32_t want = c->expect[idx] ? c->expect[idx][s % sm->chunk_sectors] : 0;
		uint32_t have = arb_sm_get(sm, s * sm->sectorsize);

		if (want == have)
			continue;
		if (c->r->count_mismatch + c->r->leaked + c->r->missing < 20)
			arb_msgf(c->fs, ARB_MSG_ERR,
			         "sector %llu: space map counts %u, references %u",
			         (unsigned long long)(s * sm->sectorsize), have, want);
		if (want == 0)
			c->r->leaked++;
		else if (have == 0)
			c->r->missing++;
		else
			c->r->count_mismatch++;
		if (c->fix && !c->fix_err)
			c->fix_err = fix_count(c, s * sm->sectorsize, want, have);
	}
	/* the node-sized free groups are a running total as well (in memory
	 * only: a drift is a bug of the tracking, caught by the tests' checks) */
	uint64_t free_groups, zero_groups;

	arb_sm_count_groups(sm, &free_groups, &zero_groups);
	if (arb_sm_count_used(sm) != sm->sectors_used || free_groups != sm->free_groups ||
	    zero_groups != sm->zero_groups) {
		c->r->used_mismatch = 1;
		if (c->fix)
			sm->sectors_used = arb_sm_count_used(sm);
	}
	if (c->fix) {
		sm->free_groups = free_groups;
		sm->zero_groups = zero_groups;
	}
}

int arb_check(struct arb_fs *fs, struct arb_check_report *report)
{
	return arb_check_ex(fs, NULL, report);
}

int arb_check_ex(struct arb_fs *fs, const struct arb_check_opts *opts,
                 struct arb_check_report *report)
{
	struct checker c = {.fs = fs, .r = report, .opts = opts};
	int err;

	memset(report, 0, sizeof(*report));
	if (opts && opts->fix) {
		err = arb_check_mutable(fs);
		if (err)
			return err;
		c.fix = true;
	}

	c.expect = calloc(fs->sm.nchunks, sizeof(*c.expect));
	if (!c.expect)
		return -ENOMEM;
	struct subtotal ignored = {0, 0};

	report->trees = 2;
	err = visit(&c, &fs->root_tree.root, true, NULL, 0, NULL, false, &ignored);
	if (!err)
		err = visit(&c, &fs->space_tree.root, true, NULL, 0, NULL, false, &ignored);
	if (!err)
		err = visit_user_trees(&c);
	if (!err)
		err = count_deferred(&c);
	/* with a subtree unreadable the walk undercounts: the counts mean
	 * nothing, and must never "fix" live blocks free */
	if (!err && !report->bad_nodes)
		compare_counts(&c);
	if (!err)
		err = c.fix_err;
	for (uint64_t i = 0; i < fs->sm.nchunks; i++)
		free(c.expect[i]);
	free(c.expect);
	free(c.memo);
	if (err)
		return err;
	if (report->bad_nodes || report->count_mismatch || report->leaked || report->missing ||
	    report->used_mismatch || report->tree_totals || report->bad_extents)
		return -EUCLEAN;
	return 0;
}
