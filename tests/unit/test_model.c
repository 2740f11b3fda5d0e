/* SPDX-License-Identifier: MIT */
/*
 * test_model.c - randomized model test of the B+tree.
 *
 * Each seed formats a small memdev (small enough that the allocator cursor
 * wraps many times), creates a few user trees and runs a long random mix of
 * insert / update / put / delete / lookup / range iteration, plus bursts over
 * runs of consecutive keys (whole leaves appear and vanish), against an
 * in-memory model of every tree.  Commits come every few hundred operations
 * and close/reopen cycles every few thousand, some of them without a commit
 * first: the uncommitted changes must then vanish, so the model of the last
 * committed state is kept too.  After every reopen every tree is compared
 * with its model and arb_check must be clean.  At the end every tree is
 * dropped and the space used must return to that of the empty filesystem.
 *
 * 20 seeds x 50,000 operations at ARBOR_TEST_SCALE=1 (10^6 in total).
 */
#include "testutil.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#define NR_SEEDS 20
#define OPS_PER_SEED 50000
#define MAX_TREES 5

struct mtree {
	uint64_t id;
	struct tu_model cur;       /* running transaction */
	struct tu_model committed; /* last durable commit */
};

/* The trees as one commit left them. */
struct gen_snap {
	uint64_t gen; /* 0: empty slot */
	unsigned nr;
	uint64_t ids[MAX_TREES];
	struct tu_model m[MAX_TREES];
};

struct mstate {
	struct tu_fs t;
	/* the last ARB_SUPER_SLOTS commits, indexed by generation % slots:
	 * each must still open, intact, with max_generation (invariant 4) */
	struct gen_snap ring[ARB_SUPER_SLOTS];
	struct tu_rng rng;
	struct mtree tree[MAX_TREES];
	unsigned nr_trees;
	uint64_t universe;
	uint64_t scratch_id; /* for churn commits; not part of the model */
	uint64_t version;
	uint32_t max_item;
	uint64_t next_commit, next_reopen, next_check;
	uint64_t commits, reopens, old_opens;
	uint64_t cursor, wraps; /* allocation cursor of the last commit */
};

static uint64_t next_version(struct mstate *s)
{
	return ++s->version;
}

/* ---- lifecycle ---- */

static void model_setup(struct mstate *s, uint64_t seed)
{
	uint32_t nodesize = seed % 4 == 3 ? 16384 : 4096;
	uint64_t mib;

	memset(s, 0, sizeof(*s));
	tu_rng_init(&s->rng, seed);
	/* small enough for the allocation cursor to wrap around several times */
	if (nodesize == 4096)
		mib = tu_rng_range(&s->rng, 16, 32);
	else
		mib = tu_rng_range(&s->rng, 48, 80);
	tu_fs_create(&s->t, mib << 20, nodesize);
	if (tu_rng_pct(&s->rng, 25)) {
		s->t.cache_bytes = 32 * (size_t)nodesize;
		tu_fs_reopen(&s->t);
	}
	s->max_item = arb_max_item_size(s->t.fs);
	s->nr_trees = (unsigned)tu_rng_range(&s->rng, 2, MAX_TREES);
	s->universe = tu_rng_range(&s->rng, 1000, 5000);
}

static uint64_t generation(struct arb_fs *fs)
{
	struct arb_fs_info info;

	arb_fs_info(fs, &info);
	return info.generation;
}

static void remember_generation(struct mstate *s, uint64_t gen)
{
	struct gen_snap *g = &s->ring[gen % ARB_SUPER_SLOTS];

	g->gen = gen;
	g->nr = s->nr_trees;
	for (unsigned i = 0; i < s->nr_trees; i++) {
		g->ids[i] = s->tree[i].id;
		tu_model_copy(&g->m[i], &s->tree[i].committed);
	}
}

static void commit_all(struct mstate *s)
{
	uint64_t cursor;

	tu_commit(s->t.fs);
	for (unsigned i = 0; i < s->nr_trees; i++)
		tu_model_copy(&s->tree[i].committed, &s->tree[i].cur);
	remember_generation(s, generation(s->t.fs));
	s->commits++;
	cursor = tu_alloc_cursor(s->t.dev, generation(s->t.fs));
	s->wraps += cursor < s->cursor;
	s->cursor = cursor;
}

static void free_ring(struct mstate *s)
{
	for (unsigned g = 0; g < ARB_SUPER_SLOTS; g++)
		for (unsigned i = 0; i < MAX_TREES; i++)
			tu_model_free(&s->ring[g].m[i]);
}

static void create_tree(struct mstate *s, struct mtree *mt)
{
	mt->id = tu_tree_create(s->t.fs);
	tu_model_free(&mt->cur);
	tu_model_init(&mt->cur, s->universe);
}

static void check_tree(struct mstate *s, struct mtree *mt, bool full)
{
	struct arb_tree *t = tu_tree(s->t.fs, mt->id);
	struct arb_key min = ARB_KEY_MIN, max = ARB_KEY_MAX;

	tu_ctx.tree_id = mt->id;
	if (full) {
		tu_model_check(&mt->cur, t);
		return;
	}
	tu_model_check_range(&mt->cur, t, &min, ARB_ITER_FORWARD, 0);
	tu_model_check_range(&mt->cur, t, &max, ARB_ITER_BACKWARD, 0);
}

/* Open an older commit still named by a superblock slot, read-only: its
 * trees must be exactly as that commit left them. */
static void open_old_generation(struct mstate *s)
{
	uint64_t newest = generation(s->t.fs);
	uint64_t back = tu_rng_range(&s->rng, 1, ARB_SUPER_SLOTS - 1);
	const struct gen_snap *g;
	struct arb_fs_info info;

	if (newest <= back)
		return;
	g = &s->ring[(newest - back) % ARB_SUPER_SLOTS];
	if (g->gen != newest - back)
		return; /* not a commit of this run */
	tu_ctx_phase("open an older generation");
	arb_close(s->t.fs);
	s->t.read_only = true;
	s->t.max_generation = g->gen;
	tu_fs_open(&s->t);
	arb_fs_info(s->t.fs, &info);
	TU_EQ_U64(info.generation, g->gen);
	TU_EQ_U64(info.fallback_from, 0);
	for (unsigned i = 0; i < g->nr; i++) {
		tu_ctx.tree_id = g->ids[i];
		tu_model_check(&g->m[i], tu_tree(s->t.fs, g->ids[i]));
	}
	tu_check_clean(s->t.fs);
	s->t.read_only = false;
	s->t.max_generation = 0;
	tu_fs_reopen(&s->t);
	TU_EQ_U64(generation(s->t.fs), newest);
	s->old_opens++;
}

static void reopen(struct mstate *s)
{
	bool commit_first = tu_rng_pct(&s->rng, 70);

	tu_ctx_phase(commit_first ? "reopen after commit" : "reopen without commit");
	if (commit_first)
		commit_all(s);
	if (tu_rng_pct(&s->rng, 50))
		open_old_generation(s);
	tu_ctx_phase(commit_first ? "reopen after commit" : "reopen without commit");
	tu_fs_reopen(&s->t);
	s->reopens++;
	for (unsigned i = 0; i < s->nr_trees; i++) {
		tu_model_copy(&s->tree[i].cur, &s->tree[i].committed);
		check_tree(s, &s->tree[i], true);
	}
	tu_check_clean(s->t.fs);
	tu_ctx_phase(NULL);
}

/* Drop a tree and start it again empty, committed on both sides so the
 * committed model stays exact. */
static void recreate_tree(struct mstate *s, struct mtree *mt)
{
	tu_ctx_phase("drop and recreate");
	tu_tree_drop(s->t.fs, mt->id);
	TU_RC_EQ(arb_tree_get(s->t.fs, mt->id, &(struct arb_tree *){NULL}), -ENOENT);
	create_tree(s, mt);
	commit_all(s);
	tu_ctx_phase(NULL);
}

/* ---- operations ---- */

static struct arb_key random_start(struct mstate *s)
{
	uint64_t id = tu_rng_below(&s->rng, s->universe);

	switch (tu_rng_below(&s->rng, 8)) {
	case 0:
		return tu_key_before(id);
	case 1:
		return tu_key_after(id);
	case 2:
		return tu_rng_pct(&s->rng, 50) ? ARB_KEY_MIN : ARB_KEY_MAX;
	default:
		return tu_key(id);
	}
}

static void range_op(struct mstate *s, struct mtree *mt, struct arb_tree *t)
{
	struct arb_key start = random_start(s);
	enum arb_iter_dir dir = tu_rng_pct(&s->rng, 50) ? ARB_ITER_FORWARD : ARB_ITER_BACKWARD;

	tu_model_check_range(&mt->cur, t, &start, dir, tu_rng_range(&s->rng, 1, 200));
}

/* Insert, put or delete every id of a run of consecutive ids. */
static void burst_op(struct mstate *s, struct mtree *mt, struct arb_tree *t)
{
	uint64_t len = tu_rng_range(&s->rng, 20, 300);
	uint64_t first = tu_rng_below(&s->rng, s->universe);
	uint64_t kind = tu_rng_below(&s->rng, 3);
	uint32_t vlen = (uint32_t)tu_rng_range(&s->rng, 0, 120);

	for (uint64_t id = first; id < first + len && id < s->universe; id++) {
		if (kind == 0)
			tu_op_delete(&mt->cur, t, id);
		else if (kind == 1)
			tu_op_put(&mt->cur, t, id, next_version(s), vlen);
		else
			tu_op_insert(&mt->cur, t, id, next_version(s), vlen);
	}
}

static void one_op(struct mstate *s)
{
	struct mtree *mt = &s->tree[tu_rng_below(&s->rng, s->nr_trees)];
	struct arb_tree *t = tu_tree(s->t.fs, mt->id);
	uint64_t id = tu_rng_below(&s->rng, s->universe);
	uint64_t r = tu_rng_below(&s->rng, 100);

	tu_ctx.tree_id = mt->id;
	if (r < 22)
		tu_op_insert(&mt->cur, t, id, next_version(s), tu_value_len(&s->rng, s->max_item));
	else if (r < 35)
		tu_op_update(&mt->cur, t, id, next_version(s), tu_value_len(&s->rng, s->max_item));
	else if (r < 48)
		tu_op_put(&mt->cur, t, id, next_version(s), tu_value_len(&s->rng, s->max_item));
	else if (r < 73)
		tu_op_delete(&mt->cur, t, id);
	else if (r < 93)
		tu_model_check_lookup(&mt->cur, t, id);
	else if (r < 97)
		range_op(s, mt, t);
	else
		burst_op(s, mt, t);
}

static void schedule(struct mstate *s, uint64_t op)
{
	if (op >= s->next_commit) {
		commit_all(s);
		s->next_commit = op + tu_rng_range(&s->rng, 50, 600);
	}
	if (op >= s->next_reopen) {
		reopen(s);
		s->next_reopen = op + tu_rng_range(&s->rng, 1500, 6000);
	}
	if (op >= s->next_check) {
		check_tree(s, &s->tree[tu_rng_below(&s->rng, s->nr_trees)], false);
		s->next_check = op + tu_rng_range(&s->rng, 1000, 4000);
	}
	if (tu_rng_below(&s->rng, 8000) == 0)
		recreate_tree(s, &s->tree[tu_rng_below(&s->rng, s->nr_trees)]);
}

/* ---- the run ---- */

/* Every block the trees held must come back: same figures as the empty
 * filesystem after the same churn commits. */
static void drop_everything(struct mstate *s, const struct tu_space *base)
{
	tu_ctx_phase("drop all trees");
	for (unsigned i = 0; i < s->nr_trees; i++) {
		tu_tree_drop(s->t.fs, s->tree[i].id);
		tu_model_free(&s->tree[i].cur);
		tu_model_free(&s->tree[i].committed);
	}
	tu_check_clean(s->t.fs);
	tu_drain(s->t.fs, s->scratch_id);
	tu_space_expect(s->t.fs, base);
	tu_fs_reopen(&s->t);
	tu_space_expect(s->t.fs, base);
	tu_check_clean(s->t.fs);
}

static void run_seed(uint64_t seed)
{
	struct mstate *s = calloc(1, sizeof(*s));
	uint64_t ops = tu_scaled(OPS_PER_SEED);
	struct tu_space base;

	TU_ASSERT(s != NULL);
	model_setup(s, seed);
	s->scratch_id = tu_tree_create(s->t.fs);
	tu_drain(s->t.fs, s->scratch_id);
	tu_space_get(s->t.fs, &base);
	for (unsigned i = 0; i < s->nr_trees; i++)
		create_tree(s, &s->tree[i]);
	commit_all(s);
	s->next_commit = tu_rng_range(&s->rng, 50, 600);
	s->next_reopen = tu_rng_range(&s->rng, 1500, 6000);
	s->next_check = 1000;
	for (uint64_t op = 0; op < ops; op++) {
		tu_ctx_op(op);
		one_op(s);
		schedule(s, op);
	}
	/* make sure this seed saw the allocator wrap around at least once */
	for (uint64_t op = ops; s->wraps == 0 && op < ops + 100000; op++) {
		tu_ctx_op(op);
		one_op(s);
		if (op % 300 == 0)
			commit_all(s);
	}
	tu_ctx_op(UINT64_MAX);
	commit_all(s);
	reopen(s);
	TU_ASSERT(s->commits > ops / 1000 && s->reopens >= ops / 10000,
	          "%" PRIu64 " commits, %" PRIu64 " reopens", s->commits, s->reopens);
	TU_ASSERT(s->old_opens > 0 || ops < 20000, "no older generation was opened");
	TU_ASSERT(s->wraps > 0, "the allocator never wrapped around");
	drop_everything(s, &base);
	free_ring(s);
	tu_fs_destroy(&s->t);
	free(s);
}

int main(void)
{
	struct tu_tests ts = {0};

	tu_tests_add_seeds(&ts, "model", run_seed, 1, NR_SEEDS);
	return tu_tests_run(&ts, "model");
}
