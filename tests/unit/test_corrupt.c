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
 * Environment: ARBOR_TEST_SEED (default fixed), ARBOR_TEST_SCALE (1.0).
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
#include "arbor/super.h"
#include "arbor_format.h"

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
static unsigned g_sorted[NKEYS];
static char g_ctx[200];
static char g_msgs[4][256];
static unsigned g_nmsgs;

/* ---- failure reporting --------------------------------------------------- */

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

static bool is_errno(int ret)
{
	return ret < 0 && ret > -4096;
}

/* ---- small helpers --------------------------------------------------------- */

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
	return v < 0.01 ? 0.01 : v > 100.0 ? 100.0 : v;
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
	return 1 + (uint32_t)(mix64(ver) % MAX_VAL);
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

static int open_fs(struct arb_dev *dev, uint64_t max_gen, struct arb_fs **ret_fs)
{
	struct arb_open_opts oo;

	memset(&oo, 0, sizeof(oo));
	oo.max_generation = max_gen;
	oo.msg = msg_capture;
	return arb_open(dev, &oo, ret_fs);
}

static struct arb_tree *get_tree(struct arb_fs *fs, uint64_t id)
{
	struct arb_tree *tree = NULL;

	CHECK_RET(arb_tree_get(fs, id, &tree), 0);
	return tree;
}

/* ---- building the image ------------------------------------------------------ */

static void apply_put(struct arb_fs *fs, struct tmodel *t, unsigned idx, uint32_t ver)
{
	struct arb_tree *tree = get_tree(fs, t->id);
	uint8_t buf[MAX_VAL];
	struct arb_key k;
	uint32_t len = val_len(ver);

	key_of(idx, &k);
	val_fill(ver, buf, len);
	CHECK_RET(arb_put(tree, &k, buf, len), 0);
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

static void random_ops(struct arb_fs *fs, struct tmodel *t, uint64_t *rng, uint32_t *ver, int n,
                       unsigned put_pct)
{
	for (int i = 0; i < n; i++) {
		unsigned idx = rng_below(rng, NKEYS);

		if (rng_below(rng, 100) < put_pct)
			apply_put(fs, t, idx, ++*ver);
		else
			apply_del(fs, t, idx);
	}
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
	CHECK_RET(arb_tree_walk(get_tree(fs, id), walk_cb, w), 0);
	CHECK(w->root != 0, "tree %" PRIu64 ": the walk met no root", id);
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
	CHECK(s->ngens == 1 || g->gen > s->gens[s->ngens - 2].gen, "generation did not grow");
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
		CHECK_RET(arb_tree_create(fs, &cur->t[0].id), 0);
		cur->ntrees = 1;
	}
	if (c == 3) {
		CHECK_RET(arb_tree_clone(fs, cur->t[0].id, &cur->t[1].id), 0);
		memcpy(cur->t[1].ver, cur->t[0].ver, sizeof(cur->t[0].ver));
		cur->ntrees = 2;
	}
	for (int i = 0; i < cur->ntrees; i++)
		random_ops(fs, &cur->t[i], rng, ver, ops[c][i], c <= 2 ? 95 : 65);
	CHECK_RET(arb_commit(fs), 0);
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

/* Union of the nodes of the ring's older generations. */
static void collect_old(struct cstate *s)
{
	size_t n = 0;

	for (int i = s->ngens - RING; i < s->ngens - 1; i++)
		n += s->gens[i].nnodes;
	s->old = calloc(n + 1, sizeof(*s->old));
	CHECK(s->old != NULL, "out of memory");
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
	init_sorted();
	s = calloc(1, sizeof(*s));
	CHECK(s != NULL, "out of memory");
	s->seed = test_seed();
	rng = s->seed;
	set_ctx("build seed=%" PRIu64, s->seed);
	CHECK_RET(arb_memdev_create(DEV_SIZE, &dev), 0);
	format_dev(dev, s->seed);
	CHECK_RET(open_fs(dev, 0, &fs), 0);
	memset(&cur, 0, sizeof(cur));
	record_gen(s, fs, &cur);
	for (int c = 1; c <= NCOMMITS; c++) {
		build_commit(fs, &cur, &rng, &ver, c);
		record_gen(s, fs, &cur);
	}
	arb_close(fs);
	s->image = malloc(DEV_SIZE);
	CHECK(s->image != NULL, "out of memory");
	memcpy(s->image, arb_memdev_data(dev), DEV_SIZE);
	arb_dev_close(dev);
	s->ncopies = arb_super_copies(DEV_SIZE, s->super_off);
	CHECK(s->ncopies >= 1, "no superblock copy on %llu bytes", DEV_SIZE);
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

static void check_value(const struct tmodel *t, unsigned idx, const void *data, uint32_t len)
{
	uint8_t buf[MAX_VAL];
	uint32_t ver = t->ver[idx];

	val_fill(ver, buf, val_len(ver));
	CHECK(len == val_len(ver) && memcmp(data, buf, len) == 0,
	      "tree %" PRIu64 " key idx %u: WRONG DATA (len %u, want %u)", t->id, idx, len,
	      val_len(ver));
}

/* Returns the number of reads that failed (allowed unless strict). */
static size_t read_lookups(struct arb_tree *tree, const struct tmodel *t, bool strict)
{
	uint8_t buf[MAX_VAL + 8];
	size_t errors = 0;

	for (unsigned idx = 0; idx < NKEYS; idx++) {
		struct arb_key k;
		uint32_t len = 0;
		int ret;

		key_of(idx, &k);
		ret = arb_lookup(tree, &k, buf, sizeof(buf), &len);
		if (ret == 0) {
			CHECK(t->ver[idx], "tree %" PRIu64 ": absent idx %u found", t->id, idx);
			check_value(t, idx, buf, len);
		} else if (ret == -ENOENT) {
			CHECK(!t->ver[idx], "tree %" PRIu64 ": present idx %u not found", t->id,
			      idx);
		} else {
			CHECK(!strict && is_errno(ret), "tree %" PRIu64 ": lookup idx %u: %d",
			      t->id, idx, ret);
			errors++;
		}
	}
	return errors;
}

static unsigned next_present(const struct tmodel *t, unsigned pos)
{
	while (pos < NKEYS && !t->ver[g_sorted[pos]])
		pos++;
	return pos;
}

/* Every item returned is the next one of the model; an error may end it. */
static size_t read_iter(struct arb_tree *tree, const struct tmodel *t, bool strict)
{
	struct arb_key start = ARB_KEY_MIN, k, want;
	struct arb_iter *it = NULL;
	const void *data;
	uint32_t len;
	unsigned pos = next_present(t, 0);
	int ret = arb_iter_open(tree, &start, ARB_ITER_FORWARD, &it);

	if (ret != 0) {
		CHECK(!strict && is_errno(ret), "arb_iter_open: %d", ret);
		return 1;
	}
	while ((ret = arb_iter_next(it, &k, &data, &len)) == 1) {
		CHECK(pos < NKEYS, "tree %" PRIu64 ": extra item", t->id);
		key_of(g_sorted[pos], &want);
		CHECK(arb_key_cmp(&k, &want) == 0,
		      "tree %" PRIu64 ": iteration gave (%" PRIu64 ",%u,%" PRIu64 "), want idx %u",
		      t->id, k.objectid, k.type, k.offset, g_sorted[pos]);
		check_value(t, g_sorted[pos], data, len);
		pos = next_present(t, pos + 1);
	}
	arb_iter_close(it);
	if (ret == 0) {
		CHECK(pos == NKEYS, "tree %" PRIu64 ": iteration ended early at idx %u", t->id,
		      g_sorted[pos]);
		return 0;
	}
	CHECK(!strict && is_errno(ret), "tree %" PRIu64 ": arb_iter_next: %d", t->id, ret);
	return 1;
}

static size_t read_all(struct arb_fs *fs, const struct cgen *m, bool strict)
{
	size_t errors = 0;

	for (int i = 0; i < m->ntrees; i++) {
		struct arb_tree *tree = NULL;
		int ret = arb_tree_get(fs, m->t[i].id, &tree);

		if (ret != 0) {
			CHECK(!strict && is_errno(ret) && ret != -ENOENT,
			      "arb_tree_get(%" PRIu64 "): %d", m->t[i].id, ret);
			errors++;
			continue;
		}
		errors += read_lookups(tree, &m->t[i], strict);
		errors += read_iter(tree, &m->t[i], strict);
	}
	return errors;
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

static void check_detects(struct arb_fs *fs)
{
	struct arb_check_report rep;
	int ret;

	memset(&rep, 0, sizeof(rep));
	ret = arb_check(fs, &rep);
	CHECK(ret < 0 && rep.bad_nodes > 0,
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
			pos[i] = rng_below(rng, nbits);
			dup = false;
			for (int j = 0; j < i; j++)
				dup |= pos[j] == pos[i];
		} while (dup);
		p[pos[i] / 8] ^= (uint8_t)(1u << (pos[i] % 8));
	}
}

static void pick_super(const struct cstate *s, uint64_t *rng, struct damage *d)
{
	int copy = (int)rng_below(rng, (uint32_t)s->ncopies);
	int slot = (int)rng_below(rng, ARB_SUPER_SLOTS);

	d->super = true;
	d->off = s->super_off[copy] + (uint64_t)slot * ARB_SUPER_SLOT_SIZE;
	d->len = ARB_SUPER_SLOT_SIZE;
	d->mode = DMG_FLIP;
	d->nflips = 1 + (int)rng_below(rng, MAX_FLIPS);
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
	bool from_new = rng_below(rng, 100) < 60 || s->nold == 0;
	const struct noderef *n = from_new ? &g->nodes[rng_below(rng, (uint32_t)g->nnodes)]
	                                   : &s->old[rng_below(rng, (uint32_t)s->nold)];

	d->super = false;
	d->off = n->bytenr;
	d->len = NODESIZE;
	d->mode = (enum damage_mode)rng_below(rng, 10);
	d->mode = d->mode < 6 ? DMG_FLIP : d->mode < 8 ? DMG_FLIP_HEADER : d->mode - 6;
	d->nflips = 1 + (int)rng_below(rng, MAX_FLIPS);
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
			src = &newest(s)->nodes[rng_below(rng, (uint32_t)newest(s)->nnodes)];
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
	CHECK(m && m >= &s->gens[s->ngens - RING], "opened generation %" PRIu64 ", newest %" PRIu64,
	      info.generation, top->gen);
	if (m == top)
		return m;
	CHECK(hits_newest, "opened generation %" PRIu64 " though generation %" PRIu64 " is intact",
	      m->gen, top->gen);
	CHECK(info.fallback_from == top->gen,
	      "fell back to %" PRIu64 " with fallback_from %" PRIu64, m->gen, info.fallback_from);
	st->fallbacks++;
	return m;
}

static void corrupt_once(const struct cstate *s, uint64_t iseed, struct cstats *st)
{
	uint64_t rng = mix64(iseed);
	struct arb_dev *dev = NULL;
	struct arb_fs *fs = NULL;
	const struct cgen *m;
	struct damage d;
	bool hits_newest, reach;
	int ret;

	if (rng_below(&rng, 100) < 25)
		pick_super(s, &rng, &d);
	else
		pick_node(s, &rng, &d);
	set_ctx("ARBOR_TEST_SEED=%" PRIu64 " iteration seed %" PRIu64 ": %s", s->seed, iseed,
	        d.desc);
	CHECK_RET(arb_memdev_from_buffer(s->image, DEV_SIZE, &dev), 0);
	apply_damage(s, arb_memdev_data(dev), &d, &rng);
	hits_newest =
	        d.super ? s->ncopies == 1 && d.off % ARB_SUPER_COPY_SIZE / ARB_SUPER_SLOT_SIZE ==
	                                             newest(s)->gen % ARB_SUPER_SLOTS
	                : has_node(newest(s), d.off);
	ret = open_fs(dev, 0, &fs);
	st->iters++;
	if (ret != 0) {
		CHECK(is_errno(ret), "arb_open returned %d", ret);
		CHECK(hits_newest, "arb_open failed (%d) though the newest generation is intact",
		      ret);
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
		check_clean(fs);
	}
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

		set_ctx("ARBOR_TEST_SEED=%" PRIu64 " intact generation %" PRIu64, s->seed,
		        s->gens[i].gen);
		CHECK_RET(arb_memdev_from_buffer(s->image, DEV_SIZE, &dev), 0);
		CHECK_RET(open_fs(dev, i == s->ngens - 1 ? 0 : s->gens[i].gen, &fs), 0);
		arb_fs_info(fs, &info);
		CHECK(info.generation == s->gens[i].gen && info.fallback_from == 0,
		      "opened generation %" PRIu64 " (fallback from %" PRIu64 ")", info.generation,
		      info.fallback_from);
		CHECK(read_all(fs, &s->gens[i], true) == 0, "read errors");
		check_clean(fs);
		arb_close(fs);
		arb_dev_close(dev);
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
			uint64_t r = rng_next(rng);

			memcpy(slot + i, &r, 8);
		}
}

/* Damage every slot of every copy, except (keep_gen != 0) that
 * generation's slot in the last copy. */
static int open_with_supers_damaged(const struct cstate *s, int how, uint64_t keep_gen,
                                    struct arb_dev **ret_dev, struct arb_fs **ret_fs)
{
	uint64_t rng = mix64(s->seed + (uint64_t)how);
	uint8_t *img;

	CHECK_RET(arb_memdev_from_buffer(s->image, DEV_SIZE, ret_dev), 0);
	img = arb_memdev_data(*ret_dev);
	for (int c = 0; c < s->ncopies; c++)
		for (uint32_t slot = 0; slot < ARB_SUPER_SLOTS; slot++) {
			if (keep_gen && c == s->ncopies - 1 && slot == keep_gen % ARB_SUPER_SLOTS)
				continue;
			damage_slot(img + s->super_off[c] + slot * ARB_SUPER_SLOT_SIZE, how, &rng);
		}
	return open_fs(*ret_dev, 0, ret_fs);
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

		set_ctx("ARBOR_TEST_SEED=%" PRIu64 " all superblocks %s", s->seed, hows[how]);
		ret = open_with_supers_damaged(s, how, 0, &dev, &fs);
		CHECK(is_errno(ret), "arb_open returned %d", ret);
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
	set_ctx("ARBOR_TEST_SEED=%" PRIu64 " only the slot of %" PRIu64 " left", s->seed, m->gen);
	CHECK_RET(open_with_supers_damaged(s, 0, m->gen, &dev, &fs), 0);
	arb_fs_info(fs, &info);
	CHECK(info.generation == m->gen, "opened generation %" PRIu64, info.generation);
	CHECK(read_all(fs, m, true) == 0, "read errors");
	check_clean(fs);
	arb_close(fs);
	arb_dev_close(dev);
}

static void root_damaged(const struct cstate *s, uint64_t bytenr, const char *what, int how)
{
	const struct cgen *top = newest(s), *prev = &s->gens[s->ngens - 2];
	uint64_t rng = mix64(s->seed ^ bytenr);
	struct arb_dev *dev = NULL;
	struct arb_fs *fs = NULL;
	struct arb_fs_info info;
	uint8_t *img;

	set_ctx("ARBOR_TEST_SEED=%" PRIu64 " newest %s root %" PRIu64 " %s", s->seed, what, bytenr,
	        how ? "zeroed" : "one bit flipped");
	CHECK(!has_node(prev, bytenr), "test premise: the root is new in the newest generation");
	CHECK_RET(arb_memdev_from_buffer(s->image, DEV_SIZE, &dev), 0);
	img = arb_memdev_data(dev) + bytenr;
	if (how)
		memset(img, 0, NODESIZE);
	else
		flip_bits(img + ARB_CSUM_SIZE, (NODESIZE - ARB_CSUM_SIZE) * 8, 1, &rng);
	CHECK_RET(open_fs(dev, 0, &fs), 0);
	arb_fs_info(fs, &info);
	CHECK(info.generation == prev->gen && info.fallback_from == top->gen,
	      "opened generation %" PRIu64 " with fallback_from %" PRIu64 ", want %" PRIu64
	      " from %" PRIu64,
	      info.generation, info.fallback_from, prev->gen, top->gen);
	CHECK(read_all(fs, prev, true) == 0, "read errors");
	check_clean(fs);
	arb_close(fs);
	arb_dev_close(dev);
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
	size_t iters = (size_t)(BASE_ITERS * test_scale());
	uint64_t rng = mix64(s->seed ^ 0xbadb10c);
	double t0 = now_sec();

	(void)state;
	for (size_t i = 0; i < iters; i++)
		corrupt_once(s, rng_next(&rng), &st);
	print_message("# random damage: %zu images in %.1f s: open failed %zu, fell back %zu, "
	              "reachable damage %zu (all found by arb_check), read errors %zu\n",
	              st.iters, now_sec() - t0, st.open_failed, st.fallbacks, st.reached,
	              st.read_errors);
	assert_int_equal(st.iters, iters);
	assert_int_equal(st.detected, st.reached);
	assert_true(st.reached > 0);
}

static int teardown(void **state)
{
	(void)state;
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
