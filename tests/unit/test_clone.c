/* SPDX-License-Identifier: MIT */
/*
 * test_clone.c - clones (Rodeh's lazy reference counts) through the public
 * API.  Every scenario keeps a model per tree, diverges clones from their
 * sources with random operations, compares every tree with its model,
 * recounts every node's references from the tree walks and compares them with
 * arb_sector_refcount(), and ends by dropping every tree: the space used must
 * return to that of the empty filesystem and arb_check must be clean.
 *
 *  - basic: clone (after a commit or inside the transaction that modified
 *    the source), root shared with count 2, then 1 on each after the first
 *    modification; diverge; drop the source or the clone first;
 *  - chain: clones of clones, 6 levels deep;
 *  - fanout: one tree cloned 8 times, some clones cloned again, the source
 *    dropped first;
 *  - forest: a random mix of data operations, clones, drops, commits and
 *    reopens with and without a commit first.
 */
#include "testutil.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#define MAX_FOREST 24

struct ftree {
	uint64_t id;
	struct tu_model m;
};

struct forest {
	struct tu_fs t;
	struct tu_rng rng;
	struct ftree cur[MAX_FOREST]; /* running transaction */
	struct ftree com[MAX_FOREST]; /* last commit */
	unsigned nr_cur, nr_com;
	uint64_t version, universe;
	uint32_t max_item;
	struct tu_space base;
	uint64_t scratch_id; /* for churn commits; not part of the forest */
};

/* ---- the forest ---- */

static void forest_setup(struct forest *f, uint64_t seed)
{
	uint32_t nodesize = seed % 3 == 2 ? 16384 : 4096;
	uint64_t mib;

	tu_rng_init(&f->rng, seed);
	mib = nodesize == 4096 ? tu_rng_range(&f->rng, 24, 48) : 96;
	tu_fs_create(&f->t, mib << 20, nodesize);
	f->max_item = arb_max_item_size(f->t.fs);
	f->universe = tu_rng_range(&f->rng, 1500, 4000);
	f->scratch_id = tu_tree_create(f->t.fs);
	tu_drain(f->t.fs, f->scratch_id);
	tu_space_get(f->t.fs, &f->base);
}

static struct forest *forest_new(uint64_t seed)
{
	struct forest *f = calloc(1, sizeof(*f));

	TU_ASSERT(f != NULL);
	forest_setup(f, seed);
	return f;
}

static void forest_ids(const struct forest *f, uint64_t *ids)
{
	for (unsigned i = 0; i < f->nr_cur; i++)
		ids[i] = f->cur[i].id;
}

/* Every tree equals its model and every node's count equals its parents. */
static void forest_verify(struct forest *f, bool full)
{
	uint64_t ids[MAX_FOREST];
	struct arb_key min = ARB_KEY_MIN;

	for (unsigned i = 0; i < f->nr_cur; i++) {
		struct arb_tree *t = tu_tree(f->t.fs, f->cur[i].id);

		tu_ctx.tree_id = f->cur[i].id;
		if (full)
			tu_model_check(&f->cur[i].m, t);
		else
			tu_model_check_range(&f->cur[i].m, t, &min, ARB_ITER_FORWARD, 0);
	}
	tu_ctx.tree_id = 0;
	forest_ids(f, ids);
	tu_check_refcounts(f->t.fs, ids, f->nr_cur);
}

static void copy_trees(struct ftree *dst, unsigned *nr_dst, const struct ftree *src, unsigned nr)
{
	for (unsigned i = 0; i < nr; i++) {
		dst[i].id = src[i].id;
		tu_model_copy(&dst[i].m, &src[i].m);
	}
	for (unsigned i = nr; i < *nr_dst; i++)
		tu_model_free(&dst[i].m);
	*nr_dst = nr;
}

static void forest_commit(struct forest *f)
{
	tu_commit(f->t.fs);
	copy_trees(f->com, &f->nr_com, f->cur, f->nr_cur);
}

/* Reopen (after a commit or not) and verify everything. */
static void forest_reopen(struct forest *f, bool commit_first)
{
	const char *old = tu_ctx.phase;

	tu_ctx_phase(commit_first ? "reopen after commit" : "reopen without commit");
	if (commit_first)
		forest_commit(f);
	tu_fs_reopen(&f->t);
	copy_trees(f->cur, &f->nr_cur, f->com, f->nr_com);
	forest_verify(f, true);
	tu_check_clean(f->t.fs);
	tu_ctx_phase(old);
}

static unsigned forest_create(struct forest *f)
{
	struct ftree *ft = &f->cur[f->nr_cur];

	TU_ASSERT(f->nr_cur < MAX_FOREST);
	ft->id = tu_tree_create(f->t.fs);
	tu_model_free(&ft->m);
	tu_model_init(&ft->m, f->universe);
	return f->nr_cur++;
}

static unsigned forest_clone(struct forest *f, unsigned src)
{
	struct ftree *ft = &f->cur[f->nr_cur];

	TU_ASSERT(f->nr_cur < MAX_FOREST);
	ft->id = tu_tree_clone(f->t.fs, f->cur[src].id);
	tu_model_copy(&ft->m, &f->cur[src].m);
	return f->nr_cur++;
}

static void forest_drop(struct forest *f, unsigned idx)
{
	struct ftree gone = f->cur[idx];

	tu_tree_drop(f->t.fs, gone.id);
	TU_RC_EQ(arb_tree_get(f->t.fs, gone.id, &(struct arb_tree *){NULL}), -ENOENT);
	f->cur[idx] = f->cur[f->nr_cur - 1];
	f->cur[f->nr_cur - 1] = gone;
	tu_model_free(&f->cur[f->nr_cur - 1].m);
	f->nr_cur--;
}

static void forest_op(struct forest *f, unsigned idx)
{
	struct ftree *ft = &f->cur[idx];
	struct arb_tree *t = tu_tree(f->t.fs, ft->id);
	uint64_t id = tu_rng_below(&f->rng, f->universe);
	uint64_t r = tu_rng_below(&f->rng, 100);
	uint32_t len = tu_value_len(&f->rng, f->max_item / 2);

	tu_ctx.tree_id = ft->id;
	if (r < 30)
		tu_op_insert(&ft->m, t, id, ++f->version, len);
	else if (r < 45)
		tu_op_update(&ft->m, t, id, ++f->version, len);
	else if (r < 65)
		tu_op_put(&ft->m, t, id, ++f->version, len);
	else if (r < 90)
		tu_op_delete(&ft->m, t, id);
	else
		tu_model_check_lookup(&ft->m, t, id);
}

static void forest_ops(struct forest *f, unsigned idx, uint64_t n)
{
	for (uint64_t i = 0; i < n; i++)
		forest_op(f, idx);
}

/* Drop every tree: the space must come back to the empty filesystem's. */
static void forest_finish(struct forest *f)
{
	tu_ctx_phase("drop all");
	while (f->nr_cur)
		forest_drop(f, (unsigned)tu_rng_below(&f->rng, f->nr_cur));
	tu_check_clean(f->t.fs);
	tu_drain(f->t.fs, f->scratch_id);
	tu_space_expect(f->t.fs, &f->base);
	tu_fs_reopen(&f->t);
	tu_space_expect(f->t.fs, &f->base);
	tu_check_clean(f->t.fs);
	copy_trees(f->com, &f->nr_com, f->cur, 0);
	tu_fs_destroy(&f->t);
	free(f);
}

static void maybe_commit_or_reopen(struct forest *f)
{
	uint64_t r = tu_rng_below(&f->rng, 100);

	if (r < 30)
		forest_commit(f);
	else if (r < 50)
		forest_reopen(f, true);
}

/* ---- basic: shared root, first modification, divergence, drop order ---- */

static void check_shared_root(struct forest *f, unsigned a, unsigned b)
{
	uint64_t ra = tu_tree_root(tu_tree(f->t.fs, f->cur[a].id));
	uint64_t rb = tu_tree_root(tu_tree(f->t.fs, f->cur[b].id));

	TU_ASSERT(ra == rb, "clone root %" PRIu64 " differs from source root %" PRIu64, rb, ra);
	TU_EQ_U64(tu_refcount(f->t.fs, ra), 2);
}

static void check_split_roots(struct forest *f, unsigned a, unsigned b)
{
	uint64_t ra = tu_tree_root(tu_tree(f->t.fs, f->cur[a].id));
	uint64_t rb = tu_tree_root(tu_tree(f->t.fs, f->cur[b].id));

	TU_ASSERT(ra != rb, "modified clone still shares root %" PRIu64, ra);
	TU_EQ_U64(tu_refcount(f->t.fs, ra), 1);
	TU_EQ_U64(tu_refcount(f->t.fs, rb), 1);
}

/* Modify one id of tree idx (put: always a real change). */
static void touch(struct forest *f, unsigned idx)
{
	struct ftree *ft = &f->cur[idx];
	uint64_t id = tu_rng_below(&f->rng, f->universe);

	tu_op_put(&ft->m, tu_tree(f->t.fs, ft->id), id, ++f->version,
	          (uint32_t)tu_rng_range(&f->rng, 0, 100));
}

static void run_basic(uint64_t seed)
{
	struct forest *f = forest_new(seed);
	bool in_txn = tu_rng_pct(&f->rng, 50);
	unsigned a = forest_create(f), b;

	tu_ctx_phase(in_txn ? "clone in the running transaction" : "clone after commit");
	forest_ops(f, a, tu_scaled(4000));
	if (!in_txn)
		forest_reopen(f, true);
	b = forest_clone(f, a);
	check_shared_root(f, a, b);
	forest_verify(f, true);
	if (tu_rng_pct(&f->rng, 50))
		forest_reopen(f, true);
	check_shared_root(f, a, b);
	touch(f, tu_rng_pct(&f->rng, 50) ? a : b);
	check_split_roots(f, a, b);
	forest_verify(f, false);
	tu_ctx_phase("diverge");
	for (int round = 0; round < 4; round++) {
		forest_ops(f, a, tu_scaled(800));
		forest_ops(f, b, tu_scaled(800));
		forest_verify(f, round == 3);
		maybe_commit_or_reopen(f);
	}
	tu_ctx_phase("drop one");
	forest_drop(f, tu_rng_pct(&f->rng, 50) ? a : b);
	forest_verify(f, true);
	forest_reopen(f, true);
	forest_ops(f, 0, tu_scaled(500));
	forest_verify(f, false);
	forest_finish(f);
}

/* ---- chains and fan-out ---- */

static void run_chain(uint64_t seed)
{
	struct forest *f = forest_new(seed);
	unsigned prev = forest_create(f);

	tu_ctx_phase("build chain");
	forest_ops(f, prev, tu_scaled(3000));
	for (int level = 1; level <= 6; level++) {
		unsigned next;

		maybe_commit_or_reopen(f);
		next = forest_clone(f, prev);
		forest_ops(f, next, tu_rng_range(&f->rng, 100, tu_scaled(800)));
		if (tu_rng_pct(&f->rng, 50))
			forest_ops(f, prev, tu_scaled(200));
		forest_verify(f, false);
		prev = next;
	}
	tu_ctx_phase("mix");
	for (int i = 0; i < 20; i++)
		forest_ops(f, (unsigned)tu_rng_below(&f->rng, f->nr_cur), tu_scaled(150));
	forest_reopen(f, tu_rng_pct(&f->rng, 70));
	tu_ctx_phase("drop chain");
	while (f->nr_cur > 1) {
		forest_drop(f, (unsigned)tu_rng_below(&f->rng, f->nr_cur));
		forest_verify(f, false);
		maybe_commit_or_reopen(f);
	}
	forest_finish(f);
}

static void run_fanout(uint64_t seed)
{
	struct forest *f = forest_new(seed);
	unsigned src = forest_create(f);

	tu_ctx_phase("fan out");
	forest_ops(f, src, tu_scaled(3000));
	for (int i = 0; i < 8; i++) {
		unsigned c = forest_clone(f, src);

		/* the source changes between clones, sometimes without a commit */
		forest_ops(f, src, tu_scaled(50));
		forest_ops(f, c, tu_rng_range(&f->rng, 0, tu_scaled(300)));
		if (tu_rng_pct(&f->rng, 40))
			forest_commit(f);
	}
	for (int i = 0; i < 3; i++) {
		unsigned c = forest_clone(f, 1 + (unsigned)tu_rng_below(&f->rng, 8));

		forest_ops(f, c, tu_scaled(200));
	}
	forest_verify(f, true);
	forest_reopen(f, true);
	tu_ctx_phase("drop the source first");
	forest_drop(f, src);
	forest_verify(f, false);
	maybe_commit_or_reopen(f);
	for (unsigned i = 0; i < f->nr_cur; i++)
		forest_ops(f, i, tu_scaled(100));
	forest_reopen(f, true);
	forest_finish(f);
}

/* ---- a random forest ---- */

static void forest_step(struct forest *f)
{
	uint64_t r = tu_rng_below(&f->rng, 1000);

	if (f->nr_cur == 0 || r < 5) {
		if (f->nr_cur < MAX_FOREST)
			forest_ops(f, forest_create(f), tu_rng_range(&f->rng, 0, 500));
	} else if (r < 25) {
		if (f->nr_cur < 12)
			forest_clone(f, (unsigned)tu_rng_below(&f->rng, f->nr_cur));
	} else if (r < 35) {
		forest_drop(f, (unsigned)tu_rng_below(&f->rng, f->nr_cur));
	} else if (r < 45) {
		forest_commit(f);
	} else if (r < 48) {
		forest_reopen(f, tu_rng_pct(&f->rng, 60));
	} else if (r < 53) {
		forest_verify(f, false);
	} else {
		forest_ops(f, (unsigned)tu_rng_below(&f->rng, f->nr_cur), 20);
	}
}

static void run_forest(uint64_t seed)
{
	struct forest *f = forest_new(seed);
	uint64_t steps = tu_scaled(1500);

	for (uint64_t i = 0; i < steps; i++) {
		tu_ctx_op(i);
		forest_step(f);
	}
	forest_reopen(f, true);
	forest_finish(f);
}

/* Cloning an empty tree and a one-leaf tree, dropping right away. */
static void test_small_clones(void **state)
{
	struct forest *f = forest_new(42);
	unsigned a = forest_create(f), b, c;

	(void)state;
	b = forest_clone(f, a);
	check_shared_root(f, a, b);
	touch(f, b);
	check_split_roots(f, a, b);
	forest_verify(f, true);
	c = forest_clone(f, b);
	forest_drop(f, c); /* dropped in the transaction that made it */
	forest_verify(f, true);
	forest_commit(f);
	c = forest_clone(f, b);
	forest_commit(f);
	check_shared_root(f, b, c);
	forest_drop(f, b);
	forest_verify(f, true);
	forest_reopen(f, true);
	forest_finish(f);
}

/*
 * Background drop: a big clone (three levels) is deleted at once (-ENOENT)
 * and freed in steps of a few nodes while its source keeps changing, so
 * shared nodes lose their other owner in the middle of the walk; commits
 * and reopens come between the steps, arb_check is clean after each, and
 * at the end the space is back to what the source alone held.
 */
static void run_background_drop(uint64_t seed)
{
	struct tu_fs t;
	struct tu_rng rng;
	struct tu_model m;
	struct tu_space base;
	uint64_t n = 6000, version = 1, left = 1, steps = 0, scratch, a, b;
	uint32_t len = 40;

	tu_rng_init(&rng, seed);
	tu_fs_create(&t, 64 << 20, 4096);
	scratch = tu_tree_create(t.fs);
	a = tu_tree_create(t.fs);
	tu_model_init(&m, n);
	for (uint64_t id = 0; id < n; id++)
		tu_op_insert(&m, tu_tree(t.fs, a), id, version, len);
	tu_commit(t.fs);
	tu_drain(t.fs, scratch);
	tu_space_get(t.fs, &base);

	b = tu_tree_clone(t.fs, a);
	tu_commit(t.fs);
	for (unsigned i = 0; i < 300; i++) /* the clone and its source diverge */
		tu_op_put(&m, tu_tree(t.fs, b), tu_rng_below(&rng, n), ++version, len);
	TU_RC(arb_tree_drop(t.fs, b));
	TU_RC_EQ(arb_tree_get(t.fs, b, &(struct arb_tree *){NULL}), -ENOENT);
	/* b's model is gone with it: rebuild a's (b only changed b) */
	tu_model_free(&m);
	tu_model_init(&m, n);
	for (uint64_t id = 0; id < n; id++)
		tu_model_set(&m, id, 1, len);
	while (left) {
		uint64_t id = tu_rng_below(&rng, n);

		tu_op_put(&m, tu_tree(t.fs, a), id, ++version, len);
		TU_RC(arb_fs_drop_step(t.fs, 1 + tu_rng_below(&rng, 4), &left));
		steps++;
		if (tu_rng_pct(&rng, 10)) {
			tu_commit(t.fs);
			if (tu_rng_pct(&rng, 20))
				tu_fs_reopen(&t);
		}
		if (steps % 8 == 0)
			tu_check_clean(t.fs);
	}
	tu_model_check(&m, tu_tree(t.fs, a));
	TU_ASSERT(steps > 20, "the drop took %" PRIu64 " steps", steps);
	/* a rewrote every key it had shared: its own copies replace b's */
	for (uint64_t id = 0; id < n; id++)
		tu_op_put(&m, tu_tree(t.fs, a), id, 1, len);
	tu_commit(t.fs);
	tu_drain(t.fs, scratch);
	tu_check_clean(t.fs);
	tu_space_expect(t.fs, &base);
	tu_model_free(&m);
	tu_fs_destroy(&t);
}

int main(void)
{
	struct tu_tests ts = {0};

	tu_tests_add(&ts, "small_clones", test_small_clones);
	tu_tests_add_seeds(&ts, "basic", run_basic, 100, 20);
	tu_tests_add_seeds(&ts, "chain", run_chain, 200, 10);
	tu_tests_add_seeds(&ts, "fanout", run_fanout, 300, 10);
	tu_tests_add_seeds(&ts, "forest", run_forest, 400, 20);
	tu_tests_add_seeds(&ts, "background drop", run_background_drop, 500, 6);
	return tu_tests_run(&ts, "clone");
}
