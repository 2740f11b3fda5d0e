/* SPDX-License-Identifier: MIT */
/*
 * test_enospc.c - a full Arbor keeps working (issue #8).
 *
 * The core keeps a tiered reserve: ordinary writes, creates and snapshots
 * fail with -ENOSPC while only the reserve is left (statfs bavail = bfree -
 * reserve); operations that free space (unlink, rmdir, truncate down, punch
 * hole, rename over an existing name, subvolume deletion) may use half of
 * it; commits use the rest.  On small memdev filesystems (16..48 MiB, 4 KiB
 * and 16 KiB nodes, by seed):
 *
 *  1. one big file written in random chunks until -ENOSPC, then down to the
 *     last byte: every failure is -ENOSPC and changes nothing, every
 *     durable byte (commit or fsync) survives a remount, the check is
 *     clean, and deleting the file at full gives back exactly the space of
 *     the empty filesystem;
 *  2. many small files (0..2 KiB, a few directories) until creates and
 *     writes fail: only -ENOSPC, every file as written, then all removed at
 *     full (some 10^4 files on 16 MiB, and over 10^5 on 176 MiB);
 *  3. snapshots made exclusive (every file rewritten after each snapshot)
 *     until -ENOSPC: every snapshot keeps what it saw, deleting them and
 *     freeing their trees (the cleaner's drop steps) work at full, and the
 *     space comes back;
 *  4. every freeing operation at full (topped up to the last byte before
 *     each): unlink, rmdir, truncate, punch hole (aligned and not), rename
 *     over a file (in two subvolumes), unlink in a shared snapshot,
 *     deleting snapshots, 400 unlinks in one transaction; ordinary
 *     operations (create, mkdir, symlink, snapshot) refused at full; then
 *     everything removed and the free space exactly that of the empty
 *     filesystem;
 *  5. statfs honesty: a file of bavail minus a small slack fits in 1 MiB
 *     writes (the smallest slack is searched and reported), bfree and
 *     bavail never grow while writing, and bavail comes back after a
 *     delete and one commit;
 *  6. power cuts while deletes commit at full (a fragmented file, whose
 *     frees overflow the superblock's list, and a snapshot): every prefix
 *     of the device events (and reordered unflushed writes) opens as all
 *     or nothing of each delete, checks clean, and mounts, deletes and
 *     frees at full.
 *
 * Every filesystem ends with a clean arb_check and fsck namespace phase,
 * across a remount.
 *
 * ARBOR_TEST_ONLY=pattern runs only the matching tests; ARBOR_TEST_SEED=n
 * one seed (see testutil.h).
 */
#include "testutil.h"

#include "arbor/fsck.h"
#include "arbor/vfs.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#define KIB ((uint64_t)1024)
#define MIB ((uint64_t)1 << 20)
#define SECTOR ((uint64_t)ARB_SECTOR_SIZE)

/* A filesystem where even a 1-byte append fails must not claim more than
 * this is available (a 1-byte write reserves its worst case of metadata:
 * about 18 nodes, 288 KiB with 16 KiB nodes). */
#define FULL_BAVAIL_MAX_BYTES (1 * MIB)

/* Test 5: the slack every geometry must fit with: the worst case one
 * 1 MiB write reserves for its metadata (2 sectors and 18 nodes) and 1% of
 * the blocks for the metadata the file really takes.  The smallest slack
 * found is printed. */
#define HONEST_SLACK_NODES 20
#define HONEST_SLACK_PCT 1

static const struct arb_cred cred = {.uid = 1000, .gid = 100};

/* ---- small helpers ---- */

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	TU_ASSERT(p != NULL, "malloc(%zu)", n);
	return p;
}

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	TU_ASSERT(p != NULL, "calloc(%zu, %zu)", n, size);
	return p;
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static uint64_t gen_of(struct arb_fs *fs)
{
	struct arb_fs_info info;

	arb_fs_info(fs, &info);
	return info.generation;
}

static struct arb_statfs statfs_of(struct arb_fs *fs)
{
	struct arb_statfs st;

	TU_RC(arb_vfs_statfs(fs, &st));
	return st;
}

/* Content `tag` at file offset off: one 64-bit hash per 8 bytes, so that
 * the bytes of a file depend on their offset only, however it was cut
 * into writes. */
static void pat_fill(uint8_t *buf, uint64_t off, size_t len, uint64_t tag)
{
	size_t i = 0;

	while (i < len) {
		uint64_t o = off + i, w = tu_mix64(tag * 0x100000001b3ull + (o >> 3));

		for (unsigned b = (unsigned)(o & 7); b < 8 && i < len; b++, i++)
			buf[i] = (uint8_t)(w >> (b * 8));
	}
}

/* The filesystem has not failed, arb_check (trees, counts, free space) and
 * fsck's namespace phase (inodes, names, extents, links) find nothing. */
static void expect_healthy(struct arb_fs *fs, bool check_data)
{
	const char *why = arb_fs_failed_reason(fs);
	struct arb_fsck_opts o = {.check_data = check_data, .msg = tu_msg};
	struct arb_fsck_report r;

	TU_ASSERT(why == NULL, "filesystem failed: %s", why);
	tu_check_clean(fs);
	memset(&r, 0, sizeof(r));
	TU_RC(arb_fsck_namespace(fs, &o, &r));
	TU_ASSERT(r.errors == 0, "fsck namespace: %" PRIu64 " errors", r.errors);
}

static void expect_not_failed(struct arb_fs *fs)
{
	const char *why = arb_fs_failed_reason(fs);

	TU_ASSERT(why == NULL, "filesystem failed: %s", why);
}

/* An -ENOSPC must come from the up-front reservation, before anything
 * changed: the filesystem must still be usable. */
static void expect_clean_enospc(struct arb_fs *fs, const char *what)
{
	const char *why = arb_fs_failed_reason(fs);

	if (why)
		TU_FAIL("%s returned ENOSPC after failing part-way: %s", what, why);
}

static uint64_t size_of(struct arb_fs *fs, arb_ino_t ino)
{
	struct arb_stat st;

	TU_RC(arb_vfs_getattr(fs, ino, &st));
	return st.size;
}

static void set_size(struct arb_fs *fs, arb_ino_t ino, uint64_t size)
{
	struct arb_setattr sa = {.valid = ARB_SET_SIZE, .size = size};
	struct arb_stat st;

	TU_RC(arb_vfs_setattr(fs, ino, &sa, &st));
	TU_EQ_U64(st.size, size);
}

/* [off, off + len) of the file reads as want (len bytes, within the file). */
static void expect_bytes(struct arb_fs *fs, arb_ino_t ino, uint64_t off, const uint8_t *want,
                         uint64_t len)
{
	size_t piece = (size_t)min_u64(len, MIB), got;
	uint8_t *buf = xmalloc(piece);

	for (uint64_t done = 0; done < len;) {
		size_t n = (size_t)min_u64(len - done, piece);

		TU_RC(arb_vfs_read(fs, ino, off + done, buf, n, &got));
		TU_EQ_U64(got, n);
		for (size_t i = 0; i < n; i++)
			if (buf[i] != want[done + i])
				TU_FAIL("inode %" PRIu64 ": byte %" PRIu64 " is %#x, expected %#x",
				        (uint64_t)ino, off + done + i, buf[i], want[done + i]);
		done += n;
	}
	free(buf);
}

/* The file is exactly want[0, size). */
static void expect_file(struct arb_fs *fs, arb_ino_t ino, const uint8_t *want, uint64_t size)
{
	TU_EQ_U64(size_of(fs, ino), size);
	expect_bytes(fs, ino, 0, want, size);
}

/* The file is exactly pattern `tag` over [0, size). */
static void expect_pattern(struct arb_fs *fs, arb_ino_t ino, uint64_t tag, uint64_t size)
{
	uint8_t *want = xmalloc((size_t)min_u64(size, MIB));

	TU_EQ_U64(size_of(fs, ino), size);
	for (uint64_t off = 0; off < size; off += MIB) {
		uint64_t n = min_u64(size - off, MIB);

		pat_fill(want, off, (size_t)n, tag);
		expect_bytes(fs, ino, off, want, n);
	}
	free(want);
}

/* ---- the fixture: a small filesystem and the figures of its empty state ---- */

struct efx {
	struct tu_fs t;
	arb_ino_t root;
	struct tu_rng rng;
	struct arb_statfs empty; /* statfs of the empty filesystem, settled */
	uint8_t *buf;            /* scratch for writes: BUF_BYTES */
};

#define FS(x) ((x)->t.fs)
#define BUF_BYTES (4 * MIB)

/* Device size and node size of a seed: 16, 32 or 48 MiB; 4 or 16 KiB. */
static void geometry(uint64_t seed, uint64_t *size, uint32_t *nodesize)
{
	*nodesize = seed & 1 ? 4096 : 16384;
	*size = (16 + 16 * ((seed >> 1) % 3)) * MIB;
}

static void efx_setup_geo(struct efx *x, uint64_t seed, uint64_t size, uint32_t nodesize)
{
	memset(x, 0, sizeof(*x));
	tu_rng_init(&x->rng, seed);
	tu_fs_create(&x->t, size, nodesize);
	TU_RC(arb_vfs_init(FS(x), 0755, &cred));
	TU_RC(arb_vfs_root(FS(x), 0, &x->root));
	tu_commit(FS(x));
	tu_settle(FS(x), x->root);
	x->empty = statfs_of(FS(x));
	x->buf = xmalloc(BUF_BYTES);
}

static void efx_setup(struct efx *x, uint64_t seed)
{
	uint64_t size;
	uint32_t nodesize;

	geometry(seed, &size, &nodesize);
	efx_setup_geo(x, seed, size, nodesize);
}

/* A remount: close (dropping what was not durable) and open again. */
static void efx_reopen(struct efx *x)
{
	uint64_t freed = UINT64_MAX;

	tu_fs_reopen(&x->t);
	TU_RC(arb_vfs_orphan_cleanup(FS(x), &freed));
	TU_EQ_U64(freed, 0);
	TU_RC(arb_vfs_root(FS(x), 0, &x->root));
}

static void efx_free(struct efx *x)
{
	tu_fs_destroy(&x->t);
	free(x->buf);
}

static uint32_t fs_node_sectors(struct arb_fs *fs)
{
	struct arb_fs_info info;

	arb_fs_info(fs, &info);
	return info.nodesize / info.sectorsize;
}

static uint32_t node_sectors(struct efx *x)
{
	return fs_node_sectors(FS(x));
}

static void print_statfs(const char *what, const struct arb_statfs *st)
{
	print_message("#   %-10s blocks %" PRIu64 " bfree %" PRIu64 " bavail %" PRIu64 "\n", what,
	              st->blocks, st->bfree, st->bavail);
}

/*
 * Everything is deleted: finish dropping deleted subvolumes, let the frees
 * settle, and the free space must be exactly that of the empty filesystem
 * (before and after a remount), which also checks clean.
 */
static void expect_back_to_empty(struct efx *x, const char *what)
{
	struct arb_statfs now;

	tu_ctx_phase("back to empty");
	TU_RC(arb_fs_drop_all(FS(x)));
	tu_commit(FS(x));
	tu_settle(FS(x), x->root);
	for (int pass = 0; pass < 2; pass++) {
		now = statfs_of(FS(x));
		if (now.bfree != x->empty.bfree || now.bavail != x->empty.bavail) {
			print_message("# %s: free space after deleting everything differs\n", what);
			print_statfs("empty", &x->empty);
			print_statfs("now", &now);
			TU_FAIL("%s: deleting everything left bfree %" PRIu64 " bavail %" PRIu64
			        ", the empty filesystem had %" PRIu64 " and %" PRIu64,
			        what, now.bfree, now.bavail, x->empty.bfree, x->empty.bavail);
		}
		expect_healthy(FS(x), true);
		if (pass == 0)
			efx_reopen(x);
	}
	print_message("#   %s: back to bfree %" PRIu64 " bavail %" PRIu64 ", as when empty\n", what,
	              now.bfree, now.bavail);
}

/* ---- filling to the brim ---- */

/* A file that takes whatever room is left; its content is pattern `tag`. */
struct filler {
	arb_ino_t ino;
	uint64_t size, tag;
};

static void filler_make(struct efx *x, struct filler *f, arb_ino_t dir, const char *name)
{
	f->ino = tu_mkfile(FS(x), &cred, dir, name);
	f->size = 0;
	f->tag = tu_rng_next(&x->rng);
}

/* A 1-byte append to f fails with -ENOSPC and changes nothing. */
static void expect_full(struct efx *x, const struct filler *f)
{
	struct arb_statfs st = statfs_of(FS(x));
	size_t done = 7;
	uint8_t b = 0x5a;

	TU_RC_EQ(arb_vfs_write(FS(x), f->ino, f->size, &b, 1, &done), -ENOSPC);
	expect_clean_enospc(FS(x), "a 1-byte append");
	TU_EQ_U64(done, 0);
	TU_EQ_U64(size_of(FS(x), f->ino), f->size);
	TU_ASSERT(st.bavail * st.frsize <= FULL_BAVAIL_MAX_BYTES,
	          "a full filesystem says %" PRIu64 " sectors are available", st.bavail);
	expect_not_failed(FS(x));
}

/*
 * Append to the filler, halving the length at each -ENOSPC, until even a
 * 1-byte append fails: the filesystem is full for ordinary writes.  Every
 * failure must be -ENOSPC and leave the size as it was.  Returns the bytes
 * added.
 */
static uint64_t fill_brim(struct efx *x, struct filler *f)
{
	uint64_t len = MIB, added = 0;
	size_t done;

	while (len) {
		pat_fill(x->buf, f->size, (size_t)len, f->tag);
		done = 7;
		int rc = arb_vfs_write(FS(x), f->ino, f->size, x->buf, (size_t)len, &done);

		if (rc == 0) {
			TU_EQ_U64(done, len);
			f->size += len;
			added += len;
			continue;
		}
		if (rc != -ENOSPC)
			TU_FAIL("filling: a write of %" PRIu64 " bytes returned %s", len,
			        tu_strerr(rc));
		expect_clean_enospc(FS(x), "filling");
		TU_EQ_U64(done, 0);
		TU_EQ_U64(size_of(FS(x), f->ino), f->size);
		len /= 2;
	}
	expect_full(x, f);
	return added;
}

/* Free the deleted subvolumes' trees at full, in small steps with commits
 * in between, as the FUSE daemon's cleaner does: every step must work. */
static void drop_at_full(struct efx *x, struct filler *f)
{
	uint64_t left = 0;

	fill_brim(x, f);
	TU_RC(arb_fs_dropping(FS(x), &left));
	while (left) {
		TU_RC(arb_fs_drop_step(FS(x), 1 + tu_rng_below(&x->rng, 16), &left));
		expect_not_failed(FS(x));
		if (tu_rng_pct(&x->rng, 30))
			tu_commit(FS(x));
		if (tu_rng_pct(&x->rng, 10))
			fill_brim(x, f);
	}
	tu_commit(FS(x));
}

/* At full, ordinary operations are refused with -ENOSPC and change
 * nothing: the reserve is kept for deletes and commits. */
static void expect_ordinary_refused(struct efx *x, arb_ino_t dir, uint64_t subvol_id)
{
	struct arb_stat st;

	TU_RC_EQ(arb_vfs_mknod(FS(x), dir, "no-room", S_IFREG | 0644, 0, &cred, &st), -ENOSPC);
	tu_expect_missing(FS(x), dir, "no-room");
	TU_RC_EQ(arb_vfs_mkdir(FS(x), dir, "no-room-dir", 0755, &cred, &st), -ENOSPC);
	tu_expect_missing(FS(x), dir, "no-room-dir");
	TU_RC_EQ(arb_vfs_symlink(FS(x), dir, "no-room-link", "target", &cred, &st), -ENOSPC);
	tu_expect_missing(FS(x), dir, "no-room-link");
	TU_RC_EQ(arb_vfs_snapshot(FS(x), subvol_id, dir, "no-room-snap", 0, &st), -ENOSPC);
	tu_expect_missing(FS(x), dir, "no-room-snap");
	expect_not_failed(FS(x));
}

/* ---- 1. one big file ---- */

/* The big file's model: what it holds now and what is durable. */
struct bigfile {
	arb_ino_t ino;
	uint8_t *cur, *com;
	uint64_t size, com_size, cap;
	uint64_t dirty_lo; /* lowest offset changed since the last durable point */
	unsigned writes, enospc, syncs, implicit_commits;
};

/* Everything written so far is durable. */
static void bf_durable(struct bigfile *b)
{
	if (b->dirty_lo < b->size)
		memcpy(b->com + b->dirty_lo, b->cur + b->dirty_lo, b->size - b->dirty_lo);
	b->com_size = b->size;
	b->dirty_lo = b->size;
}

/* A failed write changed nothing: the size, the range it covered and the
 * tail of the file are as the model says. */
static void bf_expect_unchanged(struct arb_fs *fs, const struct bigfile *b, uint64_t off,
                                uint64_t len)
{
	uint64_t tail = b->size - min_u64(b->size, 64 * KIB);

	TU_EQ_U64(size_of(fs, b->ino), b->size);
	if (off < b->size)
		expect_bytes(fs, b->ino, off, b->cur + off, min_u64(off + len, b->size) - off);
	expect_bytes(fs, b->ino, tail, b->cur + tail, b->size - tail);
}

/* One write: it succeeds whole or fails with -ENOSPC changing nothing.
 * A commit the call makes first (to release recently freed space) makes
 * the model as it was before the call durable. */
static int bf_write(struct efx *x, struct bigfile *b, uint64_t off, uint64_t len)
{
	uint64_t gen = gen_of(FS(x)), tag = tu_rng_next(&x->rng);
	size_t done = 7;
	int rc;

	TU_ASSERT(off <= b->size && off + len <= b->cap && len <= BUF_BYTES);
	pat_fill(x->buf, off, (size_t)len, tag);
	rc = arb_vfs_write(FS(x), b->ino, off, x->buf, (size_t)len, &done);
	b->writes++;
	if (gen_of(FS(x)) != gen) {
		bf_durable(b);
		b->implicit_commits++;
	}
	if (rc == -ENOSPC) {
		expect_clean_enospc(FS(x), "a write");
		TU_EQ_U64(done, 0);
		bf_expect_unchanged(FS(x), b, off, len);
		b->enospc++;
		return rc;
	}
	if (rc)
		TU_FAIL("write of %" PRIu64 " bytes at %" PRIu64 " returned %s", len, off,
		        tu_strerr(rc));
	TU_EQ_U64(done, len);
	memcpy(b->cur + off, x->buf, len);
	if (off + len > b->size)
		b->size = off + len;
	if (off < b->dirty_lo)
		b->dirty_lo = off;
	return 0;
}

/* fsync (the log, or a commit) or a plain commit: durable either way. */
static void bf_sync(struct efx *x, struct bigfile *b)
{
	if (tu_rng_pct(&x->rng, 50))
		TU_RC(arb_vfs_fsync(FS(x), b->ino));
	else
		tu_commit(FS(x));
	b->syncs++;
	bf_durable(b);
}

/* A random write: mostly appends, sometimes an overwrite inside. */
static int bf_random_write(struct efx *x, struct bigfile *b, uint64_t chunk_max, bool *appended)
{
	uint64_t len = tu_rng_range(&x->rng, 1, chunk_max), off = b->size;

	*appended = b->size == 0 || !tu_rng_pct(&x->rng, 15);
	if (!*appended)
		off = tu_rng_below(&x->rng, b->size);
	if (tu_rng_pct(&x->rng, 30)) /* whole sectors too */
		len = (len + SECTOR - 1) / SECTOR * SECTOR;
	len = min_u64(len, b->cap - off);
	return bf_write(x, b, off, len);
}

static void fill_big_seed(uint64_t seed)
{
	static const uint64_t chunk_max[] = {8 * KIB, 100 * KIB, 1 * MIB, 3 * MIB};
	struct efx x;
	struct bigfile b = {0};
	struct filler f;
	uint64_t cmax = chunk_max[seed % 4], since = 0, every;
	double t0 = tu_now_sec();
	bool appended;

	efx_setup(&x, seed);
	b.cap = x.t.size;
	b.cur = xcalloc(b.cap, 1);
	b.com = xcalloc(b.cap, 1);
	b.ino = tu_mkfile(FS(&x), &cred, x.root, "big");
	/* made now: at full, creating it would be refused */
	filler_make(&x, &f, x.root, "filler");
	tu_commit(FS(&x));
	every = tu_rng_range(&x.rng, 1, 6);

	tu_ctx_phase("writes until ENOSPC");
	for (uint64_t op = 0;; op++) {
		tu_ctx_op(op);
		int rc = bf_random_write(&x, &b, cmax, &appended);

		if (rc && appended)
			break;
		if (++since >= every) {
			bf_sync(&x, &b);
			since = 0;
			every = tu_rng_range(&x.rng, 1, 6);
		}
	}
	tu_ctx_op(UINT64_MAX);

	/* the last bytes: halve the append at each ENOSPC down to one byte */
	tu_ctx_phase("the last bytes");
	for (uint64_t len = min_u64(cmax, MIB); len;)
		if (bf_write(&x, &b, b.size, len))
			len /= 2;
	/* right after a failed 1-byte append (an overwrite that gets through
	 * would leave freed space for a create to wait for) */
	expect_ordinary_refused(&x, x.root, arb_ino_subvol(x.root));

	/* overwrites need new space (copy-on-write): ENOSPC or whole */
	tu_ctx_phase("overwrites at full");
	for (unsigned i = 0; i < 8 && b.size; i++) {
		uint64_t off = tu_rng_below(&x.rng, b.size);

		bf_write(&x, &b, off, min_u64(tu_rng_range(&x.rng, 1, 64 * KIB), b.size - off));
	}
	expect_file(FS(&x), b.ino, b.cur, b.size);
	if (tu_rng_pct(&x.rng, 50))
		bf_sync(&x, &b);

	tu_ctx_phase("remount");
	efx_reopen(&x);
	expect_file(FS(&x), b.ino, b.com, b.com_size);
	expect_healthy(FS(&x), true);
	uint64_t filled = b.com_size;

	tu_ctx_phase("delete at full");
	fill_brim(&x, &f);
	TU_RC(arb_vfs_unlink(FS(&x), x.root, "big"));
	expect_not_failed(FS(&x));
	tu_commit(FS(&x));
	expect_pattern(FS(&x), f.ino, f.tag, f.size);
	TU_RC(arb_vfs_unlink(FS(&x), x.root, "filler"));
	expect_back_to_empty(&x, "big file");
	print_message(
	        "# big file seed %" PRIu64 ": %" PRIu64 " MiB device, node %u KiB, chunks "
	        "<= %" PRIu64 " KiB: %" PRIu64 " bytes durable of %" PRIu64
	        " allocatable, %u writes (%u ENOSPC), %u syncs, %u commits by writes, %.2f s\n",
	        seed, x.t.size / MIB, node_sectors(&x) * 4, cmax / KIB, filled,
	        x.empty.blocks * SECTOR, b.writes, b.enospc, b.syncs, b.implicit_commits,
	        tu_now_sec() - t0);
	free(b.cur);
	free(b.com);
	efx_free(&x);
}

/* ---- 2. many small files ---- */

#define SMALL_DEV (16 * MIB)
#define SMALL_MANY_DEV (176 * MIB)
#define SMALL_MAX_FILES 150000u
#define SMALL_MAX_SIZE 2048u
#define SMALL_GIVE_UP 32u /* consecutive failures that end the fill */

struct sfile {
	arb_ino_t ino;
	uint32_t dir, size;
	uint64_t tag;
};

static void small_name(char *name, size_t size, unsigned i)
{
	snprintf(name, size, "file-%u", i);
}

/* Create file i with up to SMALL_MAX_SIZE bytes.  Returns 0, or -ENOSPC
 * from the create (no file) or from the write (an empty file). */
static int small_create(struct efx *x, const arb_ino_t *dirs, unsigned ndirs, struct sfile *f,
                        unsigned i, bool *created)
{
	char name[32];
	struct arb_stat st;
	uint32_t size =
	        tu_rng_pct(&x->rng, 10) ? 0 : (uint32_t)tu_rng_range(&x->rng, 1, SMALL_MAX_SIZE);
	size_t done = 7;
	int rc;

	f->dir = (uint32_t)tu_rng_below(&x->rng, ndirs);
	f->tag = tu_rng_next(&x->rng);
	f->size = 0;
	small_name(name, sizeof(name), i);
	*created = false;
	rc = arb_vfs_mknod(FS(x), dirs[f->dir], name, S_IFREG | 0644, 0, &cred, &st);
	if (rc == -ENOSPC) {
		expect_clean_enospc(FS(x), "a create");
		tu_expect_missing(FS(x), dirs[f->dir], name);
		return rc;
	}
	if (rc)
		TU_FAIL("create %s returned %s", name, tu_strerr(rc));
	f->ino = st.ino;
	*created = true;
	if (!size)
		return 0;
	pat_fill(x->buf, 0, size, f->tag);
	rc = arb_vfs_write(FS(x), f->ino, 0, x->buf, size, &done);
	if (rc == -ENOSPC) {
		expect_clean_enospc(FS(x), "a write");
		TU_EQ_U64(done, 0);
		TU_EQ_U64(size_of(FS(x), f->ino), 0);
		return rc;
	}
	if (rc)
		TU_FAIL("write of %u bytes to %s returned %s", size, name, tu_strerr(rc));
	TU_EQ_U64(done, size);
	f->size = size;
	return 0;
}

static int count_entry(void *ctx, const char *name, size_t name_len, arb_ino_t ino, unsigned dtype,
                       uint64_t cookie)
{
	(void)name, (void)name_len, (void)ino, (void)dtype, (void)cookie;
	(*(uint64_t *)ctx)++;
	return 0;
}

/* Every file is found by name with its content, and every directory
 * holds exactly the model's files. */
static void small_verify(struct efx *x, const arb_ino_t *dirs, unsigned ndirs,
                         const struct sfile *files, unsigned nf)
{
	uint64_t *per_dir = xcalloc(ndirs, sizeof(*per_dir));
	char name[32];

	for (unsigned i = 0; i < nf; i++) {
		tu_ctx_op(i);
		if (!files[i].ino)
			continue;
		small_name(name, sizeof(name), i);
		TU_EQ_U64(tu_lookup(FS(x), dirs[files[i].dir], name), files[i].ino);
		expect_pattern(FS(x), files[i].ino, files[i].tag, files[i].size);
		per_dir[files[i].dir]++;
	}
	tu_ctx_op(UINT64_MAX);
	for (unsigned d = 0; d < ndirs; d++) {
		uint64_t n = 0;

		TU_RC(arb_vfs_readdir(FS(x), dirs[d], 0, count_entry, &n));
		TU_EQ_U64(n, per_dir[d]);
	}
	free(per_dir);
}

static void fill_small(uint64_t seed, uint64_t dev_size)
{
	struct efx x;
	struct filler f;
	unsigned ndirs = 1 + (unsigned)(seed % 5), nf = 0, fails = 0, enospc = 0, created = 0;
	unsigned max_files = (unsigned)min_u64(tu_scaled(SMALL_MAX_FILES), SMALL_MAX_FILES);
	arb_ino_t dirs[8];
	struct sfile *files = xcalloc(SMALL_MAX_FILES, sizeof(*files));
	char name[32];
	double t0 = tu_now_sec();

	efx_setup_geo(&x, seed, dev_size, seed & 1 ? 4096 : 16384);
	for (unsigned d = 0; d < ndirs; d++) {
		snprintf(name, sizeof(name), "dir%u", d);
		dirs[d] = tu_mkdir(FS(&x), &cred, x.root, name);
	}
	/* made now: at full, creating it would be refused */
	filler_make(&x, &f, x.root, "filler");
	tu_commit(FS(&x));

	tu_ctx_phase("creates until ENOSPC");
	while (nf < max_files && fails < SMALL_GIVE_UP) {
		bool made;

		tu_ctx_op(nf);
		if (small_create(&x, dirs, ndirs, &files[nf], nf, &made)) {
			enospc++;
			fails++;
		} else {
			fails = 0;
		}
		if (!made)
			files[nf].ino = 0;
		created += made;
		nf++;
		if (nf % 2000 == 0)
			tu_commit(FS(&x));
	}
	tu_ctx_op(UINT64_MAX);
	TU_ASSERT(fails == SMALL_GIVE_UP || nf == max_files);
	/* everything is committed: the remount must show all of it */
	tu_ctx_phase("verify after a remount");
	tu_commit(FS(&x));
	efx_reopen(&x);
	small_verify(&x, dirs, ndirs, files, nf);
	expect_healthy(FS(&x), true);

	/* empty it at full: top up with a filler first (a data write needs
	 * less room than a create) */
	tu_ctx_phase("remove at full");
	fill_brim(&x, &f);
	expect_ordinary_refused(&x, dirs[0], arb_ino_subvol(x.root));
	for (unsigned k = 0; k < nf; k++) {
		/* a scattered order: a prime stride, coprime with nf unless
		 * nf is a multiple of it */
		unsigned i = nf % 7919 ? (unsigned)(((uint64_t)k * 7919 + seed) % nf) : k;

		tu_ctx_op(i);
		if (!files[i].ino)
			continue;
		small_name(name, sizeof(name), i);
		TU_RC(arb_vfs_unlink(FS(&x), dirs[files[i].dir], name));
		if (k % 5000 == 4999)
			tu_commit(FS(&x));
	}
	tu_ctx_op(UINT64_MAX);
	for (unsigned d = 0; d < ndirs; d++) {
		snprintf(name, sizeof(name), "dir%u", d);
		TU_RC(arb_vfs_rmdir(FS(&x), x.root, name));
	}
	expect_not_failed(FS(&x));
	tu_commit(FS(&x));
	expect_pattern(FS(&x), f.ino, f.tag, f.size);
	TU_RC(arb_vfs_unlink(FS(&x), x.root, "filler"));
	expect_back_to_empty(&x, "small files");
	print_message("# small files seed %" PRIu64 ": %" PRIu64 " MiB device, node %u KiB, %u "
	              "dirs: %u files created, %u ENOSPC, %.2f s\n",
	              seed, x.t.size / MIB, node_sectors(&x) * 4, ndirs, created, enospc,
	              tu_now_sec() - t0);
	free(files);
	efx_free(&x);
}

/* the smallest device: some 10^4 files already (ASan run time) */
static void fill_small_seed(uint64_t seed)
{
	fill_small(seed, SMALL_DEV);
}

/* the figure: a device that 10^5 files fill */
static void fill_many_seed(uint64_t seed)
{
	fill_small(seed, SMALL_MANY_DEV);
}

/* ---- files with a byte model (tests 3 and 4) ---- */

struct mfile {
	arb_ino_t dir, ino;
	char name[24];
	uint8_t *data;
	uint64_t size, cap;
	bool live;
};

static void mf_make(struct efx *x, struct mfile *f, arb_ino_t dir, const char *name, uint64_t cap)
{
	memset(f, 0, sizeof(*f));
	f->dir = dir;
	snprintf(f->name, sizeof(f->name), "%s", name);
	f->ino = tu_mkfile(FS(x), &cred, dir, name);
	f->cap = cap;
	f->data = xcalloc(cap, 1);
	f->live = true;
}

static void mf_free(struct mfile *f)
{
	free(f->data);
	f->data = NULL;
}

/* Write [off, off + len) with fresh content: 0, or -ENOSPC changing
 * nothing. */
static int mf_write(struct efx *x, struct mfile *f, uint64_t off, uint64_t len)
{
	size_t done = 7;
	int rc;

	TU_ASSERT(off + len <= f->cap && len <= BUF_BYTES);
	pat_fill(x->buf, off, (size_t)len, tu_rng_next(&x->rng));
	rc = arb_vfs_write(FS(x), f->ino, off, x->buf, (size_t)len, &done);
	if (rc == -ENOSPC) {
		expect_clean_enospc(FS(x), "a write");
		TU_EQ_U64(done, 0);
		TU_EQ_U64(size_of(FS(x), f->ino), f->size);
		if (off < f->size)
			expect_bytes(FS(x), f->ino, off, f->data + off,
			             min_u64(off + len, f->size) - off);
		return rc;
	}
	if (rc)
		TU_FAIL("write to %s returned %s", f->name, tu_strerr(rc));
	TU_EQ_U64(done, len);
	memcpy(f->data + off, x->buf, len);
	if (off + len > f->size)
		f->size = off + len;
	return 0;
}

static void mf_expect(struct efx *x, const struct mfile *f)
{
	expect_file(FS(x), f->ino, f->data, f->size);
}

/* ---- 3. snapshots made exclusive ---- */

#define SNAP_MAX 64u
#define SNAP_FILES 8u

struct snap {
	char name[16];
	arb_ino_t root;
	bool ro;
	uint8_t *data[SNAP_FILES]; /* the source's files when it was taken */
	uint64_t size[SNAP_FILES];
};

/* The snapshot holds what the source held when it was taken. */
static void snap_expect(struct efx *x, const struct snap *s, const struct mfile *files, unsigned nf)
{
	for (unsigned i = 0; i < nf; i++)
		expect_file(FS(x), tu_lookup(FS(x), s->root, files[i].name), s->data[i],
		            s->size[i]);
}

static void snaps_expect(struct efx *x, const struct snap *snaps, unsigned ns,
                         const struct mfile *files, unsigned nf)
{
	for (unsigned k = 0; k < ns; k++) {
		TU_EQ_U64(tu_lookup(FS(x), x->root, snaps[k].name), snaps[k].root);
		snap_expect(x, &snaps[k], files, nf);
	}
	for (unsigned i = 0; i < nf; i++)
		mf_expect(x, &files[i]);
}

/* Snapshot the source: 0, or -ENOSPC leaving no trace. */
static int snap_take(struct efx *x, uint64_t src_id, struct snap *s, unsigned n,
                     const struct mfile *files, unsigned nf)
{
	struct arb_stat st;
	int rc;

	snprintf(s->name, sizeof(s->name), "snap%u", n);
	s->ro = tu_rng_pct(&x->rng, 50);
	rc = arb_vfs_snapshot(FS(x), src_id, x->root, s->name, s->ro ? ARB_SNAPSHOT_RDONLY : 0,
	                      &st);
	if (rc == -ENOSPC) {
		expect_clean_enospc(FS(x), "a snapshot");
		tu_expect_missing(FS(x), x->root, s->name);
		return rc;
	}
	if (rc)
		TU_FAIL("snapshot %s returned %s", s->name, tu_strerr(rc));
	s->root = st.ino;
	for (unsigned i = 0; i < nf; i++) {
		s->data[i] = xmalloc(files[i].size);
		memcpy(s->data[i], files[i].data, files[i].size);
		s->size[i] = files[i].size;
	}
	return 0;
}

static void snap_free(struct snap *s)
{
	for (unsigned i = 0; i < SNAP_FILES; i++)
		free(s->data[i]);
}

static void snapshots_seed(uint64_t seed)
{
	struct efx x;
	struct arb_stat st;
	struct mfile files[SNAP_FILES];
	struct snap *snaps = xcalloc(SNAP_MAX, sizeof(*snaps));
	struct filler f;
	unsigned nf = 4 + (unsigned)(seed % 5), ns = 0, rewrites = 0;
	uint64_t src_id, per_file;
	char name[24];
	bool full = false;
	double t0 = tu_now_sec();

	efx_setup(&x, seed);
	/* every round of rewrites takes about a tenth of the device */
	per_file = x.t.size / 10 / nf;
	TU_RC(arb_vfs_subvol_make(FS(&x), x.root, "src", 0755, &cred, &st));
	src_id = arb_ino_subvol(st.ino);
	for (unsigned i = 0; i < nf; i++) {
		snprintf(name, sizeof(name), "f%u", i);
		mf_make(&x, &files[i], st.ino, name, per_file);
		TU_RC(mf_write(&x, &files[i], 0, tu_rng_range(&x.rng, per_file / 2, per_file)));
	}
	filler_make(&x, &f, x.root, "filler");
	tu_commit(FS(&x));

	tu_ctx_phase("snapshot and rewrite until ENOSPC");
	while (!full && ns < SNAP_MAX) {
		tu_ctx_op(ns);
		if (snap_take(&x, src_id, &snaps[ns], ns, files, nf)) {
			full = true;
			break;
		}
		ns++;
		/* rewrite every file whole, in one write: the snapshots keep
		 * the old data, which becomes theirs alone */
		for (unsigned i = 0; i < nf; i++) {
			if (mf_write(&x, &files[i], 0, files[i].size) == -ENOSPC)
				full = true;
			else
				rewrites++;
		}
		if (tu_rng_pct(&x.rng, 50))
			tu_commit(FS(&x));
	}
	tu_ctx_op(UINT64_MAX);
	TU_ASSERT(full, "%u snapshots and no ENOSPC", ns);
	snaps_expect(&x, snaps, ns, files, nf);
	tu_commit(FS(&x));
	efx_reopen(&x);
	snaps_expect(&x, snaps, ns, files, nf);
	expect_healthy(FS(&x), true);

	/* delete every snapshot at full, oldest or newest first by seed */
	tu_ctx_phase("delete snapshots at full");
	fill_brim(&x, &f);
	expect_ordinary_refused(&x, x.root, src_id);
	for (unsigned j = 0; j < ns; j++) {
		unsigned k = seed & 2 ? j : ns - 1 - j;

		tu_ctx_op(k);
		if (tu_rng_pct(&x.rng, 30))
			fill_brim(&x, &f);
		TU_RC(arb_vfs_subvol_delete(FS(&x), x.root, snaps[k].name));
		tu_expect_missing(FS(&x), x.root, snaps[k].name);
		expect_not_failed(FS(&x));
		if (tu_rng_pct(&x.rng, 30))
			tu_commit(FS(&x));
	}
	tu_ctx_op(UINT64_MAX);
	tu_ctx_phase("drop the snapshots at full");
	drop_at_full(&x, &f);
	for (unsigned i = 0; i < nf; i++)
		mf_expect(&x, &files[i]);
	expect_pattern(FS(&x), f.ino, f.tag, f.size);
	expect_healthy(FS(&x), false);
	TU_RC(arb_vfs_subvol_delete(FS(&x), x.root, "src"));
	TU_RC(arb_vfs_unlink(FS(&x), x.root, "filler"));
	expect_back_to_empty(&x, "snapshots");
	print_message("# snapshots seed %" PRIu64 ": %" PRIu64 " MiB device, node %u KiB, %u "
	              "files of <= %" PRIu64 " KiB: %u snapshots, %u rewrites, %.2f s\n",
	              seed, x.t.size / MIB, node_sectors(&x) * 4, nf, per_file / KIB, ns, rewrites,
	              tu_now_sec() - t0);
	for (unsigned k = 0; k < ns; k++)
		snap_free(&snaps[k]);
	free(snaps);
	for (unsigned i = 0; i < nf; i++)
		mf_free(&files[i]);
	efx_free(&x);
}

/* ---- 4. every freeing operation at full ---- */

enum { A_FILES = 6, S_FILES = 4 };
#define MANY_FILES 400u
#define MANY_NAME_LEN 200

struct freeing {
	struct efx x;
	struct filler f;
	arb_ino_t dir_a, dir_many, sv_root, ro_root, rw_root;
	uint64_t sv_id;
	struct mfile a[A_FILES]; /* a/f0..f5 */
	struct mfile s[S_FILES]; /* sv/g0..g3 */
	bool rw_live, ro_live, empty1_live;
	unsigned ops;
};

/* Long names: the directory and the back-references span many leaves. */
static const char *many_name(char *buf, unsigned i)
{
	snprintf(buf, MANY_NAME_LEN + 1, "m%04u-%0*u", i, MANY_NAME_LEN - 6, 0);
	return buf;
}

static void freeing_build(struct freeing *w)
{
	struct efx *x = &w->x;
	struct arb_stat st;
	char name[24], long_name[MANY_NAME_LEN + 1];

	w->dir_a = tu_mkdir(FS(x), &cred, x->root, "a");
	(void)tu_mkdir(FS(x), &cred, x->root, "empty1");
	(void)tu_mkdir(FS(x), &cred, x->root, "empty2");
	w->dir_many = tu_mkdir(FS(x), &cred, x->root, "many");
	for (unsigned i = 0; i < MANY_FILES; i++)
		(void)tu_mkfile(FS(x), &cred, w->dir_many, many_name(long_name, i));
	for (unsigned i = 0; i < A_FILES; i++) {
		snprintf(name, sizeof(name), "f%u", i);
		mf_make(x, &w->a[i], w->dir_a, name, 512 * KIB);
		TU_RC(mf_write(x, &w->a[i], 0, tu_rng_range(&x->rng, 64 * KIB, 512 * KIB)));
	}
	TU_RC(arb_vfs_subvol_make(FS(x), x->root, "sv", 0755, &cred, &st));
	w->sv_root = st.ino;
	w->sv_id = arb_ino_subvol(st.ino);
	for (unsigned i = 0; i < S_FILES; i++) {
		snprintf(name, sizeof(name), "g%u", i);
		mf_make(x, &w->s[i], w->sv_root, name, 512 * KIB);
		TU_RC(mf_write(x, &w->s[i], 0, tu_rng_range(&x->rng, 64 * KIB, 512 * KIB)));
	}
	TU_RC(arb_vfs_snapshot(FS(x), w->sv_id, x->root, "sv-ro", ARB_SNAPSHOT_RDONLY, &st));
	w->ro_root = st.ino;
	TU_RC(arb_vfs_snapshot(FS(x), w->sv_id, x->root, "sv-rw", 0, &st));
	w->rw_root = st.ino;
	/* half the subvolume's files rewritten: part of the snapshots'
	 * data is theirs alone */
	for (unsigned i = 0; i < S_FILES; i += 2)
		TU_RC(mf_write(x, &w->s[i], 0, w->s[i].size));
	w->rw_live = w->ro_live = w->empty1_live = true;
	filler_make(x, &w->f, x->root, "filler");
	tu_commit(FS(x));
}

/* Rename `from` over the existing `to` (same directory): to takes from's
 * inode and content, the old target is freed. */
static void rename_over(struct efx *x, struct mfile *from, struct mfile *to)
{
	TU_RC(arb_vfs_rename(FS(x), from->dir, from->name, to->dir, to->name, 0));
	tu_expect_missing(FS(x), from->dir, from->name);
	free(to->data);
	to->data = from->data;
	to->size = from->size;
	to->cap = from->cap;
	to->ino = from->ino;
	from->data = NULL;
	from->live = false;
	TU_EQ_U64(tu_lookup(FS(x), to->dir, to->name), to->ino);
}

/* Punch [off, off + len) of f (KEEP_SIZE): the range reads as zeros. */
static void punch(struct efx *x, struct mfile *f, uint64_t off, uint64_t len)
{
	TU_RC(arb_vfs_fallocate(FS(x), f->ino, ARB_FALLOC_PUNCH_HOLE | ARB_FALLOC_KEEP_SIZE, off,
	                        len));
	if (off < f->size)
		memset(f->data + off, 0, min_u64(off + len, f->size) - off);
}

#define NR_FREEING_OPS 12

static const char *const freeing_names[NR_FREEING_OPS] = {"unlink",
                                                          "rmdir",
                                                          "truncate",
                                                          "punch aligned",
                                                          "punch unaligned",
                                                          "rename over",
                                                          "rename over in subvolume",
                                                          "unlink in a shared snapshot",
                                                          "truncate to 0 in subvolume",
                                                          "delete read-only snapshot",
                                                          "delete writable snapshot",
                                                          "many unlinks, no commit"};

/* Freeing operation `op`, on a full filesystem. */
static void freeing_op(struct freeing *w, unsigned op)
{
	struct efx *x = &w->x;
	struct mfile *f;
	uint64_t off, len;
	char long_name[MANY_NAME_LEN + 1];

	switch (op) {
	case 0:
		TU_RC(arb_vfs_unlink(FS(x), w->dir_a, w->a[0].name));
		w->a[0].live = false;
		tu_expect_missing(FS(x), w->dir_a, w->a[0].name);
		break;
	case 1:
		TU_RC(arb_vfs_rmdir(FS(x), x->root, "empty1"));
		w->empty1_live = false;
		tu_expect_missing(FS(x), x->root, "empty1");
		break;
	case 2: /* to an unaligned size: the last sector is rewritten */
		f = &w->a[1];
		f->size = tu_rng_below(&x->rng, f->size);
		set_size(FS(x), f->ino, f->size);
		break;
	case 3:
		f = &w->a[2];
		off = tu_rng_below(&x->rng, f->size / SECTOR) * SECTOR;
		len = tu_rng_range(&x->rng, 1, 32) * SECTOR;
		punch(x, f, off, len);
		break;
	case 4: /* partial sectors at both ends are rewritten as zeros */
		f = &w->a[3];
		off = tu_rng_range(&x->rng, 1, f->size - 1);
		len = tu_rng_range(&x->rng, 1, 100 * KIB);
		punch(x, f, off, len);
		break;
	case 5:
		rename_over(x, &w->a[4], &w->a[5]);
		break;
	case 6:
		rename_over(x, &w->s[0], &w->s[1]);
		break;
	case 7: /* its leaves are shared with sv: the delete copies them */
		TU_RC(arb_vfs_unlink(FS(x), w->rw_root, w->s[2].name));
		tu_expect_missing(FS(x), w->rw_root, w->s[2].name);
		break;
	case 8:
		f = &w->s[3];
		f->size = 0;
		set_size(FS(x), f->ino, 0);
		break;
	case 9:
		TU_RC(arb_vfs_subvol_delete(FS(x), x->root, "sv-ro"));
		w->ro_live = false;
		tu_expect_missing(FS(x), x->root, "sv-ro");
		break;
	case 10:
		TU_RC(arb_vfs_subvol_delete(FS(x), x->root, "sv-rw"));
		w->rw_live = false;
		tu_expect_missing(FS(x), x->root, "sv-rw");
		break;
	default:
		/* at full, with no commit in between: the leaves each unlink
		 * shadows add up in the running transaction */
		for (unsigned k = 0; k < MANY_FILES; k++) {
			/* an order that visits the leaves in turn */
			unsigned i = k * 97 % MANY_FILES;

			TU_RC(arb_vfs_unlink(FS(x), w->dir_many, many_name(long_name, i)));
		}
		TU_RC(arb_vfs_rmdir(FS(x), x->root, "many"));
		break;
	}
	expect_not_failed(FS(x));
}

static void freeing_expect(struct freeing *w)
{
	for (unsigned i = 0; i < A_FILES; i++)
		if (w->a[i].live)
			mf_expect(&w->x, &w->a[i]);
	for (unsigned i = 0; i < S_FILES; i++)
		if (w->s[i].live)
			mf_expect(&w->x, &w->s[i]);
	expect_pattern(FS(&w->x), w->f.ino, w->f.tag, w->f.size);
}

/* Delete everything that is left, at full. */
static void freeing_remove_all(struct freeing *w)
{
	struct efx *x = &w->x;

	for (unsigned i = 0; i < A_FILES; i++)
		if (w->a[i].live)
			TU_RC(arb_vfs_unlink(FS(x), w->dir_a, w->a[i].name));
	TU_RC(arb_vfs_rmdir(FS(x), x->root, "a"));
	if (w->empty1_live)
		TU_RC(arb_vfs_rmdir(FS(x), x->root, "empty1"));
	TU_RC(arb_vfs_rmdir(FS(x), x->root, "empty2"));
	if (w->ro_live)
		TU_RC(arb_vfs_subvol_delete(FS(x), x->root, "sv-ro"));
	if (w->rw_live)
		TU_RC(arb_vfs_subvol_delete(FS(x), x->root, "sv-rw"));
	TU_RC(arb_vfs_subvol_delete(FS(x), x->root, "sv"));
	TU_RC(arb_vfs_unlink(FS(x), x->root, "filler"));
	expect_not_failed(FS(x));
}

static void freeing_seed(uint64_t seed)
{
	struct freeing *w = xcalloc(1, sizeof(*w));
	struct efx *x = &w->x;
	unsigned order[NR_FREEING_OPS];
	double t0 = tu_now_sec();

	efx_setup(x, seed);
	freeing_build(w);
	tu_ctx_phase("fill");
	fill_brim(x, &w->f);
	tu_commit(FS(x)); /* a commit at full */
	fill_brim(x, &w->f);
	expect_ordinary_refused(x, x->root, w->sv_id);
	expect_ordinary_refused(x, w->sv_root, w->sv_id);

	/* a random order, but the unlink in sv-rw before sv-rw goes */
	for (unsigned i = 0; i < NR_FREEING_OPS; i++)
		order[i] = i;
	for (unsigned i = NR_FREEING_OPS - 1; i > 0; i--) {
		unsigned j = (unsigned)tu_rng_below(&x->rng, i + 1), t = order[i];

		order[i] = order[j];
		order[j] = t;
	}
	unsigned p7 = 0, p10 = 0;

	for (unsigned i = 0; i < NR_FREEING_OPS; i++) {
		p7 = order[i] == 7 ? i : p7;
		p10 = order[i] == 10 ? i : p10;
	}
	if (p10 < p7) {
		order[p7] = 10;
		order[p10] = 7;
	}
	for (unsigned i = 0; i < NR_FREEING_OPS; i++) {
		tu_ctx_op(i);
		tu_ctx_phase(freeing_names[order[i]]);
		fill_brim(x, &w->f); /* full before every one */
		freeing_op(w, order[i]);
		w->ops++;
		if (tu_rng_pct(&x->rng, 30))
			tu_commit(FS(x));
	}
	tu_ctx_op(UINT64_MAX);
	tu_ctx_phase("drop the snapshots at full");
	drop_at_full(x, &w->f);
	tu_ctx_phase("after the freeing operations");
	freeing_expect(w);
	efx_reopen(x);
	freeing_expect(w);
	expect_healthy(FS(x), true);

	tu_ctx_phase("remove everything at full");
	fill_brim(x, &w->f);
	freeing_remove_all(w);
	tu_commit(FS(x));
	expect_back_to_empty(x, "freeing");
	print_message("# freeing seed %" PRIu64 ": %" PRIu64 " MiB device, node %u KiB: %u "
	              "operations at full, filler %" PRIu64 " KiB, %.2f s\n",
	              seed, x->t.size / MIB, node_sectors(x) * 4, w->ops, w->f.size / KIB,
	              tu_now_sec() - t0);
	for (unsigned i = 0; i < A_FILES; i++)
		mf_free(&w->a[i]);
	for (unsigned i = 0; i < S_FILES; i++)
		mf_free(&w->s[i]);
	efx_free(x);
	free(w);
}

/* ---- 5. statfs honesty ---- */

/*
 * On a fresh filesystem, write one file of bavail * frsize - slack sectors
 * in 1 MiB writes; bfree and bavail must never grow on the way.  Returns 0,
 * or -ENOSPC (the last write changed nothing).  With `finish`, a full
 * write must succeed, and deleting the file must give bavail back within
 * one commit.
 */
static int honest_try(uint64_t seed, uint64_t slack, bool finish, struct arb_statfs *ret0)
{
	struct efx x;
	struct arb_statfs st0, prev, now;
	uint64_t total, off = 0;
	arb_ino_t ino;
	size_t done;
	int rc = 0;

	efx_setup(&x, seed);
	ino = tu_mkfile(FS(&x), &cred, x.root, "f");
	tu_commit(FS(&x));
	st0 = prev = statfs_of(FS(&x));
	*ret0 = st0;
	TU_ASSERT(st0.bavail > slack);
	total = (st0.bavail - slack) * st0.frsize;
	while (off < total) {
		uint64_t len = min_u64(MIB, total - off);

		pat_fill(x.buf, off, (size_t)len, seed);
		done = 7;
		rc = arb_vfs_write(FS(&x), ino, off, x.buf, (size_t)len, &done);
		if (rc) {
			TU_RC_EQ(rc, -ENOSPC);
			expect_clean_enospc(FS(&x), "a write");
			TU_EQ_U64(done, 0);
			TU_EQ_U64(size_of(FS(&x), ino), off);
			break;
		}
		TU_EQ_U64(done, len);
		off += len;
		now = statfs_of(FS(&x));
		TU_ASSERT(now.bfree <= prev.bfree && now.bavail <= prev.bavail,
		          "statfs grew while writing: bfree %" PRIu64 " -> %" PRIu64
		          ", bavail %" PRIu64 " -> %" PRIu64,
		          prev.bfree, now.bfree, prev.bavail, now.bavail);
		prev = now;
	}
	if (finish) {
		if (rc)
			TU_FAIL("a file of bavail (%" PRIu64 ") - %" PRIu64 " sectors did not fit: "
			        "ENOSPC at %" PRIu64 " of %" PRIu64 " bytes",
			        st0.bavail, slack, off, total);
		tu_commit(FS(&x));
		expect_pattern(FS(&x), ino, seed, total);
		TU_RC(arb_vfs_unlink(FS(&x), x.root, "f"));
		tu_commit(FS(&x));
		now = statfs_of(FS(&x));
		TU_ASSERT(now.bavail >= st0.bavail && now.bfree >= st0.bfree,
		          "one commit after the delete: bavail %" PRIu64 " bfree %" PRIu64
		          ", before the write %" PRIu64 " and %" PRIu64,
		          now.bavail, now.bfree, st0.bavail, st0.bfree);
		expect_healthy(FS(&x), false);
	}
	efx_free(&x);
	return rc;
}

static void honest_seed(uint64_t seed)
{
	struct arb_statfs st0;
	struct efx probe;
	uint64_t lo = 0, hi, bound, size;
	uint32_t nodesize;
	double t0 = tu_now_sec();
	unsigned tries = 0;

	geometry(seed, &size, &nodesize);
	efx_setup(&probe, seed);
	bound = HONEST_SLACK_NODES * node_sectors(&probe) +
	        probe.empty.blocks * HONEST_SLACK_PCT / 100;
	efx_free(&probe);
	tu_ctx_phase("the documented slack");
	honest_try(seed, bound, true, &st0);
	/* the smallest slack that fits: lo does not (or is 0), hi does */
	tu_ctx_phase("the smallest slack");
	hi = bound;
	if (honest_try(seed, 0, false, &st0) == 0)
		hi = 0;
	while (hi > lo + 1) {
		uint64_t mid = lo + (hi - lo) / 2;

		tries++;
		if (honest_try(seed, mid, false, &st0) == 0)
			hi = mid;
		else
			lo = mid;
	}
	print_message("# statfs seed %" PRIu64 ": %" PRIu64 " MiB device, node %u KiB: bavail "
	              "%" PRIu64 " of %" PRIu64 " blocks (bfree %" PRIu64 "), smallest slack "
	              "%" PRIu64 " sectors (%" PRIu64 " KiB, %.2f%%; bound %" PRIu64 "), %u tries, "
	              "%.2f s\n",
	              seed, size / MIB, nodesize / 1024, st0.bavail, st0.blocks, st0.bfree, hi,
	              hi * SECTOR / KIB, 100.0 * (double)hi / (double)st0.blocks, bound, tries,
	              tu_now_sec() - t0);
}

/* ---- 6. power cuts while a delete commits at full ---- */

#define CRASH_DEV (16 * MIB)
#define CRASH_REORDER_SEEDS 2

struct crash {
	struct efx x;
	struct filler f;
	uint64_t victim_size, victim_tag, sv_id;
	struct mfile s[S_FILES]; /* sv's files */
	struct snap snap;        /* "snap" of sv, made exclusive */
	uint64_t g0, g_unlink, g_delete, g_end;
	uint8_t *buf;
};

struct crash_stats {
	size_t states, before, between, after;
};

/* At full, with a durable 3 MiB victim and a snapshot whose data is its
 * own; g0 the generation recording starts from. */
static void crash_build(struct crash *c)
{
	struct efx *x = &c->x;
	struct arb_stat st;
	arb_ino_t v, sv;
	char name[24];
	size_t done;

	TU_RC(arb_vfs_subvol_make(FS(x), x->root, "sv", 0755, &cred, &st));
	sv = st.ino;
	c->sv_id = arb_ino_subvol(sv);
	for (unsigned i = 0; i < S_FILES; i++) {
		snprintf(name, sizeof(name), "g%u", i);
		mf_make(x, &c->s[i], sv, name, 256 * KIB);
		TU_RC(mf_write(x, &c->s[i], 0, tu_rng_range(&x->rng, 1, 256 * KIB)));
	}
	TU_RC(snap_take(x, c->sv_id, &c->snap, 0, c->s, S_FILES));
	for (unsigned i = 0; i < S_FILES; i++)
		TU_RC(mf_write(x, &c->s[i], 0, c->s[i].size));
	v = tu_mkfile(FS(x), &cred, x->root, "victim");
	filler_make(x, &c->f, x->root, "filler");
	c->victim_size = 3 * MIB - tu_rng_below(&x->rng, 100 * KIB);
	c->victim_tag = tu_rng_next(&x->rng);
	pat_fill(c->buf, 0, c->victim_size, c->victim_tag);
	/* the victim's 8 KiB pieces alternate on disk with the filler's, so
	 * that its delete frees more ranges than the superblock lists: the
	 * commit at full also writes DEFER items */
	for (uint64_t off = 0; off < c->victim_size; off += 8 * KIB) {
		uint64_t n = min_u64(8 * KIB, c->victim_size - off);

		TU_RC(arb_vfs_write(FS(x), v, off, c->buf + off, n, &done));
		pat_fill(x->buf, c->f.size, 8 * KIB, c->f.tag);
		TU_RC(arb_vfs_write(FS(x), c->f.ino, c->f.size, x->buf, 8 * KIB, &done));
		c->f.size += 8 * KIB;
	}
	tu_commit(FS(x));
	fill_brim(x, &c->f);
	tu_commit(FS(x));
	c->g0 = gen_of(FS(x));
}

/* The recorded workload: delete the victim and the snapshot at full,
 * commit, then free the snapshot's tree and commit.  The generation after
 * each step says what a crash image of that generation holds (a commit
 * inside a call happens before the call changes anything). */
static void crash_workload(struct crash *c)
{
	struct efx *x = &c->x;

	TU_RC(arb_vfs_unlink(FS(x), x->root, "victim"));
	c->g_unlink = gen_of(FS(x));
	TU_RC(arb_vfs_subvol_delete(FS(x), x->root, c->snap.name));
	c->g_delete = gen_of(FS(x));
	tu_commit(FS(x));
	TU_RC(arb_fs_drop_all(FS(x)));
	tu_commit(FS(x));
	c->g_end = gen_of(FS(x));
	expect_not_failed(FS(x));
}

static void crash_expect_victim(struct crash *c, struct arb_fs *fs, arb_ino_t root, bool there)
{
	struct arb_stat st;
	int rc = arb_vfs_lookup(fs, root, "victim", &st);

	if (!there) {
		TU_RC_EQ(rc, -ENOENT);
		return;
	}
	TU_RC(rc);
	TU_EQ_U64(st.size, c->victim_size);
	expect_bytes(fs, st.ino, 0, c->buf, c->victim_size);
}

static void crash_expect_snap(struct crash *c, struct arb_fs *fs, arb_ino_t root, bool there)
{
	struct arb_stat st;
	int rc = arb_vfs_lookup(fs, root, c->snap.name, &st);

	if (!there) {
		TU_RC_EQ(rc, -ENOENT);
		return;
	}
	TU_RC(rc);
	for (unsigned i = 0; i < S_FILES; i++) {
		struct arb_stat fst;

		TU_RC(arb_vfs_lookup(fs, st.ino, c->s[i].name, &fst));
		TU_EQ_U64(fst.size, c->snap.size[i]);
		expect_bytes(fs, fst.ino, 0, c->snap.data[i], c->snap.size[i]);
	}
}

/* The subvolume the snapshot was taken of is untouched by it all. */
static void crash_expect_sv(struct crash *c, struct arb_fs *fs, arb_ino_t root)
{
	arb_ino_t sv = tu_lookup(fs, root, "sv");

	for (unsigned i = 0; i < S_FILES; i++)
		expect_file(fs, tu_lookup(fs, sv, c->s[i].name), c->s[i].data, c->s[i].size);
}

/* The state of a power cut before event `cut` (rseed: which unflushed
 * writes landed): opened read-only it is all or nothing of each delete
 * and checks clean; opened read-write at full, what is left can be
 * deleted, and then the space is free and usable. */
static void crash_cut(struct crash *c, size_t cut, uint64_t rseed, struct crash_stats *cs)
{
	struct tu_fs img = {0};
	struct arb_statfs st;
	arb_ino_t root, ino;
	uint64_t gen, freed = UINT64_MAX;
	bool victim, snap;
	size_t done;

	TU_RC(arb_memdev_crash_view(c->x.t.dev, cut, rseed, &img.dev));
	img.read_only = true;
	tu_fs_open(&img);
	gen = gen_of(img.fs);
	TU_ASSERT(gen >= c->g0 && gen <= c->g_end,
	          "cut %zu: generation %" PRIu64 ", recording went from %" PRIu64 " to %" PRIu64,
	          cut, gen, c->g0, c->g_end);
	victim = gen <= c->g_unlink;
	snap = gen <= c->g_delete;
	cs->states++;
	cs->before += victim;
	cs->between += !victim && snap;
	cs->after += !snap;
	TU_RC(arb_vfs_root(img.fs, 0, &root));
	crash_expect_victim(c, img.fs, root, victim);
	crash_expect_snap(c, img.fs, root, snap);
	crash_expect_sv(c, img.fs, root);
	expect_healthy(img.fs, false);
	arb_close(img.fs);
	img.fs = NULL;

	img.read_only = false;
	tu_fs_open(&img);
	TU_RC(arb_vfs_orphan_cleanup(img.fs, &freed));
	TU_EQ_U64(freed, 0);
	TU_RC(arb_vfs_root(img.fs, 0, &root));
	crash_expect_victim(c, img.fs, root, victim);
	if (victim)
		TU_RC(arb_vfs_unlink(img.fs, root, "victim"));
	if (snap)
		TU_RC(arb_vfs_subvol_delete(img.fs, root, c->snap.name));
	TU_RC(arb_fs_drop_all(img.fs));
	TU_RC(arb_commit(img.fs));
	st = statfs_of(img.fs);
	/* the victim's sectors are free again; Avail leaves out those in holes
	 * smaller than a node (its pieces sat between the filler's), so what
	 * must fit is half of Avail, up to 1 MiB */
	TU_ASSERT(st.bfree * st.frsize >= c->victim_size,
	          "cut %zu: %" PRIu64 " sectors free after deleting a %" PRIu64 "-byte file", cut,
	          st.bfree, c->victim_size);
	uint64_t len = st.bavail * st.frsize / 2 < MIB ? st.bavail * st.frsize / 2 : MIB;

	int err = arb_vfs_mknod(img.fs, root, "after", S_IFREG | 0644, 0, &cred,
	                        &(struct arb_stat){0});

	/* a create keeps room for its worst case (64 nodes): below that much
	 * Avail (counted again: the commits it made to release the freed space
	 * may have shown more of it in holes smaller than a node) it may be
	 * refused, cleanly */
	if (err == -ENOSPC && statfs_of(img.fs).bavail < 80 * fs_node_sectors(img.fs)) {
		expect_healthy(img.fs, true);
	} else {
		TU_RC(err);
		ino = tu_lookup(img.fs, root, "after");
		pat_fill(c->x.buf, 0, len, 77);
		TU_RC(arb_vfs_write(img.fs, ino, 0, c->x.buf, len, &done));
	}
	TU_RC(arb_commit(img.fs));
	tu_check_clean(img.fs);
	arb_close(img.fs);
	arb_dev_close(img.dev);
}

static void crash_seed(uint64_t seed)
{
	struct crash *c = xcalloc(1, sizeof(*c));
	struct crash_stats cs = {0};
	size_t events;
	double t0 = tu_now_sec();

	efx_setup_geo(&c->x, seed, CRASH_DEV, seed & 1 ? 4096 : 16384);
	c->buf = xmalloc(3 * MIB);
	tu_ctx_phase("build");
	crash_build(c);
	arb_memdev_record(c->x.t.dev);
	tu_ctx_phase("workload");
	crash_workload(c);
	events = arb_memdev_events(c->x.t.dev);
	for (unsigned r = 0; r <= CRASH_REORDER_SEEDS; r++) {
		uint64_t rseed = r ? tu_mix64(seed * 16 + r) | 1 : 0;

		tu_ctx_phase(r ? "every cut, unflushed writes reordered" : "every cut");
		for (size_t cut = 0; cut <= events; cut++) {
			tu_ctx_op(cut);
			crash_cut(c, cut, rseed, &cs);
		}
	}
	tu_ctx_op(UINT64_MAX);
	TU_ASSERT(cs.before > 0 && cs.after > 0, "before %zu after %zu", cs.before, cs.after);
	print_message("# crash seed %" PRIu64 ": node %u KiB, generations %" PRIu64 "..%" PRIu64
	              ", %zu events, %zu states (%zu before the delete, %zu half, %zu after), "
	              "%.2f s\n",
	              seed, node_sectors(&c->x) * 4, c->g0, c->g_end, events, cs.states, cs.before,
	              cs.between, cs.after, tu_now_sec() - t0);
	snap_free(&c->snap);
	for (unsigned i = 0; i < S_FILES; i++)
		mf_free(&c->s[i]);
	free(c->buf);
	efx_free(&c->x);
	free(c);
}

int main(void)
{
	struct tu_tests ts = {0};

	/* ARBOR_TEST_ONLY=pattern: run only the matching tests */
	if (getenv("ARBOR_TEST_ONLY"))
		cmocka_set_test_filter(getenv("ARBOR_TEST_ONLY"));
	tu_tests_add_seeds(&ts, "big file", fill_big_seed, 1, 6);
	tu_tests_add_seeds(&ts, "small files", fill_small_seed, 101, 3);
	tu_tests_add_seeds(&ts, "10^5 small files", fill_many_seed, 111, 1);
	tu_tests_add_seeds(&ts, "snapshots", snapshots_seed, 201, 4);
	tu_tests_add_seeds(&ts, "freeing at full", freeing_seed, 301, 6);
	tu_tests_add_seeds(&ts, "statfs", honest_seed, 401, 4);
	tu_tests_add_seeds(&ts, "crash", crash_seed, 501, 4);
	return tu_tests_run(&ts, "enospc");
}
