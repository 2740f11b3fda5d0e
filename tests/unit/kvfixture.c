/* SPDX-License-Identifier: MIT */
/*
 * kvfixture.c - the fixed key universe test_crash and test_corrupt share
 * (see kvfixture.h).
 */
#include "kvfixture.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

static struct {
	unsigned nkeys;
	uint32_t max_val;
	kv_len_fn val_len;
	unsigned *sorted; /* key indices in key order */
} kv;

static uint8_t kv_buf[ARB_MAX_NODESIZE + 8]; /* values written and read */
static uint8_t kv_want[ARB_MAX_NODESIZE];    /* values expected */
static char kv_phase[200];

/* ---- PRNG ---- */

uint64_t kv_rng_next(uint64_t *s)
{
	*s += 0x9e3779b97f4a7c15ull;
	return tu_mix64(*s);
}

uint32_t kv_rng_below(uint64_t *s, uint32_t n)
{
	return n ? (uint32_t)(kv_rng_next(s) % n) : 0;
}

/* ---- failure context ---- */

void kv_ctx(uint64_t seed, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(kv_phase, sizeof(kv_phase), fmt, ap);
	va_end(ap);
	tu_ctx_seed(seed);
	tu_ctx_phase(kv_phase);
	tu_msgs_clear();
}

size_t kv_ctx_push(const char *what, uint64_t n)
{
	size_t len = strlen(kv_phase);

	snprintf(kv_phase + len, sizeof(kv_phase) - len, ", %s %" PRIu64, what, n);
	return len;
}

void kv_ctx_pop(size_t len)
{
	kv_phase[len] = 0;
}

/* ---- the key universe ---- */

void kv_key(unsigned idx, struct arb_key *k)
{
	k->objectid = idx / 4 + 1;
	k->type = (uint8_t)(1 + idx % 2);
	k->offset = (uint64_t)(idx % 4) * 1000003u;
}

static int cmp_idx(const void *a, const void *b)
{
	struct arb_key ka, kb;

	kv_key(*(const unsigned *)a, &ka);
	kv_key(*(const unsigned *)b, &kb);
	return arb_key_cmp(&ka, &kb);
}

void kv_init(unsigned nkeys, uint32_t max_val, kv_len_fn val_len)
{
	TU_ASSERT(max_val <= sizeof(kv_want), "values of up to %u bytes", max_val);
	kv_free();
	kv.sorted = calloc(nkeys ? nkeys : 1, sizeof(*kv.sorted));
	TU_ASSERT(kv.sorted != NULL);
	kv.nkeys = nkeys;
	kv.max_val = max_val;
	kv.val_len = val_len;
	for (unsigned i = 0; i < nkeys; i++)
		kv.sorted[i] = i;
	qsort(kv.sorted, nkeys, sizeof(kv.sorted[0]), cmp_idx);
}

void kv_free(void)
{
	free(kv.sorted);
	memset(&kv, 0, sizeof(kv));
}

unsigned kv_sorted(unsigned pos)
{
	return kv.sorted[pos];
}

bool kv_is_errno(int ret)
{
	return ret < 0 && ret > -4096;
}

static void val_fill(uint32_t ver, uint8_t *buf, uint32_t len)
{
	uint64_t s = ver * 0x100000001b3ull;

	for (uint32_t i = 0; i < len; i += 8) {
		uint64_t r = kv_rng_next(&s);
		uint32_t n = len - i < 8 ? len - i : 8;

		memcpy(buf + i, &r, n);
	}
}

/* ---- changes ---- */

static void op_result(const char *op, struct arb_tree *tree, unsigned idx, int rc, int want)
{
	if (rc != want)
		TU_FAIL("%s of key idx %u in tree %" PRIu64 " returned %s, expected %s", op, idx,
		        arb_tree_id(tree), tu_strerr(rc), tu_strerr(want));
}

void kv_put(struct arb_tree *tree, uint32_t *ver, unsigned idx, uint32_t v, bool mixed)
{
	uint32_t len = kv.val_len(v);
	struct arb_key k;

	kv_key(idx, &k);
	val_fill(v, kv_buf, len);
	if (!mixed || v % 3 == 0)
		op_result("arb_put", tree, idx, arb_put(tree, &k, kv_buf, len), 0);
	else if (ver[idx])
		op_result("arb_update", tree, idx, arb_update(tree, &k, kv_buf, len), 0);
	else
		op_result("arb_insert", tree, idx, arb_insert(tree, &k, kv_buf, len), 0);
	ver[idx] = v;
}

void kv_del(struct arb_tree *tree, uint32_t *ver, unsigned idx)
{
	struct arb_key k;

	kv_key(idx, &k);
	op_result("arb_delete", tree, idx, arb_delete(tree, &k), ver[idx] ? 0 : -ENOENT);
	ver[idx] = 0;
}

void kv_random_op(struct arb_tree *tree, uint32_t *ver, uint64_t *rng, uint32_t *next_ver,
                  unsigned put_pct, bool mixed)
{
	unsigned idx = kv_rng_below(rng, kv.nkeys);

	if (kv_rng_below(rng, 100) < put_pct)
		kv_put(tree, ver, idx, ++*next_ver, mixed);
	else
		kv_del(tree, ver, idx);
}

/* ---- comparing ---- */

static void check_value(struct arb_tree *tree, const uint32_t *ver, unsigned idx, const void *data,
                        uint32_t len)
{
	uint32_t v = ver[idx], want = kv.val_len(v);

	val_fill(v, kv_want, want);
	if (len != want || memcmp(data, kv_want, len) != 0)
		TU_FAIL("tree %" PRIu64 " key idx %u: WRONG DATA (len %u, want %u of version %u)",
		        arb_tree_id(tree), idx, len, want, v);
}

size_t kv_check_lookups(struct arb_tree *tree, const uint32_t *ver, bool strict)
{
	size_t errors = 0;

	for (unsigned idx = 0; idx < kv.nkeys; idx++) {
		struct arb_key k;
		uint32_t len = 0;
		int ret;

		kv_key(idx, &k);
		ret = arb_lookup(tree, &k, kv_buf, kv.max_val + 8, &len);
		if (ret == 0) {
			TU_ASSERT(ver[idx], "tree %" PRIu64 ": absent idx %u found",
			          arb_tree_id(tree), idx);
			check_value(tree, ver, idx, kv_buf, len);
		} else if (ret == -ENOENT) {
			TU_ASSERT(!ver[idx], "tree %" PRIu64 ": present idx %u not found",
			          arb_tree_id(tree), idx);
		} else {
			TU_ASSERT(!strict && kv_is_errno(ret),
			          "tree %" PRIu64 ": lookup of idx %u: %s", arb_tree_id(tree), idx,
			          tu_strerr(ret));
			errors++;
		}
	}
	return errors;
}

/* The next position of a present key in key order from pos on, stepping by
 * step; -1 or nkeys past the end. */
static long next_present(const uint32_t *ver, long pos, long step)
{
	while (pos >= 0 && pos < (long)kv.nkeys && !ver[kv.sorted[pos]])
		pos += step;
	return pos;
}

size_t kv_check_iter(struct arb_tree *tree, const uint32_t *ver, enum arb_iter_dir dir, bool strict)
{
	bool fwd = dir == ARB_ITER_FORWARD;
	const char *dirname = fwd ? "forward" : "backward";
	struct arb_key start = fwd ? ARB_KEY_MIN : ARB_KEY_MAX, k, want;
	long step = fwd ? 1 : -1;
	long pos = next_present(ver, fwd ? 0 : (long)kv.nkeys - 1, step);
	struct arb_iter *it = NULL;
	const void *data;
	uint32_t len;
	int ret = arb_iter_open(tree, &start, dir, &it);

	if (ret != 0) {
		TU_ASSERT(!strict && kv_is_errno(ret), "tree %" PRIu64 ": arb_iter_open %s: %s",
		          arb_tree_id(tree), dirname, tu_strerr(ret));
		return 1;
	}
	while ((ret = arb_iter_next(it, &k, &data, &len)) == 1) {
		TU_ASSERT(pos >= 0 && pos < (long)kv.nkeys,
		          "tree %" PRIu64 ": extra item %s going %s", arb_tree_id(tree),
		          tu_key_str(&k), dirname);
		kv_key(kv.sorted[pos], &want);
		TU_ASSERT(arb_key_cmp(&k, &want) == 0,
		          "tree %" PRIu64 ": %s iteration gave %s, want idx %u %s",
		          arb_tree_id(tree), dirname, tu_key_str(&k), kv.sorted[pos],
		          tu_key_str(&want));
		check_value(tree, ver, kv.sorted[pos], data, len);
		pos = next_present(ver, pos + step, step);
	}
	arb_iter_close(it);
	if (ret == 0) {
		TU_ASSERT(pos < 0 || pos >= (long)kv.nkeys,
		          "tree %" PRIu64 ": %s iteration ended before idx %u", arb_tree_id(tree),
		          dirname, kv.sorted[pos]);
		return 0;
	}
	TU_ASSERT(!strict && kv_is_errno(ret), "tree %" PRIu64 ": arb_iter_next %s: %s",
	          arb_tree_id(tree), dirname, tu_strerr(ret));
	return 1;
}

/* ---- devices ---- */

void kv_format(struct arb_dev *dev, uint64_t seed, uint32_t nodesize)
{
	struct arb_format_opts fo;
	uint8_t fsid[16], devuuid[16];
	uint64_t a = tu_mix64(seed), b = tu_mix64(a);

	memcpy(fsid, &a, 8);
	memcpy(fsid + 8, &b, 8);
	memcpy(devuuid, &b, 8);
	memcpy(devuuid + 8, &a, 8);
	memset(&fo, 0, sizeof(fo));
	fo.nodesize = nodesize;
	fo.fsid = fsid;
	fo.devuuid = devuuid;
	fo.hash_seed = seed | 1;
	fo.time_sec = 1700000000;
	TU_RC(arb_format(dev, &fo));
}

int kv_open(struct arb_dev *dev, uint64_t max_gen, struct arb_fs **ret_fs)
{
	struct arb_open_opts oo;

	memset(&oo, 0, sizeof(oo));
	oo.max_generation = max_gen;
	oo.msg = tu_msg;
	return arb_open(dev, &oo, ret_fs);
}
