/* SPDX-License-Identifier: MIT */
/*
 * log.c - the fsync log (format: arbor_format.h, FSYNC LOG BLOCK).
 *
 * A commit rewrites every leaf a transaction changed and the paths above
 * them, and flushes twice (the blocks, then the superblock).  A database
 * doing random writes with an fsync every few of them pays that for every
 * fsync.  The log makes such an fsync cost its data plus one 4 KiB block
 * and a single flush: the file's new extent items (whose per-sector
 * checksums tell at replay whether the data landed) and its inode item are
 * appended to a chain that the last commit's superblock starts.
 *
 * Only what the log can replay exactly goes through it: a file whose every
 * change since the last commit is a data write over extents (not inline
 * data).  Anything else - a new file, a rename, a truncate, an xattr, a
 * chmod - marks the inode, and its fsync commits.  An unchanged inode needs
 * nothing at all.  The next commit makes the log's content part of the
 * trees and starts a new chain.
 *
 * Safety: a block's address is allocated (in memory) before the block
 * that points to it is written, and the chain's blocks and logged data stay
 * allocated until a commit covers them, so nothing overwrites the chain
 * while a crash could still need it.  Replay reads the whole chain first,
 * keeps complete fsyncs (up to an ARB_LOG_END block) whose data checksums
 * verify, holds every sector they name, applies them, and commits.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "arbor/crc32c.h"
#include "log.h"
#include "vfs_internal.h"

#define LOG_BLOCK ARB_LOG_BLOCK_SIZE
#define LOG_HDR ((uint32_t)sizeof(struct arb_log_header))
#define LOG_REC ((uint32_t)sizeof(struct arb_log_rec))
#define LOG_FSYNC_MAX_BLOCKS 64u /* a bigger fsync commits instead */
#define LOG_CHAIN_MAX 4096u      /* a longer chain commits instead */
#define LOG_RANGES_MAX 4096u     /* a more scattered file commits instead */

/* ---- per-inode state ------------------------------------------------------------ */

enum { LI_EMPTY, LI_DATA, LI_COMMIT };

struct log_range {
	uint64_t start, end;
};

struct log_inode {
	arb_ino_t ino;
	uint8_t state;
	bool dirty;          /* inode item changed since the last fsync */
	struct log_range *r; /* written since the last fsync, unsorted */
	uint32_t n, cap;
};

static size_t slot_of(arb_ino_t ino, size_t cap)
{
	return (size_t)((ino * 0x9e3779b97f4a7c15ull) >> 17) & (cap - 1);
}

static void table_clear(struct arb_log *l)
{
	for (size_t i = 0; i < l->tab_cap; i++)
		free(l->tab[i].r);
	free(l->tab);
	l->tab = NULL;
	l->tab_cap = l->tab_used = 0;
}

static struct log_inode *table_find(const struct arb_log *l, arb_ino_t ino)
{
	if (!l->tab_cap)
		return NULL;
	for (size_t i = slot_of(ino, l->tab_cap);; i = (i + 1) & (l->tab_cap - 1)) {
		if (l->tab[i].state == LI_EMPTY)
			return NULL;
		if (l->tab[i].ino == ino)
			return &l->tab[i];
	}
}

static int table_grow(struct arb_log *l)
{
	size_t cap = l->tab_cap ? 2 * l->tab_cap : 256;
	struct log_inode *t = calloc(cap, sizeof(*t));

	if (!t)
		return -ENOMEM;
	for (size_t i = 0; i < l->tab_cap; i++) {
		if (l->tab[i].state == LI_EMPTY)
			continue;
		size_t j = slot_of(l->tab[i].ino, cap);

		while (t[j].state != LI_EMPTY)
			j = (j + 1) & (cap - 1);
		t[j] = l->tab[i];
	}
	free(l->tab);
	l->tab = t;
	l->tab_cap = cap;
	return 0;
}

static struct log_inode *table_get(struct arb_log *l, arb_ino_t ino)
{
	struct log_inode *e = table_find(l, ino);

	if (e)
		return e;
	if ((l->tab_used + 1) * 2 > l->tab_cap && table_grow(l))
		return NULL;
	size_t i = slot_of(ino, l->tab_cap);

	while (l->tab[i].state != LI_EMPTY)
		i = (i + 1) & (l->tab_cap - 1);
	l->tab[i] = (struct log_inode){.ino = ino, .state = LI_DATA};
	l->tab_used++;
	return &l->tab[i];
}

static void mark_commit(struct log_inode *e)
{
	e->state = LI_COMMIT;
	free(e->r);
	e->r = NULL;
	e->n = e->cap = 0;
}

void arb_log_inode_changed(struct arb_fs *fs, arb_ino_t ino)
{
	struct arb_log *l = &fs->log;
	struct log_inode *e;

	if (l->writing == ino)
		return; /* the write itself: arb_log_inode_wrote follows */
	e = table_get(l, ino);
	if (e)
		mark_commit(e);
	else
		l->all_commit = true;
}

void arb_log_inode_touched(struct arb_fs *fs, arb_ino_t ino)
{
	struct log_inode *e = table_get(&fs->log, ino);

	if (e)
		e->dirty = true;
	else
		fs->log.all_commit = true;
}

void arb_log_inode_wrote(struct arb_fs *fs, arb_ino_t ino, uint64_t start, uint64_t end)
{
	struct arb_log *l = &fs->log;
	struct log_inode *e = table_get(l, ino);

	if (!e) {
		l->all_commit = true;
		return;
	}
	if (e->state == LI_COMMIT)
		return;
	e->dirty = true;
	/* sequential writes extend the last range */
	if (e->n && e->r[e->n - 1].end >= start && e->r[e->n - 1].start <= end) {
		struct log_range *r = &e->r[e->n - 1];

		r->start = r->start < start ? r->start : start;
		r->end = r->end > end ? r->end : end;
		return;
	}
	if (e->n == LOG_RANGES_MAX) {
		mark_commit(e);
		return;
	}
	if (e->n == e->cap) {
		uint32_t cap = e->cap ? 2 * e->cap : 8;
		struct log_range *r = realloc(e->r, cap * sizeof(*r));

		if (!r) {
			mark_commit(e);
			return;
		}
		e->r = r;
		e->cap = cap;
	}
	e->r[e->n++] = (struct log_range){start, end};
}

/* ---- the chain ------------------------------------------------------------------ */

static int chain_add(struct arb_log *l, uint64_t bytenr)
{
	if (l->nblocks == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 64;
		uint64_t *b = realloc(l->blocks, cap * sizeof(*b));

		if (!b)
			return -ENOMEM;
		l->blocks = b;
		l->cap = cap;
	}
	l->blocks[l->nblocks++] = bytenr;
	return 0;
}

static uint32_t block_csum(const uint8_t *blk)
{
	return arb_crc32c(0, blk + ARB_CSUM_SIZE, LOG_BLOCK - ARB_CSUM_SIZE);
}

/* Records of one fsync, packed into blocks. */
struct log_writer {
	struct arb_fs *fs;
	uint8_t *buf;
	uint32_t nblk, used; /* blocks started; record bytes in the last one */
};

static int writer_rec(struct log_writer *w, uint8_t type, arb_ino_t ino, uint64_t off, uint64_t len,
                      const void *payload, uint32_t plen)
{
	struct arb_log_rec r = {type,
	                        {0},
	                        htole32(plen),
	                        htole64(arb_ino_subvol(ino)),
	                        htole64(arb_ino_local(ino)),
	                        htole64(off),
	                        htole64(len)};

	if (LOG_HDR + LOG_REC + plen > LOG_BLOCK)
		return -E2BIG;
	if (!w->nblk || LOG_HDR + w->used + LOG_REC + plen > LOG_BLOCK) {
		if (w->nblk == LOG_FSYNC_MAX_BLOCKS)
			return -E2BIG;
		uint8_t *b = realloc(w->buf, (size_t)(w->nblk + 1) * LOG_BLOCK);

		if (!b)
			return -ENOMEM;
		w->buf = b;
		memset(b + (size_t)w->nblk * LOG_BLOCK, 0, LOG_BLOCK);
		w->nblk++;
		w->used = 0;
	}
	uint8_t *p = w->buf + (size_t)(w->nblk - 1) * LOG_BLOCK + LOG_HDR + w->used;

	memcpy(p, &r, LOG_REC);
	if (plen)
		memcpy(p + LOG_REC, payload, plen);
	w->used += LOG_REC + plen;
	((struct arb_log_header *)(w->buf + (size_t)(w->nblk - 1) * LOG_BLOCK))->used =
	        htole32(w->used);
	return 0;
}

struct piece_ctx {
	struct log_writer *w;
	arb_ino_t ino;
};

static int piece_cb(void *ctx, uint64_t off, uint64_t len, const void *item, uint32_t item_len)
{
	struct piece_ctx *p = ctx;

	return writer_rec(p->w, item ? ARB_LOG_EXTENT : ARB_LOG_HOLE, p->ino, off, len, item,
	                  item_len);
}

static int cmp_range(const void *a, const void *b)
{
	const struct log_range *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/* The records of one fsync of e: its written ranges (merged), then its
 * inode item. */
static int build_records(struct arb_fs *fs, struct log_inode *e, struct log_writer *w)
{
	struct piece_ctx pc = {w, e->ino};
	struct arb_inode_item item;
	struct arb_key k = {arb_ino_local(e->ino), ARB_INODE_ITEM_KEY, 0};
	struct vnode v;
	uint32_t len;
	int err = vnode_get(fs, e->ino, &v);

	/* a tree made since the last commit (a snapshot) is not there for the
	 * replay to write into: its inodes are new, the fsync commits */
	if (!err && le64toh(v.t->item.create_gen) > fs->generation)
		err = -EAGAIN;
	if (e->n) /* only the timestamps changed: e->r may be NULL */
		qsort(e->r, e->n, sizeof(*e->r), cmp_range);
	for (uint32_t i = 0; i < e->n && !err;) {
		struct log_range r = e->r[i++];

		while (i < e->n && e->r[i].start <= r.end) {
			r.end = e->r[i].end > r.end ? e->r[i].end : r.end;
			i++;
		}
		err = file_log_range(&v, r.start, r.end, piece_cb, &pc);
	}
	if (!err)
		err = arb_lookup(v.t, &k, &item, sizeof(item), &len);
	if (!err && len != sizeof(item))
		err = -EUCLEAN;
	if (!err)
		err = writer_rec(w, ARB_LOG_INODE, e->ino, 0, 0, &item, sizeof(item));
	return err;
}

/* Give every block its header and next address, write them, flush. */
static int write_blocks(struct arb_fs *fs, struct log_writer *w)
{
	struct arb_log *l = &fs->log;
	int err = 0;

	for (uint32_t i = 0; i < w->nblk && !err; i++) {
		uint8_t *blk = w->buf + (size_t)i * LOG_BLOCK;
		struct arb_log_header *h = (struct arb_log_header *)blk;
		uint64_t at = l->next, next;
		uint32_t c;

		err = arb_sm_alloc(&fs->sm, 1, 1, fs->sm.reserve_sectors, &next);
		if (!err)
			err = chain_add(l, next);
		if (err)
			break;
		h->magic = htole64(ARB_LOG_MAGIC);
		memcpy(h->fsid, fs->fsid, 16);
		h->nonce = htole64(l->nonce);
		h->generation = htole64(fs->generation);
		h->seq = htole64(l->seq);
		h->next = htole64(next);
		h->flags = htole32(i + 1 == w->nblk ? ARB_LOG_END : 0);
		c = htole32(block_csum(blk));
		memcpy(h->csum, &c, 4);
		err = arb_dev_write(fs->dev, blk, LOG_BLOCK, at);
		l->next = next;
		l->seq++;
	}
	return err ? err : arb_dev_flush(fs->dev);
}

/* 0: logged; -EAGAIN: the log cannot take it; other: an error. */
static int log_fsync(struct arb_fs *fs, struct log_inode *e)
{
	struct arb_log *l = &fs->log;
	struct log_writer w = {.fs = fs};
	int err;

	if (!l->head || l->all_commit || e->state == LI_COMMIT ||
	    l->nblocks + LOG_FSYNC_MAX_BLOCKS > LOG_CHAIN_MAX)
		return -EAGAIN;
	err = build_records(fs, e, &w);
	if (!err)
		err = write_blocks(fs, &w);
	free(w.buf);
	if (err == -E2BIG || err == -ENOSPC || err == -ENOMEM)
		return -EAGAIN;
	if (err)
		return err;
	/* logged: the next fsync adds what changes from now on */
	e->n = 0;
	e->dirty = false;
	return 0;
}

int arb_vfs_fsync(struct arb_fs *fs, arb_ino_t ino)
{
	struct log_inode *e;
	int err = arb_check_mutable(fs);

	if (err)
		return err;
	fs->log.wanted = true;
	e = table_find(&fs->log, ino);
	if (!e && !fs->log.all_commit)
		return 0; /* unchanged since the last commit */
	if (e && e->state == LI_DATA && !e->dirty)
		return 0; /* everything it wrote is in the log already */
	err = e ? log_fsync(fs, e) : -EAGAIN;
	if (err == -EAGAIN)
		return arb_commit(fs);
	/* a log write that failed halfway: a commit makes it moot */
	return err ? arb_commit(fs) : 0;
}

/* ---- commit --------------------------------------------------------------------- */

int arb_log_commit_prepare(struct arb_fs *fs)
{
	struct arb_log *l = &fs->log;
	int err = 0;

	for (size_t i = 0; i < l->nblocks && !err; i++)
		err = arb_data_ref(fs, l->blocks[i], 1, -1);
	l->nblocks = 0;
	table_clear(l);
	l->all_commit = false;
	l->head = l->next = 0;
	l->seq = 0;
	if (err || !l->wanted)
		return err;
	l->wanted = false;
	err = arb_sm_alloc(&fs->sm, 1, 1, 0, &l->head);
	if (!err)
		err = chain_add(l, l->head);
	if (err)
		return err;
	l->next = l->head;
	do
		arb_random_bytes(&l->nonce, sizeof(l->nonce));
	while (!l->nonce);
	return 0;
}

void arb_log_free(struct arb_fs *fs)
{
	table_clear(&fs->log);
	free(fs->log.blocks);
	memset(&fs->log, 0, sizeof(fs->log));
}

/* ---- replay --------------------------------------------------------------------- */

struct replay {
	struct arb_fs *fs;
	uint8_t *buf; /* blocks read, LOG_BLOCK each */
	uint64_t *addr;
	size_t n, cap;
	size_t keep; /* blocks up to the last complete fsync */
	uint64_t nonce, fsyncs;
};

typedef int (*rec_fn)(struct replay *rp, const struct arb_log_rec *r, const uint8_t *payload);

/* Call fn for every record of block i; -EUCLEAN if they do not parse. */
static int for_records(struct replay *rp, size_t i, rec_fn fn)
{
	const uint8_t *blk = rp->buf + i * LOG_BLOCK;
	const struct arb_log_header *h = (const struct arb_log_header *)blk;
	uint32_t used = le32toh(h->used);

	if (used > LOG_BLOCK - LOG_HDR)
		return -EUCLEAN;
	for (uint32_t pos = 0; pos < used;) {
		struct arb_log_rec r;

		if (used - pos < LOG_REC)
			return -EUCLEAN;
		memcpy(&r, blk + LOG_HDR + pos, LOG_REC);
		if (le32toh(r.len) > used - pos - LOG_REC)
			return -EUCLEAN;
		int err = fn(rp, &r, blk + LOG_HDR + pos + LOG_REC);

		if (err)
			return err;
		pos += LOG_REC + le32toh(r.len);
	}
	return 0;
}

static int verify_rec(struct replay *rp, const struct arb_log_rec *r, const uint8_t *payload)
{
	switch (r->type) {
	case ARB_LOG_EXTENT:
		return file_log_verify(rp->fs, le64toh(r->offset), le64toh(r->num_bytes), payload,
		                       le32toh(r->len));
	case ARB_LOG_HOLE:
		return 0;
	case ARB_LOG_INODE:
		return le32toh(r->len) == sizeof(struct arb_inode_item) ? 0 : -EUCLEAN;
	}
	return -EUCLEAN;
}

static bool block_valid(const struct arb_fs *fs, const uint8_t *blk, uint64_t nonce, uint64_t seq)
{
	const struct arb_log_header *h = (const struct arb_log_header *)blk;
	uint32_t c;

	memcpy(&c, h->csum, 4);
	for (int i = 4; i < (int)ARB_CSUM_SIZE; i++)
		if (h->csum[i])
			return false;
	return le32toh(c) == block_csum(blk) && le64toh(h->magic) == ARB_LOG_MAGIC &&
	       !memcmp(h->fsid, fs->fsid, 16) && le64toh(h->nonce) == nonce &&
	       le64toh(h->generation) == fs->generation && le64toh(h->seq) == seq;
}

/* Read the chain while it verifies; rp->keep ends after the last block of
 * the last fsync whose blocks and data all verify. */
static int read_chain(struct replay *rp, uint64_t at)
{
	struct arb_fs *fs = rp->fs;

	while (rp->n < LOG_CHAIN_MAX + 1 && arb_sm_valid_range(&fs->sm, at, 1)) {
		if (rp->n == rp->cap) {
			size_t cap = rp->cap ? 2 * rp->cap : 16;
			uint8_t *b = realloc(rp->buf, cap * LOG_BLOCK);
			uint64_t *a = b ? realloc(rp->addr, cap * sizeof(*a)) : NULL;

			if (b)
				rp->buf = b;
			if (!a)
				return -ENOMEM;
			rp->addr = a;
			rp->cap = cap;
		}
		uint8_t *blk = rp->buf + rp->n * LOG_BLOCK;

		if (arb_dev_read(fs->dev, blk, LOG_BLOCK, at) ||
		    !block_valid(fs, blk, rp->nonce, rp->n))
			break;
		int err = for_records(rp, rp->n, verify_rec);

		if (err == -ENOMEM)
			return err;
		if (err)
			break; /* data that never landed: that fsync did not return */
		rp->addr[rp->n++] = at;
		const struct arb_log_header *h = (const struct arb_log_header *)blk;

		if (le32toh(h->flags) & ARB_LOG_END) {
			rp->keep = rp->n;
			rp->fsyncs++;
		}
		at = le64toh(h->next);
	}
	return 0;
}

/* Hold (+1) or release (-1) the data sectors a record names. */
static int hold_rec(struct replay *rp, const struct arb_log_rec *r, const uint8_t *payload,
                    int delta)
{
	uint64_t bytenr, nsec;
	struct arb_key k = {le64toh(r->ino), ARB_EXTENT_DATA_KEY, le64toh(r->offset)};

	if (r->type != ARB_LOG_EXTENT ||
	    !arb_item_extent(&k, payload, le32toh(r->len), &bytenr, &nsec))
		return 0;
	return delta > 0 ? arb_sm_add(&rp->fs->sm, bytenr, nsec, 1)
	                 : arb_data_ref(rp->fs, bytenr, nsec, -1);
}

static int hold_cb(struct replay *rp, const struct arb_log_rec *r, const uint8_t *payload)
{
	return hold_rec(rp, r, payload, 1);
}

static int release_cb(struct replay *rp, const struct arb_log_rec *r, const uint8_t *payload)
{
	return hold_rec(rp, r, payload, -1);
}

static int apply_cb(struct replay *rp, const struct arb_log_rec *r, const uint8_t *payload)
{
	uint64_t tree = le64toh(r->tree), local = le64toh(r->ino);
	struct vnode v;
	int err;

	if (tree < ARB_FIRST_USER_TREE || local >= (1ull << ARB_SUBVOL_SHIFT))
		return -EUCLEAN;
	err = vnode_get(rp->fs, arb_ino_make(tree, local), &v);
	if (err)
		return err == -ENOENT ? -EUCLEAN : err;
	if (!S_ISREG(v.mode))
		return -EUCLEAN; /* only regular files are logged */
	if (r->type == ARB_LOG_INODE) {
		struct arb_key k = {local, ARB_INODE_ITEM_KEY, 0};
		struct arb_inode_item item;

		memcpy(&item, payload, sizeof(item));
		if (!S_ISREG(le32toh(item.mode)))
			return -EUCLEAN;

		return arb_put(v.t, &k, payload, le32toh(r->len));
	}
	return file_log_apply(&v, le64toh(r->offset), le64toh(r->num_bytes),
	                      r->type == ARB_LOG_EXTENT ? payload : NULL, le32toh(r->len));
}

static int for_kept(struct replay *rp, rec_fn fn)
{
	int err = 0;

	for (size_t i = 0; i < rp->keep && !err; i++)
		err = for_records(rp, i, fn);
	return err;
}

/* Apply the kept fsyncs.  Their blocks (the head is counted already) and
 * data are held first so that the copy-on-write of the replay cannot
 * allocate over them; the blocks join the chain the next commit frees. */
static int apply_chain(struct replay *rp)
{
	struct arb_fs *fs = rp->fs;
	int err = 0;

	for (size_t i = 1; i < rp->keep && !err; i++)
		err = arb_sm_add(&fs->sm, rp->addr[i], 1, 1);
	for (size_t i = 1; i < rp->keep && !err; i++)
		err = chain_add(&fs->log, rp->addr[i]);
	if (!err)
		err = for_kept(rp, hold_cb);
	if (!err)
		err = for_kept(rp, apply_cb);
	if (!err)
		err = for_kept(rp, release_cb);
	return err;
}

int arb_log_replay(struct arb_fs *fs, uint64_t head, uint64_t nonce, bool replay)
{
	struct replay rp = {.fs = fs, .nonce = nonce};
	bool ro = fs->read_only;
	int err;

	if (!head)
		return 0;
	if (!arb_sm_valid_range(&fs->sm, head, 1) || arb_sm_get(&fs->sm, head) != 1)
		return arb_fail(fs, -EUCLEAN, "the fsync log head %llu is not allocated",
		                (unsigned long long)head);
	/* the head is counted in this commit's space map: the next commit
	 * frees it */
	err = chain_add(&fs->log, head);
	if (!err && replay)
		err = read_chain(&rp, head);
	if (!err && rp.keep) {
		/* a read-only open replays in memory and never commits */
		fs->read_only = false;
		err = apply_chain(&rp);
		fs->read_only = ro;
		if (!err)
			arb_msgf(fs, ARB_MSG_WARN,
			         "the last writer stopped without a final commit: "
			         "replayed %llu fsyncs from the fsync log (%zu blocks)",
			         (unsigned long long)rp.fsyncs, rp.keep);
	}
	free(rp.buf);
	free(rp.addr);
	if (err)
		return arb_fail(fs, err == -ENOMEM ? err : -EUCLEAN,
		                "replay of the fsync log failed (%d)", err);
	return !ro && rp.keep ? arb_commit(fs) : 0;
}
