/* SPDX-License-Identifier: MIT */
/*
 * test_btree.c - deterministic unit tests of the generic B+tree through the
 * public API: item operations and their errors, splits and merges, range
 * iteration, iterator invalidation, persistence, the node walk, space
 * accounting and read-only mounts.  Every test ends with a clean arb_check.
 */
#include "testutil.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#define DEV_SIZE (32ull << 20)
#define SMALL_NODE 4096u

static uint64_t version_counter;

static uint64_t next_version(void)
{
	return ++version_counter;
}

/* A fresh filesystem with one committed user tree. */
static uint64_t setup_fs(struct tu_fs *t, uint64_t size, uint32_t nodesize)
{
	uint64_t id;

	tu_fs_create(t, size, nodesize);
	id = tu_tree_create(t->fs);
	tu_commit(t->fs);
	return id;
}

static void finish(struct tu_fs *t)
{
	tu_check_clean(t->fs);
	tu_fs_destroy(t);
}

/* Expect the tree to be a single empty leaf. */
static void expect_empty(struct arb_tree *tree)
{
	struct tu_tree_stats st;

	tu_tree_stats(tree, false, &st);
	TU_EQ_U64(st.items, 0);
	TU_EQ_U64(st.nodes, 1);
	TU_EQ_U64(st.root_level, 0);
}

/* ---- empty tree ---- */

static void expect_iter_end(struct arb_tree *tree, const struct arb_key *start,
                            enum arb_iter_dir dir)
{
	struct arb_iter *it = NULL;
	struct arb_key k;
	const void *data;
	uint32_t len;

	TU_RC(arb_iter_open(tree, start, dir, &it));
	TU_RC_EQ(arb_iter_next(it, &k, &data, &len), 0);
	/* and it stays at the end */
	TU_RC_EQ(arb_iter_next(it, &k, &data, &len), 0);
	arb_iter_close(it);
}

static void check_empty_ops(struct arb_tree *tree)
{
	struct arb_key k = tu_key(1), min = ARB_KEY_MIN, max = ARB_KEY_MAX;
	uint8_t buf[16];
	uint32_t len;

	TU_RC_EQ(arb_lookup(tree, &k, buf, sizeof(buf), &len), -ENOENT);
	TU_RC_EQ(arb_lookup(tree, &min, buf, sizeof(buf), &len), -ENOENT);
	TU_RC_EQ(arb_lookup(tree, &max, buf, sizeof(buf), &len), -ENOENT);
	TU_RC_EQ(arb_update(tree, &k, buf, 4), -ENOENT);
	TU_RC_EQ(arb_delete(tree, &k), -ENOENT);
	expect_iter_end(tree, &min, ARB_ITER_FORWARD);
	expect_iter_end(tree, &max, ARB_ITER_BACKWARD);
	expect_iter_end(tree, &max, ARB_ITER_FORWARD);
	expect_iter_end(tree, &min, ARB_ITER_BACKWARD);
	expect_empty(tree);
}

static void test_empty_tree(void **state)
{
	struct tu_fs t;
	uint64_t id;

	(void)state;
	tu_fs_create(&t, DEV_SIZE, SMALL_NODE);
	id = tu_tree_create(t.fs);
	check_empty_ops(tu_tree(t.fs, id));
	tu_check_clean(t.fs);
	tu_commit(t.fs);
	tu_fs_reopen(&t);
	check_empty_ops(tu_tree(t.fs, id));
	TU_RC_EQ(arb_tree_get(t.fs, id + 1000, &(struct arb_tree *){NULL}), -ENOENT);
	finish(&t);
}

/* ---- single item operations ---- */

static void check_partial_lookup(struct arb_tree *tree, const struct tu_model *m, uint64_t id)
{
	struct arb_key k = tu_key(id);
	uint8_t buf[64];
	uint32_t len = 0;

	TU_ASSERT(m->slot[id].len > 8);
	memset(buf, 0xa5, sizeof(buf));
	TU_RC(arb_lookup(tree, &k, buf, 8, &len));
	TU_EQ_U64(len, m->slot[id].len);
	TU_ASSERT(tu_value_diff(buf, 8, id, m->slot[id].version) < 0, "first 8 bytes differ");
	for (size_t i = 8; i < sizeof(buf); i++)
		TU_ASSERT(buf[i] == 0xa5, "byte %zu written past bufsize", i);
	memset(buf, 0x5a, sizeof(buf));
	len = 0;
	TU_RC(arb_lookup(tree, &k, buf, 0, &len));
	TU_EQ_U64(len, m->slot[id].len);
	TU_ASSERT(buf[0] == 0x5a, "bufsize 0 but the buffer was written");
}

static void check_item_size_limits(struct arb_fs *fs, struct arb_tree *tree, struct tu_model *m)
{
	uint32_t max = arb_max_item_size(fs);
	struct arb_key k = tu_key(40);
	struct arb_fs_info info;
	uint8_t *big;

	arb_fs_info(fs, &info);
	TU_ASSERT(max > 0 && max <= info.nodesize - sizeof(struct arb_node_header) -
	                                     sizeof(struct arb_item),
	          "max item %u for nodesize %u", max, info.nodesize);
	TU_ASSERT(max >= info.nodesize / 4, "max item %u is tiny", max);
	for (uint64_t id = 39; id <= 41; id++)
		if (m->slot[id].present)
			tu_op_delete(m, tree, id);
	big = calloc(1, (size_t)max + 1);
	TU_ASSERT(big != NULL);
	TU_RC_EQ(arb_insert(tree, &k, big, max + 1), -E2BIG);
	TU_RC_EQ(arb_put(tree, &k, big, max + 1), -E2BIG);
	TU_RC_EQ(arb_lookup(tree, &k, big, max, &(uint32_t){0}), -ENOENT);
	tu_op_insert(m, tree, 40, next_version(), max);
	TU_RC_EQ(arb_update(tree, &k, big, max + 1), -E2BIG);
	TU_RC_EQ(arb_put(tree, &k, big, max + 1), -E2BIG);
	free(big);
	tu_model_check(m, tree);
	/* neighbours of a maximal item force a leaf split on each side */
	tu_op_insert(m, tree, 39, next_version(), max);
	tu_op_insert(m, tree, 41, next_version(), max / 2);
	tu_op_update(m, tree, 40, next_version(), max / 3);
	tu_op_update(m, tree, 39, next_version(), max);
	tu_op_update(m, tree, 41, next_version(), max);
	tu_model_check(m, tree);
}

static void test_item_ops(void **state)
{
	struct tu_fs t;
	struct tu_model m;
	struct arb_tree *tree;
	uint64_t id = setup_fs(&t, DEV_SIZE, SMALL_NODE);

	(void)state;
	tree = tu_tree(t.fs, id);
	tu_model_init(&m, 100);
	tu_op_insert(&m, tree, 5, next_version(), 10);
	tu_model_check(&m, tree);
	TU_RC_EQ(tu_op_insert(&m, tree, 5, next_version(), 20), -EEXIST);
	tu_model_check(&m, tree);                        /* the failed insert changed nothing */
	tu_op_update(&m, tree, 5, next_version(), 1000); /* grow */
	tu_model_check_lookup(&m, tree, 5);
	check_partial_lookup(tree, &m, 5);
	tu_op_update(&m, tree, 5, next_version(), 0); /* shrink to nothing */
	tu_model_check_lookup(&m, tree, 5);
	tu_op_update(&m, tree, 5, next_version(), 17);
	tu_op_put(&m, tree, 5, next_version(), 300); /* put replaces */
	tu_op_put(&m, tree, 6, next_version(), 0);   /* put inserts, empty item */
	tu_op_insert(&m, tree, 4, next_version(), 1);
	tu_model_check(&m, tree);
	TU_RC_EQ(tu_op_update(&m, tree, 7, next_version(), 5), -ENOENT);
	tu_op_delete(&m, tree, 5);
	TU_RC_EQ(tu_op_delete(&m, tree, 5), -ENOENT);
	TU_RC_EQ(tu_op_update(&m, tree, 5, next_version(), 5), -ENOENT);
	tu_model_check(&m, tree);
	check_item_size_limits(t.fs, tree, &m);
	tu_commit(t.fs);
	tu_fs_reopen(&t);
	tu_model_check(&m, tu_tree(t.fs, id));
	tu_model_free(&m);
	finish(&t);
}

/* ---- splits and merges ---- */

enum order { ORDER_SEQ, ORDER_REV, ORDER_RANDOM };

static void make_order(uint64_t *ids, uint64_t n, enum order o, struct tu_rng *rng)
{
	for (uint64_t i = 0; i < n; i++)
		ids[i] = o == ORDER_REV ? n - 1 - i : i;
	if (o != ORDER_RANDOM)
		return;
	for (uint64_t i = n - 1; i > 0; i--) {
		uint64_t j = tu_rng_below(rng, i + 1), tmp = ids[i];

		ids[i] = ids[j];
		ids[j] = tmp;
	}
}

static uint32_t pick_len(struct tu_rng *rng, enum order o, uint32_t max_item)
{
	if (o == ORDER_RANDOM)
		return tu_value_len(rng, max_item);
	return (uint32_t)tu_rng_range(rng, 0, 80);
}

/* Average leaf fill after deleting 90% of the items at random: without
 * merges it would sit near 7%; any merge-on-underflow policy keeps it well
 * above 20%. */
static void check_merged(struct arb_tree *tree, uint32_t nodesize)
{
	struct tu_tree_stats st;

	tu_tree_stats(tree, false, &st);
	TU_ASSERT(st.leaf_used_bytes * 5 >= st.leaves * nodesize,
	          "%" PRIu64 " leaves hold only %" PRIu64 " bytes: underfull leaves not merged",
	          st.leaves, st.leaf_used_bytes);
}

static void insert_all(struct tu_fs *t, struct tu_model *m, uint64_t id, const uint64_t *ids,
                       enum order o, struct tu_rng *rng)
{
	uint32_t max = arb_max_item_size(t->fs);
	struct tu_tree_stats st;

	for (uint64_t i = 0; i < m->n; i++) {
		tu_ctx_op(i);
		tu_op_insert(m, tu_tree(t->fs, id), ids[i], next_version(), pick_len(rng, o, max));
		if (i % 5000 == 4999)
			tu_tree_stats(tu_tree(t->fs, id), false, &st);
		if (i % 7000 == 6999)
			tu_commit(t->fs);
	}
	tu_commit(t->fs);
	tu_tree_stats(tu_tree(t->fs, id), true, &st);
	TU_EQ_U64(st.items, m->n);
	TU_ASSERT(st.root_level >= 2, "root level %d: internal nodes never split", st.root_level);
	TU_ASSERT(st.leaves >= 100, "only %" PRIu64 " leaves", st.leaves);
	tu_model_check(m, tu_tree(t->fs, id));
}

static void delete_all(struct tu_fs *t, struct tu_model *m, uint64_t id, const uint64_t *ids,
                       enum order o)
{
	struct arb_key mid = tu_key(m->n / 2);

	for (uint64_t i = 0; i < m->n; i++) {
		tu_ctx_op(m->n + i);
		tu_op_delete(m, tu_tree(t->fs, id), ids[i]);
		if (i % 4000 == 3999) {
			tu_model_check_range(m, tu_tree(t->fs, id), &mid, ARB_ITER_FORWARD, 300);
			tu_model_check_range(m, tu_tree(t->fs, id), &mid, ARB_ITER_BACKWARD, 300);
		}
		if (o == ORDER_RANDOM && i == m->n * 9 / 10) {
			tu_model_check(m, tu_tree(t->fs, id));
			check_merged(tu_tree(t->fs, id), t->nodesize);
			tu_commit(t->fs);
			tu_check_clean(t->fs);
		}
	}
	expect_empty(tu_tree(t->fs, id));
	tu_model_check(m, tu_tree(t->fs, id));
}

static void split_merge(enum order o, uint64_t n)
{
	struct tu_rng rng;
	struct tu_model m;
	struct tu_fs t;
	uint64_t *ids = calloc(n, sizeof(*ids));
	uint64_t id = setup_fs(&t, 64ull << 20, SMALL_NODE);

	TU_ASSERT(ids != NULL);
	tu_rng_init(&rng, 1000 + o);
	tu_model_init(&m, n);
	make_order(ids, n, o, &rng);
	tu_ctx_phase("insert");
	insert_all(&t, &m, id, ids, o, &rng);
	tu_check_clean(t.fs);
	make_order(ids, n, o, &rng);
	tu_ctx_phase("delete");
	delete_all(&t, &m, id, ids, o);
	tu_commit(t.fs);
	tu_fs_reopen(&t);
	expect_empty(tu_tree(t.fs, id));
	tu_model_free(&m);
	free(ids);
	finish(&t);
}

static void test_split_merge_sequential(void **state)
{
	(void)state;
	split_merge(ORDER_SEQ, 30000);
}

static void test_split_merge_reverse(void **state)
{
	(void)state;
	split_merge(ORDER_REV, 30000);
}

static void test_split_merge_random(void **state)
{
	(void)state;
	split_merge(ORDER_RANDOM, 20000);
}

/* ---- iteration ---- */

/* Start keys around id: the key itself and the keys just before and after. */
static void iter_around(const struct tu_model *m, struct arb_tree *tree, uint64_t id,
                        uint64_t limit)
{
	struct arb_key ks[3] = {tu_key(id), tu_key_before(id), tu_key_after(id)};

	for (int i = 0; i < 3; i++) {
		tu_model_check_range(m, tree, &ks[i], ARB_ITER_FORWARD, limit);
		tu_model_check_range(m, tree, &ks[i], ARB_ITER_BACKWARD, limit);
	}
}

static void iter_extremes(const struct tu_model *m, struct arb_tree *tree)
{
	struct arb_key ks[] = {
	        ARB_KEY_MIN,        ARB_KEY_MAX,
	        {0, 0, 1},          {15, 255, UINT64_MAX}, /* just below every test key */
	        {UINT64_MAX, 0, 0}, {UINT64_MAX - 1, UINT8_MAX, UINT64_MAX},
	};

	for (size_t i = 0; i < sizeof(ks) / sizeof(ks[0]); i++) {
		tu_model_check_range(m, tree, &ks[i], ARB_ITER_FORWARD, 0);
		tu_model_check_range(m, tree, &ks[i], ARB_ITER_BACKWARD, 0);
	}
}

static void iter_scenarios(const struct tu_model *m, struct arb_tree *tree, struct tu_rng *rng)
{
	iter_extremes(m, tree);
	/* before the first item, at the ends, after the last, one past */
	iter_around(m, tree, 0, 0);
	iter_around(m, tree, 1, 0);
	iter_around(m, tree, m->n - 1, 0);
	iter_around(m, tree, m->n - 2, 0);
	for (int i = 0; i < 300; i++)
		iter_around(m, tree, tu_rng_below(rng, m->n), 1 + tu_rng_below(rng, 80));
}

static void test_iteration(void **state)
{
	struct tu_rng rng;
	struct tu_model m;
	struct tu_fs t;
	uint64_t id = setup_fs(&t, DEV_SIZE, SMALL_NODE);
	struct arb_tree *tree = tu_tree(t.fs, id);

	(void)state;
	tu_rng_init(&rng, 77);
	tu_model_init(&m, 6000);
	/* one item only */
	tu_op_insert(&m, tree, 3000, next_version(), 5);
	iter_around(&m, tree, 3000, 0);
	iter_around(&m, tree, 2999, 0);
	iter_around(&m, tree, 3001, 0);
	iter_extremes(&m, tree);
	/* every third id, starting at 1: gaps before, between and after */
	for (uint64_t i = 1; i < m.n - 1; i += 3)
		tu_op_put(&m, tree, i, next_version(), tu_value_len(&rng, 400));
	iter_scenarios(&m, tree, &rng);
	tu_commit(t.fs);
	tu_fs_reopen(&t);
	iter_scenarios(&m, tu_tree(t.fs, id), &rng);
	tu_model_free(&m);
	finish(&t);
}

/* ---- iterator invalidation ---- */

enum mutation { MUT_INSERT, MUT_UPDATE, MUT_PUT, MUT_DELETE, MUT_COUNT };

static void mutate(struct tu_model *m, struct arb_tree *tree, enum mutation mu)
{
	switch (mu) {
	case MUT_INSERT:
		tu_op_insert(m, tree, 1001, next_version(), 8);
		break;
	case MUT_UPDATE:
		tu_op_update(m, tree, 500, next_version(), 9);
		break;
	case MUT_PUT:
		tu_op_put(m, tree, 501, next_version(), 10);
		break;
	default:
		tu_op_delete(m, tree, 502);
		break;
	}
}

static void stale_after(struct tu_model *m, struct arb_tree *tree, enum mutation mu)
{
	struct arb_key start = tu_key(100), k;
	struct arb_iter *it = NULL;
	const void *data;
	uint32_t len;

	tu_ctx_op(mu);
	TU_RC(arb_iter_open(tree, &start, mu % 2 ? ARB_ITER_BACKWARD : ARB_ITER_FORWARD, &it));
	TU_RC_EQ(arb_iter_next(it, &k, &data, &len), 1);
	mutate(m, tree, mu);
	TU_RC_EQ(arb_iter_next(it, &k, &data, &len), -ESTALE);
	arb_iter_close(it);
	tu_model_check_range(m, tree, &start, ARB_ITER_FORWARD, 0);
}

static void test_iter_stale(void **state)
{
	struct tu_model m;
	struct tu_fs t;
	uint64_t id = setup_fs(&t, DEV_SIZE, SMALL_NODE);
	struct arb_tree *tree = tu_tree(t.fs, id);

	(void)state;
	tu_model_init(&m, 2000);
	for (uint64_t i = 0; i < 1000; i++)
		tu_op_insert(&m, tree, i, next_version(), 30);
	for (int round = 0; round < 2; round++) {
		tu_ctx_phase(round ? "committed" : "in transaction");
		for (int mu = 0; mu < MUT_COUNT; mu++)
			stale_after(&m, tree, (enum mutation)mu);
		tu_commit(t.fs);
		/* make the next round's mutations valid again */
		tu_op_delete(&m, tree, 1001);
		tu_op_put(&m, tree, 502, next_version(), 3);
		tu_commit(t.fs);
	}
	tu_model_check(&m, tree);
	tu_model_free(&m);
	finish(&t);
}

/* ---- persistence ---- */

static void random_fill(struct tu_fs *t, struct tu_model *m, uint64_t id, struct tu_rng *rng,
                        uint64_t ops)
{
	uint32_t max = arb_max_item_size(t->fs);

	for (uint64_t i = 0; i < ops; i++) {
		uint64_t k = tu_rng_below(rng, m->n);
		struct arb_tree *tree = tu_tree(t->fs, id);

		if (tu_rng_pct(rng, 25))
			tu_op_delete(m, tree, k);
		else
			tu_op_put(m, tree, k, next_version(), tu_value_len(rng, max));
	}
}

static uint64_t generation(struct arb_fs *fs)
{
	struct arb_fs_info info;

	arb_fs_info(fs, &info);
	return info.generation;
}

static void test_commit_reopen(void **state)
{
	struct tu_model m[3], saved[3];
	struct tu_rng rng;
	struct tu_fs t;
	uint64_t ids[3], gen, extra;

	(void)state;
	memset(saved, 0, sizeof(saved));
	tu_rng_init(&rng, 5);
	tu_fs_create(&t, DEV_SIZE, SMALL_NODE);
	for (int i = 0; i < 3; i++) {
		ids[i] = tu_tree_create(t.fs);
		tu_model_init(&m[i], 3000);
		random_fill(&t, &m[i], ids[i], &rng, 4000);
	}
	gen = generation(t.fs);
	tu_commit(t.fs);
	TU_EQ_U64(generation(t.fs), gen + 1);
	tu_fs_reopen(&t);
	TU_EQ_U64(generation(t.fs), gen + 1);
	for (int i = 0; i < 3; i++) {
		tu_model_check(&m[i], tu_tree(t.fs, ids[i]));
		tu_model_copy(&saved[i], &m[i]);
		random_fill(&t, &m[i], ids[i], &rng, 2000);
	}
	/* uncommitted: changes and a new tree vanish on reopen */
	extra = tu_tree_create(t.fs);
	tu_fs_reopen(&t);
	TU_EQ_U64(generation(t.fs), gen + 1);
	TU_RC_EQ(arb_tree_get(t.fs, extra, &(struct arb_tree *){NULL}), -ENOENT);
	for (int i = 0; i < 3; i++) {
		tu_model_check(&saved[i], tu_tree(t.fs, ids[i]));
		random_fill(&t, &saved[i], ids[i], &rng, 2000);
	}
	tu_commit(t.fs);
	tu_fs_reopen(&t);
	for (int i = 0; i < 3; i++) {
		tu_model_check(&saved[i], tu_tree(t.fs, ids[i]));
		tu_model_free(&m[i]);
		tu_model_free(&saved[i]);
	}
	finish(&t);
}

/* A small cache forces nodes out and back in between operations. */
static void test_small_cache(void **state)
{
	struct tu_model m;
	struct tu_rng rng;
	struct tu_fs t;
	uint64_t id = setup_fs(&t, DEV_SIZE, SMALL_NODE);

	(void)state;
	t.cache_bytes = 16 * SMALL_NODE;
	tu_fs_reopen(&t);
	tu_rng_init(&rng, 9);
	tu_model_init(&m, 8000);
	for (int round = 0; round < 4; round++) {
		random_fill(&t, &m, id, &rng, 6000);
		tu_model_check(&m, tu_tree(t.fs, id));
		tu_commit(t.fs);
		tu_model_check(&m, tu_tree(t.fs, id));
	}
	tu_fs_reopen(&t);
	tu_model_check(&m, tu_tree(t.fs, id));
	tu_model_free(&m);
	finish(&t);
}

/* ---- node walk ---- */

struct leaf_ctx {
	const struct tu_model *m;
	uint64_t items;
	char err[256];
};

static int leaf_visit(void *vctx, const struct arb_node_view *v)
{
	struct leaf_ctx *c = vctx;

	for (int i = 0; v->level == 0 && i < v->nritems; i++) {
		struct arb_key k;
		uint64_t id;
		uint32_t len = 0;
		const void *data;

		arb_node_view_key(v, i, &k);
		data = arb_node_view_data(v, i, &len);
		if (!tu_key_id(&k, &id) || id >= c->m->n || !c->m->slot[id].present ||
		    len != c->m->slot[id].len ||
		    (len && tu_value_diff(data, len, id, c->m->slot[id].version) >= 0)) {
			snprintf(c->err, sizeof(c->err), "leaf %" PRIu64 " item %d key %s len %u",
			         v->bytenr, i, tu_key_str(&k), len);
			return -EINVAL;
		}
		c->items++;
	}
	return 0;
}

struct count_ctx {
	int visited, stop_at, rc;
};

static int count_visit(void *vctx, const struct arb_node_view *v)
{
	struct count_ctx *c = vctx;

	(void)v;
	if (++c->visited == c->stop_at)
		return c->rc;
	return c->rc > 0 ? c->rc : 0;
}

static void test_walk(void **state)
{
	struct leaf_ctx lc = {0};
	struct count_ctx cc;
	struct tu_tree_stats st;
	struct tu_model m;
	struct tu_rng rng;
	struct tu_fs t;
	uint64_t id = setup_fs(&t, DEV_SIZE, SMALL_NODE);

	(void)state;
	tu_rng_init(&rng, 11);
	tu_model_init(&m, 12000);
	random_fill(&t, &m, id, &rng, 15000);
	tu_tree_stats(tu_tree(t.fs, id), false, &st);
	tu_commit(t.fs);
	tu_tree_stats(tu_tree(t.fs, id), true, &st);
	TU_EQ_U64(st.items, m.nr_present);
	TU_ASSERT(st.root_level >= 1 && st.nodes > st.leaves);
	/* leaf data seen through the node view equals the model */
	lc.m = &m;
	TU_RC(arb_tree_walk(tu_tree(t.fs, id), leaf_visit, &lc));
	TU_ASSERT(lc.err[0] == 0, "%s", lc.err);
	TU_EQ_U64(lc.items, m.nr_present);
	/* 1 skips the root's children; <0 stops the walk */
	cc = (struct count_ctx){0, 0, 1};
	TU_RC(arb_tree_walk(tu_tree(t.fs, id), count_visit, &cc));
	TU_EQ_U64(cc.visited, 1);
	cc = (struct count_ctx){0, 3, -EINTR};
	TU_ASSERT(arb_tree_walk(tu_tree(t.fs, id), count_visit, &cc) < 0);
	TU_EQ_U64(cc.visited, 3);
	tu_fs_reopen(&t);
	tu_tree_stats(tu_tree(t.fs, id), true, &st);
	TU_EQ_U64(st.items, m.nr_present);
	tu_model_free(&m);
	finish(&t);
}

/* ---- space accounting ---- */

static void check_info_sane(struct tu_fs *t)
{
	struct arb_fs_info info;

	arb_fs_info(t->fs, &info);
	TU_EQ_U64(info.nodesize, t->nodesize);
	TU_EQ_U64(info.sectorsize, ARB_SECTOR_SIZE);
	TU_EQ_U64(info.total_bytes, t->size);
	TU_ASSERT(info.total_sectors <= t->size / ARB_SECTOR_SIZE &&
	          info.total_sectors > t->size / ARB_SECTOR_SIZE / 2);
	TU_ASSERT(info.used_sectors + info.quarantined_sectors + info.free_sectors ==
	          info.total_sectors);
	TU_ASSERT(info.deferred_sectors <= info.used_sectors);
	TU_ASSERT(!info.failed && !info.read_only);
	TU_ASSERT(strcmp(info.label, "arbor-test") == 0, "label '%s'", info.label);
}

/* Fill a tree with n items of 100 bytes; returns the bytes of items + data. */
static uint64_t fill_tree(struct tu_fs *t, struct tu_model *m, uint64_t id)
{
	uint64_t data_bytes = 0;

	for (uint64_t i = 0; i < m->n; i++) {
		tu_op_insert(m, tu_tree(t->fs, id), i, next_version(), 100);
		data_bytes += 100 + sizeof(struct arb_item);
	}
	return data_bytes;
}

static void empty_tree(struct tu_fs *t, struct tu_model *m, uint64_t id)
{
	for (uint64_t i = 0; i < m->n; i++)
		tu_op_delete(m, tu_tree(t->fs, id), i);
}

/* used_sectors grows with the items; once they are deleted the blocks stay
 * quarantined (not free) for ARB_DEFER_COMMITS commits, then every figure
 * returns exactly to the empty tree's (measured after the same churn
 * commits, see tu_drain). */
static void test_space_accounting(void **state)
{
	struct tu_model m;
	struct tu_space base, now;
	struct tu_fs t;
	uint64_t id = setup_fs(&t, DEV_SIZE, SMALL_NODE);
	uint64_t scratch = tu_tree_create(t.fs);
	uint64_t data_bytes;

	(void)state;
	check_info_sane(&t);
	tu_drain(t.fs, scratch);
	tu_space_get(t.fs, &base);
	tu_model_init(&m, 20000);
	data_bytes = fill_tree(&t, &m, id);
	tu_commit(t.fs);
	check_info_sane(&t);
	TU_ASSERT(tu_live_sectors(t.fs) >= base.live + data_bytes / ARB_SECTOR_SIZE,
	          "live %" PRIu64 " base %" PRIu64 " data %" PRIu64, tu_live_sectors(t.fs),
	          base.live, data_bytes);
	tu_check_clean(t.fs);
	empty_tree(&t, &m, id);
	tu_space_get(t.fs, &now);
	TU_ASSERT(now.used > base.used + data_bytes / ARB_SECTOR_SIZE,
	          "blocks freed in the running transaction must stay counted");
	tu_commit(t.fs);
	tu_space_get(t.fs, &now);
	TU_ASSERT(now.quarantined > base.quarantined + data_bytes / ARB_SECTOR_SIZE &&
	                  now.free + data_bytes / ARB_SECTOR_SIZE < base.free,
	          "freed blocks must stay quarantined for %u commits: quarantined %" PRIu64
	          " free %" PRIu64,
	          ARB_DEFER_COMMITS, now.quarantined, now.free);
	tu_check_clean(t.fs);
	tu_drain(t.fs, scratch);
	tu_space_expect(t.fs, &base);
	tu_fs_reopen(&t);
	tu_space_expect(t.fs, &base);
	check_info_sane(&t);
	tu_model_free(&m);
	finish(&t);
}

/*
 * Deleting everything then committing ARB_DEFER_COMMITS + 1 times, with
 * nothing else written, must give the space back: used_sectors returns to
 * its figure right after the tree was created, and free_sectors to within
 * 10% of what the items took: a filesystem that goes idle right after a big
 * delete must not keep the space quarantined for ever.
 */
static void test_idle_commits_release(void **state)
{
	struct tu_space base, peak, after;
	struct tu_model m;
	struct tu_fs t;
	uint64_t id = setup_fs(&t, DEV_SIZE, SMALL_NODE);

	(void)state;
	tu_space_get(t.fs, &base);
	tu_model_init(&m, 20000);
	fill_tree(&t, &m, id);
	tu_commit(t.fs);
	tu_space_get(t.fs, &peak);
	TU_ASSERT(peak.used > base.used + 500);
	empty_tree(&t, &m, id);
	tu_commit_n(t.fs, ARB_DEFER_COMMITS + 1);
	tu_space_get(t.fs, &after);
	TU_EQ_U64(after.used, base.used);
	/* after.free may exceed base.free: base still had the format's frees
	 * in quarantine */
	TU_ASSERT(after.free * 10 + (base.free - peak.free) > base.free * 10,
	          "after deleting everything and %u commits, free_sectors is %" PRIu64
	          " (quarantined %" PRIu64 "); %" PRIu64 " right after the tree was created, "
	          "%" PRIu64 " when full",
	          ARB_DEFER_COMMITS + 1, after.free, after.quarantined, base.free, peak.free);
	tu_model_free(&m);
	finish(&t);
}

/*
 * A steady workload must not eat the device: each commit below rewrites
 * ~600 random items of a 20000-item tree (~400 scattered leaves freed per
 * commit) while the live data stays the same, so free space must stay
 * level over 100 commits: within 25% of the device of its figure after
 * the first round.
 */
static void test_steady_updates_reclaim_space(void **state)
{
	struct tu_space first, now;
	struct tu_model m;
	struct tu_rng rng;
	struct tu_fs t;
	uint64_t id = setup_fs(&t, DEV_SIZE, SMALL_NODE);

	(void)state;
	tu_rng_init(&rng, 600);
	tu_model_init(&m, 20000);
	fill_tree(&t, &m, id);
	tu_commit(t.fs);
	for (unsigned c = 0; c < 100; c++) {
		tu_ctx_op(c);
		for (int i = 0; i < 600; i++)
			tu_op_update(&m, tu_tree(t.fs, id), tu_rng_below(&rng, m.n), next_version(),
			             100);
		tu_commit(t.fs);
		tu_space_get(t.fs, &now);
		if (c == 0)
			first = now;
		TU_ASSERT(now.free + now.total / 4 >= first.free,
		          "free %" PRIu64 " (was %" PRIu64 "), used %" PRIu64
		          " of which deferred %" PRIu64 ", quarantined %" PRIu64
		          ", live data unchanged",
		          now.free, first.free, now.used, now.used - now.live, now.quarantined);
	}
	tu_model_check(&m, tu_tree(t.fs, id));
	tu_model_free(&m);
	finish(&t);
}

/* ---- freed blocks (invariant 4) ---- */

/*
 * A block freed in the running transaction stays counted (the durable
 * commit still points to it); commit F drops its count to zero but keeps
 * it quarantined, not allocatable, until commit F + ARB_DEFER_COMMITS.
 * Every commit below replaces the root leaf of a one-leaf tree.
 */
static void test_freed_blocks_quarantined(void **state)
{
	struct tu_space sp;
	struct tu_model m;
	struct tu_fs t;
	uint64_t id = setup_fs(&t, DEV_SIZE, SMALL_NODE);

	(void)state;
	tu_model_init(&m, 16);
	for (unsigned i = 0; i < 32; i++) {
		uint64_t old = tu_tree_root(tu_tree(t.fs, id));
		struct arb_fs_info info;

		tu_ctx_op(i);
		tu_op_put(&m, tu_tree(t.fs, id), i % 16, next_version(), 20);
		TU_ASSERT(tu_tree_root(tu_tree(t.fs, id)) != old, "root leaf rewritten in place");
		TU_EQ_U64(tu_refcount(t.fs, old), 1);
		arb_fs_info(t.fs, &info);
		TU_ASSERT(info.deferred_sectors >= 1,
		          "a shadowed block is not counted as deferred");
		tu_commit(t.fs);
		TU_EQ_U64(tu_refcount(t.fs, old), 0);
		tu_space_get(t.fs, &sp);
		/* this commit and the previous ones each freed at least the old leaf */
		TU_ASSERT(sp.quarantined >= (i < ARB_DEFER_COMMITS ? i + 1 : ARB_DEFER_COMMITS),
		          "quarantined %" PRIu64, sp.quarantined);
	}
	tu_model_free(&m);
	finish(&t);
}

struct gen_model {
	uint64_t gen;
	struct tu_model m;
};

static void check_generation(struct tu_fs *t, uint64_t id, const struct gen_model *g)
{
	struct arb_fs_info info;

	arb_close(t->fs);
	t->read_only = true;
	t->max_generation = g->gen;
	tu_fs_open(t);
	arb_fs_info(t->fs, &info);
	TU_EQ_U64(info.generation, g->gen);
	TU_EQ_U64(info.fallback_from, 0);
	tu_model_check(&g->m, tu_tree(t->fs, id));
	tu_check_clean(t->fs);
	t->read_only = false;
	t->max_generation = 0;
	tu_fs_reopen(t);
}

static void remember(struct gen_model *ring, uint64_t gen, const struct tu_model *m)
{
	ring[gen % ARB_SUPER_SLOTS].gen = gen;
	tu_model_copy(&ring[gen % ARB_SUPER_SLOTS].m, m);
}

/* Open generation gen - back if this test committed it. */
static void check_back(struct tu_fs *t, uint64_t id, const struct gen_model *ring, uint64_t gen,
                       uint64_t back)
{
	const struct gen_model *g = &ring[(gen - back) % ARB_SUPER_SLOTS];

	if (back < gen && g->gen == gen - back)
		check_generation(t, id, g);
}

/*
 * On a device so small that the allocator wraps around several times, the
 * roots of the last ARB_SUPER_SLOTS commits must stay intact: each opens
 * (max_generation) with exactly its content.  Most leaves are long-lived, so
 * after a wrap the blocks a commit frees lie ahead of the cursor, where the
 * next commits allocate: only deferring the frees keeps the older roots.
 */
static void test_old_generations_intact(void **state)
{
	struct gen_model ring[ARB_SUPER_SLOTS];
	struct tu_model m;
	struct tu_rng rng;
	struct tu_fs t;
	uint64_t id = setup_fs(&t, 3ull << 20, SMALL_NODE);
	uint64_t cursor, wraps = 0;

	(void)state;
	memset(ring, 0, sizeof(ring));
	tu_rng_init(&rng, 44);
	tu_model_init(&m, 6000);
	for (uint64_t i = 0; i < m.n; i++)
		tu_op_insert(&m, tu_tree(t.fs, id), i, next_version(),
		             (uint32_t)tu_rng_range(&rng, 30, 50));
	tu_commit(t.fs);
	cursor = tu_alloc_cursor(t.dev, generation(t.fs));
	for (unsigned c = 0; c < 400 && wraps < 3; c++) {
		uint64_t gen, cur;

		tu_ctx_op(c);
		for (int i = 0; i < 3; i++)
			tu_op_put(&m, tu_tree(t.fs, id), tu_rng_below(&rng, m.n), next_version(),
			          (uint32_t)tu_rng_range(&rng, 30, 50));
		tu_commit(t.fs);
		gen = generation(t.fs);
		cur = tu_alloc_cursor(t.dev, gen);
		wraps += cur < cursor;
		cursor = cur;
		remember(ring, gen, &m);
		check_back(&t, id, ring, gen, ARB_SUPER_SLOTS - 1);
		check_back(&t, id, ring, gen, tu_rng_range(&rng, 1, ARB_SUPER_SLOTS - 2));
	}
	TU_ASSERT(wraps >= 2, "the allocator wrapped %" PRIu64 " times", wraps);
	tu_model_check(&m, tu_tree(t.fs, id));
	for (unsigned i = 0; i < ARB_SUPER_SLOTS; i++)
		tu_model_free(&ring[i].m);
	tu_model_free(&m);
	finish(&t);
}

/* ---- read-only ---- */

static void expect_erofs(struct arb_fs *fs, uint64_t id)
{
	struct arb_tree *tree = tu_tree(fs, id);
	struct arb_key k = tu_key(3), k2 = tu_key(5000);
	uint64_t out;

	TU_RC_EQ(arb_insert(tree, &k2, "x", 1), -EROFS);
	TU_RC_EQ(arb_update(tree, &k, "x", 1), -EROFS);
	TU_RC_EQ(arb_put(tree, &k, "x", 1), -EROFS);
	TU_RC_EQ(arb_put(tree, &k2, "x", 1), -EROFS);
	TU_RC_EQ(arb_delete(tree, &k), -EROFS);
	TU_RC_EQ(arb_tree_create(fs, &out), -EROFS);
	TU_RC_EQ(arb_tree_clone(fs, id, &out), -EROFS);
	TU_RC_EQ(arb_tree_drop(fs, id), -EROFS);
}

static void test_read_only(void **state)
{
	struct arb_fs_info info;
	struct tu_model m;
	struct tu_rng rng;
	struct tu_fs t;
	uint64_t id = setup_fs(&t, DEV_SIZE, SMALL_NODE);
	uint64_t writes;

	(void)state;
	tu_rng_init(&rng, 3);
	tu_model_init(&m, 4000);
	random_fill(&t, &m, id, &rng, 3000);
	tu_op_put(&m, tu_tree(t.fs, id), 3, next_version(), 7);
	tu_commit(t.fs);
	t.read_only = true;
	tu_fs_reopen(&t);
	arb_fs_info(t.fs, &info);
	TU_ASSERT(info.read_only);
	writes = arb_memdev_write_count(t.dev);
	expect_erofs(t.fs, id);
	tu_model_check(&m, tu_tree(t.fs, id));
	tu_check_clean(t.fs);
	TU_EQ_U64(arb_memdev_write_count(t.dev), writes);
	t.read_only = false;
	tu_fs_reopen(&t);
	tu_model_check(&m, tu_tree(t.fs, id));
	tu_model_free(&m);
	finish(&t);
}

/* ---- other node sizes ---- */

static void test_nodesizes(void **state)
{
	static const uint32_t sizes[] = {4096, 8192, 16384, 32768, 65536};
	struct tu_model m;
	struct tu_rng rng;

	(void)state;
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct tu_fs t;
		uint64_t id = setup_fs(&t, DEV_SIZE, sizes[i]);

		tu_ctx_op(sizes[i]);
		tu_rng_init(&rng, sizes[i]);
		tu_model_init(&m, 5000);
		random_fill(&t, &m, id, &rng, 8000);
		check_item_size_limits(t.fs, tu_tree(t.fs, id), &m);
		tu_commit(t.fs);
		tu_fs_reopen(&t);
		tu_model_check(&m, tu_tree(t.fs, id));
		tu_model_free(&m);
		finish(&t);
	}
}

int main(void)
{
	struct tu_tests ts = {0};

	tu_tests_add(&ts, "empty_tree", test_empty_tree);
	tu_tests_add(&ts, "item_ops", test_item_ops);
	tu_tests_add(&ts, "split_merge_sequential", test_split_merge_sequential);
	tu_tests_add(&ts, "split_merge_reverse", test_split_merge_reverse);
	tu_tests_add(&ts, "split_merge_random", test_split_merge_random);
	tu_tests_add(&ts, "iteration", test_iteration);
	tu_tests_add(&ts, "iter_stale", test_iter_stale);
	tu_tests_add(&ts, "commit_reopen", test_commit_reopen);
	tu_tests_add(&ts, "small_cache", test_small_cache);
	tu_tests_add(&ts, "walk", test_walk);
	tu_tests_add(&ts, "space_accounting", test_space_accounting);
	tu_tests_add(&ts, "idle_commits_release", test_idle_commits_release);
	tu_tests_add(&ts, "steady_updates_reclaim_space", test_steady_updates_reclaim_space);
	tu_tests_add(&ts, "freed_blocks_quarantined", test_freed_blocks_quarantined);
	tu_tests_add(&ts, "old_generations_intact", test_old_generations_intact);
	tu_tests_add(&ts, "read_only", test_read_only);
	tu_tests_add(&ts, "nodesizes", test_nodesizes);
	return tu_tests_run(&ts, "btree");
}
