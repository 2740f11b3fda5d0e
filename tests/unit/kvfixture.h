/* SPDX-License-Identifier: MIT */
/*
 * kvfixture.h - the fixed key universe test_crash and test_corrupt share.
 *
 * Key index idx (0..nkeys-1) stands for one key (kv_key).  The model of a
 * tree is an array ver[nkeys]: 0 where the key is absent, else the version
 * of its value, whose length (the test's val_len) and bytes follow from the
 * version alone.  Trees are changed through the model (kv_put, kv_del) and
 * compared with it by lookups of every key and by full iteration.
 *
 * Also the splitmix64 counter PRNG both workloads are drawn from: what the
 * default seeds cover (tree shapes, crash points, damage) depends on its
 * exact stream, so it stays instead of tu_rng.  Failures are reported
 * through testutil (TU_FAIL), with the seed and a phase set by kv_ctx().
 */
#ifndef ARBOR_KVFIXTURE_H
#define ARBOR_KVFIXTURE_H

#include "testutil.h"

/* ---- PRNG: a splitmix64 counter ---- */

uint64_t kv_rng_next(uint64_t *s);
/* Uniform in [0, n) (0 when n is 0). */
uint32_t kv_rng_below(uint64_t *s, uint32_t n);

/* ---- failure context ---- */

/* A new case: seed and phase (printf format) for failure reports; forgets
 * the engine messages of the last case. */
void kv_ctx(uint64_t seed, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append ", what n" to the phase; returns what kv_ctx_pop() restores. */
size_t kv_ctx_push(const char *what, uint64_t n);
void kv_ctx_pop(size_t len);

/* ---- the key universe ---- */

typedef uint32_t (*kv_len_fn)(uint32_t ver);

/* nkeys keys; values of version v are val_len(v) <= max_val bytes. */
void kv_init(unsigned nkeys, uint32_t max_val, kv_len_fn val_len);
void kv_free(void);
/* Key idx: objectid idx/4+1, type 1 or 2, offset from idx%4 (injective). */
void kv_key(unsigned idx, struct arb_key *k);
/* The key index at position pos (0..nkeys-1) of the key order. */
unsigned kv_sorted(unsigned pos);

/* A negative errno, as a failed read may return. */
bool kv_is_errno(int ret);

/* ---- changes, mirrored in the model ver[] ---- */

/* Version v of key idx.  With mixed, versions not divisible by 3 go in
 * through arb_insert or arb_update (as the model says), the others through
 * arb_put; without, all through arb_put. */
void kv_put(struct arb_tree *tree, uint32_t *ver, unsigned idx, uint32_t v, bool mixed);
/* Delete key idx: 0, or -ENOENT where the model has no such key. */
void kv_del(struct arb_tree *tree, uint32_t *ver, unsigned idx);
/* A random key, then with probability put_pct/100 kv_put() of version
 * ++*next_ver, else kv_del(). */
void kv_random_op(struct arb_tree *tree, uint32_t *ver, uint64_t *rng, uint32_t *next_ver,
                  unsigned put_pct, bool mixed);

/* ---- comparing a tree with its model ---- */

/*
 * Look up every key: a key found must be in the model with exactly its
 * value, a key not found must be absent from it.  Any other result is a
 * read error: counted, and allowed (a negative errno only) unless strict.
 * Returns the number of read errors.
 */
size_t kv_check_lookups(struct arb_tree *tree, const uint32_t *ver, bool strict);
/*
 * Iterate over the whole tree in dir: every item must be the next one of
 * the model with exactly its value, and the iteration must end after the
 * last.  Unless strict, a read error (negative errno) may end it early.
 * Returns 1 if a read error ended it, else 0.
 */
size_t kv_check_iter(struct arb_tree *tree, const uint32_t *ver, enum arb_iter_dir dir,
                     bool strict);

/* ---- devices ---- */

/* Format with fsid, device uuid and hash seed derived from seed. */
void kv_format(struct arb_dev *dev, uint64_t seed, uint32_t nodesize);
/* arb_open() (generation max_gen, 0: newest) with tu_msg(); returns its result. */
int kv_open(struct arb_dev *dev, uint64_t max_gen, struct arb_fs **ret_fs);

#endif
