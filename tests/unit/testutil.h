/* SPDX-License-Identifier: MIT */
/*
 * testutil.h - shared helpers for the engine's cmocka tests.
 *
 *  - a seeded PRNG (xoshiro256** seeded through splitmix64);
 *  - seeds and scale from the environment:
 *      ARBOR_TEST_SEED=n        run only seed n (reproduce a failure)
 *      ARBOR_TEST_SEED_BASE=n   shift the default list of seeds (new seeds)
 *      ARBOR_TEST_SCALE=f       multiply operation counts by f (default 1.0)
 *      ARBOR_TEST_VERBOSE=1     print every engine message as it comes
 *  - a failure context (seed, op index, phase) printed by every failure;
 *  - memdev filesystem helpers (format + open, reopen, commit, check);
 *  - a key universe: ids 0..n-1 map to strictly increasing keys, with room
 *    for keys strictly between two ids; values derived from key + version;
 *  - an in-memory model of one tree, compared with the real tree by full
 *    forward and backward iteration and by lookups;
 *  - a structural walk (levels, separator keys, key order) and an
 *    independent recount of node references across trees.
 */
#ifndef ARBOR_TESTUTIL_H
#define ARBOR_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "arbor/btree.h"
#include "arbor/check.h"
#include "arbor/fs.h"
#include "arbor/memdev.h"
#include "arbor/vfs.h"
#include "arbor_format.h"

/* ---- PRNG ---- */

struct tu_rng {
	uint64_t s[4];
};

uint64_t tu_splitmix64(uint64_t *state);
/* A well-mixed 64-bit hash of x (one splitmix64 step). */
uint64_t tu_mix64(uint64_t x);
void tu_rng_init(struct tu_rng *rng, uint64_t seed);
uint64_t tu_rng_next(struct tu_rng *rng);
/* Uniform in [0, n); n > 0. */
uint64_t tu_rng_below(struct tu_rng *rng, uint64_t n);
/* Uniform in [lo, hi]. */
uint64_t tu_rng_range(struct tu_rng *rng, uint64_t lo, uint64_t hi);
/* True with probability pct / 100. */
bool tu_rng_pct(struct tu_rng *rng, unsigned pct);

/* ---- seeds, scale and the failure context ---- */

/* ARBOR_TEST_SCALE (default 1.0, clamped to [0.001, 1000]). */
double tu_scale(void);
/* n * scale, at least 1. */
uint64_t tu_scaled(uint64_t n);

/* The seeds a randomized test runs: ARBOR_TEST_SEED alone if set, else
 * `count` consecutive seeds from base + ARBOR_TEST_SEED_BASE.  Returns the
 * number written to seeds[] (at most count). */
unsigned tu_seeds(uint64_t base, unsigned count, uint64_t *seeds);

struct tu_context {
	bool has_seed;
	uint64_t seed;
	uint64_t op;       /* operation index, UINT64_MAX: none */
	const char *phase; /* what the test is doing, NULL: nothing said */
	uint64_t tree_id;  /* tree being worked on, 0: none */
};
extern struct tu_context tu_ctx;

/* Start a new context (seed and op index reset). */
void tu_ctx_seed(uint64_t seed);
void tu_ctx_clear(void);
static inline void tu_ctx_op(uint64_t op)
{
	tu_ctx.op = op;
}
static inline void tu_ctx_phase(const char *phase)
{
	tu_ctx.phase = phase;
}

/* Print the message, the context (seed, op, phase, reproduction hint) and
 * the last engine messages, then fail the running cmocka test. */
void tu_fail_at(const char *file, int line, const char *fmt, ...)
        __attribute__((format(printf, 3, 4), noreturn));

#define TU_FAIL(...) tu_fail_at(__FILE__, __LINE__, __VA_ARGS__)

/* TU_ASSERT(cond) or TU_ASSERT(cond, "fmt", args...) */
#define TU_ASSERT(cond, ...)                                                                       \
	do {                                                                                       \
		if (!(cond))                                                                       \
			tu_assert_fail(__FILE__, __LINE__, #cond, " " __VA_ARGS__);                \
	} while (0)

void tu_assert_fail(const char *file, int line, const char *cond, const char *fmt, ...)
        __attribute__((format(printf, 4, 5), noreturn));

/* expr must return exactly want (0 or a negative errno). */
#define TU_RC_EQ(expr, want)                                                                       \
	do {                                                                                       \
		int tu_rc_ = (expr);                                                               \
		int tu_want_ = (want);                                                             \
		if (tu_rc_ != tu_want_)                                                            \
			tu_fail_at(__FILE__, __LINE__, "%s returned %d (%s), expected %d (%s)",    \
			           #expr, tu_rc_, tu_strerr(tu_rc_), tu_want_,                     \
			           tu_strerr(tu_want_));                                           \
	} while (0)

#define TU_RC(expr) TU_RC_EQ(expr, 0)

#define TU_EQ_U64(a, b)                                                                            \
	do {                                                                                       \
		uint64_t tu_a_ = (a), tu_b_ = (b);                                                 \
		if (tu_a_ != tu_b_)                                                                \
			tu_fail_at(__FILE__, __LINE__, "%s == %llu, expected %s == %llu", #a,      \
			           (unsigned long long)tu_a_, #b, (unsigned long long)tu_b_);      \
	} while (0)

/* "ENOENT"-style name of a negative errno (or "0"). */
const char *tu_strerr(int rc);

/* Seconds on the monotonic clock, for timing reports. */
double tu_now_sec(void);

/* ---- engine messages ---- */

/* The message callback every test filesystem is opened with: the last
 * warnings and errors are kept for failure reports (ARBOR_TEST_VERBOSE=1
 * prints every message as it comes).  Give it to arb_open() directly when
 * opening without tu_fs_open(). */
void tu_msg(void *ctx, enum arb_msg_level level, const char *text);
/* Forget the kept messages (a new case starts; each test starts clean). */
void tu_msgs_clear(void);

/* ---- filesystems on a memdev ---- */

struct tu_fs {
	struct arb_dev *dev;
	struct arb_fs *fs;
	uint64_t size;
	uint32_t nodesize;
	size_t cache_bytes;      /* open option, 0: engine default */
	bool read_only;          /* open option */
	uint64_t max_generation; /* open option, 0: newest */
};

/* Create a zeroed memdev of `size` bytes, format it (deterministic fsid
 * from the context seed) and open it read-write. */
void tu_fs_create(struct tu_fs *t, uint64_t size, uint32_t nodesize);
/* Open t->dev with t->read_only, t->cache_bytes and t->max_generation. */
void tu_fs_open(struct tu_fs *t);
/* arb_close() (dropping what was not committed) then tu_fs_open(). */
void tu_fs_reopen(struct tu_fs *t);
/* Close the filesystem and free the device. */
void tu_fs_destroy(struct tu_fs *t);

void tu_commit(struct arb_fs *fs);
/* Commit n times in a row. */
void tu_commit_n(struct arb_fs *fs, unsigned n);

struct arb_tree *tu_tree(struct arb_fs *fs, uint64_t id);
uint64_t tu_tree_create(struct arb_fs *fs);
uint64_t tu_tree_clone(struct arb_fs *fs, uint64_t src_id);
void tu_tree_drop(struct arb_fs *fs, uint64_t id);

/*
 * Commit n times, each commit carrying one real change (tu_key(0) put into
 * or deleted from tree scratch_id, alternately), so that deferred frees are
 * released whether or not the engine skips commits with nothing to write.
 * With n even the scratch tree ends as it started.  Measuring a baseline and
 * a final figure after the same churn compares like with like.
 */
void tu_commit_churn(struct arb_fs *fs, uint64_t scratch_id, unsigned n);
/* Enough churn commits for the frees of one commit to be released twice. */
#define TU_DRAIN_COMMITS (2 * (ARB_DEFER_COMMITS + 1))
/*
 * Churn commits (in pairs) until the frees have settled: nothing deferred
 * and the quarantine unchanged over TU_DRAIN_COMMITS commits.  A commit
 * lists a bounded number of freed ranges, so a big drop takes several
 * commits to drain.  Fails if nothing settles within 1000 commits.
 */
void tu_drain(struct arb_fs *fs, uint64_t scratch_id);

/* The allocation cursor that commit gen recorded in its superblock slot. */
uint64_t tu_alloc_cursor(struct arb_dev *dev, uint64_t gen);

uint64_t tu_used_sectors(const struct arb_fs *fs);
/* used_sectors - deferred_sectors: what the trees themselves hold. */
uint64_t tu_live_sectors(const struct arb_fs *fs);

/* Space figures (see struct arb_fs_info), and the sectors held by the
 * engine's own root and space trees (their size depends on how many space
 * map chunks and deferred frees they hold, not on the user trees). */
struct tu_space {
	uint64_t used, live, quarantined, free, total, internal;
};
/* Reads the figures and checks they add up: used + quarantined + free ==
 * total, deferred <= used. */
void tu_space_get(struct arb_fs *fs, struct tu_space *sp);
/* What the user trees held must all be back: live - internal equal, and,
 * when the engine's trees have the same size, used, quarantined and free
 * equal too. */
void tu_space_expect(struct arb_fs *fs, const struct tu_space *base);

/* arb_check() must return 0 with an all-zero error report. */
void tu_check_clean(struct arb_fs *fs);

/* The inode of name in directory dir (the VFS layer); fails the test if
 * the lookup does. */
arb_ino_t tu_lookup(struct arb_fs *fs, arb_ino_t dir, const char *name);
/* A new empty regular file (0644) or directory (0755) named name in dir,
 * made as cred; its inode. */
arb_ino_t tu_mkfile(struct arb_fs *fs, const struct arb_cred *cred, arb_ino_t dir,
                    const char *name);
arb_ino_t tu_mkdir(struct arb_fs *fs, const struct arb_cred *cred, arb_ino_t dir, const char *name);
/* Fails the test unless name is absent from dir. */
void tu_expect_missing(struct arb_fs *fs, arb_ino_t dir, const char *name);
/* Commit (each changing the mtime of directory root, so that frees move
 * through the superblock ring) until nothing is deferred and the used and
 * quarantined figures hold still over a pair of commits, at least
 * ARB_DEFER_COMMITS + 2 times; returns the number of commits.  Needs a
 * little room (not at full). */
unsigned tu_settle(struct arb_fs *fs, arb_ino_t root);

/* ---- keys and values ---- */

/* id -> key is strictly increasing; objectid >= 16, type odd in 1..13,
 * offset >= 1, so keys strictly between neighbours exist. */
struct arb_key tu_key(uint64_t id);
/* The id a key stands for, false if it is not tu_key() of any id. */
bool tu_key_id(const struct arb_key *key, uint64_t *ret_id);
/* A key strictly between tu_key(id - 1) (if any) and tu_key(id). */
struct arb_key tu_key_before(uint64_t id);
/* A key strictly between tu_key(id) and tu_key(id + 1). */
struct arb_key tu_key_after(uint64_t id);
/* "(objectid,type,offset)" in a static rotating buffer. */
const char *tu_key_str(const struct arb_key *key);

/* Value bytes derived from the key, the version and the length. */
void tu_value_fill(void *buf, uint32_t len, uint64_t id, uint64_t version);
/* Offset of the first byte that differs from tu_value_fill(), or -1. */
long tu_value_diff(const void *buf, uint32_t len, uint64_t id, uint64_t version);
/* A random value length in 0..max_item: often small, sometimes 0, sometimes
 * near max_item / 4, rarely max_item itself. */
uint32_t tu_value_len(struct tu_rng *rng, uint32_t max_item);

/* ---- the model of one tree ---- */

struct tu_slot {
	uint64_t version;
	uint32_t len;
	bool present;
};

struct tu_model {
	uint64_t n; /* size of the key universe */
	uint64_t nr_present;
	struct tu_slot *slot;
};

void tu_model_init(struct tu_model *m, uint64_t n);
void tu_model_free(struct tu_model *m);
/* dst becomes an independent copy of src (dst may be initialised or zero). */
void tu_model_copy(struct tu_model *dst, const struct tu_model *src);
void tu_model_set(struct tu_model *m, uint64_t id, uint64_t version, uint32_t len);
void tu_model_clear(struct tu_model *m, uint64_t id);

/* Apply one operation to the tree and the model; the return code must be
 * what the model predicts (-EEXIST, -ENOENT) and is returned. */
int tu_op_insert(struct tu_model *m, struct arb_tree *t, uint64_t id, uint64_t version,
                 uint32_t len);
int tu_op_update(struct tu_model *m, struct arb_tree *t, uint64_t id, uint64_t version,
                 uint32_t len);
int tu_op_put(struct tu_model *m, struct arb_tree *t, uint64_t id, uint64_t version, uint32_t len);
int tu_op_delete(struct tu_model *m, struct arb_tree *t, uint64_t id);

/* Lookup of tu_key(id) must match the model. */
void tu_model_check_lookup(const struct tu_model *m, struct arb_tree *t, uint64_t id);
/* Iterate from `start` in `dir` for at most max_items (0: to the end) and
 * compare every item with the model. */
void tu_model_check_range(const struct tu_model *m, struct arb_tree *t, const struct arb_key *start,
                          enum arb_iter_dir dir, uint64_t max_items);
/* Full comparison: forward and backward over everything, a lookup of every
 * id, and lookups of keys between ids. */
void tu_model_check(const struct tu_model *m, struct arb_tree *t);

/* ---- structure ---- */

struct tu_tree_stats {
	uint64_t nodes, leaves, items;
	uint64_t leaf_used_bytes; /* sum of used_bytes over leaves */
	int root_level;
};

/*
 * Walk the tree and check its shape: root at depth 0, every child one level
 * below its parent, every leaf at depth root_level, keys strictly increasing
 * within nodes and across leaves, separator key == first key of the child,
 * no empty node but an empty root leaf.  With `committed` (no uncommitted
 * change), child pointers must also match the child's address, generation
 * and checksum.
 */
void tu_tree_stats(struct arb_tree *t, bool committed, struct tu_tree_stats *st);

/* Address of the tree's root node. */
uint64_t tu_tree_root(struct arb_tree *t);

/*
 * Recount the references to every node of the given user trees from their
 * walks (one per tree root, one per pointer of each distinct internal node)
 * and compare with arb_sector_refcount() on every sector of each node.
 * Returns the number of distinct nodes.
 */
uint64_t tu_check_refcounts(struct arb_fs *fs, const uint64_t *ids, unsigned nr);

/* Count of the first sector at bytenr. */
uint32_t tu_refcount(struct arb_fs *fs, uint64_t bytenr);

/* ---- building one cmocka group (one TAP plan per program) ---- */

typedef void (*tu_seed_fn)(uint64_t seed);

struct tu_tests {
	struct CMUnitTest *v;
	size_t n, cap;
};

void tu_tests_add(struct tu_tests *ts, const char *name, CMUnitTestFunction fn);
/* One test per seed of tu_seeds(base, count), named "<name> seed=<n>". */
void tu_tests_add_seeds(struct tu_tests *ts, const char *name, tu_seed_fn fn, uint64_t base,
                        unsigned count);
/* Run the group; returns the number of failed tests. Frees ts. */
int tu_tests_run(struct tu_tests *ts, const char *group);

#endif
