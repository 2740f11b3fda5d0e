/* SPDX-License-Identifier: MIT */
/*
 * test_crash.c - power cuts at every point of a recorded workload.
 *
 * A workload of many commits (random inserts, updates and deletes over a few
 * hundred keys in up to four user trees, with tree create, clone and drop)
 * runs on a recording memdev.  The exact content of every tree after every
 * commit is kept as a model, one per generation.  Then, for every event index
 * `cut` of the log, and for a sample of cuts with the unflushed writes lost
 * and reordered, the image a power cut leaves is rebuilt and:
 *   - arb_open succeeds, without falling back (a commit never leaves a valid
 *     superblock whose trees do not verify);
 *   - the opened generation is the last commit whose final flush completed
 *     before the cut, or the commit in flight, never anything else;
 *   - every tree equals the model of that generation exactly (iteration both
 *     ways and lookups of every key), trees of other generations are absent;
 *   - arb_check is clean;
 *   - the recovered filesystem is writable: a few more operations, a commit,
 *     a reopen and the same verification.
 * A failure names the seed, the cut and the reorder seed.  Environment (see
 * testutil.h): ARBOR_TEST_SEED (default fixed), ARBOR_TEST_SEED_BASE,
 * ARBOR_TEST_SCALE (default 1.0), ARBOR_TEST_VERBOSE.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "kvfixture.h"

#define DEV_SIZE (8ull << 20)
#define NODESIZE 4096u
#define SECTOR 4096u
#define NKEYS 800u
#define MAX_TREES 4
#define MAX_VAL 1500u /* values 1..64 or 400..1500 bytes: a few per leaf */
#define MAX_GENS 512
#define MAX_IDS 512
#define BASE_COMMITS 100.0 /* commits of the workload at scale 1 */
#define DEFAULT_SEED 0x5eed0001ull
#define BASE_REORDER 2000.0 /* reordered crash states at scale 1 */
#define BASE_TORN 2000.0    /* torn (sector-granular) crash states at scale 1 */
#define REORDER_GROUP 4     /* seeds tried per sampled cut */

struct tmodel {
	uint64_t id;
	uint32_t ver[NKEYS]; /* 0: absent, else the value's version */
};

struct gmodel {
	uint64_t gen;
	size_t ev_end; /* events recorded when the commit returned */
	int ntrees;
	struct tmodel t[MAX_TREES];
};

struct workload {
	uint64_t seed;
	struct arb_dev *dev;
	size_t nevents;
	int ngens;
	struct gmodel gens[MAX_GENS];
	uint64_t ids[MAX_IDS]; /* every tree id the workload ever created */
	int nids;
	uint32_t next_ver;
	int max_level;         /* highest root level met */
	uint64_t max_deferred; /* most sectors carried in DEFER items */
};

struct crash_stats {
	size_t states, durable, inflight;
};

static struct workload *g_work;

/* Values 1..64 or 400..MAX_VAL bytes. */
static uint32_t val_len(uint32_t ver)
{
	uint64_t h = tu_mix64(ver);

	return h & 1 ? 1 + (uint32_t)((h >> 8) % 64) : 400 + (uint32_t)((h >> 8) % (MAX_VAL - 399));
}

/* ---- the model ----------------------------------------------------------- */

static bool model_has(const struct gmodel *m, uint64_t id)
{
	for (int i = 0; i < m->ntrees; i++)
		if (m->t[i].id == id)
			return true;
	return false;
}

static void note_id(struct workload *w, uint64_t id)
{
	for (int i = 0; i < w->nids; i++)
		if (w->ids[i] == id)
			return;
	TU_ASSERT(w->nids < MAX_IDS, "too many tree ids");
	w->ids[w->nids++] = id;
}

static void apply_put(struct arb_fs *fs, struct tmodel *t, unsigned idx, uint32_t ver)
{
	kv_put(tu_tree(fs, t->id), t->ver, idx, ver, true);
}

static void random_ops(struct arb_fs *fs, struct gmodel *m, uint64_t *rng, uint32_t *ver, int n)
{
	for (int i = 0; i < n && m->ntrees > 0; i++) {
		struct tmodel *t = &m->t[kv_rng_below(rng, (uint32_t)m->ntrees)];

		kv_random_op(tu_tree(fs, t->id), t->ver, rng, ver, 62, true);
	}
}

/* A run of neighbouring keys filled or emptied: splits and merges. */
static void bulk_ops(struct arb_fs *fs, struct gmodel *m, uint64_t *rng, uint32_t *ver)
{
	struct tmodel *t = &m->t[kv_rng_below(rng, (uint32_t)m->ntrees)];
	unsigned start = kv_rng_below(rng, NKEYS), len = 40 + kv_rng_below(rng, 160);
	bool fill = kv_rng_below(rng, 2);
	struct arb_tree *tree = tu_tree(fs, t->id);

	for (unsigned i = start; i < start + len && i < NKEYS; i++) {
		if (fill)
			kv_put(tree, t->ver, kv_sorted(i), ++*ver, true);
		else if (t->ver[kv_sorted(i)])
			kv_del(tree, t->ver, kv_sorted(i));
	}
}

static uint64_t tree_create(struct arb_fs *fs, struct gmodel *m)
{
	uint64_t id = tu_tree_create(fs);

	TU_ASSERT(!model_has(m, id), "arb_tree_create gave id %" PRIu64 " again", id);
	memset(&m->t[m->ntrees], 0, sizeof(m->t[0]));
	m->t[m->ntrees++].id = id;
	return id;
}

static uint64_t tree_clone(struct arb_fs *fs, struct gmodel *m, int src)
{
	uint64_t id = tu_tree_clone(fs, m->t[src].id);

	TU_ASSERT(!model_has(m, id), "arb_tree_clone gave id %" PRIu64 " again", id);
	m->t[m->ntrees] = m->t[src];
	m->t[m->ntrees++].id = id;
	return id;
}

static void tree_drop(struct arb_fs *fs, struct gmodel *m, int victim)
{
	tu_tree_drop(fs, m->t[victim].id);
	m->t[victim] = m->t[--m->ntrees];
}

/* Create, clone or drop a tree; returns the new id or 0. */
static uint64_t tree_op(struct arb_fs *fs, struct gmodel *m, uint64_t *rng)
{
	uint32_t what = kv_rng_below(rng, 3);

	if (m->ntrees == 0)
		return tree_create(fs, m);
	if (what == 2 && m->ntrees > 1) {
		tree_drop(fs, m, (int)kv_rng_below(rng, (uint32_t)m->ntrees));
		return 0;
	}
	if (m->ntrees >= MAX_TREES)
		return 0;
	if (what == 1)
		return tree_clone(fs, m, (int)kv_rng_below(rng, (uint32_t)m->ntrees));
	return tree_create(fs, m);
}

/* ---- verification -------------------------------------------------------- */

/* Every tree of m equals its model (both ways and by lookups); the trees of
 * other generations are absent. */
static void verify_model(struct arb_fs *fs, const struct workload *w, const struct gmodel *m)
{
	for (int i = 0; i < m->ntrees; i++) {
		struct arb_tree *tree = tu_tree(fs, m->t[i].id);

		kv_check_iter(tree, m->t[i].ver, ARB_ITER_FORWARD, true);
		kv_check_iter(tree, m->t[i].ver, ARB_ITER_BACKWARD, true);
		kv_check_lookups(tree, m->t[i].ver, true);
	}
	for (int i = 0; i < w->nids; i++) {
		struct arb_tree *tree;

		if (model_has(m, w->ids[i]))
			continue;
		TU_RC_EQ(arb_tree_get(fs, w->ids[i], &tree), -ENOENT);
	}
}

/* ---- the recorded workload --------------------------------------------- */

static uint64_t fs_gen(struct arb_fs *fs, uint64_t *fallback_from)
{
	struct arb_fs_info info;

	arb_fs_info(fs, &info);
	if (fallback_from)
		*fallback_from = info.fallback_from;
	return info.generation;
}

static void record_commit(struct workload *w, struct arb_fs *fs, const struct gmodel *cur)
{
	const struct gmodel *prev = &w->gens[w->ngens - 1];
	struct gmodel *g;
	uint64_t gen;
	size_t ev;

	TU_RC(arb_commit(fs));
	gen = fs_gen(fs, NULL);
	ev = arb_memdev_events(w->dev);
	TU_ASSERT(gen > prev->gen, "generation %" PRIu64 " after commit, was %" PRIu64, gen,
	          prev->gen);
	TU_ASSERT(ev > prev->ev_end && arb_memdev_event_is_flush(w->dev, ev - 1),
	          "commit of generation %" PRIu64 " did not end with a flush", gen);
	TU_ASSERT(w->ngens < MAX_GENS, "too many generations");
	g = &w->gens[w->ngens++];
	*g = *cur;
	g->gen = gen;
	g->ev_end = ev;
}

/* Rewrite every item of every tree: a commit that frees more extents than
 * the superblock lists, so frees are carried over in DEFER items. */
static void rewrite_all(struct arb_fs *fs, struct gmodel *m, uint32_t *ver)
{
	for (int i = 0; i < m->ntrees; i++)
		for (unsigned idx = 0; idx < NKEYS; idx++)
			if (m->t[i].ver[idx])
				apply_put(fs, &m->t[i], idx, ++*ver);
}

static int root_level_cb(void *ctx, const struct arb_node_view *node)
{
	int *level = ctx;

	if (node->level > *level)
		*level = node->level;
	return 1; /* the root is enough */
}

/* Highest root level among the trees of m. */
static int max_root_level(struct arb_fs *fs, const struct gmodel *m)
{
	int level = 0;

	for (int i = 0; i < m->ntrees; i++)
		TU_RC(arb_tree_walk(tu_tree(fs, m->t[i].id), root_level_cb, &level));
	return level;
}

static void workload_step(struct workload *w, struct arb_fs *fs, uint64_t *rng, int c)
{
	struct gmodel cur = w->gens[w->ngens - 1];
	struct arb_fs_info info;
	uint64_t id = 0;
	int level;

	if (c == 1) {
		note_id(w, tree_create(fs, &cur));
		if (kv_rng_below(rng, 2))
			note_id(w, tree_create(fs, &cur));
	} else if (kv_rng_below(rng, 100) < 15) {
		id = tree_op(fs, &cur, rng);
		if (id)
			note_id(w, id);
	}
	if (kv_rng_below(rng, 100) < 12)
		bulk_ops(fs, &cur, rng, &w->next_ver);
	if (c % 10 == 5)
		rewrite_all(fs, &cur, &w->next_ver);
	random_ops(fs, &cur, rng, &w->next_ver, 10 + (int)kv_rng_below(rng, 150));
	record_commit(w, fs, &cur);
	level = max_root_level(fs, &cur);
	w->max_level = level > w->max_level ? level : w->max_level;
	arb_fs_info(fs, &info);
	if (info.deferred_sectors > w->max_deferred)
		w->max_deferred = info.deferred_sectors;
	if (c % 8 == 0) {
		verify_model(fs, w, &w->gens[w->ngens - 1]);
		tu_check_clean(fs);
	}
}

static struct workload *workload_get(void)
{
	struct workload *w = g_work;
	struct arb_fs *fs = NULL;
	uint64_t rng;
	int ncommits = (int)(BASE_COMMITS * tu_scale());

	if (w)
		return w;
	kv_init(NKEYS, MAX_VAL, val_len);
	ncommits = ncommits < 10 ? 10 : ncommits > MAX_GENS - 1 ? MAX_GENS - 1 : ncommits;
	w = calloc(1, sizeof(*w));
	TU_ASSERT(w != NULL);
	tu_seeds(DEFAULT_SEED, 1, &w->seed);
	rng = w->seed;
	kv_ctx(w->seed, "recording the workload");
	TU_RC(arb_memdev_create(DEV_SIZE, &w->dev));
	kv_format(w->dev, w->seed, NODESIZE);
	TU_RC(kv_open(w->dev, 0, &fs));
	arb_memdev_record(w->dev);
	w->gens[0].gen = fs_gen(fs, NULL);
	w->ngens = 1;
	for (int c = 1; c <= ncommits; c++)
		workload_step(w, fs, &rng, c);
	w->nevents = w->gens[w->ngens - 1].ev_end;
	arb_close(fs);
	print_message("# crash workload: seed=%" PRIu64 " commits=%d generations %" PRIu64
	              "..%" PRIu64
	              " events=%zu trees ever=%d, root levels up to %d, DEFER items up to %" PRIu64
	              " sectors\n",
	              w->seed, ncommits, w->gens[0].gen, w->gens[w->ngens - 1].gen, w->nevents,
	              w->nids, w->max_level, w->max_deferred);
	g_work = w;
	return w;
}

/* ---- one crash state ----------------------------------------------------- */

/* The last commit whose final flush is among the events [0, cut). */
static int durable_commit(const struct workload *w, size_t cut)
{
	int k = 0;

	while (k + 1 < w->ngens && w->gens[k + 1].ev_end <= cut)
		k++;
	return k;
}

static const struct gmodel *expected_model(const struct workload *w, size_t cut, uint64_t gen,
                                           struct crash_stats *st)
{
	int k = durable_commit(w, cut);

	if (w->gens[k].gen == gen) {
		st->durable++;
		return &w->gens[k];
	}
	if (k + 1 < w->ngens && w->gens[k + 1].gen == gen) {
		st->inflight++;
		return &w->gens[k + 1];
	}
	TU_FAIL("opened generation %" PRIu64 ", expected %" PRIu64 " or %" PRIu64, gen,
	        w->gens[k].gen, k + 1 < w->ngens ? w->gens[k + 1].gen : w->gens[k].gen);
}

/*
 * The older generations the superblock ring still names must have survived
 * the crash too (deferred frees, invariant 4): each opens with
 * max_generation and equals its model.
 */
static void verify_ring(const struct workload *w, struct arb_dev *dev, const struct gmodel *m)
{
	for (int i = 0; i < w->ngens; i++) {
		const struct gmodel *old = &w->gens[i];
		struct arb_fs *fs = NULL;
		size_t ctx;

		if (old->gen >= m->gen || old->gen + ARB_SUPER_SLOTS <= m->gen)
			continue;
		ctx = kv_ctx_push("ring generation", old->gen);
		TU_RC(kv_open(dev, old->gen, &fs));
		TU_ASSERT(fs_gen(fs, NULL) == old->gen,
		          "max_generation %" PRIu64 " opened %" PRIu64, old->gen, fs_gen(fs, NULL));
		verify_model(fs, w, old);
		tu_check_clean(fs);
		arb_close(fs);
		kv_ctx_pop(ctx);
	}
}

/* Recovery must be writable: more changes, a commit, a reopen. */
static void continue_after(const struct workload *w, struct arb_dev *dev, struct arb_fs *fs,
                           const struct gmodel *m, uint64_t rs)
{
	struct gmodel cur = *m;
	uint64_t rng = tu_mix64(rs), gen;
	uint32_t ver = w->next_ver + 1 + (uint32_t)(rs % 1000) * 64;
	size_t ctx = kv_ctx_push("writing after recovery from generation", m->gen);

	if (cur.ntrees < MAX_TREES && (cur.ntrees == 0 || kv_rng_below(&rng, 4) == 0))
		tree_create(fs, &cur);
	random_ops(fs, &cur, &rng, &ver, 24);
	TU_RC(arb_commit(fs));
	gen = fs_gen(fs, NULL);
	TU_ASSERT(gen > m->gen, "commit after recovery gave generation %" PRIu64, gen);
	arb_close(fs);
	TU_RC(kv_open(dev, 0, &fs));
	TU_ASSERT(fs_gen(fs, NULL) == gen,
	          "reopen after recovery: generation %" PRIu64 ", want %" PRIu64, fs_gen(fs, NULL),
	          gen);
	verify_model(fs, w, &cur);
	tu_check_clean(fs);
	arb_close(fs);
	kv_ctx_pop(ctx);
}

/* The two images around the pending writes of one cut, and where they differ. */
static struct torn_src {
	size_t cut;
	struct arb_dev *stable, *full;
	uint64_t *diff; /* offsets of the sectors that differ */
	size_t ndiff;
} g_torn;

static void torn_free(void)
{
	if (g_torn.stable)
		arb_dev_close(g_torn.stable);
	if (g_torn.full)
		arb_dev_close(g_torn.full);
	free(g_torn.diff);
	memset(&g_torn, 0, sizeof(g_torn));
}

static void torn_prepare(const struct workload *w, size_t cut)
{
	size_t stable = cut;
	const uint8_t *a, *b;

	if (g_torn.stable && g_torn.cut == cut)
		return;
	torn_free();
	while (stable > 0 && !arb_memdev_event_is_flush(w->dev, stable - 1))
		stable--;
	TU_RC(arb_memdev_crash_image(w->dev, stable, 0, &g_torn.stable));
	TU_RC(arb_memdev_crash_image(w->dev, cut, 0, &g_torn.full));
	g_torn.cut = cut;
	g_torn.diff = calloc(DEV_SIZE / SECTOR, sizeof(*g_torn.diff));
	TU_ASSERT(g_torn.diff != NULL, "out of memory");
	a = arb_memdev_data(g_torn.stable);
	b = arb_memdev_data(g_torn.full);
	for (uint64_t off = 0; off < DEV_SIZE; off += SECTOR)
		if (memcmp(a + off, b + off, SECTOR) != 0)
			g_torn.diff[g_torn.ndiff++] = off;
}

/*
 * The image a power cut leaves when the disk writes 4 KiB sectors one by one
 * from a volatile cache: every write before the last flush preceding the cut,
 * plus a random subset of the sectors written after it (a multi-block write
 * torn apart, which one memdev event cannot show).
 */
static struct arb_dev *torn_image(const struct workload *w, size_t cut, uint64_t seed)
{
	struct arb_dev *dev = NULL;
	uint64_t rng = seed;
	uint32_t keep_pct = 10 + kv_rng_below(&rng, 81);
	const uint8_t *b;
	uint8_t *a;

	torn_prepare(w, cut);
	TU_RC(arb_memdev_from_buffer(arb_memdev_data(g_torn.stable), DEV_SIZE, &dev));
	a = arb_memdev_data(dev);
	b = arb_memdev_data(g_torn.full);
	for (size_t i = 0; i < g_torn.ndiff; i++)
		if (kv_rng_below(&rng, 100) < keep_pct)
			memcpy(a + g_torn.diff[i], b + g_torn.diff[i], SECTOR);
	return dev;
}

enum crash_mode { CRASH_ORDERED, CRASH_REORDERED, CRASH_TORN };

static struct arb_dev *crash_image(const struct workload *w, size_t cut, enum crash_mode mode,
                                   uint64_t rseed)
{
	struct arb_dev *dev = NULL;

	if (mode == CRASH_TORN)
		return torn_image(w, cut, rseed);
	TU_RC(arb_memdev_crash_image(w->dev, cut, mode == CRASH_REORDERED ? rseed : 0, &dev));
	return dev;
}

static void crash_state(const struct workload *w, size_t cut, enum crash_mode mode, uint64_t rseed,
                        struct crash_stats *st)
{
	static const char *const modes[] = {"in order", "reorder_seed=", "torn_seed="};
	struct arb_dev *dev;
	struct arb_fs *fs = NULL;
	const struct gmodel *m;
	uint64_t gen, fallback;

	if (mode == CRASH_ORDERED)
		kv_ctx(w->seed, "cut=%zu of %zu in order", cut, w->nevents);
	else
		kv_ctx(w->seed, "cut=%zu of %zu %s%" PRIu64, cut, w->nevents, modes[mode], rseed);
	dev = crash_image(w, cut, mode, rseed);
	TU_RC(kv_open(dev, 0, &fs));
	gen = fs_gen(fs, &fallback);
	TU_ASSERT(fallback == 0, "open fell back from generation %" PRIu64 " to %" PRIu64, fallback,
	          gen);
	m = expected_model(w, cut, gen, st);
	verify_model(fs, w, m);
	tu_check_clean(fs);
	if (mode == CRASH_ORDERED || (rseed >> 1) % 4 == 0)
		verify_ring(w, dev, m);
	continue_after(w, dev, fs, m, tu_mix64(cut * 31 + rseed));
	arb_dev_close(dev);
	st->states++;
}

static void report(const char *what, const struct crash_stats *st, double t0)
{
	print_message("# %s: %zu crash states (%zu durable generation, %zu commit in flight) in "
	              "%.1f s\n",
	              what, st->states, st->durable, st->inflight, tu_now_sec() - t0);
}

/* ---- tests --------------------------------------------------------------- */

/* Every cut, the writes before it applied in order. */
static void test_crash_every_cut(void **state)
{
	const struct workload *w = workload_get();
	struct crash_stats st = {0};
	double t0 = tu_now_sec();

	(void)state;
	for (size_t cut = 0; cut <= w->nevents; cut++)
		crash_state(w, cut, CRASH_ORDERED, 0, &st);
	report("every cut", &st, t0);
	assert_int_equal(st.states, w->nevents + 1);
	assert_true(st.durable > 0 && st.inflight > 0);
}

/* Cuts with unflushed writes pending, lost and reordered at random. */
static size_t reorder_cuts(const struct workload *w, size_t *cuts)
{
	size_t n = 0, pending = 0;

	for (size_t cut = 1; cut <= w->nevents; cut++) {
		if (arb_memdev_event_is_flush(w->dev, cut - 1))
			pending = 0;
		else
			pending++;
		if (pending >= 1)
			cuts[n++] = cut;
	}
	return n;
}

static int cmp_size(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;

	return x < y ? -1 : x > y;
}

/* Sampled cuts in increasing order: crash images are cheapest that way. */
static size_t *sample_cuts(const struct workload *w, uint64_t *rng, size_t groups)
{
	size_t *cuts = calloc(w->nevents + 1, sizeof(*cuts));
	size_t *pick = calloc(groups, sizeof(*pick));
	size_t ncuts;

	assert_non_null(cuts);
	assert_non_null(pick);
	ncuts = reorder_cuts(w, cuts);
	assert_true(ncuts > 0);
	for (size_t g = 0; g < groups; g++)
		pick[g] = cuts[kv_rng_below(rng, (uint32_t)ncuts)];
	qsort(pick, groups, sizeof(*pick), cmp_size);
	free(cuts);
	return pick;
}

static void crash_sampled(enum crash_mode mode, double base, const char *what)
{
	const struct workload *w = workload_get();
	struct crash_stats st = {0};
	uint64_t rng = tu_mix64(w->seed ^ (0x7265 + (uint64_t)mode));
	size_t groups = (size_t)(base * tu_scale() / REORDER_GROUP) + 1, *pick;
	double t0 = tu_now_sec();

	pick = sample_cuts(w, &rng, groups);
	for (size_t g = 0; g < groups; g++)
		for (int v = 0; v < REORDER_GROUP; v++)
			crash_state(w, pick[g], mode, kv_rng_next(&rng) | 1, &st);
	free(pick);
	report(what, &st, t0);
	assert_int_equal(st.states, groups * REORDER_GROUP);
}

/* Cuts with unflushed writes pending: a random subset lands, in any order. */
static void test_crash_reordered(void **state)
{
	(void)state;
	crash_sampled(CRASH_REORDERED, BASE_REORDER, "reordered writes");
}

/* The same with every 4 KiB sector of the pending writes landing or not. */
static void test_crash_torn(void **state)
{
	(void)state;
	crash_sampled(CRASH_TORN, BASE_TORN, "torn writes");
}

static int teardown(void **state)
{
	(void)state;
	torn_free();
	kv_free();
	if (g_work) {
		arb_dev_close(g_work->dev);
		free(g_work);
		g_work = NULL;
	}
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_crash_every_cut),
	        cmocka_unit_test(test_crash_reordered),
	        cmocka_unit_test(test_crash_torn),
	};

	return cmocka_run_group_tests(tests, NULL, teardown);
}
