/* SPDX-License-Identifier: MIT */
/*
 * test_fsync_log.c - the fsync log (core/log.c): arb_vfs_fsync of a file
 * whose only changes since the last commit are data writes over extents
 * (and timestamps) appends to a log chain and flushes once; anything else
 * commits; an unchanged file costs nothing.  arb_open replays the chain of
 * the newest commit.
 *
 *  - basic: random overwrites and extending writes, logged fsyncs (no
 *    commit, one flush each; scattered writes take several blocks), close
 *    without a commit, reopen: the files hold exactly what was fsync'ed
 *    (later writes are gone), timestamps included;
 *  - fallbacks: a new file, truncate, chmod, chown, rename, link, xattrs,
 *    punch, zero range, preallocation, copy_file_range, inline data, a file
 *    of a snapshot taken since the last commit, and an fsync too big for 64
 *    log blocks commit; timestamps and data writes (also into preallocated
 *    space) are logged; an unchanged file writes nothing;
 *  - a long chain: the fsync that could pass 4096 blocks commits; a replay
 *    reads the whole chain;
 *  - power cuts: a random workload of writes (up to 1 MiB, unaligned,
 *    extending), scattered small writes, fsyncs, timestamp changes,
 *    truncates, chmods, punched holes and commits is recorded on the memdev;
 *    at every event index (and at seeded random-subset cuts) the crash image
 *    must open (read-only too, writing nothing), check clean, and hold every
 *    file in its last durable state or in the state of the fsync/commit in
 *    flight - never a mix, never -EIO - and take new changes; some replays
 *    are themselves cut at every event and must find the same files;
 *  - a read-only open replays in memory and writes nothing;
 *  - a corrupted log block, or the lost data of one fsync, ends the replay
 *    there: the fsyncs before it are applied.
 */
#include "testutil.h"

#include "arbor/super.h"
#include "arbor/vfs.h"

#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

#define KIB (1ull << 10)
#define MIB (1ull << 20)
#define SECTOR ((uint64_t)ARB_SECTOR_SIZE)
#define DEV_SIZE (32 * MIB)

#define NR_CRASH_SEEDS 6
#define CRASH_OPS 60
#define CRASH_REORDERS 40

static const struct arb_cred cred = {.uid = 0, .gid = 0};

/* ---- helpers ---- */

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	TU_ASSERT(p != NULL, "malloc(%zu)", n);
	return p;
}

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	TU_ASSERT(p != NULL, "realloc(%zu)", n);
	return p;
}

static uint64_t gen_of(struct arb_fs *fs)
{
	struct arb_fs_info info;

	arb_fs_info(fs, &info);
	return info.generation;
}

/* Random bytes, sometimes zeros or a short repeating pattern. */
static void fill_data(struct tu_rng *rng, uint8_t *buf, size_t len)
{
	unsigned kind = (unsigned)tu_rng_below(rng, 20);

	if (kind == 0) {
		memset(buf, 0, len);
	} else if (kind == 1) {
		uint8_t b = (uint8_t)tu_rng_next(rng);

		for (size_t i = 0; i < len; i++)
			buf[i] = (uint8_t)(b + i % 7);
	} else {
		size_t i = 0;

		for (; i + 8 <= len; i += 8) {
			uint64_t x = tu_rng_next(rng);

			memcpy(buf + i, &x, 8);
		}
		for (; i < len; i++)
			buf[i] = (uint8_t)tu_rng_next(rng);
	}
}

/* ---- a simple model of one file ---- */

struct mf {
	arb_ino_t ino;
	uint8_t *data;
	uint64_t size, cap;
	uint32_t mode;
	struct timespec mtime;
};

static void mf_reserve(struct mf *m, uint64_t size)
{
	uint64_t cap = m->cap ? m->cap : 64 * KIB;

	if (size <= m->cap)
		return;
	while (cap < size)
		cap *= 2;
	m->data = xrealloc(m->data, cap);
	memset(m->data + m->cap, 0, cap - m->cap);
	m->cap = cap;
}

static void mf_free(struct mf *m)
{
	free(m->data);
	memset(m, 0, sizeof(*m));
}

/* dst (zeroed or initialised) becomes a copy of src. */
static void mf_copy(struct mf *dst, const struct mf *src)
{
	uint8_t *d = dst->data;
	uint64_t cap = dst->cap;

	if (cap < src->cap) {
		d = xrealloc(d, src->cap);
		cap = src->cap;
	}
	memset(d, 0, cap);
	if (src->size)
		memcpy(d, src->data, src->size);
	*dst = *src;
	dst->data = d;
	dst->cap = cap;
}

static void mf_stat(struct arb_fs *fs, struct mf *m)
{
	struct arb_stat st;

	TU_RC(arb_vfs_getattr(fs, m->ino, &st));
	TU_EQ_U64(st.size, m->size);
	m->mode = st.mode;
	m->mtime = st.mtime;
}

static void mf_create(struct arb_fs *fs, arb_ino_t dir, const char *name, struct mf *m)
{
	struct arb_stat st;

	memset(m, 0, sizeof(*m));
	TU_RC(arb_vfs_mknod(fs, dir, name, S_IFREG | 0644, 0, &cred, &st));
	m->ino = st.ino;
	mf_stat(fs, m);
}

static void mf_write(struct arb_fs *fs, struct mf *m, uint64_t off, const uint8_t *buf, size_t len)
{
	size_t done = 0;

	TU_RC(arb_vfs_write(fs, m->ino, off, buf, len, &done));
	TU_EQ_U64(done, len);
	mf_reserve(m, off + len);
	memcpy(m->data + off, buf, len);
	if (off + len > m->size)
		m->size = off + len;
	mf_stat(fs, m);
}

static void mf_truncate(struct arb_fs *fs, struct mf *m, uint64_t size)
{
	struct arb_setattr sa = {.valid = ARB_SET_SIZE, .size = size};

	TU_RC(arb_vfs_setattr(fs, m->ino, &sa, NULL));
	mf_reserve(m, size);
	if (size < m->size)
		memset(m->data + size, 0, m->size - size);
	m->size = size;
	mf_stat(fs, m);
}

/* A random write: overwrite, append, or past the end; unaligned. */
static void mf_random_write(struct arb_fs *fs, struct tu_rng *rng, struct mf *m, uint8_t *buf,
                            uint64_t max_len, uint64_t file_cap)
{
	unsigned p = (unsigned)tu_rng_below(rng, 100);
	uint64_t len = p < 50   ? tu_rng_range(rng, 1, 9000)
	               : p < 85 ? tu_rng_range(rng, 4 * KIB, 160 * KIB)
	                        : tu_rng_range(rng, 1, max_len);
	uint64_t off;

	p = (unsigned)tu_rng_below(rng, 100);
	if (p < 25)
		off = m->size;
	else if (p < 35)
		off = m->size + tu_rng_below(rng, 100 * KIB);
	else
		off = tu_rng_below(rng, m->size + 1);
	if (len > file_cap)
		len = file_cap;
	if (off + len > file_cap)
		off = tu_rng_below(rng, file_cap - len + 1);
	fill_data(rng, buf, len);
	mf_write(fs, m, off, buf, len);
}

/* The file on fs must equal the model: size, mode, mtime, every byte. */
static void mf_expect(struct arb_fs *fs, const struct mf *m, const char *what)
{
	uint8_t *buf = xmalloc(m->size + 1);
	struct arb_stat st;
	size_t got = SIZE_MAX;

	TU_RC(arb_vfs_getattr(fs, m->ino, &st));
	TU_ASSERT(st.size == m->size, "%s: ino %#" PRIx64 " size %" PRIu64 ", expected %" PRIu64,
	          what, m->ino, st.size, m->size);
	TU_ASSERT(st.mode == m->mode, "%s: mode %o, expected %o", what, st.mode, m->mode);
	TU_ASSERT(st.mtime.tv_sec == m->mtime.tv_sec && st.mtime.tv_nsec == m->mtime.tv_nsec,
	          "%s: ino %#" PRIx64 " mtime %lld.%09ld, expected %lld.%09ld", what, m->ino,
	          (long long)st.mtime.tv_sec, st.mtime.tv_nsec, (long long)m->mtime.tv_sec,
	          m->mtime.tv_nsec);
	TU_RC(arb_vfs_read(fs, m->ino, 0, buf, m->size + 1, &got));
	TU_EQ_U64(got, m->size);
	for (uint64_t i = 0; i < m->size; i++)
		if (buf[i] != m->data[i])
			TU_FAIL("%s: ino %#" PRIx64 " byte %" PRIu64 " is 0x%02x, expected 0x%02x",
			        what, m->ino, i, buf[i], m->data[i]);
	free(buf);
}

/* ---- fsync and what it cost ---- */

struct cost {
	uint64_t writes, flushes;
	bool committed;
};

static struct cost do_fsync(struct tu_fs *t, arb_ino_t ino)
{
	uint64_t g = gen_of(t->fs), w = arb_memdev_write_count(t->dev);
	uint64_t f = arb_memdev_flush_count(t->dev);
	struct cost c;

	TU_RC(arb_vfs_fsync(t->fs, ino));
	c.writes = arb_memdev_write_count(t->dev) - w;
	c.flushes = arb_memdev_flush_count(t->dev) - f;
	c.committed = gen_of(t->fs) != g;
	if (c.committed)
		TU_EQ_U64(gen_of(t->fs), g + 1);
	return c;
}

/* Logged: no commit, log blocks written, exactly one flush. */
static void fsync_logged(struct tu_fs *t, arb_ino_t ino)
{
	struct cost c = do_fsync(t, ino);

	TU_ASSERT(!c.committed, "fsync of ino %#" PRIx64 " committed", ino);
	TU_ASSERT(c.writes >= 1 && c.flushes == 1,
	          "fsync of ino %#" PRIx64 ": %" PRIu64 " writes, %" PRIu64 " flushes", ino,
	          c.writes, c.flushes);
}

static void fsync_committed(struct tu_fs *t, arb_ino_t ino, const char *why)
{
	struct cost c = do_fsync(t, ino);

	TU_ASSERT(c.committed, "fsync of ino %#" PRIx64 " after %s did not commit", ino, why);
}

static void fsync_noop(struct tu_fs *t, arb_ino_t ino)
{
	struct cost c = do_fsync(t, ino);

	TU_ASSERT(!c.committed && !c.writes && !c.flushes,
	          "fsync of unchanged ino %#" PRIx64 ": %" PRIu64 " writes, %" PRIu64
	          " flushes, commit %d",
	          ino, c.writes, c.flushes, c.committed);
}

/* ---- 1. basic ---- */

#define BASIC_BIG 3

static void test_basic(void **state)
{
	static const uint64_t sizes[BASIC_BIG] = {200 * KIB, 64 * KIB + 1000, MIB + 17};
	struct tu_fs t;
	struct tu_rng rng;
	struct mf cur[BASIC_BIG + 1] = {0}, dur[BASIC_BIG + 1] = {0};
	uint8_t *buf = xmalloc(2 * MIB);
	arb_ino_t root;
	uint64_t logged = 0, dropped = 0;

	(void)state;
	tu_ctx_seed(77);
	tu_rng_init(&rng, 77);
	tu_fs_create(&t, DEV_SIZE, 0);
	TU_RC(arb_vfs_init(t.fs, 0755, &cred));
	TU_RC(arb_vfs_root(t.fs, 0, &root));
	tu_commit(t.fs);
	for (int i = 0; i <= BASIC_BIG; i++) {
		char name[16];

		snprintf(name, sizeof(name), "file%d", i);
		mf_create(t.fs, root, name, &cur[i]);
		/* the last one stays small: inline data */
		fill_data(&rng, buf, i < BASIC_BIG ? sizes[i] : 500);
		mf_write(t.fs, &cur[i], 0, buf, i < BASIC_BIG ? sizes[i] : 500);
	}
	/* new files: this fsync commits (and the log is in use from now on) */
	fsync_committed(&t, cur[0].ino, "creating files");
	for (int i = 0; i <= BASIC_BIG; i++)
		mf_copy(&dur[i], &cur[i]);

	for (int round = 0; round < 4; round++) {
		uint64_t g0 = gen_of(t.fs);
		bool any = false;

		tu_ctx_op((uint64_t)round);
		if (round > 0) {
			/* the first fsync after an open commits: no log yet */
			mf_random_write(t.fs, &rng, &cur[0], buf, MIB, 2 * MIB);
			TU_RC(arb_vfs_fsync(t.fs, cur[0].ino));
			mf_copy(&dur[0], &cur[0]);
			fsync_noop(&t, cur[0].ino);
			g0 = gen_of(t.fs);
		}
		for (int op = 0; op < 30; op++) {
			int f = (int)tu_rng_below(&rng, BASIC_BIG);

			mf_random_write(t.fs, &rng, &cur[f], buf, MIB, 2 * MIB);
			if (tu_rng_pct(&rng, 40)) {
				fsync_logged(&t, cur[f].ino);
				mf_copy(&dur[f], &cur[f]);
				fsync_noop(&t, cur[f].ino);
				logged++;
				any = true;
			}
		}
		/* new timestamps alone are logged too */
		{
			struct arb_setattr sa = {.valid = ARB_SET_MTIME | ARB_SET_ATIME,
			                         .mtime = {1234567890 + round, 5000 + round},
			                         .atime = {1234567000, 0}};

			TU_RC(arb_vfs_setattr(t.fs, cur[1].ino, &sa, NULL));
			mf_stat(t.fs, &cur[1]);
			TU_EQ_U64(cur[1].mtime.tv_sec, 1234567890 + round);
			fsync_logged(&t, cur[1].ino);
			mf_copy(&dur[1], &cur[1]);
			any = true;
		}
		/* small writes all over a file: one fsync of several blocks */
		{
			struct mf *m = &cur[round % BASIC_BIG];
			struct cost c;

			for (int k = 0; k < 150; k++) {
				uint64_t off = tu_rng_below(&rng, m->size - 10);

				fill_data(&rng, buf, 10);
				mf_write(t.fs, m, off, buf, 10);
			}
			c = do_fsync(&t, m->ino);
			TU_ASSERT(!c.committed && c.flushes == 1 && c.writes >= 2,
			          "scattered fsync: commit %d, %" PRIu64 " writes, %" PRIu64
			          " flushes",
			          c.committed, c.writes, c.flushes);
			mf_copy(&dur[round % BASIC_BIG], m);
		}
		/* every file once more, then writes nobody fsyncs */
		for (int f = 0; f < BASIC_BIG; f++) {
			mf_random_write(t.fs, &rng, &cur[f], buf, 64 * KIB, 2 * MIB);
			fsync_logged(&t, cur[f].ino);
			mf_copy(&dur[f], &cur[f]);
		}
		for (int op = 0; op < 5; op++) {
			int f = (int)tu_rng_below(&rng, BASIC_BIG);

			mf_random_write(t.fs, &rng, &cur[f], buf, 300 * KIB, 2 * MIB);
			dropped++;
		}
		TU_EQ_U64(gen_of(t.fs), g0);
		/* arb_close discards the running transaction: the log remains */
		tu_ctx_phase("reopen without a commit");
		tu_fs_reopen(&t);
		TU_EQ_U64(gen_of(t.fs), g0 + (any ? 1 : 0));
		for (int i = 0; i <= BASIC_BIG; i++) {
			mf_expect(t.fs, &dur[i], "after the replay");
			mf_copy(&cur[i], &dur[i]);
		}
		tu_check_clean(t.fs);
		/* a second open finds nothing more to replay */
		tu_fs_reopen(&t);
		TU_EQ_U64(gen_of(t.fs), g0 + (any ? 1 : 0));
		for (int i = 0; i <= BASIC_BIG; i++)
			mf_expect(t.fs, &dur[i], "after a second open");
		tu_ctx_phase(NULL);
	}
	/* a commit on top, and a reopen */
	mf_random_write(t.fs, &rng, &cur[2], buf, MIB, 2 * MIB);
	tu_commit(t.fs);
	tu_fs_reopen(&t);
	for (int i = 0; i <= BASIC_BIG; i++)
		mf_expect(t.fs, &cur[i], "after a commit and a reopen");
	tu_check_clean(t.fs);
	print_message("# basic: %" PRIu64 " logged fsyncs, %" PRIu64 " writes dropped\n", logged,
	              dropped);
	for (int i = 0; i <= BASIC_BIG; i++) {
		mf_free(&cur[i]);
		mf_free(&dur[i]);
	}
	free(buf);
	tu_fs_destroy(&t);
}

/* ---- 2. what commits, what is logged, what does nothing ---- */

struct fb {
	struct tu_fs t;
	struct tu_rng rng;
	arb_ino_t root;
	struct mf f, small; /* f: extents; small: inline data */
	uint8_t *buf;
};

/* Reopen without a commit: what the fsyncs made durable must be there. */
static void fb_reopen(struct fb *x, const char *what)
{
	tu_ctx_phase(what);
	tu_fs_reopen(&x->t);
	mf_expect(x->t.fs, &x->f, what);
	mf_expect(x->t.fs, &x->small, what);
	tu_check_clean(x->t.fs);
	tu_ctx_phase(NULL);
}

/* A data write to f and its fsync: logged (after a first fsync that may
 * commit, when the log is not in use yet). */
static void fb_arm(struct fb *x)
{
	mf_random_write(x->t.fs, &x->rng, &x->f, x->buf, 200 * KIB, MIB);
	TU_RC(arb_vfs_fsync(x->t.fs, x->f.ino));
	mf_random_write(x->t.fs, &x->rng, &x->f, x->buf, 200 * KIB, MIB);
	fsync_logged(&x->t, x->f.ino);
}

static void test_fallbacks(void **state)
{
	struct fb *x = calloc(1, sizeof(*x));
	struct arb_setattr sa;
	struct arb_stat st;
	struct mf nf = {0};
	uint64_t w, fl, copied = 0;
	size_t got = 0;
	char val[16];

	(void)state;
	TU_ASSERT(x != NULL);
	tu_ctx_seed(78);
	tu_rng_init(&x->rng, 78);
	x->buf = xmalloc(MIB);
	tu_fs_create(&x->t, 2 * DEV_SIZE, 0);
	TU_RC(arb_vfs_init(x->t.fs, 0755, &cred));
	TU_RC(arb_vfs_root(x->t.fs, 0, &x->root));
	mf_create(x->t.fs, x->root, "f", &x->f);
	mf_create(x->t.fs, x->root, "small", &x->small);
	fill_data(&x->rng, x->buf, 300 * KIB);
	mf_write(x->t.fs, &x->f, 0, x->buf, 300 * KIB);
	mf_write(x->t.fs, &x->small, 0, x->buf, 100);
	tu_commit(x->t.fs);

	/* unchanged since the commit: nothing at all, not even a flush */
	w = arb_memdev_write_count(x->t.dev);
	fl = arb_memdev_flush_count(x->t.dev);
	fsync_noop(&x->t, x->f.ino);
	fsync_noop(&x->t, x->small.ino);
	fsync_noop(&x->t, x->root);
	TU_EQ_U64(arb_memdev_write_count(x->t.dev), w);
	TU_EQ_U64(arb_memdev_flush_count(x->t.dev), fl);

	/* a file created since the last commit */
	fb_arm(x);
	mf_create(x->t.fs, x->root, "new", &nf);
	mf_write(x->t.fs, &nf, 0, x->buf, 100 * KIB);
	fsync_noop(&x->t, x->f.ino); /* f is in the log already */
	fsync_committed(&x->t, nf.ino, "creating it");
	fb_reopen(x, "a new file");
	mf_expect(x->t.fs, &nf, "the new file");

	/* a truncate */
	fb_arm(x);
	mf_truncate(x->t.fs, &x->f, x->f.size - 5000);
	fsync_committed(&x->t, x->f.ino, "a truncate");
	fb_reopen(x, "a truncate");
	/* growing it by a truncate too */
	fb_arm(x);
	mf_truncate(x->t.fs, &x->f, x->f.size + 12345);
	fsync_committed(&x->t, x->f.ino, "an extending truncate");
	fb_reopen(x, "an extending truncate");

	/* chmod */
	fb_arm(x);
	sa = (struct arb_setattr){.valid = ARB_SET_MODE, .mode = 0600};
	TU_RC(arb_vfs_setattr(x->t.fs, x->f.ino, &sa, NULL));
	mf_stat(x->t.fs, &x->f);
	TU_EQ_U64(x->f.mode, S_IFREG | 0600);
	fsync_committed(&x->t, x->f.ino, "a chmod");
	fb_reopen(x, "a chmod");

	/* chown */
	fb_arm(x);
	sa = (struct arb_setattr){.valid = ARB_SET_UID | ARB_SET_GID, .uid = 7, .gid = 8};
	TU_RC(arb_vfs_setattr(x->t.fs, x->f.ino, &sa, NULL));
	mf_stat(x->t.fs, &x->f);
	fsync_committed(&x->t, x->f.ino, "a chown");
	fb_reopen(x, "a chown");
	TU_RC(arb_vfs_getattr(x->t.fs, x->f.ino, &st));
	TU_EQ_U64(st.uid, 7);

	/* rename */
	fb_arm(x);
	TU_RC(arb_vfs_rename(x->t.fs, x->root, "f", x->root, "f-renamed", 0));
	mf_stat(x->t.fs, &x->f);
	fsync_committed(&x->t, x->f.ino, "a rename");
	fb_reopen(x, "a rename");
	TU_RC(arb_vfs_lookup(x->t.fs, x->root, "f-renamed", &st));
	TU_EQ_U64(st.ino, x->f.ino);

	/* a hard link */
	fb_arm(x);
	TU_RC(arb_vfs_link(x->t.fs, x->f.ino, x->root, "f-link", &st));
	mf_stat(x->t.fs, &x->f);
	fsync_committed(&x->t, x->f.ino, "a link");
	fb_reopen(x, "a link");
	TU_RC(arb_vfs_lookup(x->t.fs, x->root, "f-link", &st));
	TU_EQ_U64(st.nlink, 2);

	/* an xattr */
	fb_arm(x);
	TU_RC(arb_vfs_setxattr(x->t.fs, x->f.ino, "user.k", "value", 5, 0));
	mf_stat(x->t.fs, &x->f);
	fsync_committed(&x->t, x->f.ino, "setxattr");
	fb_reopen(x, "setxattr");
	TU_RC(arb_vfs_getxattr(x->t.fs, x->f.ino, "user.k", val, sizeof(val), &got));
	TU_EQ_U64(got, 5);
	TU_ASSERT(memcmp(val, "value", 5) == 0);
	/* and its removal */
	fb_arm(x);
	TU_RC(arb_vfs_removexattr(x->t.fs, x->f.ino, "user.k"));
	mf_stat(x->t.fs, &x->f);
	fsync_committed(&x->t, x->f.ino, "removexattr");
	fb_reopen(x, "removexattr");
	TU_RC_EQ(arb_vfs_getxattr(x->t.fs, x->f.ino, "user.k", val, sizeof(val), &got), -ENODATA);

	/* punching a hole */
	fb_arm(x);
	TU_RC(arb_vfs_fallocate(x->t.fs, x->f.ino, ARB_FALLOC_PUNCH_HOLE | ARB_FALLOC_KEEP_SIZE,
	                        10000, 50000));
	memset(x->f.data + 10000, 0, 50000);
	mf_stat(x->t.fs, &x->f);
	fsync_committed(&x->t, x->f.ino, "a punched hole");
	fb_reopen(x, "a punched hole");

	/* zeroing a range */
	fb_arm(x);
	TU_RC(arb_vfs_fallocate(x->t.fs, x->f.ino, ARB_FALLOC_ZERO_RANGE | ARB_FALLOC_KEEP_SIZE,
	                        70000, 30000));
	memset(x->f.data + 70000, 0, 30000);
	mf_stat(x->t.fs, &x->f);
	fsync_committed(&x->t, x->f.ino, "a zeroed range");
	fb_reopen(x, "a zeroed range");
	/* preallocating past the end, keeping the size */
	fb_arm(x);
	TU_RC(arb_vfs_fallocate(x->t.fs, x->f.ino, ARB_FALLOC_KEEP_SIZE, x->f.size, 1 * MIB));
	mf_stat(x->t.fs, &x->f);
	fsync_committed(&x->t, x->f.ino, "a preallocation");
	fb_reopen(x, "a preallocation");
	/* a write into the preallocated space past the end: logged */
	mf_write(x->t.fs, &x->f, 0, (const uint8_t *)"arm", 3); /* the log in use */
	TU_RC(arb_vfs_fsync(x->t.fs, x->f.ino));
	fill_data(&x->rng, x->buf, 10000);
	mf_write(x->t.fs, &x->f, x->f.size + 20000, x->buf, 10000);
	fsync_logged(&x->t, x->f.ino);
	fb_reopen(x, "a write into preallocated space");
	/* preallocating past the end: the size grows */
	fb_arm(x);
	TU_RC(arb_vfs_fallocate(x->t.fs, x->f.ino, 0, x->f.size - 100, 50000));
	mf_reserve(&x->f, x->f.size + 49900);
	x->f.size += 49900;
	mf_stat(x->t.fs, &x->f);
	fsync_committed(&x->t, x->f.ino, "a growing preallocation");
	fb_reopen(x, "a growing preallocation");
	mf_write(x->t.fs, &x->f, 0, (const uint8_t *)"arm", 3);
	TU_RC(arb_vfs_fsync(x->t.fs, x->f.ino));
	fill_data(&x->rng, x->buf, 5000);
	mf_write(x->t.fs, &x->f, x->f.size - 30000, x->buf, 5000);
	fsync_logged(&x->t, x->f.ino);
	fb_reopen(x, "a write into a preallocated range");

	/* copy_file_range into f (shared sectors) */
	fb_arm(x);
	TU_RC(arb_vfs_copy_range(x->t.fs, nf.ino, 0, x->f.ino, 8 * SECTOR, 16 * SECTOR, &copied));
	TU_EQ_U64(copied, 16 * SECTOR);
	memcpy(x->f.data + 8 * SECTOR, nf.data, 16 * SECTOR);
	mf_stat(x->t.fs, &x->f);
	fsync_committed(&x->t, x->f.ino, "copy_file_range");
	fb_reopen(x, "copy_file_range");

	/* inline data */
	fb_arm(x);
	fill_data(&x->rng, x->buf, 50);
	mf_write(x->t.fs, &x->small, 20, x->buf, 50);
	fsync_committed(&x->t, x->small.ino, "an inline write");
	fb_reopen(x, "an inline write");
	/* an inline file growing out of its inline item */
	fb_arm(x);
	fill_data(&x->rng, x->buf, 20000);
	mf_write(x->t.fs, &x->small, 100, x->buf, 20000);
	fsync_committed(&x->t, x->small.ino, "leaving inline data");
	fb_reopen(x, "leaving inline data");
	/* now it has extents: its writes are logged */
	fb_arm(x);
	fill_data(&x->rng, x->buf, 3000);
	mf_write(x->t.fs, &x->small, 5000, x->buf, 3000);
	fsync_logged(&x->t, x->small.ino);
	fsync_noop(&x->t, x->small.ino);
	fb_reopen(x, "a write to a former inline file");

	/* timestamps alone, and an extending write: logged */
	fb_arm(x);
	sa = (struct arb_setattr){.valid = ARB_SET_MTIME_NOW | ARB_SET_ATIME_NOW};
	TU_RC(arb_vfs_setattr(x->t.fs, x->f.ino, &sa, NULL));
	mf_stat(x->t.fs, &x->f);
	fsync_logged(&x->t, x->f.ino);
	fill_data(&x->rng, x->buf, 70000);
	mf_write(x->t.fs, &x->f, x->f.size + 3333, x->buf, 70000);
	fsync_logged(&x->t, x->f.ino);
	/* another file's change does not make f's fsync do anything */
	mf_write(x->t.fs, &x->small, 10, x->buf, 10);
	fsync_noop(&x->t, x->f.ino);
	fsync_logged(&x->t, x->small.ino);
	fb_reopen(x, "timestamps and an extending write");

	/* 3000 ranges: one fsync of almost 64 log blocks */
	fb_arm(x);
	x->buf[0] = 0x66;
	for (uint64_t k = 0; k < 3000; k++)
		mf_write(x->t.fs, &x->f, 2 * k * SECTOR + k % 100, x->buf, 1);
	{
		struct cost c = do_fsync(&x->t, x->f.ino);

		TU_ASSERT(!c.committed && c.flushes == 1 && c.writes > 50 && c.writes <= 64,
		          "3000 ranges: commit %d, %" PRIu64 " blocks", c.committed, c.writes);
	}
	fb_reopen(x, "3000 scattered writes");
	/* more than 64 log blocks of ranges for one fsync: it commits */
	fb_arm(x);
	x->buf[0] = 0x77;
	for (uint64_t k = 0; k < 3400; k++)
		mf_write(x->t.fs, &x->f, 2 * k * SECTOR + k % 100, x->buf, 1);
	fsync_committed(&x->t, x->f.ino, "3400 scattered writes");
	fb_reopen(x, "3400 scattered writes");

	/* a file of a snapshot taken since the last commit is a new inode:
	 * the log cannot replay it (the commit has no such tree) */
	{
		struct mf sf = {0};
		struct arb_stat sst;

		fb_arm(x);
		TU_RC(arb_vfs_snapshot(x->t.fs, arb_ino_subvol(x->root), x->root, "snap", 0, &sst));
		TU_RC(arb_vfs_lookup(x->t.fs, sst.ino, "f-renamed", &st));
		TU_ASSERT(st.ino != x->f.ino);
		mf_copy(&sf, &x->f);
		sf.ino = st.ino;
		mf_random_write(x->t.fs, &x->rng, &sf, x->buf, 100 * KIB, MIB);
		fsync_committed(&x->t, sf.ino, "a snapshot");
		fb_reopen(x, "a snapshot");
		mf_expect(x->t.fs, &sf, "the file in the snapshot");
		/* committed: now its writes are logged */
		mf_random_write(x->t.fs, &x->rng, &sf, x->buf, 100 * KIB, MIB);
		TU_RC(arb_vfs_fsync(x->t.fs, sf.ino));
		mf_random_write(x->t.fs, &x->rng, &sf, x->buf, 100 * KIB, MIB);
		fsync_logged(&x->t, sf.ino);
		fb_reopen(x, "a write to the snapshot");
		mf_expect(x->t.fs, &sf, "the file in the snapshot");
		mf_free(&sf);
	}

	/* after a commit, nothing to do; then new timestamps alone */
	fb_arm(x);
	tu_commit(x->t.fs);
	fsync_noop(&x->t, x->f.ino);
	sa = (struct arb_setattr){.valid = ARB_SET_MTIME, .mtime = {1500000000, 42}};
	TU_RC(arb_vfs_setattr(x->t.fs, x->f.ino, &sa, NULL));
	mf_stat(x->t.fs, &x->f);
	fsync_logged(&x->t, x->f.ino);
	fsync_noop(&x->t, x->f.ino);
	fb_reopen(x, "a commit");
	mf_expect(x->t.fs, &nf, "at the end");

	mf_free(&nf);
	mf_free(&x->f);
	mf_free(&x->small);
	free(x->buf);
	tu_fs_destroy(&x->t);
	free(x);
}

/* ---- 3. power cuts ---- */

#define CR_FILES 5
#define CR_BIG 3 /* files 0..2 have extents, 3 and 4 start inline */
#define CR_FILE_CAP (1280 * KIB)
#define CR_DEV_SIZE (16 * MIB)
#define NO_STATE UINT32_MAX

/* One state of one file, as a sync made it durable. */
struct cstate {
	uint64_t ver, size;
	uint8_t *data;
	uint32_t mode;
	struct timespec mtime;
};

struct cfile {
	struct mf m;
	uint64_t ver;        /* bumped by every change */
	uint64_t synced_ver; /* the version the last sync covering it saw */
	struct cstate *st;
	uint32_t nst, stcap;
};

/* A commit (file -1) or a logged fsync of one file, and the events it
 * wrote: [ev0, ev1), the last one its final flush. */
struct csync {
	size_t ev0, ev1;
	int file;
	uint32_t st[CR_FILES]; /* NO_STATE: not covered */
};

struct crun {
	struct tu_fs t;
	struct tu_rng rng;
	uint64_t seed;
	arb_ino_t root;
	struct cfile f[CR_FILES];
	struct csync *s;
	size_t ns, scap;
	uint8_t *buf;
	int last_written;
	uint64_t scatters, multi_block, punches;
	uint64_t writes, logged, fsync_commits, noops, commits, op_commits, touches, truncates,
	        chmods, reads;
};

struct cstats {
	uint64_t states, ro_states, nested, durable, inflight;
};

static size_t ev_now(struct crun *r)
{
	return arb_memdev_events(r->t.dev);
}

/* The state of file i now, stored once per version. */
static uint32_t cf_state(struct crun *r, int i)
{
	struct cfile *f = &r->f[i];
	struct cstate *s;

	if (f->nst && f->st[f->nst - 1].ver == f->ver)
		return f->nst - 1;
	if (f->nst == f->stcap) {
		f->stcap = f->stcap ? 2 * f->stcap : 16;
		f->st = xrealloc(f->st, f->stcap * sizeof(*f->st));
	}
	s = &f->st[f->nst];
	s->ver = f->ver;
	s->size = f->m.size;
	s->data = xmalloc(f->m.size);
	memcpy(s->data, f->m.data, f->m.size);
	s->mode = f->m.mode;
	s->mtime = f->m.mtime;
	return f->nst++;
}

static void record_sync(struct crun *r, int file, size_t ev0)
{
	struct csync *s;

	if (r->ns == r->scap) {
		r->scap = r->scap ? 2 * r->scap : 64;
		r->s = xrealloc(r->s, r->scap * sizeof(*r->s));
	}
	s = &r->s[r->ns++];
	s->ev0 = ev0;
	s->ev1 = ev_now(r);
	s->file = file;
	for (int i = 0; i < CR_FILES; i++) {
		s->st[i] = NO_STATE;
		if (file < 0 || file == i) {
			s->st[i] = cf_state(r, i);
			r->f[i].synced_ver = r->f[i].ver;
		}
	}
}

/* Called after an operation's engine call, before the model changes: a
 * commit it made to free space (vfs_reserve commits before changing
 * anything) made the state before it durable. */
static void after_op(struct crun *r, size_t ev0, uint64_t gen0)
{
	if (gen_of(r->t.fs) != gen0) {
		record_sync(r, -1, ev0);
		r->op_commits++;
	}
}

static void cr_write(struct crun *r)
{
	/* mostly the files with extents */
	int i = tu_rng_pct(&r->rng, 80) ? (int)tu_rng_below(&r->rng, CR_BIG)
	                                : (int)tu_rng_below(&r->rng, CR_FILES);
	struct cfile *f = &r->f[i];
	uint64_t off, len;
	size_t ev0 = ev_now(r), done = 0;
	uint64_t gen0 = gen_of(r->t.fs);

	if (i >= CR_BIG && f->m.size < 4096 && !tu_rng_pct(&r->rng, 5)) {
		/* small files mostly stay small */
		len = tu_rng_range(&r->rng, 1, 400);
		off = tu_rng_below(&r->rng, f->m.size + 200);
	} else {
		unsigned p = (unsigned)tu_rng_below(&r->rng, 100);

		len = p < 45   ? tu_rng_range(&r->rng, 1, 9000)
		      : p < 88 ? tu_rng_range(&r->rng, 4 * KIB, 160 * KIB)
		               : tu_rng_range(&r->rng, 160 * KIB, MIB);
		p = (unsigned)tu_rng_below(&r->rng, 100);
		if (p < 25)
			off = f->m.size;
		else if (p < 35)
			off = f->m.size + tu_rng_below(&r->rng, 64 * KIB);
		else
			off = tu_rng_below(&r->rng, f->m.size + 1);
		if (off + len > CR_FILE_CAP)
			off = tu_rng_below(&r->rng, CR_FILE_CAP - len + 1);
	}
	fill_data(&r->rng, r->buf, len);
	TU_RC(arb_vfs_write(r->t.fs, f->m.ino, off, r->buf, len, &done));
	TU_EQ_U64(done, len);
	after_op(r, ev0, gen0);
	mf_reserve(&f->m, off + len);
	memcpy(f->m.data + off, r->buf, len);
	if (off + len > f->m.size)
		f->m.size = off + len;
	mf_stat(r->t.fs, &f->m);
	f->ver++;
	r->last_written = i;
	r->writes++;
}

static void cr_fsync(struct crun *r);

/* Many small writes all over one file: its next fsync takes several log
 * blocks (about 50 ranges fit in one). */
static void cr_scatter(struct crun *r)
{
	int i = (int)tu_rng_below(&r->rng, CR_BIG);
	struct cfile *f = &r->f[i];
	unsigned n = (unsigned)tu_rng_range(&r->rng, 20, 100);
	size_t ev0 = ev_now(r), done = 0;
	uint64_t gen0 = gen_of(r->t.fs);

	if (f->m.size < 2 * n * SECTOR)
		return;
	for (unsigned k = 0; k < n; k++) {
		uint64_t len = tu_rng_range(&r->rng, 1, 100);
		uint64_t off = tu_rng_below(&r->rng, f->m.size - len);

		fill_data(&r->rng, r->buf, len);
		TU_RC(arb_vfs_write(r->t.fs, f->m.ino, off, r->buf, len, &done));
		after_op(r, ev0, gen0);
		gen0 = gen_of(r->t.fs);
		ev0 = ev_now(r);
		memcpy(f->m.data + off, r->buf, len);
		f->ver++;
	}
	mf_stat(r->t.fs, &f->m);
	r->last_written = i;
	r->scatters++;
	if (tu_rng_pct(&r->rng, 60))
		cr_fsync(r);
}

static void cr_fsync(struct crun *r)
{
	/* mostly the file written last */
	int i = tu_rng_pct(&r->rng, 70) ? r->last_written : (int)tu_rng_below(&r->rng, CR_FILES);
	struct cfile *f = &r->f[i];
	size_t ev0 = ev_now(r), flushes = 0;
	uint64_t gen0 = gen_of(r->t.fs);

	TU_RC(arb_vfs_fsync(r->t.fs, f->m.ino));
	if (gen_of(r->t.fs) != gen0) {
		record_sync(r, -1, ev0);
		r->fsync_commits++;
		return;
	}
	if (ev_now(r) == ev0) {
		TU_ASSERT(f->ver == f->synced_ver,
		          "fsync of file %d (changed since its last sync) did nothing", i);
		r->noops++;
		return;
	}
	TU_ASSERT(f->ver != f->synced_ver, "fsync of unchanged file %d wrote %zu events", i,
	          ev_now(r) - ev0);
	for (size_t e = ev0; e < ev_now(r); e++)
		flushes += arb_memdev_event_is_flush(r->t.dev, e);
	TU_ASSERT(flushes == 1 && arb_memdev_event_is_flush(r->t.dev, ev_now(r) - 1),
	          "logged fsync: %zu flushes", flushes);
	record_sync(r, i, ev0);
	r->logged++;
	r->multi_block += ev_now(r) - ev0 > 2; /* blocks + the flush */
}

static void cr_commit(struct crun *r)
{
	size_t ev0 = ev_now(r);
	uint64_t gen0 = gen_of(r->t.fs);

	tu_commit(r->t.fs);
	if (gen_of(r->t.fs) != gen0) {
		record_sync(r, -1, ev0);
		r->commits++;
	} else {
		TU_EQ_U64(ev_now(r), ev0);
	}
}

static void cr_touch(struct crun *r)
{
	int i = (int)tu_rng_below(&r->rng, CR_FILES);
	struct cfile *f = &r->f[i];
	struct arb_setattr sa = {0};
	size_t ev0 = ev_now(r);
	uint64_t gen0 = gen_of(r->t.fs);

	if (tu_rng_pct(&r->rng, 50)) {
		sa.valid = ARB_SET_MTIME | ARB_SET_ATIME;
		sa.mtime.tv_sec = (time_t)tu_rng_range(&r->rng, 1000000000, 1900000000);
		sa.mtime.tv_nsec = (long)tu_rng_below(&r->rng, 1000000000);
		sa.atime = sa.mtime;
	} else {
		sa.valid = ARB_SET_MTIME_NOW | ARB_SET_ATIME_NOW;
	}
	TU_RC(arb_vfs_setattr(r->t.fs, f->m.ino, &sa, NULL));
	after_op(r, ev0, gen0);
	mf_stat(r->t.fs, &f->m);
	f->ver++;
	r->touches++;
}

static void cr_truncate(struct crun *r)
{
	int i = (int)tu_rng_below(&r->rng, CR_FILES);
	struct cfile *f = &r->f[i];
	struct arb_setattr sa = {.valid = ARB_SET_SIZE};
	size_t ev0 = ev_now(r);
	uint64_t gen0 = gen_of(r->t.fs);

	sa.size = tu_rng_below(&r->rng, f->m.size + 64 * KIB);
	if (sa.size > CR_FILE_CAP)
		sa.size = CR_FILE_CAP;
	TU_RC(arb_vfs_setattr(r->t.fs, f->m.ino, &sa, NULL));
	after_op(r, ev0, gen0);
	mf_reserve(&f->m, sa.size);
	if (sa.size < f->m.size)
		memset(f->m.data + sa.size, 0, f->m.size - sa.size);
	f->m.size = sa.size;
	mf_stat(r->t.fs, &f->m);
	f->ver++;
	r->truncates++;
}

static void cr_chmod(struct crun *r)
{
	int i = (int)tu_rng_below(&r->rng, CR_FILES);
	struct cfile *f = &r->f[i];
	struct arb_setattr sa = {.valid = ARB_SET_MODE};
	size_t ev0 = ev_now(r);
	uint64_t gen0 = gen_of(r->t.fs);

	sa.mode = (f->m.mode & 0777) == 0644 ? 0600 : 0644;
	TU_RC(arb_vfs_setattr(r->t.fs, f->m.ino, &sa, NULL));
	after_op(r, ev0, gen0);
	mf_stat(r->t.fs, &f->m);
	f->ver++;
	r->chmods++;
}

/* A hole punched (it commits at the next fsync). */
static void cr_punch(struct crun *r)
{
	int i = (int)tu_rng_below(&r->rng, CR_BIG);
	struct cfile *f = &r->f[i];
	uint64_t off = tu_rng_below(&r->rng, f->m.size + 1);
	uint64_t len = tu_rng_range(&r->rng, 1, 200 * KIB), end;
	size_t ev0 = ev_now(r);
	uint64_t gen0 = gen_of(r->t.fs);

	TU_RC(arb_vfs_fallocate(r->t.fs, f->m.ino, ARB_FALLOC_PUNCH_HOLE | ARB_FALLOC_KEEP_SIZE,
	                        off, len));
	after_op(r, ev0, gen0);
	end = off + len < f->m.size ? off + len : f->m.size;
	if (off < end)
		memset(f->m.data + off, 0, end - off);
	mf_stat(r->t.fs, &f->m);
	f->ver++;
	r->punches++;
}

/* A read (it may store a new atime, which nobody needs to log). */
static void cr_read(struct crun *r)
{
	int i = (int)tu_rng_below(&r->rng, CR_FILES);
	struct cfile *f = &r->f[i];
	uint64_t off = tu_rng_below(&r->rng, f->m.size + 1);
	uint64_t len = tu_rng_range(&r->rng, 1, 200 * KIB);
	size_t got = SIZE_MAX;

	TU_RC(arb_vfs_read(r->t.fs, f->m.ino, off, r->buf, len, &got));
	TU_EQ_U64(got, off + len <= f->m.size ? len : f->m.size - off);
	TU_ASSERT(got == 0 || memcmp(r->buf, f->m.data + off, got) == 0, "read of file %d", i);
	r->reads++;
}

static void cr_op(struct crun *r)
{
	unsigned p = (unsigned)tu_rng_below(&r->rng, 100);

	if (p < 3)
		cr_scatter(r);
	else if (p < 46)
		cr_write(r);
	else if (p < 80)
		cr_fsync(r);
	else if (p < 87)
		cr_touch(r);
	else if (p < 92)
		cr_read(r);
	else if (p < 95)
		cr_truncate(r);
	else if (p < 96)
		cr_chmod(r);
	else if (p < 97)
		cr_punch(r);
	else
		cr_commit(r);
}

static bool state_eq(const struct cstate *s, const struct arb_stat *st, const uint8_t *data)
{
	return st->size == s->size && st->mode == s->mode && st->mtime.tv_sec == s->mtime.tv_sec &&
	       st->mtime.tv_nsec == s->mtime.tv_nsec && memcmp(data, s->data, s->size) == 0;
}

static void state_diff(const struct cstate *s, const struct arb_stat *st, const uint8_t *data,
                       char *out, size_t outlen)
{
	uint64_t n = st->size < s->size ? st->size : s->size, i = 0;

	while (i < n && data[i] == s->data[i])
		i++;
	snprintf(out, outlen,
	         "size %" PRIu64 " mode %o mtime %lld.%09ld; first byte differing at %" PRIu64,
	         s->size, s->mode, (long long)s->mtime.tv_sec, s->mtime.tv_nsec, i);
}

/* Which state file i of the image is in: 0 durable, 1 in flight. */
static int match_file(struct crun *r, struct arb_fs *fs, int i, uint32_t dur, uint32_t inf,
                      size_t cut, uint64_t rseed)
{
	struct cfile *f = &r->f[i];
	struct arb_stat st;
	size_t got = SIZE_MAX;
	char d1[160], d2[160] = "none";

	TU_RC(arb_vfs_getattr(fs, f->m.ino, &st));
	TU_ASSERT(st.size <= CR_FILE_CAP, "file %d: size %" PRIu64, i, st.size);
	TU_RC(arb_vfs_read(fs, f->m.ino, 0, r->buf, st.size + 1, &got));
	TU_EQ_U64(got, st.size);
	if (state_eq(&f->st[dur], &st, r->buf))
		return 0;
	if (inf != NO_STATE && state_eq(&f->st[inf], &st, r->buf))
		return 1;
	state_diff(&f->st[dur], &st, r->buf, d1, sizeof(d1));
	if (inf != NO_STATE)
		state_diff(&f->st[inf], &st, r->buf, d2, sizeof(d2));
	TU_FAIL("cut %zu (reorder seed %" PRIu64 "): file %d (ino %#" PRIx64 ") has size %" PRIu64
	        " mode %o mtime %lld.%09ld; durable state: %s; in flight: %s",
	        cut, rseed, i, f->m.ino, st.size, st.mode, (long long)st.mtime.tv_sec,
	        st.mtime.tv_nsec, d1, d2);
}

static void crash_check(struct crun *r, size_t cut, uint64_t rseed, bool ro_first, bool nested,
                        struct cstats *cs)
{
	uint32_t dur[CR_FILES], inf[CR_FILES];
	int which[CR_FILES], ro_which[CR_FILES];
	struct tu_fs img = {0};
	size_t done = 0;

	for (int i = 0; i < CR_FILES; i++) {
		dur[i] = inf[i] = NO_STATE;
		for (size_t k = 0; k < r->ns; k++) {
			const struct csync *s = &r->s[k];

			if (s->st[i] == NO_STATE)
				continue;
			if (s->ev1 <= cut)
				dur[i] = s->st[i];
			else if (s->ev0 < cut)
				inf[i] = s->st[i];
		}
		TU_ASSERT(dur[i] != NO_STATE);
	}
	TU_RC(arb_memdev_crash_image(r->t.dev, cut, rseed, &img.dev));
	if (ro_first) {
		uint64_t w, fl;

		tu_ctx_phase("read-only open of a crash image");
		img.read_only = true;
		tu_fs_open(&img);
		w = arb_memdev_write_count(img.dev);
		fl = arb_memdev_flush_count(img.dev);
		for (int i = 0; i < CR_FILES; i++)
			ro_which[i] = match_file(r, img.fs, i, dur[i], inf[i], cut, rseed);
		tu_check_clean(img.fs);
		arb_close(img.fs);
		img.fs = NULL;
		TU_EQ_U64(arb_memdev_write_count(img.dev), w);
		TU_EQ_U64(arb_memdev_flush_count(img.dev), fl);
		img.read_only = false;
		cs->ro_states++;
	}
	tu_ctx_phase("open of a crash image");
	if (nested)
		arb_memdev_record(img.dev);
	tu_fs_open(&img);
	for (int i = 0; i < CR_FILES; i++) {
		which[i] = match_file(r, img.fs, i, dur[i], inf[i], cut, rseed);
		if (ro_first)
			TU_ASSERT(which[i] == ro_which[i],
			          "file %d: the read-only open found the %s state, this one the %s",
			          i, ro_which[i] ? "in-flight" : "durable",
			          which[i] ? "in-flight" : "durable");
		*(which[i] ? &cs->inflight : &cs->durable) += 1;
	}
	tu_check_clean(img.fs);
	/* a power cut during the replay's commit: the next open replays again
	 * and finds the same files */
	for (size_t c = 1; nested && c < arb_memdev_events(img.dev); c++) {
		struct tu_fs again = {0};

		tu_ctx_phase("a power cut during the replay");
		TU_RC(arb_memdev_crash_image(img.dev, c, 0, &again.dev));
		tu_fs_open(&again);
		for (int i = 0; i < CR_FILES; i++)
			TU_ASSERT(match_file(r, again.fs, i, dur[i], inf[i], cut, rseed) ==
			                  which[i],
			          "cut %zu of the replay: file %d in the other state", c, i);
		tu_check_clean(again.fs);
		arb_close(again.fs);
		arb_dev_close(again.dev);
		cs->nested++;
	}
	/* it takes new changes */
	tu_ctx_phase("changing a crash image");
	fill_data(&r->rng, r->buf, 30000);
	TU_RC(arb_vfs_write(img.fs, r->f[0].m.ino, tu_rng_below(&r->rng, 100000), r->buf, 30000,
	                    &done));
	TU_RC(arb_commit(img.fs));
	tu_check_clean(img.fs);
	arb_close(img.fs);
	arb_dev_close(img.dev);
	cs->states++;
	tu_ctx_phase(NULL);
}

static void crash_seed(uint64_t seed)
{
	struct crun *r = calloc(1, sizeof(*r));
	struct cstats cs = {0};
	unsigned nops = (unsigned)tu_scaled(CRASH_OPS);
	unsigned reorders = (unsigned)tu_scaled(CRASH_REORDERS);
	size_t events;
	double t0 = tu_now_sec(), t1;

	TU_ASSERT(r != NULL);
	r->seed = seed;
	tu_rng_init(&r->rng, seed);
	r->buf = xmalloc(CR_FILE_CAP + MIB);
	tu_fs_create(&r->t, CR_DEV_SIZE, seed % 2 ? 4096 : 0);
	TU_RC(arb_vfs_init(r->t.fs, 0755, &cred));
	TU_RC(arb_vfs_root(r->t.fs, 0, &r->root));
	for (int i = 0; i < CR_FILES; i++) {
		char name[16];
		uint64_t len = i < CR_BIG ? tu_rng_range(&r->rng, 8 * KIB, MIB)
		                          : tu_rng_range(&r->rng, 1, 600);

		snprintf(name, sizeof(name), "f%d", i);
		mf_create(r->t.fs, r->root, name, &r->f[i].m);
		fill_data(&r->rng, r->buf, len);
		mf_write(r->t.fs, &r->f[i].m, 0, r->buf, len);
	}
	/* new files: this commits, and puts the log in use */
	fsync_committed(&r->t, r->f[0].m.ino, "creating files");
	arb_memdev_record(r->t.dev);
	record_sync(r, -1, 0);
	for (unsigned op = 0; op < nops; op++) {
		tu_ctx_op(op);
		cr_op(r);
	}
	tu_ctx_op(UINT64_MAX);
	events = ev_now(r);
	t1 = tu_now_sec();

	tu_ctx_phase("every cut");
	for (size_t cut = 0; cut <= events; cut++) {
		tu_ctx_op(cut);
		crash_check(r, cut, 0, cut % 4 == 0, cut % 24 == 5, &cs);
	}
	tu_ctx_phase("random subsets of the unflushed writes");
	for (unsigned k = 0; k < reorders; k++) {
		size_t cut = 0;

		/* half of them just before the final flush of a logged fsync */
		if (k % 2 == 0 && r->logged) {
			size_t n = 0, pick;

			for (size_t j = 0; j < r->ns; j++)
				n += r->s[j].file >= 0;
			pick = (size_t)tu_rng_below(&r->rng, n);
			for (size_t j = 0; j < r->ns; j++)
				if (r->s[j].file >= 0 && pick-- == 0)
					cut = r->s[j].ev1 - 1;
		} else {
			cut = (size_t)tu_rng_below(&r->rng, events + 1);
		}
		tu_ctx_op(cut);
		crash_check(r, cut, tu_rng_next(&r->rng) | 1, k % 3 == 0, k % 6 == 1, &cs);
	}
	tu_ctx_op(UINT64_MAX);
	print_message("# crash seed %" PRIu64 ": %u ops (%" PRIu64 " writes, %" PRIu64
	              " fsyncs logged, %" PRIu64 " committed, %" PRIu64 " no-ops, %" PRIu64
	              " commits, %" PRIu64 " inside ops, %" PRIu64 " touches, %" PRIu64
	              " truncates, %" PRIu64 " chmods, %" PRIu64 " punches, %" PRIu64
	              " scatters; %" PRIu64 " fsyncs of several blocks), %zu events; %" PRIu64
	              " crash states (%" PRIu64 " also read-only) + %" PRIu64
	              " cut during their replay; files durable %" PRIu64 " / in flight %" PRIu64
	              "; %.2f s + %.2f s\n",
	              seed, nops, r->writes, r->logged, r->fsync_commits, r->noops, r->commits,
	              r->op_commits, r->touches, r->truncates, r->chmods, r->punches, r->scatters,
	              r->multi_block, events, cs.states, cs.ro_states, cs.nested, cs.durable,
	              cs.inflight, t1 - t0, tu_now_sec() - t1);
	/* a run shortened by ARBOR_TEST_SCALE may draw no logged fsync */
	TU_ASSERT(r->logged > 0 || nops < CRASH_OPS, "no fsync went through the log");
	for (int i = 0; i < CR_FILES; i++) {
		for (uint32_t k = 0; k < r->f[i].nst; k++)
			free(r->f[i].st[k].data);
		free(r->f[i].st);
		mf_free(&r->f[i].m);
	}
	free(r->s);
	free(r->buf);
	tu_fs_destroy(&r->t);
	free(r);
}

/* ---- a long chain ---- */

/* Thousands of fsyncs of one block each: the chain ends at 4096 blocks
 * (the fsync that could pass it commits), and a replay reads the whole
 * chain. */
static void test_long_chain(void **state)
{
	struct tu_fs t;
	struct tu_rng rng;
	struct mf m = {0};
	uint8_t *buf = xmalloc(MIB);
	arb_ino_t root;
	uint64_t logged = 0, g;
	double t0 = tu_now_sec();

	(void)state;
	tu_ctx_seed(81);
	tu_rng_init(&rng, 81);
	tu_fs_create(&t, 96 * MIB, 0);
	TU_RC(arb_vfs_init(t.fs, 0755, &cred));
	TU_RC(arb_vfs_root(t.fs, 0, &root));
	mf_create(t.fs, root, "long", &m);
	fill_data(&rng, buf, 256 * KIB);
	mf_write(t.fs, &m, 0, buf, 256 * KIB);
	fsync_committed(&t, m.ino, "creating it");
	g = gen_of(t.fs);
	for (;;) {
		struct cost c;

		fill_data(&rng, buf, 100);
		mf_write(t.fs, &m, tu_rng_below(&rng, m.size - 100), buf, 100);
		c = do_fsync(&t, m.ino);
		if (c.committed)
			break;
		TU_ASSERT(c.writes == 1 && c.flushes == 1, "fsync %" PRIu64 ": %" PRIu64 " writes",
		          logged, c.writes);
		logged++;
		TU_ASSERT(logged < 5000, "the chain never ends");
	}
	/* the head plus 4032 blocks: the next fsync might need 64 more */
	TU_EQ_U64(logged, 4096 - 64);
	TU_EQ_U64(gen_of(t.fs), g + 1);
	g = gen_of(t.fs);
	/* a full chain again, and a replay of it */
	for (uint64_t k = 0; k < logged; k++) {
		fill_data(&rng, buf, 100);
		mf_write(t.fs, &m, tu_rng_below(&rng, m.size - 100), buf, 100);
		fsync_logged(&t, m.ino);
	}
	tu_fs_reopen(&t);
	TU_EQ_U64(gen_of(t.fs), g + 1);
	mf_expect(t.fs, &m, "after replaying the long chain");
	tu_check_clean(t.fs);
	print_message("# long chain: %" PRIu64 " fsyncs in one chain, %.2f s\n", logged,
	              tu_now_sec() - t0);
	mf_free(&m);
	free(buf);
	tu_fs_destroy(&t);
}

/* ---- 4. read-only open of a pending log ---- */

static void test_read_only(void **state)
{
	struct tu_fs t;
	struct tu_rng rng;
	struct mf cur[2] = {0}, dur[2] = {0};
	uint8_t *buf = xmalloc(MIB), *before;
	arb_ino_t root;
	uint64_t g, w, fl;
	size_t done = 0;
	bool same;

	(void)state;
	tu_ctx_seed(79);
	tu_rng_init(&rng, 79);
	tu_fs_create(&t, DEV_SIZE, 0);
	TU_RC(arb_vfs_init(t.fs, 0755, &cred));
	TU_RC(arb_vfs_root(t.fs, 0, &root));
	mf_create(t.fs, root, "a", &cur[0]);
	mf_create(t.fs, root, "b", &cur[1]);
	for (int i = 0; i < 2; i++) {
		fill_data(&rng, buf, 300 * KIB);
		mf_write(t.fs, &cur[i], 0, buf, 300 * KIB);
	}
	fsync_committed(&t, cur[0].ino, "creating files");
	g = gen_of(t.fs);
	for (int k = 0; k < 12; k++) {
		int i = k % 2;

		mf_random_write(t.fs, &rng, &cur[i], buf, 200 * KIB, MIB);
		fsync_logged(&t, cur[i].ino);
		mf_copy(&dur[i], &cur[i]);
	}
	mf_random_write(t.fs, &rng, &cur[0], buf, 200 * KIB, MIB); /* not fsync'ed */

	/* close without a commit, open read-only twice: the same files, and
	 * not one byte written (by the closes either) */
	before = xmalloc(DEV_SIZE);
	memcpy(before, arb_memdev_data(t.dev), DEV_SIZE);
	w = arb_memdev_write_count(t.dev);
	fl = arb_memdev_flush_count(t.dev);
	t.read_only = true;
	for (int pass = 0; pass < 2; pass++) {
		tu_ctx_op((uint64_t)pass);
		tu_fs_reopen(&t);
		same = memcmp(before, arb_memdev_data(t.dev), DEV_SIZE) == 0;
		TU_EQ_U64(arb_memdev_write_count(t.dev), w);
		TU_EQ_U64(arb_memdev_flush_count(t.dev), fl);
		TU_ASSERT(same, "a read-only open changed the device");
		TU_EQ_U64(gen_of(t.fs), g);
		for (int i = 0; i < 2; i++)
			mf_expect(t.fs, &dur[i], "read-only open");
		tu_check_clean(t.fs);
		TU_RC_EQ(arb_vfs_fsync(t.fs, cur[0].ino), -EROFS);
		TU_RC_EQ(arb_vfs_write(t.fs, cur[0].ino, 0, buf, 10, &done), -EROFS);
		TU_RC_EQ(arb_commit(t.fs), -EROFS);
		same = memcmp(before, arb_memdev_data(t.dev), DEV_SIZE) == 0;
		TU_EQ_U64(arb_memdev_write_count(t.dev), w);
		TU_EQ_U64(arb_memdev_flush_count(t.dev), fl);
		TU_ASSERT(same, "a read-only filesystem changed the device");
	}
	tu_ctx_op(UINT64_MAX);
	free(before);

	/* read-write: the replay commits */
	t.read_only = false;
	tu_fs_reopen(&t);
	TU_EQ_U64(gen_of(t.fs), g + 1);
	for (int i = 0; i < 2; i++)
		mf_expect(t.fs, &dur[i], "read-write open");
	tu_check_clean(t.fs);
	/* and a read-only open after that has nothing to replay */
	t.read_only = true;
	tu_fs_reopen(&t);
	TU_EQ_U64(gen_of(t.fs), g + 1);
	for (int i = 0; i < 2; i++)
		mf_expect(t.fs, &dur[i], "read-only open after the replay");
	tu_check_clean(t.fs);
	for (int i = 0; i < 2; i++) {
		mf_free(&cur[i]);
		mf_free(&dur[i]);
	}
	free(buf);
	tu_fs_destroy(&t);
}

/* ---- 5. a damaged chain ---- */

/* The superblock slot of the newest commit. */
static void newest_super(struct arb_dev *dev, struct arb_super *sb)
{
	struct arb_super_slot slots[ARB_SUPER_COPIES * ARB_SUPER_SLOTS];
	int n = arb_super_read_all(dev, slots, (int)(sizeof(slots) / sizeof(slots[0])));
	int best = -1;

	TU_ASSERT(n > 0);
	for (int i = 0; i < n; i++)
		if (slots[i].status == ARB_SLOT_VALID &&
		    (best < 0 ||
		     le64toh(slots[i].sb.generation) > le64toh(slots[best].sb.generation)))
			best = i;
	TU_ASSERT(best >= 0);
	*sb = slots[best].sb;
}

#define CHAIN_FSYNCS 5

/* Open a copy of buf, compare, check, change, reopen, compare. */
static void open_copy(const uint8_t *buf, struct mf *const *want, int nfiles, uint64_t want_gen,
                      const char *what)
{
	struct tu_fs img = {0};
	size_t done = 0;
	uint8_t data[1000];

	tu_ctx_phase(what);
	TU_RC(arb_memdev_from_buffer(buf, DEV_SIZE, &img.dev));
	tu_fs_open(&img);
	TU_EQ_U64(gen_of(img.fs), want_gen);
	for (int i = 0; i < nfiles; i++)
		mf_expect(img.fs, want[i], what);
	tu_check_clean(img.fs);
	memset(data, 0x5a, sizeof(data));
	TU_RC(arb_vfs_write(img.fs, want[0]->ino, 4 * SECTOR + 10, data, sizeof(data), &done));
	TU_RC(arb_commit(img.fs));
	tu_check_clean(img.fs);
	tu_fs_reopen(&img);
	for (int i = 1; i < nfiles; i++)
		mf_expect(img.fs, want[i], what);
	tu_check_clean(img.fs);
	arb_close(img.fs);
	arb_dev_close(img.dev);
	tu_ctx_phase(NULL);
}

static void test_corrupt(void **state)
{
	struct tu_fs t;
	struct tu_rng rng;
	struct mf cur[3] = {0}, committed[3] = {0};
	/* the state of every file after fsync k of the chain */
	struct mf after[CHAIN_FSYNCS][3] = {{{0}}};
	struct mf *want[3];
	uint64_t addr[CHAIN_FSYNCS], g, next, data_bytenr = 0;
	uint8_t *buf = xmalloc(MIB), *img;
	struct arb_super sb;
	arb_ino_t root;

	(void)state;
	tu_ctx_seed(80);
	tu_rng_init(&rng, 80);
	tu_fs_create(&t, DEV_SIZE, 0);
	TU_RC(arb_vfs_init(t.fs, 0755, &cred));
	TU_RC(arb_vfs_root(t.fs, 0, &root));
	for (int i = 0; i < 3; i++) {
		char name[8];

		snprintf(name, sizeof(name), "c%d", i);
		mf_create(t.fs, root, name, &cur[i]);
		fill_data(&rng, buf, 100 * KIB);
		mf_write(t.fs, &cur[i], 0, buf, 100 * KIB);
	}
	fsync_committed(&t, cur[0].ino, "creating files");
	g = gen_of(t.fs);
	for (int i = 0; i < 3; i++)
		mf_copy(&committed[i], &cur[i]);
	/* five fsyncs of one block each: files 0, 1, 0, 2, 1 */
	for (int k = 0; k < CHAIN_FSYNCS; k++) {
		static const int file[CHAIN_FSYNCS] = {0, 1, 0, 2, 1};
		struct mf *m = &cur[file[k]];

		fill_data(&rng, buf, 3 * SECTOR);
		if (buf[0] == 0 && buf[1] == 0)
			buf[0] = 1; /* never all zeros */
		mf_write(t.fs, m, tu_rng_below(&rng, m->size - 3 * SECTOR), buf, 3 * SECTOR);
		fsync_logged(&t, m->ino);
		for (int i = 0; i < 3; i++)
			mf_copy(&after[k][i], &cur[i]);
	}
	/* a write nobody fsyncs; what a crash now leaves is on the device
	 * (the session stays open: its running transaction is never written) */
	mf_write(t.fs, &cur[2], 0, buf, 100);

	/* walk the chain through the raw device */
	newest_super(t.dev, &sb);
	TU_EQ_U64(le64toh(sb.generation), g);
	TU_ASSERT(le64toh(sb.incompat) & ARB_FEATURE_INCOMPAT_FSYNC_LOG);
	next = le64toh(sb.log_bytenr);
	TU_ASSERT(next != 0 && next % SECTOR == 0 && next + SECTOR <= DEV_SIZE);
	for (int k = 0; k < CHAIN_FSYNCS; k++) {
		struct arb_log_header h;
		struct arb_log_rec rec;
		const uint8_t *blk = arb_memdev_data(t.dev) + next;

		TU_ASSERT(next != 0 && next % SECTOR == 0 && next + SECTOR <= DEV_SIZE);
		memcpy(&h, blk, sizeof(h));
		TU_EQ_U64(le64toh(h.magic), ARB_LOG_MAGIC);
		TU_EQ_U64(le64toh(h.nonce), le64toh(sb.log_nonce));
		TU_EQ_U64(le64toh(h.generation), g);
		TU_EQ_U64(le64toh(h.seq), k);
		TU_EQ_U64(le32toh(h.flags), ARB_LOG_END);
		TU_ASSERT(memcmp(h.fsid, sb.fsid, 16) == 0);
		/* the first record of the second fsync names its data */
		memcpy(&rec, blk + sizeof(h), sizeof(rec));
		if (k == 1) {
			struct arb_file_extent fe;

			TU_EQ_U64(rec.type, ARB_LOG_EXTENT);
			TU_EQ_U64(le64toh(rec.ino), arb_ino_local(cur[1].ino));
			memcpy(&fe, blk + sizeof(h) + sizeof(rec), sizeof(fe));
			data_bytenr = le64toh(fe.disk_bytenr);
		}
		addr[k] = next;
		next = le64toh(h.next);
	}
	TU_ASSERT(data_bytenr != 0);

	img = xmalloc(DEV_SIZE);
	/* intact: every fsync */
	memcpy(img, arb_memdev_data(t.dev), DEV_SIZE);
	for (int i = 0; i < 3; i++)
		want[i] = &after[CHAIN_FSYNCS - 1][i];
	open_copy(img, want, 3, g + 1, "the intact chain");

	/* a byte of the second block: only the first fsync */
	for (int i = 0; i < 3; i++)
		want[i] = &after[0][i];
	memcpy(img, arb_memdev_data(t.dev), DEV_SIZE);
	img[addr[1] + sizeof(struct arb_log_header) + 17] ^= 0x40;
	open_copy(img, want, 3, g + 1, "a damaged second block");
	/* its header */
	memcpy(img, arb_memdev_data(t.dev), DEV_SIZE);
	img[addr[1] + 80] ^= 0x01; /* next */
	open_copy(img, want, 3, g + 1, "a damaged header of the second block");
	/* the data of the second fsync never landed */
	memcpy(img, arb_memdev_data(t.dev), DEV_SIZE);
	img[data_bytenr + 100] ^= 0xff;
	open_copy(img, want, 3, g + 1, "lost data of the second fsync");
	/* the fourth block: the first three fsyncs */
	for (int i = 0; i < 3; i++)
		want[i] = &after[2][i];
	memcpy(img, arb_memdev_data(t.dev), DEV_SIZE);
	img[addr[3] + 2000] ^= 0x08;
	open_copy(img, want, 3, g + 1, "a damaged fourth block");
	/* the head: nothing is replayed, no commit */
	for (int i = 0; i < 3; i++)
		want[i] = &committed[i];
	memcpy(img, arb_memdev_data(t.dev), DEV_SIZE);
	img[addr[0] + 3000] ^= 0x10;
	open_copy(img, want, 3, g, "a damaged head");

	free(img);
	for (int i = 0; i < 3; i++) {
		mf_free(&cur[i]);
		mf_free(&committed[i]);
		for (int k = 0; k < CHAIN_FSYNCS; k++)
			mf_free(&after[k][i]);
	}
	free(buf);
	tu_fs_destroy(&t);
}

int main(void)
{
	struct tu_tests ts = {0};

	/* ARBOR_TEST_ONLY=pattern: run only the matching tests */
	if (getenv("ARBOR_TEST_ONLY"))
		cmocka_set_test_filter(getenv("ARBOR_TEST_ONLY"));
	tu_tests_add(&ts, "fsync log basic", test_basic);
	tu_tests_add(&ts, "fsync log fallbacks", test_fallbacks);
	tu_tests_add(&ts, "fsync log read-only", test_read_only);
	tu_tests_add(&ts, "fsync log corruption", test_corrupt);
	tu_tests_add(&ts, "fsync log long chain", test_long_chain);
	tu_tests_add_seeds(&ts, "fsync log crash", crash_seed, 1, NR_CRASH_SEEDS);
	return tu_tests_run(&ts, "fsync_log");
}
