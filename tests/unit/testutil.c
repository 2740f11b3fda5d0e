/* SPDX-License-Identifier: MIT */
/*
 * testutil.c - shared helpers for the engine's cmocka tests (see testutil.h).
 */
#include "testutil.h"

#include "arbor/super.h"

#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

/* Buffer for values written and read back. */
static uint8_t scratch[ARB_MAX_NODESIZE];

/* ---- PRNG ---- */

uint64_t tu_splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

uint64_t tu_mix64(uint64_t x)
{
	return tu_splitmix64(&x);
}

void tu_rng_init(struct tu_rng *rng, uint64_t seed)
{
	uint64_t st = seed;

	for (int i = 0; i < 4; i++)
		rng->s[i] = tu_splitmix64(&st);
}

static inline uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t tu_rng_next(struct tu_rng *rng)
{
	uint64_t *s = rng->s;
	uint64_t result = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

uint64_t tu_rng_below(struct tu_rng *rng, uint64_t n)
{
	/* Lemire's multiply-shift; the tiny bias is irrelevant here. */
	return (uint64_t)(((unsigned __int128)tu_rng_next(rng) * n) >> 64);
}

uint64_t tu_rng_range(struct tu_rng *rng, uint64_t lo, uint64_t hi)
{
	if (hi <= lo)
		return lo;
	if (hi - lo == UINT64_MAX)
		return tu_rng_next(rng);
	return lo + tu_rng_below(rng, hi - lo + 1);
}

bool tu_rng_pct(struct tu_rng *rng, unsigned pct)
{
	return tu_rng_below(rng, 100) < pct;
}

/* ---- seeds, scale, context ---- */

struct tu_context tu_ctx = {.op = UINT64_MAX};

double tu_scale(void)
{
	const char *s = getenv("ARBOR_TEST_SCALE");
	double v;

	if (!s || !*s)
		return 1.0;
	v = strtod(s, NULL);
	if (!(v >= 0.001))
		v = 0.001;
	if (v > 1000.0)
		v = 1000.0;
	return v;
}

uint64_t tu_scaled(uint64_t n)
{
	double v = (double)n * tu_scale();

	return v < 1.0 ? 1 : (uint64_t)v;
}

static bool env_u64(const char *name, uint64_t *ret)
{
	const char *s = getenv(name);
	char *end;

	if (!s || !*s)
		return false;
	errno = 0;
	*ret = strtoull(s, &end, 0);
	if (errno || *end) {
		fprintf(stderr, "testutil: ignoring %s=%s (not a number)\n", name, s);
		return false;
	}
	return true;
}

unsigned tu_seeds(uint64_t base, unsigned count, uint64_t *seeds)
{
	uint64_t shift = 0;

	if (count && env_u64("ARBOR_TEST_SEED", &seeds[0]))
		return 1;
	env_u64("ARBOR_TEST_SEED_BASE", &shift);
	for (unsigned i = 0; i < count; i++)
		seeds[i] = base + shift + i;
	return count;
}

void tu_ctx_seed(uint64_t seed)
{
	tu_ctx_clear();
	tu_ctx.has_seed = true;
	tu_ctx.seed = seed;
}

void tu_ctx_clear(void)
{
	tu_ctx = (struct tu_context){.op = UINT64_MAX};
}

const char *tu_strerr(int rc)
{
	static char buf[4][32];
	static unsigned n;
	const char *name;

	if (rc >= 0) {
		snprintf(buf[n % 4], sizeof(buf[0]), "%d", rc);
		return buf[n++ % 4];
	}
	name = strerrorname_np(-rc);
	if (name)
		return name;
	snprintf(buf[n % 4], sizeof(buf[0]), "errno %d", -rc);
	return buf[n++ % 4];
}

double tu_now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- engine messages ---- */

#define MSG_RING 16
#define MSG_LEN 240

static char msg_ring[MSG_RING][MSG_LEN];
static unsigned msg_count;

void tu_msg(void *ctx, enum arb_msg_level level, const char *text)
{
	static const char *names[] = {"err", "warn", "info", "debug"};
	const char *lv = (unsigned)level < 4 ? names[level] : "?";
	uint64_t verbose = 0;

	(void)ctx;
	if (env_u64("ARBOR_TEST_VERBOSE", &verbose) && verbose)
		fprintf(stderr, "arbor %s: %s\n", lv, text);
	if (level > ARB_MSG_WARN)
		return;
	snprintf(msg_ring[msg_count % MSG_RING], MSG_LEN, "%s: %s", lv, text);
	msg_count++;
}

void tu_msgs_clear(void)
{
	msg_count = 0;
}

/* One line of a failure report: on stderr, and as a TAP diagnostic on
 * stdout when cmocka speaks TAP (so the seed lands in the test's log). */
static void report_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void report_line(const char *fmt, ...)
{
	const char *out = getenv("CMOCKA_MESSAGE_OUTPUT");
	char buf[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	print_error("%s\n", buf);
	if (out && strcasecmp(out, "tap") == 0) {
		printf("# %s\n", buf);
		fflush(stdout);
	}
}

static void dump_messages(void)
{
	unsigned first = msg_count > MSG_RING ? msg_count - MSG_RING : 0;

	if (msg_count == 0)
		return;
	report_line("last engine messages (%u in all):", msg_count);
	for (unsigned i = first; i < msg_count; i++)
		report_line("  %s", msg_ring[i % MSG_RING]);
}

static void print_context(void)
{
	char buf[256] = "";
	size_t n = 0;

	if (tu_ctx.has_seed)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, " seed=%" PRIu64, tu_ctx.seed);
	if (tu_ctx.op != UINT64_MAX && n < sizeof(buf))
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, " op=%" PRIu64, tu_ctx.op);
	if (tu_ctx.tree_id && n < sizeof(buf))
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, " tree=%" PRIu64, tu_ctx.tree_id);
	if (tu_ctx.phase && n < sizeof(buf))
		snprintf(buf + n, sizeof(buf) - n, " phase=\"%s\"", tu_ctx.phase);
	if (buf[0])
		report_line("  context:%s", buf);
	if (tu_ctx.has_seed)
		report_line("  reproduce: ARBOR_TEST_SEED=%" PRIu64 " ARBOR_TEST_SCALE=%g %s",
		            tu_ctx.seed, tu_scale(), program_invocation_name);
}

void tu_fail_at(const char *file, int line, const char *fmt, ...)
{
	char buf[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	report_line("%s:%d: %s", file, line, buf);
	print_context();
	dump_messages();
	_fail(file, line);
	abort(); /* _fail() does not return inside a test */
}

void tu_assert_fail(const char *file, int line, const char *cond, const char *fmt, ...)
{
	char buf[1536];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	/* fmt starts with the space TU_ASSERT adds to keep it non-empty */
	tu_fail_at(file, line, "assertion `%s` failed%s%s", cond, buf[1] ? ":" : "",
	           buf[1] ? buf : "");
}

/* ---- filesystems ---- */

/* Devices and filesystems of the running test, so that a failed test
 * (cmocka longjmps out of it) does not leak them: see tu_teardown(). */
#define LIVE_MAX 8

static struct live_fs {
	struct arb_dev *dev;
	struct arb_fs *fs;
} live[LIVE_MAX];

static struct live_fs *live_find(const struct arb_dev *dev)
{
	for (int i = 0; i < LIVE_MAX; i++)
		if (live[i].dev == dev)
			return &live[i];
	return NULL;
}

static void live_release_all(void)
{
	for (int i = 0; i < LIVE_MAX; i++) {
		if (live[i].fs)
			arb_close(live[i].fs);
		if (live[i].dev)
			arb_dev_close(live[i].dev);
		live[i] = (struct live_fs){NULL, NULL};
	}
}

static void fill_uuid(uint8_t *uuid, uint64_t salt)
{
	uint64_t st = tu_ctx.seed ^ salt;
	uint64_t a = tu_splitmix64(&st), b = tu_splitmix64(&st);

	memcpy(uuid, &a, 8);
	memcpy(uuid + 8, &b, 8);
}

void tu_fs_create(struct tu_fs *t, uint64_t size, uint32_t nodesize)
{
	uint8_t fsid[16], devuuid[16];
	struct arb_format_opts fo = {
	        .nodesize = nodesize,
	        .fsid = fsid,
	        .devuuid = devuuid,
	        .label = "arbor-test",
	        .hash_seed = 0x5eed0000ull + tu_ctx.seed,
	        .time_sec = 1700000000ull,
	};
	struct live_fs *l;

	memset(t, 0, sizeof(*t));
	fill_uuid(fsid, 0xf51d);
	fill_uuid(devuuid, 0xde5);
	t->size = size;
	t->nodesize = nodesize;
	TU_RC(arb_memdev_create(size, &t->dev));
	l = live_find(NULL);
	if (l)
		l->dev = t->dev;
	TU_RC(arb_format(t->dev, &fo));
	tu_fs_open(t);
}

void tu_fs_open(struct tu_fs *t)
{
	struct arb_open_opts oo = {
	        .read_only = t->read_only,
	        .cache_bytes = t->cache_bytes,
	        .max_generation = t->max_generation,
	        .msg = tu_msg,
	};

	struct live_fs *l = live_find(t->dev);

	/* any earlier filesystem on this device has been closed by now */
	if (l)
		l->fs = NULL;
	t->fs = NULL;
	TU_RC(arb_open(t->dev, &oo, &t->fs));
	TU_ASSERT(t->fs != NULL);
	if (l)
		l->fs = t->fs;
}

void tu_fs_reopen(struct tu_fs *t)
{
	arb_close(t->fs);
	t->fs = NULL;
	tu_fs_open(t);
}

void tu_fs_destroy(struct tu_fs *t)
{
	struct live_fs *l = live_find(t->dev);

	if (l)
		*l = (struct live_fs){NULL, NULL};
	if (t->fs)
		arb_close(t->fs);
	if (t->dev)
		arb_dev_close(t->dev);
	t->fs = NULL;
	t->dev = NULL;
}

void tu_commit(struct arb_fs *fs)
{
	TU_RC(arb_commit(fs));
}

void tu_commit_n(struct arb_fs *fs, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		tu_commit(fs);
}

struct arb_tree *tu_tree(struct arb_fs *fs, uint64_t id)
{
	struct arb_tree *t = NULL;
	int rc = arb_tree_get(fs, id, &t);

	if (rc)
		TU_FAIL("arb_tree_get(%" PRIu64 ") returned %s", id, tu_strerr(rc));
	TU_ASSERT(t != NULL);
	TU_EQ_U64(arb_tree_id(t), id);
	return t;
}

uint64_t tu_tree_create(struct arb_fs *fs)
{
	uint64_t id = 0;

	TU_RC(arb_tree_create(fs, &id));
	TU_ASSERT(id >= ARB_FIRST_USER_TREE, "id %" PRIu64, id);
	return id;
}

uint64_t tu_tree_clone(struct arb_fs *fs, uint64_t src_id)
{
	uint64_t id = 0;
	int rc = arb_tree_clone(fs, src_id, &id);

	if (rc)
		TU_FAIL("arb_tree_clone(%" PRIu64 ") returned %s", src_id, tu_strerr(rc));
	TU_ASSERT(id >= ARB_FIRST_USER_TREE && id != src_id, "id %" PRIu64, id);
	return id;
}

void tu_tree_drop(struct arb_fs *fs, uint64_t id)
{
	int rc = arb_tree_drop(fs, id);

	if (rc)
		TU_FAIL("arb_tree_drop(%" PRIu64 ") returned %s", id, tu_strerr(rc));
	/* the model tests account for space as if the tree went at once */
	rc = arb_fs_drop_all(fs);
	if (rc)
		TU_FAIL("arb_fs_drop_all after dropping %" PRIu64 " returned %s", id,
		        tu_strerr(rc));
}

void tu_commit_churn(struct arb_fs *fs, uint64_t scratch_id, unsigned n)
{
	struct arb_tree *t = tu_tree(fs, scratch_id);
	struct arb_key k = tu_key(0);

	for (unsigned i = 0; i < n; i++) {
		uint32_t len;
		int rc = arb_lookup(t, &k, scratch, sizeof(scratch), &len);

		if (rc == 0)
			TU_RC(arb_delete(t, &k));
		else if (rc == -ENOENT)
			TU_RC(arb_put(t, &k, "churn", 5));
		else
			TU_FAIL("lookup in the scratch tree: %s", tu_strerr(rc));
		tu_commit(fs);
	}
}

void tu_drain(struct arb_fs *fs, uint64_t scratch_id)
{
	uint64_t last_q = UINT64_MAX;
	unsigned stable = 0;

	for (unsigned i = 0; i < 1000; i += 2) {
		struct arb_fs_info info;

		tu_commit_churn(fs, scratch_id, 2);
		arb_fs_info(fs, &info);
		if (info.deferred_sectors == 0 && info.quarantined_sectors == last_q)
			stable += 2;
		else
			stable = 0;
		last_q = info.quarantined_sectors;
		if (stable >= TU_DRAIN_COMMITS)
			return;
	}
	TU_FAIL("frees never settle: deferred or quarantined sectors still change after 1000 "
	        "commits");
}

uint64_t tu_alloc_cursor(struct arb_dev *dev, uint64_t gen)
{
	struct arb_super_slot slots[ARB_SUPER_COPIES * ARB_SUPER_SLOTS];
	int n = arb_super_read_all(dev, slots, (int)(sizeof(slots) / sizeof(slots[0])));

	TU_ASSERT(n > 0, "arb_super_read_all: %s", tu_strerr(n));
	for (int i = 0; i < n; i++)
		if (slots[i].status == ARB_SLOT_VALID && le64toh(slots[i].sb.generation) == gen)
			return le64toh(slots[i].sb.alloc_cursor);
	TU_FAIL("no valid superblock slot of generation %" PRIu64, gen);
}

uint64_t tu_used_sectors(const struct arb_fs *fs)
{
	struct arb_fs_info info;

	arb_fs_info(fs, &info);
	return info.used_sectors;
}

uint64_t tu_live_sectors(const struct arb_fs *fs)
{
	struct arb_fs_info info;

	arb_fs_info(fs, &info);
	TU_ASSERT(info.deferred_sectors <= info.used_sectors, "deferred %" PRIu64 " used %" PRIu64,
	          info.deferred_sectors, info.used_sectors);
	return info.used_sectors - info.deferred_sectors;
}

static int count_visit(void *vctx, const struct arb_node_view *v)
{
	(void)v;
	++*(uint64_t *)vctx;
	return 0;
}

void tu_space_get(struct arb_fs *fs, struct tu_space *sp)
{
	struct arb_fs_info info;
	uint64_t nodes = 0;

	arb_fs_info(fs, &info);
	TU_RC(arb_tree_walk(tu_tree(fs, ARB_ROOT_TREE_ID), count_visit, &nodes));
	TU_RC(arb_tree_walk(tu_tree(fs, ARB_SPACE_TREE_ID), count_visit, &nodes));
	sp->used = info.used_sectors;
	sp->live = info.used_sectors - info.deferred_sectors;
	sp->quarantined = info.quarantined_sectors;
	sp->free = info.free_sectors;
	sp->total = info.total_sectors;
	sp->internal = nodes * (info.nodesize / ARB_SECTOR_SIZE);
	TU_ASSERT(info.deferred_sectors <= info.used_sectors && sp->internal <= sp->live,
	          "used %" PRIu64 " deferred %" PRIu64 ", root and space trees %" PRIu64,
	          info.used_sectors, info.deferred_sectors, sp->internal);
	TU_ASSERT(sp->used + sp->quarantined + sp->free == sp->total,
	          "used %" PRIu64 " + quarantined %" PRIu64 " + free %" PRIu64 " != total %" PRIu64,
	          sp->used, sp->quarantined, sp->free, sp->total);
}

void tu_space_expect(struct arb_fs *fs, const struct tu_space *base)
{
	struct tu_space now;

	tu_space_get(fs, &now);
	if (now.live - now.internal != base->live - base->internal ||
	    (now.internal == base->internal &&
	     (now.used != base->used || now.quarantined != base->quarantined)))
		TU_FAIL("space not returned: used %" PRIu64 " live %" PRIu64 " quarantined %" PRIu64
		        " (root+space trees %" PRIu64 "), expected used %" PRIu64 " live %" PRIu64
		        " quarantined %" PRIu64 " (root+space trees %" PRIu64 ")",
		        now.used, now.live, now.quarantined, now.internal, base->used, base->live,
		        base->quarantined, base->internal);
}

void tu_check_clean(struct arb_fs *fs)
{
	struct arb_check_report r;
	int rc;

	memset(&r, 0, sizeof(r));
	rc = arb_check(fs, &r);
	if (rc || r.bad_nodes || r.count_mismatch || r.leaked || r.missing || r.used_mismatch ||
	    r.tree_totals || r.nodes < 2)
		TU_FAIL("arb_check: %s; nodes=%" PRIu64 " trees=%" PRIu64 " bad_nodes=%" PRIu64
		        " count_mismatch=%" PRIu64 " leaked=%" PRIu64 " missing=%" PRIu64
		        " used_mismatch=%" PRIu64 " tree_totals=%" PRIu64,
		        tu_strerr(rc), r.nodes, r.trees, r.bad_nodes, r.count_mismatch, r.leaked,
		        r.missing, r.used_mismatch, r.tree_totals);
}

arb_ino_t tu_lookup(struct arb_fs *fs, arb_ino_t dir, const char *name)
{
	struct arb_stat st;
	int rc = arb_vfs_lookup(fs, dir, name, &st);

	if (rc)
		TU_FAIL("lookup of \"%.40s\" returned %s", name, tu_strerr(rc));
	return st.ino;
}

arb_ino_t tu_mkfile(struct arb_fs *fs, const struct arb_cred *cred, arb_ino_t dir, const char *name)
{
	struct arb_stat st;

	TU_RC(arb_vfs_mknod(fs, dir, name, S_IFREG | 0644, 0, cred, &st));
	return st.ino;
}

arb_ino_t tu_mkdir(struct arb_fs *fs, const struct arb_cred *cred, arb_ino_t dir, const char *name)
{
	struct arb_stat st;

	TU_RC(arb_vfs_mkdir(fs, dir, name, 0755, cred, &st));
	return st.ino;
}

void tu_expect_missing(struct arb_fs *fs, arb_ino_t dir, const char *name)
{
	struct arb_stat st;

	TU_RC_EQ(arb_vfs_lookup(fs, dir, name, &st), -ENOENT);
}

static void churn_commit(struct arb_fs *fs, arb_ino_t root, unsigned i)
{
	struct arb_setattr sa = {.valid = ARB_SET_MTIME};
	struct arb_stat st;

	sa.mtime.tv_sec = 1000000 + i % 2;
	TU_RC(arb_vfs_setattr(fs, root, &sa, &st));
	tu_commit(fs);
}

unsigned tu_settle(struct arb_fs *fs, arb_ino_t root)
{
	struct arb_fs_info info, prev = {0};

	for (unsigned i = 0; i < 200; i += 2) {
		churn_commit(fs, root, i);
		churn_commit(fs, root, i + 1);
		arb_fs_info(fs, &info);
		if (i >= ARB_DEFER_COMMITS + 2 && !info.deferred_sectors &&
		    info.used_sectors == prev.used_sectors &&
		    info.quarantined_sectors == prev.quarantined_sectors)
			return i + 2;
		prev = info;
	}
	TU_FAIL("frees did not settle in 200 commits: deferred %" PRIu64 " quarantined %" PRIu64,
	        info.deferred_sectors, info.quarantined_sectors);
	return 0;
}

/* ---- keys and values ---- */

#define KEY_TYPES 7u
#define KEY_OBJ_BASE 16u

struct arb_key tu_key(uint64_t id)
{
	struct arb_key k = {
	        .objectid = KEY_OBJ_BASE + 2 * (id / KEY_TYPES),
	        .type = (uint8_t)(1 + 2 * (id % KEY_TYPES)),
	        .offset = 1 + (tu_mix64(id) >> 24),
	};
	return k;
}

bool tu_key_id(const struct arb_key *key, uint64_t *ret_id)
{
	struct arb_key k;
	uint64_t id;

	if (key->objectid < KEY_OBJ_BASE || (key->objectid - KEY_OBJ_BASE) % 2 ||
	    key->type % 2 == 0 || key->type > 2 * KEY_TYPES - 1)
		return false;
	id = (key->objectid - KEY_OBJ_BASE) / 2 * KEY_TYPES + (key->type - 1u) / 2;
	k = tu_key(id);
	if (arb_key_cmp(&k, key) != 0)
		return false;
	*ret_id = id;
	return true;
}

struct arb_key tu_key_before(uint64_t id)
{
	struct arb_key k = tu_key(id);

	k.offset = 0;
	return k;
}

struct arb_key tu_key_after(uint64_t id)
{
	struct arb_key k = tu_key(id);

	k.type++;
	k.offset = 0;
	return k;
}

const char *tu_key_str(const struct arb_key *key)
{
	static char buf[8][64];
	static unsigned n;
	char *b = buf[n++ % 8];

	snprintf(b, sizeof(buf[0]), "(%" PRIu64 ",%u,%" PRIu64 ")", key->objectid, key->type,
	         key->offset);
	return b;
}

/* Independent of the length: a shorter read sees a prefix of the same bytes. */
static uint64_t value_stream_seed(uint64_t id, uint64_t version)
{
	struct arb_key k = tu_key(id);

	return tu_mix64(k.objectid ^ tu_mix64(((uint64_t)k.type << 56) ^ k.offset) ^
	                tu_mix64(version));
}

void tu_value_fill(void *buf, uint32_t len, uint64_t id, uint64_t version)
{
	uint64_t st = value_stream_seed(id, version);
	uint8_t *p = buf;

	while (len >= 8) {
		uint64_t w = tu_splitmix64(&st);

		memcpy(p, &w, 8);
		p += 8;
		len -= 8;
	}
	if (len) {
		uint64_t w = tu_splitmix64(&st);

		memcpy(p, &w, len);
	}
}

long tu_value_diff(const void *buf, uint32_t len, uint64_t id, uint64_t version)
{
	static uint8_t want[ARB_MAX_NODESIZE];
	const uint8_t *got = buf;

	TU_ASSERT(len <= sizeof(want));
	tu_value_fill(want, len, id, version);
	if (memcmp(got, want, len) == 0)
		return -1;
	for (uint32_t i = 0; i < len; i++)
		if (got[i] != want[i])
			return (long)i;
	return -1;
}

static uint32_t clamp_u32(uint64_t v, uint32_t max)
{
	return v > max ? max : (uint32_t)v;
}

uint32_t tu_value_len(struct tu_rng *rng, uint32_t max_item)
{
	uint32_t quarter = max_item / 4;
	uint64_t r = tu_rng_below(rng, 1000);

	if (r < 60)
		return 0;
	if (r < 600)
		return clamp_u32(tu_rng_range(rng, 1, 48), max_item);
	if (r < 850)
		return clamp_u32(tu_rng_range(rng, 49, 300), max_item);
	if (r < 950)
		return clamp_u32(tu_rng_range(rng, 301, quarter > 301 ? quarter : 301), max_item);
	if (r < 995)
		return clamp_u32(tu_rng_range(rng, quarter > 32 ? quarter - 32 : 0, quarter + 32),
		                 max_item);
	if (r < 998)
		return clamp_u32(tu_rng_range(rng, max_item / 2, max_item), max_item);
	return max_item;
}

/* ---- the model ---- */

void tu_model_init(struct tu_model *m, uint64_t n)
{
	m->n = n;
	m->nr_present = 0;
	m->slot = calloc(n ? n : 1, sizeof(*m->slot));
	TU_ASSERT(m->slot != NULL);
}

void tu_model_free(struct tu_model *m)
{
	free(m->slot);
	memset(m, 0, sizeof(*m));
}

void tu_model_copy(struct tu_model *dst, const struct tu_model *src)
{
	struct tu_slot *s = malloc((src->n ? src->n : 1) * sizeof(*s));

	TU_ASSERT(s != NULL);
	memcpy(s, src->slot, src->n * sizeof(*s));
	free(dst->slot);
	dst->slot = s;
	dst->n = src->n;
	dst->nr_present = src->nr_present;
}

void tu_model_set(struct tu_model *m, uint64_t id, uint64_t version, uint32_t len)
{
	struct tu_slot *s = &m->slot[id];

	TU_ASSERT(id < m->n);
	if (!s->present)
		m->nr_present++;
	s->present = true;
	s->version = version;
	s->len = len;
}

void tu_model_clear(struct tu_model *m, uint64_t id)
{
	TU_ASSERT(id < m->n);
	if (m->slot[id].present)
		m->nr_present--;
	m->slot[id].present = false;
}

static void op_result(const char *op, struct arb_tree *t, uint64_t id, uint32_t len, int rc,
                      int want)
{
	struct arb_key k = tu_key(id);

	if (rc != want)
		TU_FAIL("%s tree %" PRIu64 " id %" PRIu64
		        " key %s len %u: returned %s, expected %s",
		        op, arb_tree_id(t), id, tu_key_str(&k), len, tu_strerr(rc),
		        tu_strerr(want));
}

typedef int (*write_fn)(struct arb_tree *tree, const struct arb_key *key, const void *data,
                        uint32_t len);

/* Write the value of (id, version, len) with fn; on success the model
 * follows. */
static int op_write(const char *op, write_fn fn, int want, struct tu_model *m, struct arb_tree *t,
                    uint64_t id, uint64_t version, uint32_t len)
{
	struct arb_key k = tu_key(id);
	int rc;

	tu_value_fill(scratch, len, id, version);
	rc = fn(t, &k, scratch, len);
	op_result(op, t, id, len, rc, want);
	if (rc == 0)
		tu_model_set(m, id, version, len);
	return rc;
}

int tu_op_insert(struct tu_model *m, struct arb_tree *t, uint64_t id, uint64_t version,
                 uint32_t len)
{
	return op_write("insert", arb_insert, m->slot[id].present ? -EEXIST : 0, m, t, id, version,
	                len);
}

int tu_op_update(struct tu_model *m, struct arb_tree *t, uint64_t id, uint64_t version,
                 uint32_t len)
{
	return op_write("update", arb_update, m->slot[id].present ? 0 : -ENOENT, m, t, id, version,
	                len);
}

int tu_op_put(struct tu_model *m, struct arb_tree *t, uint64_t id, uint64_t version, uint32_t len)
{
	return op_write("put", arb_put, 0, m, t, id, version, len);
}

int tu_op_delete(struct tu_model *m, struct arb_tree *t, uint64_t id)
{
	struct arb_key k = tu_key(id);
	int want = m->slot[id].present ? 0 : -ENOENT;
	int rc = arb_delete(t, &k);

	op_result("delete", t, id, 0, rc, want);
	if (rc == 0)
		tu_model_clear(m, id);
	return rc;
}

/* NULL if data is the value the slot predicts, else what is wrong (in buf). */
static const char *value_problem(const struct tu_slot *s, uint64_t id, const void *data,
                                 uint32_t len, char *buf, size_t bufsize)
{
	long diff;

	if (len != s->len) {
		snprintf(buf, bufsize, "length %u, expected %u (version %" PRIu64 ")", len, s->len,
		         s->version);
		return buf;
	}
	diff = tu_value_diff(data, len, id, s->version);
	if (diff < 0)
		return NULL;
	snprintf(buf, bufsize, "data differs at byte %ld of %u (expected version %" PRIu64 ")",
	         diff, len, s->version);
	return buf;
}

void tu_model_check_lookup(const struct tu_model *m, struct arb_tree *t, uint64_t id)
{
	const struct tu_slot *s = &m->slot[id];
	struct arb_key k = tu_key(id);
	uint32_t len = UINT32_MAX;
	int rc = arb_lookup(t, &k, scratch, sizeof(scratch), &len);
	char problem[160];

	if (!s->present) {
		if (rc != -ENOENT)
			TU_FAIL("lookup tree %" PRIu64 " id %" PRIu64
			        " key %s: returned %s (len %u), "
			        "expected ENOENT",
			        arb_tree_id(t), id, tu_key_str(&k), tu_strerr(rc), len);
		return;
	}
	if (rc != 0)
		TU_FAIL("lookup tree %" PRIu64 " id %" PRIu64 " key %s: returned %s, expected "
		        "the item (len %u)",
		        arb_tree_id(t), id, tu_key_str(&k), tu_strerr(rc), s->len);
	if (value_problem(s, id, scratch, len, problem, sizeof(problem)))
		TU_FAIL("lookup tree %" PRIu64 " id %" PRIu64 " key %s: %s", arb_tree_id(t), id,
		        tu_key_str(&k), problem);
}

/* First id whose key is >= start (m->n if none). */
static uint64_t model_lower_bound(const struct tu_model *m, const struct arb_key *start)
{
	uint64_t lo = 0, hi = m->n;

	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;
		struct arb_key k = tu_key(mid);

		if (arb_key_cmp(&k, start) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* First id whose key is > start (m->n if none). */
static uint64_t model_upper_bound(const struct tu_model *m, const struct arb_key *start)
{
	uint64_t id = model_lower_bound(m, start);
	struct arb_key k;

	if (id < m->n) {
		k = tu_key(id);
		if (arb_key_cmp(&k, start) == 0)
			id++;
	}
	return id;
}

/* Next present id from `id` (inclusive) in direction dir; -1 if none. */
static int64_t model_next_present(const struct tu_model *m, int64_t id, enum arb_iter_dir dir)
{
	int64_t step = dir == ARB_ITER_FORWARD ? 1 : -1;

	while (id >= 0 && (uint64_t)id < m->n && !m->slot[id].present)
		id += step;
	if (id < 0 || (uint64_t)id >= m->n)
		return -1;
	return id;
}

struct range_pos {
	const char *dirname;
	const struct arb_key *start;
	uint64_t index;
};

static void range_item(const struct tu_model *m, struct arb_tree *t, const struct range_pos *p,
                       int64_t want, int rc, const struct arb_key *key, const void *data,
                       uint32_t len)
{
	char problem[160];
	struct arb_key wk;
	uint64_t got_id;

	if (want < 0) {
		if (rc != 0)
			TU_FAIL("iter %s from %s tree %" PRIu64 ": item #%" PRIu64
			        ": returned %s key %s, expected the end",
			        p->dirname, tu_key_str(p->start), arb_tree_id(t), p->index,
			        tu_strerr(rc), rc == 1 ? tu_key_str(key) : "-");
		return;
	}
	wk = tu_key((uint64_t)want);
	if (rc != 1)
		TU_FAIL("iter %s from %s tree %" PRIu64 ": item #%" PRIu64
		        ": returned %s, expected id %" PRId64 " key %s",
		        p->dirname, tu_key_str(p->start), arb_tree_id(t), p->index, tu_strerr(rc),
		        want, tu_key_str(&wk));
	if (arb_key_cmp(key, &wk) != 0)
		TU_FAIL("iter %s from %s tree %" PRIu64 ": item #%" PRIu64 ": key %s (%s), "
		        "expected id %" PRId64 " key %s",
		        p->dirname, tu_key_str(p->start), arb_tree_id(t), p->index, tu_key_str(key),
		        tu_key_id(key, &got_id) ? "a known id" : "not a test key", want,
		        tu_key_str(&wk));
	if (value_problem(&m->slot[want], (uint64_t)want, data, len, problem, sizeof(problem)))
		TU_FAIL("iter %s from %s tree %" PRIu64 ": item #%" PRIu64 " id %" PRId64
		        " key %s: %s",
		        p->dirname, tu_key_str(p->start), arb_tree_id(t), p->index, want,
		        tu_key_str(&wk), problem);
}

void tu_model_check_range(const struct tu_model *m, struct arb_tree *t, const struct arb_key *start,
                          enum arb_iter_dir dir, uint64_t max_items)
{
	struct range_pos p = {dir == ARB_ITER_FORWARD ? "fwd" : "bwd", start, 0};
	struct arb_iter *it = NULL;
	int64_t id;
	int rc;

	if (dir == ARB_ITER_FORWARD)
		id = (int64_t)model_lower_bound(m, start);
	else
		id = (int64_t)model_upper_bound(m, start) - 1;
	rc = arb_iter_open(t, start, dir, &it);
	if (rc)
		TU_FAIL("arb_iter_open(%s, %s) tree %" PRIu64 ": %s", tu_key_str(start), p.dirname,
		        arb_tree_id(t), tu_strerr(rc));
	for (;;) {
		struct arb_key key = {0, 0, 0};
		const void *data = NULL;
		uint32_t len = 0;
		int64_t want = model_next_present(m, id, dir);

		rc = arb_iter_next(it, &key, &data, &len);
		range_item(m, t, &p, want, rc, &key, data, len);
		if (want < 0)
			break;
		p.index++;
		if (max_items && p.index >= max_items)
			break;
		id = want + (dir == ARB_ITER_FORWARD ? 1 : -1);
	}
	arb_iter_close(it);
}

void tu_model_check(const struct tu_model *m, struct arb_tree *t)
{
	struct arb_key min = ARB_KEY_MIN, max = ARB_KEY_MAX;

	tu_model_check_range(m, t, &min, ARB_ITER_FORWARD, 0);
	tu_model_check_range(m, t, &max, ARB_ITER_BACKWARD, 0);
	for (uint64_t id = 0; id < m->n; id++) {
		tu_model_check_lookup(m, t, id);
		if (id % 16 == 0) {
			struct arb_key k = tu_key_after(id);
			uint32_t len;
			int rc = arb_lookup(t, &k, scratch, sizeof(scratch), &len);

			if (rc != -ENOENT)
				TU_FAIL("lookup of absent key %s tree %" PRIu64 " returned %s",
				        tu_key_str(&k), arb_tree_id(t), tu_strerr(rc));
		}
	}
}

/* ---- structure walk ---- */

#define WALK_MAX_DEPTH 16

struct walk_frame {
	bool active;
	int level, nr, next;
	uint64_t bytenr;
	size_t cap;
	struct arb_key *keys;
	uint64_t *ptr, *gen, *csum;
};

struct walk_ctx {
	struct tu_tree_stats *st;
	bool committed;
	bool have_last;
	struct arb_key last;
	struct walk_frame f[WALK_MAX_DEPTH];
	char err[512];
};

static int walk_err(struct walk_ctx *c, const struct arb_node_view *v, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static int walk_err(struct walk_ctx *c, const struct arb_node_view *v, const char *fmt, ...)
{
	int n = snprintf(c->err, sizeof(c->err),
	                 "node %" PRIu64 " (level %u depth %d): ", v ? v->bytenr : 0,
	                 v ? v->level : 0, v ? v->depth : -1);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->err + n, sizeof(c->err) - (size_t)n, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static int close_frames(struct walk_ctx *c, int from)
{
	for (int d = from; d < WALK_MAX_DEPTH; d++) {
		struct walk_frame *f = &c->f[d];

		if (f->active && f->next != f->nr) {
			snprintf(c->err, sizeof(c->err),
			         "node %" PRIu64 " (depth %d): %d of its %d children visited",
			         f->bytenr, d, f->next, f->nr);
			return -EINVAL;
		}
		f->active = false;
	}
	return 0;
}

static void frame_fill(struct walk_frame *f, const struct arb_node_view *v)
{
	if (f->cap < v->nritems) {
		f->cap = v->nritems;
		f->keys = realloc(f->keys, f->cap * sizeof(*f->keys));
		f->ptr = realloc(f->ptr, f->cap * sizeof(*f->ptr));
		f->gen = realloc(f->gen, f->cap * sizeof(*f->gen));
		f->csum = realloc(f->csum, f->cap * sizeof(*f->csum));
		TU_ASSERT(f->keys && f->ptr && f->gen && f->csum);
	}
	for (int i = 0; i < v->nritems; i++) {
		arb_node_view_key(v, i, &f->keys[i]);
		arb_node_view_ptr(v, i, &f->ptr[i], &f->gen[i], &f->csum[i]);
	}
	f->active = true;
	f->level = v->level;
	f->nr = v->nritems;
	f->next = 0;
	f->bytenr = v->bytenr;
}

/* Check v against the pointer its parent holds. */
static int walk_child(struct walk_ctx *c, const struct arb_node_view *v)
{
	struct walk_frame *p = &c->f[v->depth - 1];
	struct arb_key first;
	int i;

	if (!p->active || p->next >= p->nr)
		return walk_err(c, v, "not expected: parent has no pointer left");
	i = p->next++;
	if (v->level + 1 != p->level)
		return walk_err(c, v, "level %u under a parent of level %d", v->level, p->level);
	if (v->nritems == 0)
		return walk_err(c, v, "empty non-root node");
	if (c->committed && (p->ptr[i] != v->bytenr || p->gen[i] != v->generation ||
	                     p->csum[i] != (uint64_t)v->csum))
		return walk_err(c, v,
		                "parent %" PRIu64 " slot %d points to %" PRIu64 " gen %" PRIu64
		                " csum %#" PRIx64 "; node has gen %" PRIu64 " csum %#x",
		                p->bytenr, i, p->ptr[i], p->gen[i], p->csum[i], v->generation,
		                v->csum);
	arb_node_view_key(v, 0, &first);
	if (arb_key_cmp(&first, &p->keys[i]) != 0)
		return walk_err(c, v, "first key %s, parent %" PRIu64 " slot %d says %s",
		                tu_key_str(&first), p->bytenr, i, tu_key_str(&p->keys[i]));
	return 0;
}

static int walk_keys(struct walk_ctx *c, const struct arb_node_view *v)
{
	struct arb_key prev, k;

	for (int i = 0; i < v->nritems; i++) {
		arb_node_view_key(v, i, &k);
		if (i > 0 && arb_key_cmp(&prev, &k) >= 0)
			return walk_err(c, v, "key %d %s not above key %d %s", i, tu_key_str(&k),
			                i - 1, tu_key_str(&prev));
		if (v->level == 0 && i == 0 && c->have_last && arb_key_cmp(&c->last, &k) >= 0)
			return walk_err(c, v, "first key %s not above the previous leaf's last %s",
			                tu_key_str(&k), tu_key_str(&c->last));
		prev = k;
	}
	if (v->level == 0 && v->nritems) {
		c->last = prev;
		c->have_last = true;
	}
	return 0;
}

static int walk_visit(void *vctx, const struct arb_node_view *v)
{
	struct walk_ctx *c = vctx;
	struct tu_tree_stats *st = c->st;
	int rc;

	if (v->depth < 0 || v->depth >= WALK_MAX_DEPTH)
		return walk_err(c, v, "impossible depth");
	rc = close_frames(c, v->depth);
	if (rc)
		return rc;
	if (v->depth == 0) {
		if (st->nodes)
			return walk_err(c, v, "a second root");
		st->root_level = v->level;
	} else {
		rc = walk_child(c, v);
		if (rc)
			return rc;
	}
	if (v->level + v->depth != st->root_level)
		return walk_err(c, v, "level + depth != root level %d", st->root_level);
	if (v->level > 0 && v->nritems == 0)
		return walk_err(c, v, "internal node without items");
	rc = walk_keys(c, v);
	if (rc)
		return rc;
	st->nodes++;
	if (v->level == 0) {
		st->leaves++;
		st->items += v->nritems;
		st->leaf_used_bytes += v->used_bytes;
	} else {
		frame_fill(&c->f[v->depth], v);
	}
	return 0;
}

void tu_tree_stats(struct arb_tree *t, bool committed, struct tu_tree_stats *st)
{
	struct walk_ctx c;
	int rc;

	memset(st, 0, sizeof(*st));
	memset(&c, 0, sizeof(c));
	c.st = st;
	c.committed = committed;
	st->root_level = -1;
	rc = arb_tree_walk(t, walk_visit, &c);
	if (rc == 0 && close_frames(&c, 0))
		rc = -EINVAL;
	for (int d = 0; d < WALK_MAX_DEPTH; d++) {
		free(c.f[d].keys);
		free(c.f[d].ptr);
		free(c.f[d].gen);
		free(c.f[d].csum);
	}
	if (rc)
		TU_FAIL("tree %" PRIu64 " walk: %s: %s", arb_tree_id(t), tu_strerr(rc),
		        c.err[0] ? c.err : "(error from the engine)");
	if (st->nodes == 0)
		TU_FAIL("tree %" PRIu64 " walk visited no node", arb_tree_id(t));
}

static int root_visit(void *vctx, const struct arb_node_view *v)
{
	uint64_t *ret = vctx;

	if (v->depth == 0)
		*ret = v->bytenr;
	return 1;
}

uint64_t tu_tree_root(struct arb_tree *t)
{
	uint64_t bytenr = 0;

	TU_RC(arb_tree_walk(t, root_visit, &bytenr));
	TU_ASSERT(bytenr != 0, "tree %" PRIu64, arb_tree_id(t));
	return bytenr;
}

/* ---- reference recount ---- */

struct ref_entry {
	uint64_t bytenr; /* 0: empty */
	uint32_t want;
	bool seen;
};

struct ref_map {
	struct ref_entry *v;
	size_t cap, nr;
};

static struct ref_entry *ref_slot(struct ref_map *m, uint64_t bytenr);

static void ref_grow(struct ref_map *m)
{
	struct ref_map n = {.cap = m->cap ? m->cap * 2 : 1024};

	n.v = calloc(n.cap, sizeof(*n.v));
	TU_ASSERT(n.v != NULL);
	for (size_t i = 0; i < m->cap; i++)
		if (m->v[i].bytenr)
			*ref_slot(&n, m->v[i].bytenr) = m->v[i];
	n.nr = m->nr;
	free(m->v);
	*m = n;
}

static struct ref_entry *ref_slot(struct ref_map *m, uint64_t bytenr)
{
	size_t i = tu_mix64(bytenr) & (m->cap - 1);

	while (m->v[i].bytenr && m->v[i].bytenr != bytenr)
		i = (i + 1) & (m->cap - 1);
	return &m->v[i];
}

static struct ref_entry *ref_get(struct ref_map *m, uint64_t bytenr)
{
	struct ref_entry *e;

	if ((m->nr + 1) * 2 > m->cap)
		ref_grow(m);
	e = ref_slot(m, bytenr);
	if (!e->bytenr) {
		e->bytenr = bytenr;
		m->nr++;
	}
	return e;
}

struct ref_walk {
	struct ref_map map;
	int err;
};

static int ref_visit(void *vctx, const struct arb_node_view *v)
{
	struct ref_walk *w = vctx;
	struct ref_entry *e = ref_get(&w->map, v->bytenr);

	if (v->depth == 0)
		e->want++;
	if (e->seen)
		return 1; /* shared subtree: its pointers are already counted */
	e->seen = true;
	for (int i = 0; v->level > 0 && i < v->nritems; i++) {
		uint64_t child, gen, csum;

		arb_node_view_ptr(v, i, &child, &gen, &csum);
		if (child == 0) {
			w->err = -EINVAL;
			return -EINVAL;
		}
		ref_get(&w->map, child)->want++;
	}
	return 0;
}

uint32_t tu_refcount(struct arb_fs *fs, uint64_t bytenr)
{
	uint32_t count = UINT32_MAX;
	int rc = arb_sector_refcount(fs, bytenr, &count);

	if (rc)
		TU_FAIL("arb_sector_refcount(%" PRIu64 "): %s", bytenr, tu_strerr(rc));
	return count;
}

static void ref_compare(struct arb_fs *fs, struct ref_map *m)
{
	struct arb_fs_info info;
	uint32_t sectors;

	arb_fs_info(fs, &info);
	sectors = info.nodesize / ARB_SECTOR_SIZE;
	for (size_t i = 0; i < m->cap; i++) {
		const struct ref_entry *e = &m->v[i];

		if (!e->bytenr)
			continue;
		if (!e->seen)
			TU_FAIL("node %" PRIu64 " is pointed to but the walk never reached it",
			        e->bytenr);
		for (uint32_t s = 0; s < sectors; s++) {
			uint64_t at = e->bytenr + (uint64_t)s * ARB_SECTOR_SIZE;
			uint32_t got = tu_refcount(fs, at);

			if (got != e->want)
				TU_FAIL("node %" PRIu64 " sector %u: refcount %u, but %u parents "
				        "point to it",
				        e->bytenr, s, got, e->want);
		}
	}
}

uint64_t tu_check_refcounts(struct arb_fs *fs, const uint64_t *ids, unsigned nr)
{
	struct ref_walk w;
	uint64_t nodes;

	memset(&w, 0, sizeof(w));
	ref_grow(&w.map);
	for (unsigned i = 0; i < nr; i++) {
		int rc = arb_tree_walk(tu_tree(fs, ids[i]), ref_visit, &w);

		if (rc || w.err) {
			free(w.map.v);
			TU_FAIL("walk of tree %" PRIu64 " for refcounts: %s", ids[i],
			        tu_strerr(rc ? rc : w.err));
		}
	}
	ref_compare(fs, &w.map);
	nodes = w.map.nr;
	free(w.map.v);
	return nodes;
}

/* ---- cmocka group ---- */

struct seed_arg {
	tu_seed_fn fn;
	uint64_t seed;
};

static int tu_setup(void **state)
{
	(void)state;
	tu_ctx_clear();
	tu_msgs_clear();
	return 0;
}

static int tu_teardown(void **state)
{
	(void)state;
	live_release_all();
	return 0;
}

static void seed_trampoline(void **state)
{
	struct seed_arg *a = *state;

	tu_ctx_seed(a->seed);
	a->fn(a->seed);
	tu_ctx_clear();
}

static struct CMUnitTest *tests_push(struct tu_tests *ts)
{
	if (ts->n == ts->cap) {
		ts->cap = ts->cap ? ts->cap * 2 : 16;
		ts->v = realloc(ts->v, ts->cap * sizeof(*ts->v));
		if (!ts->v)
			abort();
	}
	memset(&ts->v[ts->n], 0, sizeof(ts->v[0]));
	return &ts->v[ts->n++];
}

void tu_tests_add(struct tu_tests *ts, const char *name, CMUnitTestFunction fn)
{
	struct CMUnitTest *t = tests_push(ts);

	t->name = name;
	t->test_func = fn;
	t->setup_func = tu_setup;
	t->teardown_func = tu_teardown;
}

void tu_tests_add_seeds(struct tu_tests *ts, const char *name, tu_seed_fn fn, uint64_t base,
                        unsigned count)
{
	uint64_t *seeds = calloc(count ? count : 1, sizeof(*seeds));
	unsigned n;

	if (!seeds)
		abort();
	n = tu_seeds(base, count, seeds);
	for (unsigned i = 0; i < n; i++) {
		struct CMUnitTest *t = tests_push(ts);
		struct seed_arg *a = malloc(sizeof(*a));
		char *tname = NULL;

		if (!a || asprintf(&tname, "%s seed=%" PRIu64, name, seeds[i]) < 0)
			abort();
		a->fn = fn;
		a->seed = seeds[i];
		t->name = tname;
		t->test_func = seed_trampoline;
		t->setup_func = tu_setup;
		t->teardown_func = tu_teardown;
		t->initial_state = a;
	}
	free(seeds);
}

int tu_tests_run(struct tu_tests *ts, const char *group)
{
	int failed = _cmocka_run_group_tests(group, ts->v, ts->n, NULL, NULL);

	for (size_t i = 0; i < ts->n; i++) {
		if (!ts->v[i].initial_state)
			continue;
		/* a seed test: its name and argument were allocated */
		free((char *)ts->v[i].name);
		free(ts->v[i].initial_state);
	}
	free(ts->v);
	memset(ts, 0, sizeof(*ts));
	return failed;
}
