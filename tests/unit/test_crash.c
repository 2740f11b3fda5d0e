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
 * A failure names the seed, the cut and the reorder seed.  Environment:
 * ARBOR_TEST_SEED (default fixed), ARBOR_TEST_SCALE (default 1.0).
 */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "arbor/btree.h"
#include "arbor/check.h"
#include "arbor/fs.h"
#include "arbor/memdev.h"
#include "arbor_format.h"

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
static unsigned g_sorted[NKEYS]; /* key indices in key order */
static char g_ctx[160];          /* printed with every failure */
static char g_msgs[4][256];      /* last engine warnings and errors */
static unsigned g_nmsgs;

/* ---- failure reporting ------------------------------------------------- */

static void dump_engine_msgs(void)
{
	unsigned n = g_nmsgs < 4 ? g_nmsgs : 4;

	for (unsigned i = g_nmsgs - n; i < g_nmsgs; i++)
		print_message("# engine: %s\n", g_msgs[i % 4]);
}

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			char m_[256];                                                              \
			snprintf(m_, sizeof(m_), __VA_ARGS__);                                     \
			dump_engine_msgs();                                                        \
			fail_msg("%s:%d: [%s] %s", __FILE__, __LINE__, g_ctx, m_);                 \
		}                                                                                  \
	} while (0)

#define CHECK_RET(expr, want)                                                                      \
	do {                                                                                       \
		int r_ = (expr);                                                                   \
		CHECK(r_ == (want), "%s returned %d, expected %d", #expr, r_, (int)(want));        \
	} while (0)

/* Append to the failure context; returns the length to restore. */
static size_t ctx_push(const char *what, uint64_t gen)
{
	size_t len = strlen(g_ctx);

	snprintf(g_ctx + len, sizeof(g_ctx) - len, ", %s %" PRIu64, what, gen);
	return len;
}

static void ctx_pop(size_t len)
{
	g_ctx[len] = 0;
}

/* A new failure context; forgets the engine messages of the last one. */
static void set_ctx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void set_ctx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(g_ctx, sizeof(g_ctx), fmt, ap);
	va_end(ap);
	g_nmsgs = 0;
}

static void msg_capture(void *ctx, enum arb_msg_level level, const char *text)
{
	(void)ctx;
	if (level > ARB_MSG_WARN)
		return;
	snprintf(g_msgs[g_nmsgs % 4], sizeof(g_msgs[0]), "%s", text);
	g_nmsgs++;
}

/* ---- small helpers ----------------------------------------------------- */

static uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static uint64_t rng_next(uint64_t *s)
{
	*s += 0x9e3779b97f4a7c15ull;
	return mix64(*s);
}

static uint32_t rng_below(uint64_t *s, uint32_t n)
{
	return n ? (uint32_t)(rng_next(s) % n) : 0;
}

static double test_scale(void)
{
	const char *s = getenv("ARBOR_TEST_SCALE");
	double v = s && *s ? strtod(s, NULL) : 1.0;

	if (!(v > 0.0))
		v = 1.0;
	return v < 0.05 ? 0.05 : v > 100.0 ? 100.0 : v;
}

static uint64_t test_seed(void)
{
	const char *s = getenv("ARBOR_TEST_SEED");

	return s && *s ? strtoull(s, NULL, 0) : DEFAULT_SEED;
}

static double now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Key idx: objectid idx/4+1, type 1 or 2, offset from idx%4 (injective). */
static void key_of(unsigned idx, struct arb_key *k)
{
	k->objectid = idx / 4 + 1;
	k->type = (uint8_t)(1 + idx % 2);
	k->offset = (uint64_t)(idx % 4) * 1000003u;
}

static int cmp_idx(const void *a, const void *b)
{
	struct arb_key ka, kb;

	key_of(*(const unsigned *)a, &ka);
	key_of(*(const unsigned *)b, &kb);
	return arb_key_cmp(&ka, &kb);
}

static void init_sorted(void)
{
	for (unsigned i = 0; i < NKEYS; i++)
		g_sorted[i] = i;
	qsort(g_sorted, NKEYS, sizeof(g_sorted[0]), cmp_idx);
}

static uint32_t val_len(uint32_t ver)
{
	uint64_t h = mix64(ver);

	return h & 1 ? 1 + (uint32_t)((h >> 8) % 64) : 400 + (uint32_t)((h >> 8) % (MAX_VAL - 399));
}

static void val_fill(uint32_t ver, uint8_t *buf, uint32_t len)
{
	uint64_t s = ver * 0x100000001b3ull;

	for (uint32_t i = 0; i < len; i += 8) {
		uint64_t r = rng_next(&s);
		uint32_t n = len - i < 8 ? len - i : 8;

		memcpy(buf + i, &r, n);
	}
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
	CHECK(w->nids < MAX_IDS, "too many tree ids");
	w->ids[w->nids++] = id;
}

static struct arb_tree *get_tree(struct arb_fs *fs, uint64_t id)
{
	struct arb_tree *tree = NULL;

	CHECK_RET(arb_tree_get(fs, id, &tree), 0);
	return tree;
}

static void apply_put(struct arb_fs *fs, struct tmodel *t, unsigned idx, uint32_t ver)
{
	struct arb_tree *tree = get_tree(fs, t->id);
	uint8_t buf[MAX_VAL];
	struct arb_key k;
	uint32_t len = val_len(ver);

	key_of(idx, &k);
	val_fill(ver, buf, len);
	if (ver % 3 == 0)
		CHECK_RET(arb_put(tree, &k, buf, len), 0);
	else if (t->ver[idx])
		CHECK_RET(arb_update(tree, &k, buf, len), 0);
	else
		CHECK_RET(arb_insert(tree, &k, buf, len), 0);
	t->ver[idx] = ver;
}

static void apply_del(struct arb_fs *fs, struct tmodel *t, unsigned idx)
{
	struct arb_tree *tree = get_tree(fs, t->id);
	struct arb_key k;

	key_of(idx, &k);
	CHECK_RET(arb_delete(tree, &k), t->ver[idx] ? 0 : -ENOENT);
	t->ver[idx] = 0;
}

static void random_ops(struct arb_fs *fs, struct gmodel *m, uint64_t *rng, uint32_t *ver, int n)
{
	for (int i = 0; i < n && m->ntrees > 0; i++) {
		struct tmodel *t = &m->t[rng_below(rng, (uint32_t)m->ntrees)];
		unsigned idx = rng_below(rng, NKEYS);

		if (rng_below(rng, 100) < 62)
			apply_put(fs, t, idx, ++*ver);
		else
			apply_del(fs, t, idx);
	}
}

/* A run of neighbouring keys filled or emptied: splits and merges. */
static void bulk_ops(struct arb_fs *fs, struct gmodel *m, uint64_t *rng, uint32_t *ver)
{
	struct tmodel *t = &m->t[rng_below(rng, (uint32_t)m->ntrees)];
	unsigned start = rng_below(rng, NKEYS), len = 40 + rng_below(rng, 160);
	bool fill = rng_below(rng, 2);

	for (unsigned i = start; i < start + len && i < NKEYS; i++) {
		if (fill)
			apply_put(fs, t, g_sorted[i], ++*ver);
		else if (t->ver[g_sorted[i]])
			apply_del(fs, t, g_sorted[i]);
	}
}

static uint64_t tree_create(struct arb_fs *fs, struct gmodel *m)
{
	uint64_t id = 0;

	CHECK_RET(arb_tree_create(fs, &id), 0);
	CHECK(id >= 256 && !model_has(m, id), "arb_tree_create gave id %" PRIu64, id);
	memset(&m->t[m->ntrees], 0, sizeof(m->t[0]));
	m->t[m->ntrees++].id = id;
	return id;
}

static uint64_t tree_clone(struct arb_fs *fs, struct gmodel *m, int src)
{
	uint64_t id = 0;

	CHECK_RET(arb_tree_clone(fs, m->t[src].id, &id), 0);
	CHECK(id >= 256 && !model_has(m, id), "arb_tree_clone gave id %" PRIu64, id);
	m->t[m->ntrees] = m->t[src];
	m->t[m->ntrees++].id = id;
	return id;
}

static void tree_drop(struct arb_fs *fs, struct gmodel *m, int victim)
{
	CHECK_RET(arb_tree_drop(fs, m->t[victim].id), 0);
	m->t[victim] = m->t[--m->ntrees];
}

/* Create, clone or drop a tree; returns the new id or 0. */
static uint64_t tree_op(struct arb_fs *fs, struct gmodel *m, uint64_t *rng)
{
	uint32_t what = rng_below(rng, 3);

	if (m->ntrees == 0)
		return tree_create(fs, m);
	if (what == 2 && m->ntrees > 1) {
		tree_drop(fs, m, (int)rng_below(rng, (uint32_t)m->ntrees));
		return 0;
	}
	if (m->ntrees >= MAX_TREES)
		return 0;
	if (what == 1)
		return tree_clone(fs, m, (int)rng_below(rng, (uint32_t)m->ntrees));
	return tree_create(fs, m);
}

/* ---- verification -------------------------------------------------------- */

static unsigned next_present(const struct tmodel *t, unsigned pos)
{
	while (pos < NKEYS && !t->ver[g_sorted[pos]])
		pos++;
	return pos;
}

static unsigned prev_present(const struct tmodel *t, unsigned pos)
{
	while (pos > 0 && !t->ver[g_sorted[pos - 1]])
		pos--;
	return pos; /* one past the item, 0 at the end */
}

static void check_item(const struct tmodel *t, unsigned idx, const struct arb_key *k,
                       const void *data, uint32_t len)
{
	struct arb_key want;
	uint8_t buf[MAX_VAL];
	uint32_t ver = t->ver[idx];

	key_of(idx, &want);
	CHECK(arb_key_cmp(k, &want) == 0,
	      "tree %" PRIu64 ": got key (%" PRIu64 ",%u,%" PRIu64 "), want (%" PRIu64
	      ",%u,%" PRIu64 ")",
	      t->id, k->objectid, k->type, k->offset, want.objectid, want.type, want.offset);
	val_fill(ver, buf, val_len(ver));
	CHECK(len == val_len(ver) && memcmp(data, buf, len) == 0,
	      "tree %" PRIu64 " key idx %u: wrong value (len %u, want %u)", t->id, idx, len,
	      val_len(ver));
}

static void verify_iter_fwd(struct arb_tree *tree, const struct tmodel *t)
{
	struct arb_key start = ARB_KEY_MIN, k;
	struct arb_iter *it = NULL;
	const void *data;
	uint32_t len;
	unsigned pos = next_present(t, 0);
	int ret;

	CHECK_RET(arb_iter_open(tree, &start, ARB_ITER_FORWARD, &it), 0);
	while ((ret = arb_iter_next(it, &k, &data, &len)) == 1) {
		CHECK(pos < NKEYS, "tree %" PRIu64 ": extra item (%" PRIu64 ",%u,%" PRIu64 ")",
		      t->id, k.objectid, k.type, k.offset);
		check_item(t, g_sorted[pos], &k, data, len);
		pos = next_present(t, pos + 1);
	}
	arb_iter_close(it);
	CHECK(ret == 0, "tree %" PRIu64 ": arb_iter_next returned %d", t->id, ret);
	CHECK(pos == NKEYS, "tree %" PRIu64 ": forward iteration misses key idx %u", t->id,
	      g_sorted[pos]);
}

static void verify_iter_back(struct arb_tree *tree, const struct tmodel *t)
{
	struct arb_key start = ARB_KEY_MAX, k;
	struct arb_iter *it = NULL;
	const void *data;
	uint32_t len;
	unsigned pos = prev_present(t, NKEYS);
	int ret;

	CHECK_RET(arb_iter_open(tree, &start, ARB_ITER_BACKWARD, &it), 0);
	while ((ret = arb_iter_next(it, &k, &data, &len)) == 1) {
		CHECK(pos > 0, "tree %" PRIu64 ": extra item going backward", t->id);
		check_item(t, g_sorted[pos - 1], &k, data, len);
		pos = prev_present(t, pos - 1);
	}
	arb_iter_close(it);
	CHECK(ret == 0, "tree %" PRIu64 ": backward arb_iter_next returned %d", t->id, ret);
	CHECK(pos == 0, "tree %" PRIu64 ": backward iteration misses key idx %u", t->id,
	      g_sorted[pos - 1]);
}

static void verify_lookups(struct arb_tree *tree, const struct tmodel *t)
{
	uint8_t buf[MAX_VAL + 8];

	for (unsigned idx = 0; idx < NKEYS; idx++) {
		struct arb_key k;
		uint32_t len = 0;
		int ret;

		key_of(idx, &k);
		ret = arb_lookup(tree, &k, buf, sizeof(buf), &len);
		if (!t->ver[idx]) {
			CHECK(ret == -ENOENT, "tree %" PRIu64 ": lookup of absent idx %u: %d",
			      t->id, idx, ret);
			continue;
		}
		CHECK(ret == 0, "tree %" PRIu64 ": lookup of idx %u: %d", t->id, idx, ret);
		check_item(t, idx, &k, buf, len);
	}
}

static void verify_model(struct arb_fs *fs, const struct workload *w, const struct gmodel *m)
{
	for (int i = 0; i < m->ntrees; i++) {
		struct arb_tree *tree = get_tree(fs, m->t[i].id);

		verify_iter_fwd(tree, &m->t[i]);
		verify_iter_back(tree, &m->t[i]);
		verify_lookups(tree, &m->t[i]);
	}
	for (int i = 0; i < w->nids; i++) {
		struct arb_tree *tree;

		if (model_has(m, w->ids[i]))
			continue;
		CHECK(arb_tree_get(fs, w->ids[i], &tree) == -ENOENT,
		      "tree %" PRIu64 " must not exist in generation %" PRIu64, w->ids[i], m->gen);
	}
}

static void check_clean(struct arb_fs *fs)
{
	struct arb_check_report rep;
	int ret;

	memset(&rep, 0, sizeof(rep));
	ret = arb_check(fs, &rep);
	CHECK(ret == 0 && rep.bad_nodes == 0 && rep.count_mismatch == 0 && rep.leaked == 0 &&
	              rep.missing == 0 && rep.used_mismatch == 0,
	      "arb_check = %d: bad %" PRIu64 " mismatch %" PRIu64 " leaked %" PRIu64
	      " missing %" PRIu64 " used %" PRIu64,
	      ret, rep.bad_nodes, rep.count_mismatch, rep.leaked, rep.missing, rep.used_mismatch);
}

/* ---- the recorded workload --------------------------------------------- */

static int open_gen(struct arb_dev *dev, uint64_t max_gen, struct arb_fs **ret_fs)
{
	struct arb_open_opts oo;

	memset(&oo, 0, sizeof(oo));
	oo.max_generation = max_gen;
	oo.msg = msg_capture;
	return arb_open(dev, &oo, ret_fs);
}

static int open_fs(struct arb_dev *dev, struct arb_fs **ret_fs)
{
	return open_gen(dev, 0, ret_fs);
}

static uint64_t fs_gen(struct arb_fs *fs, uint64_t *fallback_from)
{
	struct arb_fs_info info;

	arb_fs_info(fs, &info);
	if (fallback_from)
		*fallback_from = info.fallback_from;
	return info.generation;
}

static void format_dev(struct arb_dev *dev, uint64_t seed)
{
	struct arb_format_opts fo;
	uint8_t fsid[16], devuuid[16];
	uint64_t a = mix64(seed), b = mix64(a);

	memcpy(fsid, &a, 8);
	memcpy(fsid + 8, &b, 8);
	memcpy(devuuid, &b, 8);
	memcpy(devuuid + 8, &a, 8);
	memset(&fo, 0, sizeof(fo));
	fo.nodesize = NODESIZE;
	fo.fsid = fsid;
	fo.devuuid = devuuid;
	fo.hash_seed = seed | 1;
	fo.time_sec = 1700000000;
	CHECK_RET(arb_format(dev, &fo), 0);
}

static void record_commit(struct workload *w, struct arb_fs *fs, const struct gmodel *cur)
{
	const struct gmodel *prev = &w->gens[w->ngens - 1];
	struct gmodel *g;
	uint64_t gen;
	size_t ev;

	CHECK_RET(arb_commit(fs), 0);
	gen = fs_gen(fs, NULL);
	ev = arb_memdev_events(w->dev);
	CHECK(gen > prev->gen, "generation %" PRIu64 " after commit, was %" PRIu64, gen, prev->gen);
	CHECK(ev > prev->ev_end && arb_memdev_event_is_flush(w->dev, ev - 1),
	      "commit of generation %" PRIu64 " did not end with a flush", gen);
	CHECK(w->ngens < MAX_GENS, "too many generations");
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
		CHECK_RET(arb_tree_walk(get_tree(fs, m->t[i].id), root_level_cb, &level), 0);
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
		if (rng_below(rng, 2))
			note_id(w, tree_create(fs, &cur));
	} else if (rng_below(rng, 100) < 15) {
		id = tree_op(fs, &cur, rng);
		if (id)
			note_id(w, id);
	}
	if (rng_below(rng, 100) < 12)
		bulk_ops(fs, &cur, rng, &w->next_ver);
	if (c % 10 == 5)
		rewrite_all(fs, &cur, &w->next_ver);
	random_ops(fs, &cur, rng, &w->next_ver, 10 + (int)rng_below(rng, 150));
	record_commit(w, fs, &cur);
	level = max_root_level(fs, &cur);
	w->max_level = level > w->max_level ? level : w->max_level;
	arb_fs_info(fs, &info);
	if (info.deferred_sectors > w->max_deferred)
		w->max_deferred = info.deferred_sectors;
	if (c % 8 == 0) {
		verify_model(fs, w, &w->gens[w->ngens - 1]);
		check_clean(fs);
	}
}

static struct workload *workload_get(void)
{
	struct workload *w = g_work;
	struct arb_fs *fs = NULL;
	uint64_t rng;
	int ncommits = (int)(BASE_COMMITS * test_scale());

	if (w)
		return w;
	init_sorted();
	ncommits = ncommits < 10 ? 10 : ncommits > MAX_GENS - 1 ? MAX_GENS - 1 : ncommits;
	w = calloc(1, sizeof(*w));
	CHECK(w != NULL, "out of memory");
	w->seed = test_seed();
	rng = w->seed;
	set_ctx("workload seed=%" PRIu64, w->seed);
	CHECK_RET(arb_memdev_create(DEV_SIZE, &w->dev), 0);
	format_dev(w->dev, w->seed);
	CHECK_RET(open_fs(w->dev, &fs), 0);
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
	CHECK(0, "opened generation %" PRIu64 ", expected %" PRIu64 " or %" PRIu64, gen,
	      w->gens[k].gen, k + 1 < w->ngens ? w->gens[k + 1].gen : w->gens[k].gen);
	return NULL;
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
		int ret;

		if (old->gen >= m->gen || old->gen + ARB_SUPER_SLOTS <= m->gen)
			continue;
		ctx = ctx_push("ring generation", old->gen);
		ret = open_gen(dev, old->gen, &fs);
		CHECK(ret == 0, "open of ring generation %" PRIu64 ": %d", old->gen, ret);
		CHECK(fs_gen(fs, NULL) == old->gen, "max_generation %" PRIu64 " opened %" PRIu64,
		      old->gen, fs_gen(fs, NULL));
		verify_model(fs, w, old);
		check_clean(fs);
		arb_close(fs);
		ctx_pop(ctx);
	}
}

/* Recovery must be writable: more changes, a commit, a reopen. */
static void continue_after(const struct workload *w, struct arb_dev *dev, struct arb_fs *fs,
                           const struct gmodel *m, uint64_t rs)
{
	struct gmodel cur = *m;
	uint64_t rng = mix64(rs), gen;
	uint32_t ver = w->next_ver + 1 + (uint32_t)(rs % 1000) * 64;
	size_t ctx = ctx_push("writing after recovery from generation", m->gen);

	if (cur.ntrees < MAX_TREES && (cur.ntrees == 0 || rng_below(&rng, 4) == 0))
		tree_create(fs, &cur);
	random_ops(fs, &cur, &rng, &ver, 24);
	CHECK_RET(arb_commit(fs), 0);
	gen = fs_gen(fs, NULL);
	CHECK(gen > m->gen, "commit after recovery gave generation %" PRIu64, gen);
	arb_close(fs);
	CHECK_RET(open_fs(dev, &fs), 0);
	CHECK(fs_gen(fs, NULL) == gen,
	      "reopen after recovery: generation %" PRIu64 ", want %" PRIu64, fs_gen(fs, NULL),
	      gen);
	verify_model(fs, w, &cur);
	check_clean(fs);
	arb_close(fs);
	ctx_pop(ctx);
}

/*
 * The image a power cut leaves when the disk writes 4 KiB sectors one by one
 * from a volatile cache: every write before the last flush preceding the cut,
 * plus a random subset of the sectors written after it (a multi-block write
 * torn apart, which one memdev event cannot show).
 */
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
	CHECK_RET(arb_memdev_crash_image(w->dev, stable, 0, &g_torn.stable), 0);
	CHECK_RET(arb_memdev_crash_image(w->dev, cut, 0, &g_torn.full), 0);
	g_torn.cut = cut;
	g_torn.diff = calloc(DEV_SIZE / SECTOR, sizeof(*g_torn.diff));
	CHECK(g_torn.diff != NULL, "out of memory");
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
	uint32_t keep_pct = 10 + rng_below(&rng, 81);
	const uint8_t *b;
	uint8_t *a;

	torn_prepare(w, cut);
	CHECK_RET(arb_memdev_from_buffer(arb_memdev_data(g_torn.stable), DEV_SIZE, &dev), 0);
	a = arb_memdev_data(dev);
	b = arb_memdev_data(g_torn.full);
	for (size_t i = 0; i < g_torn.ndiff; i++)
		if (rng_below(&rng, 100) < keep_pct)
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
	CHECK_RET(arb_memdev_crash_image(w->dev, cut, mode == CRASH_REORDERED ? rseed : 0, &dev),
	          0);
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
		set_ctx("ARBOR_TEST_SEED=%" PRIu64 " cut=%zu of %zu in order", w->seed, cut,
		        w->nevents);
	else
		set_ctx("ARBOR_TEST_SEED=%" PRIu64 " cut=%zu of %zu %s%" PRIu64, w->seed, cut,
		        w->nevents, modes[mode], rseed);
	dev = crash_image(w, cut, mode, rseed);
	CHECK_RET(open_fs(dev, &fs), 0);
	gen = fs_gen(fs, &fallback);
	CHECK(fallback == 0, "open fell back from generation %" PRIu64 " to %" PRIu64, fallback,
	      gen);
	m = expected_model(w, cut, gen, st);
	verify_model(fs, w, m);
	check_clean(fs);
	if (mode == CRASH_ORDERED || (rseed >> 1) % 4 == 0)
		verify_ring(w, dev, m);
	continue_after(w, dev, fs, m, mix64(cut * 31 + rseed));
	arb_dev_close(dev);
	st->states++;
}

static void report(const char *what, const struct crash_stats *st, double t0)
{
	print_message("# %s: %zu crash states (%zu durable generation, %zu commit in flight) in "
	              "%.1f s\n",
	              what, st->states, st->durable, st->inflight, now_sec() - t0);
}

/* ---- tests --------------------------------------------------------------- */

/* Every cut, the writes before it applied in order. */
static void test_crash_every_cut(void **state)
{
	const struct workload *w = workload_get();
	struct crash_stats st = {0};
	double t0 = now_sec();

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
		pick[g] = cuts[rng_below(rng, (uint32_t)ncuts)];
	qsort(pick, groups, sizeof(*pick), cmp_size);
	free(cuts);
	return pick;
}

static void crash_sampled(enum crash_mode mode, double base, const char *what)
{
	const struct workload *w = workload_get();
	struct crash_stats st = {0};
	uint64_t rng = mix64(w->seed ^ (0x7265 + (uint64_t)mode));
	size_t groups = (size_t)(base * test_scale() / REORDER_GROUP) + 1, *pick;
	double t0 = now_sec();

	pick = sample_cuts(w, &rng, groups);
	for (size_t g = 0; g < groups; g++)
		for (int v = 0; v < REORDER_GROUP; v++)
			crash_state(w, pick[g], mode, rng_next(&rng) | 1, &st);
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
