/* SPDX-License-Identifier: MIT */
/*
 * test_corrupt.c - damaged images: bit rot, torn, lost and misdirected writes.
 *
 * A filesystem with a few thousand keys in two trees (the second a clone of
 * the first, then diverged) is built over several commits; the content of
 * every tree and the set of nodes reachable from every generation are kept.
 * Then, many times, a copy of the image is damaged (1..8 bit flips anywhere
 * in a node or a superblock slot, a node zeroed, or overwritten by another
 * node) and:
 *   - arb_open fails with a negative errno, or opens the newest generation,
 *     or (only when a node of the newest generation was hit) falls back to an
 *     older one of the ring;
 *   - every read (lookups of every key, full iteration) returns exactly the
 *     bytes of the opened generation's model or a negative errno: never wrong
 *     data, never "not found" for a present key;
 *   - arb_check reports bad_nodes > 0 when a node reachable from the opened
 *     generation was damaged, and is clean otherwise (then every read must
 *     succeed too).
 * Plus: every generation of the ring opens intact; all superblock slots
 * damaged makes arb_open fail cleanly; a damaged newest root (root tree or
 * space tree) makes arb_open fall back to the previous generation.
 * Environment (see testutil.h): ARBOR_TEST_SEED (default fixed),
 * ARBOR_TEST_SEED_BASE, ARBOR_TEST_SCALE (1.0), ARBOR_TEST_VERBOSE.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "arbor/super.h"
#include "kvfixture.h"

#define DEV_SIZE (8ull << 20)
#define NODESIZE 4096u
#define NKEYS 2400u
#define NTREES 2
#define MAX_VAL 120u
#define NCOMMITS 6
#define MAX_GENS (NCOMMITS + 1)
#define MAX_FLIPS 8
#define RING ((int)ARB_SUPER_SLOTS)
#define BASE_ITERS 6000.0
#define DEFAULT_SEED 0xc0de0001ull
#define MIN_ITERS 60 /* enough for some damage to reach a live node */

enum damage_mode { DMG_FLIP, DMG_FLIP_HEADER, DMG_ZERO, DMG_MISDIRECT, DMG_NMODES };

struct tmodel {
	uint64_t id;
	uint32_t ver[NKEYS]; /* 0: absent */
};

struct noderef {
	uint64_t bytenr, tree;
	int level, depth;
};

struct cgen {
	uint64_t gen;
	int ntrees;
	struct tmodel t[NTREES];
	struct noderef *nodes; /* every node reachable from this generation, by bytenr */
	size_t nnodes;
	uint64_t root_root, space_root;
};

struct cstate {
	uint64_t seed;
	int ngens;
	struct cgen gens[MAX_GENS];
	uint8_t *image;
	uint64_t super_off[ARB_SUPER_COPIES];
	int ncopies;
	struct noderef *old; /* nodes of the older ring generations */
	size_t nold;
};

struct damage {
	bool super; /* a superblock slot, else a node */
	uint64_t off;
	uint32_t len;
	enum damage_mode mode;
	int nflips;
	char desc[128];
};

struct cstats {
	size_t iters, open_failed, fallbacks, read_errors, detected, reached;
};

static struct cstate *g_state;

static uint32_t val_len(uint32_t ver)
{
	return 1 + (uint32_t)(tu_mix64(ver) % MAX_VAL);
}

/* ---- building the image ------------------------------------------------------ */

static void random_ops(struct arb_fs *fs, struct tmodel *t, uint64_t *rng, uint32_t *ver, int n,
                       unsigned put_pct)
{
	struct arb_tree *tree = tu_tree(fs, t->id);

	for (int i = 0; i < n; i++)
		kv_random_op(tree, t->ver, rng, ver, put_pct, false);
}

struct walk_ctx {
	struct noderef *v;
	size_t n, cap;
	uint64_t tree;
	uint64_t root;
};

static int walk_cb(void *ctx, const struct arb_node_view *node)
{
	struct walk_ctx *w = ctx;

	if (w->n == w->cap) {
		w->cap = w->cap ? w->cap * 2 : 256;
		w->v = realloc(w->v, w->cap * sizeof(*w->v));
		if (!w->v)
			return -ENOMEM;
	}
	w->v[w->n++] = (struct noderef){node->bytenr, w->tree, node->level, node->depth};
	if (node->depth == 0)
		w->root = node->bytenr;
	return 0;
}

static uint64_t walk_tree(struct arb_fs *fs, uint64_t id, struct walk_ctx *w)
{
	w->tree = id;
	w->root = 0;
	TU_RC(arb_tree_walk(tu_tree(fs, id), walk_cb, w));
	TU_ASSERT(w->root != 0, "tree %" PRIu64 ": the walk met no root", id);
	return w->root;
}

static int cmp_node(const void *a, const void *b)
{
	uint64_t x = ((const struct noderef *)a)->bytenr, y = ((const struct noderef *)b)->bytenr;

	return x < y ? -1 : x > y;
}

/* Sort by address and drop duplicates (nodes shared by clones). */
static size_t sort_unique(struct noderef *v, size_t n)
{
	size_t out = 0;

	qsort(v, n, sizeof(*v), cmp_node);
	for (size_t i = 0; i < n; i++)
		if (out == 0 || v[out - 1].bytenr != v[i].bytenr)
			v[out++] = v[i];
	return out;
}

static void record_gen(struct cstate *s, struct arb_fs *fs, const struct cgen *cur)
{
	struct cgen *g = &s->gens[s->ngens++];
	struct walk_ctx w = {0};
	struct arb_fs_info info;

	arb_fs_info(fs, &info);
	*g = *cur;
	g->gen = info.generation;
	TU_ASSERT(s->ngens == 1 || g->gen > s->gens[s->ngens - 2].gen, "generation did not grow");
	g->root_root = walk_tree(fs, ARB_ROOT_TREE_ID, &w);
	g->space_root = walk_tree(fs, ARB_SPACE_TREE_ID, &w);
	for (int i = 0; i < g->ntrees; i++)
		walk_tree(fs, g->t[i].id, &w);
	g->nodes = w.v;
	g->nnodes = sort_unique(w.v, w.n);
}

static void build_commit(struct arb_fs *fs, struct cgen *cur, uint64_t *rng, uint32_t *ver, int c)
{
	static const int ops[NCOMMITS + 1][2] = {{0, 0},     {1400, 0},  {700, 0}, {0, 500},
	                                         {300, 300}, {150, 150}, {60, 60}};

	if (c == 1) {
		cur->t[0].id = tu_tree_create(fs);
		cur->ntrees = 1;
	}
	if (c == 3) {
		cur->t[1].id = tu_tree_clone(fs, cur->t[0].id);
		memcpy(cur->t[1].ver, cur->t[0].ver, sizeof(cur->t[0].ver));
		cur->ntrees = 2;
	}
	for (int i = 0; i < cur->ntrees; i++)
		random_ops(fs, &cur->t[i], rng, ver, ops[c][i], c <= 2 ? 95 : 65);
	TU_RC(arb_commit(fs));
}

/* Union of the nodes of the ring's older generations. */
static void collect_old(struct cstate *s)
{
	size_t n = 0;

	for (int i = s->ngens - RING; i < s->ngens - 1; i++)
		n += s->gens[i].nnodes;
	s->old = calloc(n + 1, sizeof(*s->old));
	TU_ASSERT(s->old != NULL);
	for (int i = s->ngens - RING; i < s->ngens - 1; i++) {
		memcpy(s->old + s->nold, s->gens[i].nodes, s->gens[i].nnodes * sizeof(*s->old));
		s->nold += s->gens[i].nnodes;
	}
	s->nold = sort_unique(s->old, s->nold);
}

static struct cstate *state_get(void)
{
	struct cstate *s = g_state;
	struct arb_dev *dev = NULL;
	struct arb_fs *fs = NULL;
	struct cgen cur;
	uint64_t rng;
	uint32_t ver = 0;

	if (s)
		return s;
	kv_init(NKEYS, MAX_VAL, val_len);
	s = calloc(1, sizeof(*s));
	TU_ASSERT(s != NULL);
	tu_seeds(DEFAULT_SEED, 1, &s->seed);
	rng = s->seed;
	kv_ctx(s->seed, "building the image");
	TU_RC(arb_memdev_create(DEV_SIZE, &dev));
	kv_format(dev, s->seed, NODESIZE);
	TU_RC(kv_open(dev, 0, &fs));
	memset(&cur, 0, sizeof(cur));
	record_gen(s, fs, &cur);
	for (int c = 1; c <= NCOMMITS; c++) {
		build_commit(fs, &cur, &rng, &ver, c);
		record_gen(s, fs, &cur);
	}
	arb_close(fs);
	s->image = malloc(DEV_SIZE);
	TU_ASSERT(s->image != NULL);
	memcpy(s->image, arb_memdev_data(dev), DEV_SIZE);
	arb_dev_close(dev);
	s->ncopies = arb_super_copies(DEV_SIZE, s->super_off);
	TU_ASSERT(s->ncopies >= 1, "no superblock copy on %llu bytes", DEV_SIZE);
	collect_old(s);
	print_message("# corrupt image: seed=%" PRIu64 " generations %" PRIu64 "..%" PRIu64
	              ", %zu nodes in the newest, %zu in the older ring generations, %d "
	              "superblock copies\n",
	              s->seed, s->gens[0].gen, s->gens[s->ngens - 1].gen,
	              s->gens[s->ngens - 1].nnodes, s->nold, s->ncopies);
	g_state = s;
	return s;
}

static const struct cgen *newest(const struct cstate *s)
{
	return &s->gens[s->ngens - 1];
}

static const struct cgen *find_gen(const struct cstate *s, uint64_t gen)
{
	for (int i = 0; i < s->ngens; i++)
		if (s->gens[i].gen == gen)
			return &s->gens[i];
	return NULL;
}

static bool has_node(const struct cgen *g, uint64_t bytenr)
{
	struct noderef key = {.bytenr = bytenr};

	return g->nnodes && bsearch(&key, g->nodes, g->nnodes, sizeof(key), cmp_node) != NULL;
}

/* ---- reading a possibly damaged filesystem ------------------------------------ */

static size_t read_all(struct arb_fs *fs, const struct cgen *m, bool strict)
{
	size_t errors = 0;

	for (int i = 0; i < m->ntrees; i++) {
		struct arb_tree *tree = NULL;
		int ret = arb_tree_get(fs, m->t[i].id, &tree);

		if (ret != 0) {
			TU_ASSERT(!strict && kv_is_errno(ret) && ret != -ENOENT,
			          "arb_tree_get(%" PRIu64 "): %d", m->t[i].id, ret);
			errors++;
			continue;
		}
		errors += kv_check_lookups(tree, m->t[i].ver, strict);
		errors += kv_check_iter(tree, m->t[i].ver, ARB_ITER_FORWARD, strict);
	}
	return errors;
}

static void check_detects(struct arb_fs *fs)
{
	struct arb_check_report rep;
	int ret;

	memset(&rep, 0, sizeof(rep));
	ret = arb_check(fs, &rep);
	TU_ASSERT(ret < 0 && rep.bad_nodes > 0,
	          "arb_check = %d with bad_nodes %" PRIu64 " on a damaged reachable node", ret,
	          rep.bad_nodes);
}

/* ---- damage -------------------------------------------------------------------- */

static void flip_bits(uint8_t *p, uint32_t nbits, int n, uint64_t *rng)
{
	uint32_t pos[MAX_FLIPS];

	for (int i = 0; i < n; i++) {
		bool dup;

		do {
			pos[i] = kv_rng_below(rng, nbits);
			dup = false;
			for (int j = 0; j < i; j++)
				dup |= pos[j] == pos[i];
		} while (dup);
		p[pos[i] / 8] ^= (uint8_t)(1u << (pos[i] % 8));
	}
}

static void pick_super(const struct cstate *s, uint64_t *rng, struct damage *d)
{
	int copy = (int)kv_rng_below(rng, (uint32_t)s->ncopies);
	int slot = (int)kv_rng_below(rng, ARB_SUPER_SLOTS);

	d->super = true;
	d->off = s->super_off[copy] + (uint64_t)slot * ARB_SUPER_SLOT_SIZE;
	d->len = ARB_SUPER_SLOT_SIZE;
	d->mode = DMG_FLIP;
	d->nflips = 1 + (int)kv_rng_below(rng, MAX_FLIPS);
	snprintf(d->desc, sizeof(d->desc), "superblock copy %d slot %d: %d bit flips", copy, slot,
	         d->nflips);
}

static const char *mode_name(enum damage_mode m)
{
	static const char *const names[] = {"bit flips", "header bit flips", "zeroed",
	                                    "overwritten by another node"};

	return names[m];
}

static void pick_node(const struct cstate *s, uint64_t *rng, struct damage *d)
{
	const struct cgen *g = newest(s);
	bool from_new = kv_rng_below(rng, 100) < 60 || s->nold == 0;
	const struct noderef *n = from_new ? &g->nodes[kv_rng_below(rng, (uint32_t)g->nnodes)]
	                                   : &s->old[kv_rng_below(rng, (uint32_t)s->nold)];

	d->super = false;
	d->off = n->bytenr;
	d->len = NODESIZE;
	d->mode = (enum damage_mode)kv_rng_below(rng, 10);
	d->mode = d->mode < 6 ? DMG_FLIP : d->mode < 8 ? DMG_FLIP_HEADER : d->mode - 6;
	d->nflips = 1 + (int)kv_rng_below(rng, MAX_FLIPS);
	snprintf(d->desc, sizeof(d->desc),
	         "node %" PRIu64 " (tree %" PRIu64 ", level %d, depth %d, %s): %s (%d)", n->bytenr,
	         n->tree, n->level, n->depth, from_new ? "newest" : "older", mode_name(d->mode),
	         d->nflips);
}

static void apply_damage(const struct cstate *s, uint8_t *img, const struct damage *d,
                         uint64_t *rng)
{
	const struct noderef *src;

	switch (d->mode) {
	case DMG_FLIP:
		flip_bits(img + d->off, d->len * 8, d->nflips, rng);
		break;
	case DMG_FLIP_HEADER:
		flip_bits(img + d->off, sizeof(struct arb_node_header) * 8, d->nflips, rng);
		break;
	case DMG_ZERO:
		memset(img + d->off, 0, d->len);
		break;
	default:
		do
			src = &newest(s)->nodes[kv_rng_below(rng, (uint32_t)newest(s)->nnodes)];
		while (src->bytenr == d->off && newest(s)->nnodes > 1);
		memcpy(img + d->off, s->image + src->bytenr, d->len);
		break;
	}
}

/* ---- one damaged image ------------------------------------------------------------ */

/* arb_open succeeded: which generation, and is that acceptable? */
static const struct cgen *opened_gen(const struct cstate *s, struct arb_fs *fs, bool hits_newest,
                                     struct cstats *st)
{
	const struct cgen *top = newest(s), *m;
	struct arb_fs_info info;

	arb_fs_info(fs, &info);
	m = find_gen(s, info.generation);
	TU_ASSERT(m && m >= &s->gens[s->ngens - RING],
	          "opened generation %" PRIu64 ", newest %" PRIu64, info.generation, top->gen);
	if (m == top)
		return m;
	TU_ASSERT(hits_newest,
	          "opened generation %" PRIu64 " though generation %" PRIu64 " is intact", m->gen,
	          top->gen);
	TU_ASSERT(info.fallback_from == top->gen,
	          "fell back to %" PRIu64 " with fallback_from %" PRIu64, m->gen,
	          info.fallback_from);
	st->fallbacks++;
	return m;
}

static void corrupt_once(const struct cstate *s, uint64_t iseed, struct cstats *st)
{
	uint64_t rng = tu_mix64(iseed);
	struct arb_dev *dev = NULL;
	struct arb_fs *fs = NULL;
	const struct cgen *m;
	struct damage d;
	bool hits_newest, reach;
	int ret;

	if (kv_rng_below(&rng, 100) < 25)
		pick_super(s, &rng, &d);
	else
		pick_node(s, &rng, &d);
	kv_ctx(s->seed, "iteration seed %" PRIu64 ": %s", iseed, d.desc);
	TU_RC(arb_memdev_from_buffer(s->image, DEV_SIZE, &dev));
	apply_damage(s, arb_memdev_data(dev), &d, &rng);
	hits_newest =
	        d.super ? s->ncopies == 1 && d.off % ARB_SUPER_COPY_SIZE / ARB_SUPER_SLOT_SIZE ==
	                                             newest(s)->gen % ARB_SUPER_SLOTS
	                : has_node(newest(s), d.off);
	ret = kv_open(dev, 0, &fs);
	st->iters++;
	if (ret != 0) {
		TU_ASSERT(kv_is_errno(ret), "arb_open returned %d", ret);
		TU_ASSERT(hits_newest,
		          "arb_open failed (%d) though the newest generation is intact", ret);
		st->open_failed++;
		arb_dev_close(dev);
		return;
	}
	m = opened_gen(s, fs, hits_newest, st);
	reach = !d.super && has_node(m, d.off);
	st->read_errors += read_all(fs, m, !reach);
	if (reach) {
		st->reached++;
		check_detects(fs);
		st->detected++;
	} else {
		tu_check_clean(fs);
	}
	arb_close(fs);
	arb_dev_close(dev);
}

/* Every read returns exactly m's data and arb_check is clean; closes fs and dev. */
static void expect_intact(struct arb_fs *fs, struct arb_dev *dev, const struct cgen *m)
{
	TU_ASSERT(read_all(fs, m, true) == 0, "read errors");
	tu_check_clean(fs);
	arb_close(fs);
	arb_dev_close(dev);
}

/* ---- tests --------------------------------------------------------------------------- */

/* Sanity of the models: every generation of the ring opens intact. */
static void test_ring_intact(void **state)
{
	const struct cstate *s = state_get();

	(void)state;
	for (int i = s->ngens - RING; i < s->ngens; i++) {
		struct arb_dev *dev = NULL;
		struct arb_fs *fs = NULL;
		struct arb_fs_info info;

		kv_ctx(s->seed, "intact generation %" PRIu64, s->gens[i].gen);
		TU_RC(arb_memdev_from_buffer(s->image, DEV_SIZE, &dev));
		TU_RC(kv_open(dev, i == s->ngens - 1 ? 0 : s->gens[i].gen, &fs));
		arb_fs_info(fs, &info);
		TU_ASSERT(info.generation == s->gens[i].gen && info.fallback_from == 0,
		          "opened generation %" PRIu64 " (fallback from %" PRIu64 ")",
		          info.generation, info.fallback_from);
		expect_intact(fs, dev, &s->gens[i]);
	}
}

static void damage_slot(uint8_t *slot, int how, uint64_t *rng)
{
	if (how == 0) /* one bit in the checksummed part */
		flip_bits(slot + ARB_CSUM_SIZE, (ARB_SUPER_SLOT_SIZE - ARB_CSUM_SIZE) * 8, 1, rng);
	else if (how == 1)
		memset(slot, 0, ARB_SUPER_SLOT_SIZE);
	else
		for (uint32_t i = 0; i < ARB_SUPER_SLOT_SIZE; i += 8) {
			uint64_t r = kv_rng_next(rng);

			memcpy(slot + i, &r, 8);
		}
}

/* Damage every slot of every copy, except (keep_gen != 0) that
 * generation's slot in the last copy. */
static int open_with_supers_damaged(const struct cstate *s, int how, uint64_t keep_gen,
                                    struct arb_dev **ret_dev, struct arb_fs **ret_fs)
{
	uint64_t rng = tu_mix64(s->seed + (uint64_t)how);
	uint8_t *img;

	TU_RC(arb_memdev_from_buffer(s->image, DEV_SIZE, ret_dev));
	img = arb_memdev_data(*ret_dev);
	for (int c = 0; c < s->ncopies; c++)
		for (uint32_t slot = 0; slot < ARB_SUPER_SLOTS; slot++) {
			if (keep_gen && c == s->ncopies - 1 && slot == keep_gen % ARB_SUPER_SLOTS)
				continue;
			damage_slot(img + s->super_off[c] + slot * ARB_SUPER_SLOT_SIZE, how, &rng);
		}
	return kv_open(*ret_dev, 0, ret_fs);
}

static void test_all_supers_damaged(void **state)
{
	const struct cstate *s = state_get();
	static const char *const hows[] = {"one bit flip each", "zeroed", "random bytes"};

	(void)state;
	for (int how = 0; how < 3; how++) {
		struct arb_dev *dev = NULL;
		struct arb_fs *fs = NULL;
		int ret;

		kv_ctx(s->seed, "all superblocks %s", hows[how]);
		ret = open_with_supers_damaged(s, how, 0, &dev, &fs);
		TU_ASSERT(kv_is_errno(ret), "arb_open returned %d", ret);
		arb_dev_close(dev);
	}
}

/* Only an older slot survives, in one copy: that generation opens. */
static void test_one_old_super_left(void **state)
{
	const struct cstate *s = state_get();
	const struct cgen *m = &s->gens[s->ngens - 3];
	struct arb_dev *dev = NULL;
	struct arb_fs *fs = NULL;
	struct arb_fs_info info;

	(void)state;
	kv_ctx(s->seed, "only the slot of %" PRIu64 " left", m->gen);
	TU_RC(open_with_supers_damaged(s, 0, m->gen, &dev, &fs));
	arb_fs_info(fs, &info);
	TU_ASSERT(info.generation == m->gen, "opened generation %" PRIu64, info.generation);
	expect_intact(fs, dev, m);
}

static void root_damaged(const struct cstate *s, uint64_t bytenr, const char *what, int how)
{
	const struct cgen *top = newest(s), *prev = &s->gens[s->ngens - 2];
	uint64_t rng = tu_mix64(s->seed ^ bytenr);
	struct arb_dev *dev = NULL;
	struct arb_fs *fs = NULL;
	struct arb_fs_info info;
	uint8_t *img;

	kv_ctx(s->seed, "newest %s root %" PRIu64 " %s", what, bytenr,
	       how ? "zeroed" : "one bit flipped");
	TU_ASSERT(!has_node(prev, bytenr),
	          "test premise: the root is new in the newest generation");
	TU_RC(arb_memdev_from_buffer(s->image, DEV_SIZE, &dev));
	img = arb_memdev_data(dev) + bytenr;
	if (how)
		memset(img, 0, NODESIZE);
	else
		flip_bits(img + ARB_CSUM_SIZE, (NODESIZE - ARB_CSUM_SIZE) * 8, 1, &rng);
	TU_RC(kv_open(dev, 0, &fs));
	arb_fs_info(fs, &info);
	TU_ASSERT(info.generation == prev->gen && info.fallback_from == top->gen,
	          "opened generation %" PRIu64 " with fallback_from %" PRIu64 ", want %" PRIu64
	          " from %" PRIu64,
	          info.generation, info.fallback_from, prev->gen, top->gen);
	expect_intact(fs, dev, prev);
}

static void test_newest_root_damaged(void **state)
{
	const struct cstate *s = state_get();

	(void)state;
	for (int how = 0; how < 2; how++) {
		root_damaged(s, newest(s)->root_root, "root tree", how);
		root_damaged(s, newest(s)->space_root, "space tree", how);
	}
}

static void test_random_damage(void **state)
{
	const struct cstate *s = state_get();
	struct cstats st = {0};
	size_t iters = (size_t)(BASE_ITERS * tu_scale());
	uint64_t rng = tu_mix64(s->seed ^ 0xbadb10c);
	double t0 = tu_now_sec();

	(void)state;
	iters = iters < MIN_ITERS ? MIN_ITERS : iters;
	for (size_t i = 0; i < iters; i++)
		corrupt_once(s, kv_rng_next(&rng), &st);
	print_message("# random damage: %zu images in %.1f s: open failed %zu, fell back %zu, "
	              "reachable damage %zu (all found by arb_check), read errors %zu\n",
	              st.iters, tu_now_sec() - t0, st.open_failed, st.fallbacks, st.reached,
	              st.read_errors);
	assert_int_equal(st.iters, iters);
	assert_int_equal(st.detected, st.reached);
	assert_true(st.reached > 0);
}

static int teardown(void **state)
{
	(void)state;
	kv_free();
	if (g_state) {
		for (int i = 0; i < g_state->ngens; i++)
			free(g_state->gens[i].nodes);
		free(g_state->old);
		free(g_state->image);
		free(g_state);
		g_state = NULL;
	}
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_ring_intact),
	        cmocka_unit_test(test_all_supers_damaged),
	        cmocka_unit_test(test_one_old_super_left),
	        cmocka_unit_test(test_newest_root_damaged),
	        cmocka_unit_test(test_random_damage),
	};

	return cmocka_run_group_tests(tests, NULL, teardown);
}
