/* SPDX-License-Identifier: MIT */
/*
 * fsck_fs.c - phase 3 of fsck: the namespace of every subvolume.
 *
 * One walk of a subvolume's tree in key order sees each inode's items
 * together (INODE_ITEM, INODE_REF, XATTR_ITEM, DIR_ITEM, DIR_INDEX,
 * EXTENT_DATA: the key types increase in that order), so everything that
 * concerns one inode alone is checked as its items go by: each item
 * decodes, names are valid and filed under their hash, a directory's
 * hashed entries and its index agree, a file's extents are sorted,
 * disjoint, inside the device and add up to nbytes.  What ties inodes
 * together is summed per inode (fsck_links.c checks it afterwards): the
 * entries naming an inode and its back-references each add a fingerprint
 * of (directory, index, name), with opposite signs, so that an inode whose
 * names are in order costs no more than its table entry.  Only the inodes
 * whose sums disagree are looked at closely, by a second walk.
 */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "arbor/crc32c.h"
#include "fsck_fs.h"

#define HASH_K 0x9E3779B97F4A7C15ull
#define EXT_HDR ((uint32_t)sizeof(struct arb_file_extent))
#define DE_HDR ((uint32_t)sizeof(struct arb_dir_entry))
#define IR_HDR ((uint32_t)sizeof(struct arb_inode_ref))
#define XA_HDR ((uint32_t)sizeof(struct arb_xattr))

static int queue_del_item(struct fsck_sv *c, uint64_t ino, const struct arb_key *k)
{
	struct fact *a = fsck_act(c, FA_DEL_ITEM);

	if (!a)
		return -ENOMEM;
	a->ino = ino;
	a->key = *k;
	return 0;
}

static int queue_del_rec(struct fsck_sv *c, const struct arb_key *k, enum rec_kind kind,
                         const char *name, size_t nlen, uint64_t parent)
{
	struct fact *a = fsck_act(c, FA_DEL_REC);

	if (!a)
		return -ENOMEM;
	a->ino = k->objectid;
	a->key = *k;
	a->rec = kind;
	a->parent = parent;
	fsck_set_name(a, name, nlen);
	return 0;
}

static bool dtype_valid(uint8_t t)
{
	switch (t) {
	case DT_FIFO:
	case DT_CHR:
	case DT_DIR:
	case DT_BLK:
	case DT_REG:
	case DT_LNK:
	case DT_SOCK:
		return true;
	}
	return false;
}

/* ---- the walk ------------------------------------------------------------------------ */

/* A hashed entry of the directory being walked, until its index is seen. */
struct drec {
	uint64_t index, child, hash;
	uint32_t name_off;
	uint16_t nlen;
	uint8_t type;
	uint8_t seen; /* its DIR_INDEX was found */
};

/* The inode whose items are going by. */
struct wcur {
	uint64_t ino;
	bool valid;     /* has a valid inode item */
	bool bad_item;  /* has one that does not decode (reported) */
	uint64_t stray; /* items of an inode without a valid inode item */
	uint32_t mode, nlink;
	uint64_t size, nbytes, next_index;

	/* directory */
	struct drec *recs; /* in key (hash) order */
	size_t nrecs, rcap;
	uint32_t *byidx; /* recs sorted by index */
	size_t ncap_idx, mpos;
	bool merging;
	char *arena;
	size_t alen, acap;
	uint64_t names_len, max_index;
	uint32_t subdirs;

	/* file */
	uint64_t ext_end, ext_sum, reg_end, inline_len;
	bool has_inline, has_other;
	uint8_t *buf; /* check_data */
};

struct walk {
	struct fsck_sv *c;
	struct wcur w;
};

static int dtype_of_mode(uint32_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG:
		return DT_REG;
	case S_IFDIR:
		return DT_DIR;
	case S_IFLNK:
		return DT_LNK;
	case S_IFCHR:
		return DT_CHR;
	case S_IFBLK:
		return DT_BLK;
	case S_IFIFO:
		return DT_FIFO;
	case S_IFSOCK:
		return DT_SOCK;
	}
	return 0;
}

/* An entry of the directory walked: count it for the directory and for
 * the inode it names. */
static int emit_link(struct walk *wk, uint64_t index, uint64_t child, uint8_t type,
                     const char *name, uint16_t nlen)
{
	struct fsck_sv *c = wk->c;
	struct wcur *w = &wk->w;
	char nb[FSCK_NAMEBUF];
	struct fino *f;

	if (type == ARB_DT_SUBVOL) {
		if (c->quiet)
			return 0;
		if (c->nsublinks == c->sublinks_cap) {
			size_t cap = c->sublinks_cap ? 2 * c->sublinks_cap : 8;
			struct fsublink *p = realloc(c->sublinks, cap * sizeof(*p));

			if (!p)
				return -ENOMEM;
			c->sublinks = p;
			c->sublinks_cap = cap;
		}
		struct fsublink *s = &c->sublinks[c->nsublinks++];

		*s = (struct fsublink){.dir = w->ino, .index = index, .child = child, .nlen = nlen};
		memcpy(s->name, name, nlen);
		s->name[nlen] = 0;
		w->names_len += nlen;
		w->subdirs++;
		w->max_index = index + 1 > w->max_index ? index + 1 : w->max_index;
		return 0;
	}
	if (child < ARB_FIRST_INO || child >= (1ull << ARB_SUBVOL_SHIFT)) {
		struct fact *a;

		fsck_problem(c, w->ino,
		             "entry %s (index %llu) names inode %llu, which cannot exist",
		             fsck_name(name, nlen, nb, sizeof(nb)), (unsigned long long)index,
		             (unsigned long long)child);
		a = fsck_act(c, FA_DEL_ENTRY);
		if (!a)
			return -ENOMEM;
		a->ino = w->ino;
		a->index = index;
		fsck_set_name(a, name, nlen);
		fsck_fixed(c, w->ino, "removed the entry %s", nb);
		return 0;
	}
	f = fsck_ino(c, child, !c->quiet);
	if (c->quiet) {
		if (!f || !(f->flags & FI_PROBLEM))
			return 0;
		if (c->nlinks == c->links_cap) {
			size_t cap = c->links_cap ? 2 * c->links_cap : 16;
			struct flink *p = realloc(c->links, cap * sizeof(*p));

			if (!p)
				return -ENOMEM;
			c->links = p;
			c->links_cap = cap;
		}
		struct flink *l = &c->links[c->nlinks++];

		*l = (struct flink){w->ino, index, child, type, nlen, {0}};
		memcpy(l->name, name, nlen);
		return 0;
	}
	if (!f)
		return -ENOMEM;
	/* an invalid type is reported with the names of the inode */
	f->nents++;
	f->fp += fsck_link_fp(w->ino, index, name, nlen);
	f->enttypes |= dtype_valid(type) ? (uint16_t)(1u << type) : FT_BAD;
	if (!f->parent)
		f->parent = w->ino;
	w->names_len += nlen;
	w->subdirs += type == DT_DIR;
	w->max_index = index + 1 > w->max_index ? index + 1 : w->max_index;
	return 0;
}

/* ---- records of hashed items ---- */

struct rec {
	const uint8_t *p; /* the record */
	uint32_t len;     /* header + name (+ value) */
	const char *name;
	uint16_t nlen;
};

/* The record at *off of an item of kind (REC_*): 1, 0 at the end, -1 if
 * the chain is malformed. */
static int next_rec(enum rec_kind kind, const uint8_t *data, uint32_t len, uint32_t *off,
                    struct rec *r)
{
	uint32_t hdr = kind == REC_DIRENT ? DE_HDR : kind == REC_IREF ? IR_HDR : XA_HDR;
	uint16_t nl, vl = 0;

	if (*off == len)
		return 0;
	if (len - *off < hdr)
		return -1;
	r->p = data + *off;
	if (kind == REC_DIRENT) {
		memcpy(&nl, r->p + offsetof(struct arb_dir_entry, name_len), 2);
	} else if (kind == REC_IREF) {
		memcpy(&nl, r->p + offsetof(struct arb_inode_ref, name_len), 2);
	} else {
		memcpy(&nl, r->p + offsetof(struct arb_xattr, name_len), 2);
		memcpy(&vl, r->p + offsetof(struct arb_xattr, value_len), 2);
		vl = le16toh(vl);
	}
	nl = le16toh(nl);
	if ((uint64_t)hdr + nl + vl > len - *off)
		return -1;
	r->len = hdr + nl + vl;
	r->name = (const char *)r->p + hdr;
	r->nlen = nl;
	*off += r->len;
	return 1;
}

static int malformed_item(struct walk *wk, const struct arb_key *k, const char *what)
{
	fsck_problem(wk->c, k->objectid, "%s item (hash %016llx) is malformed", what,
	             (unsigned long long)k->offset);
	fsck_fixed(wk->c, k->objectid, "removed the %s item", what);
	return queue_del_item(wk->c, k->objectid, k);
}

/* A record with a bad name or filed under the wrong hash. */
static int bad_record(struct walk *wk, const struct arb_key *k, enum rec_kind kind,
                      const struct rec *r, uint64_t parent, const char *what, const char *why)
{
	char nb[FSCK_NAMEBUF];

	fsck_problem(wk->c, k->objectid, "%s %s %s", what,
	             fsck_name(r->name, r->nlen, nb, sizeof(nb)), why);
	fsck_fixed(wk->c, k->objectid, "removed the %s %s", what, nb);
	/* a name too long to find the record by goes with its whole item */
	if (r->nlen > ARB_NAME_MAX)
		return queue_del_item(wk->c, k->objectid, k);
	return queue_del_rec(wk->c, k, kind, r->name, r->nlen, parent);
}

static int do_inode_ref(struct walk *wk, const struct arb_key *k, const uint8_t *data, uint32_t len)
{
	struct fsck_sv *c = wk->c;
	uint32_t off = 0;
	struct rec r;
	int ret, err = 0;

	while (!err && (ret = next_rec(REC_IREF, data, len, &off, &r)) == 1) {
		struct arb_inode_ref ir;
		uint64_t parent;

		memcpy(&ir, r.p, IR_HDR);
		parent = le64toh(ir.parent);
		if (!fsck_name_ok(r.name, r.nlen)) {
			err = bad_record(wk, k, REC_IREF, &r, parent, "back-reference",
			                 "has an invalid name");
		} else if (arb_name_hash(c->fs->hash_seed + parent * HASH_K, r.name, r.nlen) !=
		           k->offset) {
			err = bad_record(wk, k, REC_IREF, &r, parent, "back-reference",
			                 "is filed under the wrong hash");
		} else if (!c->quiet) {
			struct fino *f = fsck_ino(c, k->objectid, true);

			if (!f)
				return -ENOMEM;
			f->nrefs++;
			f->fp -= fsck_link_fp(parent, le64toh(ir.index), r.name, r.nlen);
		}
	}
	return err ? err : ret < 0 ? malformed_item(wk, k, "back-reference") : 0;
}

static int do_xattr(struct walk *wk, const struct arb_key *k, const uint8_t *data, uint32_t len)
{
	uint32_t off = 0;
	struct rec r;
	int ret, err = 0;

	while (!err && (ret = next_rec(REC_XATTR, data, len, &off, &r)) == 1) {
		if (!r.nlen || r.nlen > ARB_XATTR_NAME_MAX || memchr(r.name, 0, r.nlen))
			err = bad_record(wk, k, REC_XATTR, &r, 0, "extended attribute",
			                 "has an invalid name");
		else if (arb_name_hash(wk->c->fs->hash_seed, r.name, r.nlen) != k->offset)
			err = bad_record(wk, k, REC_XATTR, &r, 0, "extended attribute",
			                 "is filed under the wrong hash");
	}
	return err ? err : ret < 0 ? malformed_item(wk, k, "extended attribute") : 0;
}

/* ---- directories ---- */

static int add_drec(struct wcur *w, const struct arb_dir_entry *de, const struct rec *r,
                    uint64_t hash)
{
	if (w->nrecs == w->rcap) {
		size_t cap = w->rcap ? 2 * w->rcap : 64;
		struct drec *p = realloc(w->recs, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		w->recs = p;
		w->rcap = cap;
	}
	if (w->alen + r->nlen > w->acap) {
		size_t cap = w->acap ? 2 * w->acap : 4096;
		char *p;

		while (cap < w->alen + r->nlen)
			cap *= 2;
		p = realloc(w->arena, cap);
		if (!p)
			return -ENOMEM;
		w->arena = p;
		w->acap = cap;
	}
	memcpy(w->arena + w->alen, r->name, r->nlen);
	w->recs[w->nrecs++] = (struct drec){le64toh(de->index),
	                                    le64toh(de->ino),
	                                    hash,
	                                    (uint32_t)w->alen,
	                                    r->nlen,
	                                    de->type,
	                                    0};
	w->alen += r->nlen;
	return 0;
}

static int do_dir_item(struct walk *wk, const struct arb_key *k, const uint8_t *data, uint32_t len)
{
	uint32_t off = 0;
	struct rec r;
	int ret, err = 0;

	while (!err && (ret = next_rec(REC_DIRENT, data, len, &off, &r)) == 1) {
		struct arb_dir_entry de;

		memcpy(&de, r.p, DE_HDR);
		if (!fsck_name_ok(r.name, r.nlen))
			err = bad_record(wk, k, REC_DIRENT, &r, 0, "entry", "has an invalid name");
		else if (arb_name_hash(wk->c->fs->hash_seed, r.name, r.nlen) != k->offset)
			err = bad_record(wk, k, REC_DIRENT, &r, 0, "entry",
			                 "is filed under the wrong hash");
		else
			err = add_drec(&wk->w, &de, &r, k->offset);
	}
	return err ? err : ret < 0 ? malformed_item(wk, k, "directory entry") : 0;
}

static int by_index(const void *a, const void *b, void *ctx)
{
	const struct drec *recs = ctx;
	const struct drec *x = &recs[*(const uint32_t *)a];
	const struct drec *y = &recs[*(const uint32_t *)b];

	return x->index < y->index ? -1 : x->index > y->index;
}

/*
 * Sort byidx by index in O(n) when the indexes are dense, as a directory's
 * are (handed out one after the other, a few gaps where names went):
 * count each, then place each after those before it.  Returns false, with
 * nothing done, when they are too sparse or memory is short.
 */
static bool counting_sort_by_index(struct wcur *w)
{
	uint64_t lo = UINT64_MAX, hi = 0;

	for (size_t i = 0; i < w->nrecs; i++) {
		uint64_t x = w->recs[i].index;

		lo = x < lo ? x : lo;
		hi = x > hi ? x : hi;
	}
	if (hi - lo > 4 * (uint64_t)w->nrecs + 64)
		return false;
	size_t range = (size_t)(hi - lo) + 1;
	uint32_t *at = calloc(range + 1, sizeof(*at));

	if (!at)
		return false;
	for (size_t i = 0; i < w->nrecs; i++)
		at[w->recs[i].index - lo + 1]++;
	for (size_t v = 1; v <= range; v++)
		at[v] += at[v - 1];
	for (size_t i = 0; i < w->nrecs; i++)
		w->byidx[at[w->recs[i].index - lo]++] = (uint32_t)i;
	free(at);
	return true;
}

/* The hashed entries sorted by index, to meet the DIR_INDEX items. */
static int start_merge(struct wcur *w)
{
	if (w->merging)
		return 0;
	w->merging = true;
	w->mpos = 0;
	if (!w->nrecs)
		return 0;
	if (w->ncap_idx < w->nrecs) {
		uint32_t *p = realloc(w->byidx, w->nrecs * sizeof(*p));

		if (!p)
			return -ENOMEM;
		w->byidx = p;
		w->ncap_idx = w->nrecs;
	}
	if (counting_sort_by_index(w))
		return 0;
	for (size_t i = 0; i < w->nrecs; i++)
		w->byidx[i] = (uint32_t)i;
	qsort_r(w->byidx, w->nrecs, sizeof(*w->byidx), by_index, w->recs);
	return 0;
}

/* A hashed entry whose DIR_INDEX is missing: recreate it (or, when its
 * index is taken by the entry before it, drop it). */
static int item_without_index(struct walk *wk, struct drec *d, const struct drec *prev)
{
	struct fsck_sv *c = wk->c;
	const char *name = wk->w.arena + d->name_off;
	char nb[FSCK_NAMEBUF];
	struct fact *a;

	fsck_name(name, d->nlen, nb, sizeof(nb));
	if (prev && prev->index == d->index) {
		struct arb_key k = {wk->w.ino, ARB_DIR_ITEM_KEY, d->hash};
		struct rec r = {.name = name, .nlen = d->nlen};

		return bad_record(wk, &k, REC_DIRENT, &r, 0, "entry",
		                  "reuses the index of another");
	}
	fsck_problem(c, wk->w.ino, "entry %s (index %llu) has no DIR_INDEX item", nb,
	             (unsigned long long)d->index);
	a = fsck_act(c, FA_ADD_ENTRY);
	if (!a)
		return -ENOMEM;
	a->ino = wk->w.ino;
	a->index = d->index;
	a->child = d->child;
	a->type = d->type;
	a->fields = FE_INDEX;
	fsck_set_name(a, name, d->nlen);
	fsck_fixed(c, wk->w.ino, "recreated the DIR_INDEX item of %s", nb);
	return emit_link(wk, d->index, d->child, d->type, name, d->nlen);
}

/* Entries before index `upto` that never met their DIR_INDEX. */
static int merge_until(struct walk *wk, uint64_t upto)
{
	struct wcur *w = &wk->w;
	int err = 0;

	while (!err && w->mpos < w->nrecs && w->recs[w->byidx[w->mpos]].index < upto) {
		struct drec *d = &w->recs[w->byidx[w->mpos]];
		const struct drec *prev = w->mpos ? &w->recs[w->byidx[w->mpos - 1]] : NULL;

		if (!d->seen)
			err = item_without_index(wk, d, prev);
		w->mpos++;
	}
	return err;
}

/* A hashed entry with this name, if any. */
static struct drec *find_by_name(struct wcur *w, uint64_t hash, const char *name, uint16_t nlen)
{
	size_t lo = 0, hi = w->nrecs;

	while (lo < hi) { /* first record with this hash */
		size_t mid = (lo + hi) / 2;

		if (w->recs[mid].hash < hash)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < w->nrecs && w->recs[lo].hash == hash; lo++)
		if (w->recs[lo].nlen == nlen &&
		    !memcmp(w->arena + w->recs[lo].name_off, name, nlen))
			return &w->recs[lo];
	return NULL;
}

/* A DIR_INDEX with no hashed entry of its index. */
static int index_without_item(struct walk *wk, const struct arb_key *k,
                              const struct arb_dir_entry *de, const char *name, uint16_t nlen)
{
	struct fsck_sv *c = wk->c;
	uint64_t hash = arb_name_hash(c->fs->hash_seed, name, nlen);
	const struct drec *same = find_by_name(&wk->w, hash, name, nlen);
	char nb[FSCK_NAMEBUF];
	struct fact *a;

	fsck_name(name, nlen, nb, sizeof(nb));
	if (same) {
		fsck_problem(c, wk->w.ino, "DIR_INDEX %llu names %s, which is entry index %llu",
		             (unsigned long long)k->offset, nb, (unsigned long long)same->index);
		fsck_fixed(c, wk->w.ino, "removed DIR_INDEX %llu", (unsigned long long)k->offset);
		return queue_del_item(c, wk->w.ino, k);
	}
	fsck_problem(c, wk->w.ino, "entry %s (index %llu) has no DIR_ITEM", nb,
	             (unsigned long long)k->offset);
	a = fsck_act(c, FA_ADD_ENTRY);
	if (!a)
		return -ENOMEM;
	a->ino = wk->w.ino;
	a->index = k->offset;
	a->child = le64toh(de->ino);
	a->type = de->type;
	a->fields = FE_ITEM;
	fsck_set_name(a, name, nlen);
	fsck_fixed(c, wk->w.ino, "recreated the DIR_ITEM of %s", nb);
	return emit_link(wk, k->offset, le64toh(de->ino), de->type, name, nlen);
}

static int do_dir_index(struct walk *wk, const struct arb_key *k, const uint8_t *data, uint32_t len)
{
	struct wcur *w = &wk->w;
	struct arb_dir_entry de;
	const char *name = (const char *)data + DE_HDR;
	struct drec *d = NULL;
	uint16_t nlen;
	int err = start_merge(w);

	if (!err)
		err = merge_until(wk, k->offset);
	if (err)
		return err;
	memcpy(&de, data, len < DE_HDR ? len : DE_HDR);
	nlen = len < DE_HDR ? 0 : le16toh(de.name_len);
	if (len < DE_HDR || len != DE_HDR + nlen || !fsck_name_ok(name, nlen) ||
	    le64toh(de.index) != k->offset) {
		fsck_problem(wk->c, w->ino, "DIR_INDEX %llu is malformed",
		             (unsigned long long)k->offset);
		fsck_fixed(wk->c, w->ino, "removed DIR_INDEX %llu", (unsigned long long)k->offset);
		return queue_del_item(wk->c, w->ino, k);
	}
	if (w->mpos < w->nrecs && w->recs[w->byidx[w->mpos]].index == k->offset)
		d = &w->recs[w->byidx[w->mpos]];
	if (!d)
		return index_without_item(wk, k, &de, name, nlen);
	d->seen = 1;
	if (d->child != le64toh(de.ino) || d->type != de.type || d->nlen != nlen ||
	    memcmp(w->arena + d->name_off, name, nlen)) {
		char nb[FSCK_NAMEBUF];
		struct fact *a;

		fsck_name(w->arena + d->name_off, d->nlen, nb, sizeof(nb));
		fsck_problem(wk->c, w->ino, "DIR_INDEX %llu does not match the entry %s",
		             (unsigned long long)k->offset, nb);
		a = fsck_act(wk->c, FA_ADD_ENTRY);
		if (!a)
			return -ENOMEM;
		a->ino = w->ino;
		a->index = d->index;
		a->child = d->child;
		a->type = d->type;
		a->fields = FE_INDEX;
		fsck_set_name(a, w->arena + d->name_off, d->nlen);
		fsck_fixed(wk->c, w->ino, "rewrote DIR_INDEX %llu from the entry %s",
		           (unsigned long long)k->offset, nb);
	}
	return emit_link(wk, d->index, d->child, d->type, w->arena + d->name_off, d->nlen);
}

/* ---- files ---- */

static int bad_extent(struct walk *wk, const struct arb_key *k, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static int bad_extent(struct walk *wk, const struct arb_key *k, const char *fmt, ...)
{
	char text[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	fsck_problem(wk->c, k->objectid, "extent at offset %llu %s", (unsigned long long)k->offset,
	             text);
	fsck_fixed(wk->c, k->objectid, "removed the extent at offset %llu",
	           (unsigned long long)k->offset);
	return queue_del_item(wk->c, k->objectid, k);
}

/* Does the item decode as arbor_format.h says?  NULL, or what is wrong. */
static const char *extent_decodes(const struct arb_key *k, const struct arb_file_extent *h,
                                  uint32_t len)
{
	uint64_t n = le64toh(h->num_bytes);
	uint32_t payload = len - EXT_HDR;

	switch (h->type) {
	case ARB_EXTENT_INLINE:
		if (k->offset)
			return "holds inline data away from offset 0";
		return payload == n && n ? NULL : "has an inline length that does not match";
	case ARB_EXTENT_REG:
	case ARB_EXTENT_PREALLOC:
		if (!n || n % ARB_SECTOR_SIZE || k->offset % ARB_SECTOR_SIZE)
			return "is not sector aligned";
		if (payload != (h->type == ARB_EXTENT_REG ? n / ARB_SECTOR_SIZE * 4 : 0))
			return "has a checksum array of the wrong length";
		if (k->offset > ARB_MAX_FILE_SIZE || n > ARB_MAX_FILE_SIZE - k->offset)
			return "ends beyond the largest file size";
		return NULL;
	}
	return "has an unknown type";
}

/* With check_data: read the extent's sectors and verify each checksum. */
static int verify_data(struct walk *wk, const struct arb_key *k, const uint8_t *data, uint64_t n)
{
	struct fsck_sv *c = wk->c;
	uint64_t bytenr, nsec = n / ARB_SECTOR_SIZE, bad = 0, first_bad = 0;
	struct arb_file_extent h;

	memcpy(&h, data, EXT_HDR);
	bytenr = le64toh(h.disk_bytenr);
	if (!wk->w.buf && !(wk->w.buf = malloc(256 * ARB_SECTOR_SIZE)))
		return -ENOMEM;
	for (uint64_t s = 0; s < nsec;) {
		uint64_t m = nsec - s < 256 ? nsec - s : 256;
		int err = arb_dev_read(arb_fs_dev(c->fs), wk->w.buf, m * ARB_SECTOR_SIZE,
		                       bytenr + s * ARB_SECTOR_SIZE);

		for (uint64_t i = 0; i < m; i++) {
			uint32_t want;

			memcpy(&want, data + EXT_HDR + (s + i) * 4, 4);
			if (err || arb_crc32c(0, wk->w.buf + i * ARB_SECTOR_SIZE,
			                      ARB_SECTOR_SIZE) != le32toh(want)) {
				if (!bad++)
					first_bad = s + i;
			}
		}
		s += m;
	}
	c->r->data_checked += n;
	if (bad)
		fsck_problem(c, k->objectid,
		             "extent at offset %llu: %llu of its %llu sectors do not match their "
		             "checksums (the first at byte %llu of the device)",
		             (unsigned long long)k->offset, (unsigned long long)bad,
		             (unsigned long long)nsec,
		             (unsigned long long)(bytenr + first_bad * ARB_SECTOR_SIZE));
	return 0;
}

static int do_extent(struct walk *wk, const struct arb_key *k, const uint8_t *data, uint32_t len)
{
	struct fsck_sv *c = wk->c;
	struct wcur *w = &wk->w;
	struct arb_file_extent h;
	const char *why;
	uint64_t n;

	if (!S_ISREG(w->mode) && !S_ISLNK(w->mode))
		return bad_extent(wk, k, "belongs to an inode that holds no data");
	if (len < EXT_HDR)
		return bad_extent(wk, k, "is too short");
	memcpy(&h, data, EXT_HDR);
	why = extent_decodes(k, &h, len);
	if (why)
		return bad_extent(wk, k, "%s", why);
	n = le64toh(h.num_bytes);
	if (h.type != ARB_EXTENT_INLINE &&
	    !arb_sm_valid_range(&c->fs->sm, le64toh(h.disk_bytenr), n / ARB_SECTOR_SIZE))
		return bad_extent(wk, k, "lies outside the device's allocatable space (byte %llu)",
		                  (unsigned long long)le64toh(h.disk_bytenr));
	if (k->offset < w->ext_end)
		return bad_extent(wk, k, "overlaps the extent before it (which ends at %llu)",
		                  (unsigned long long)w->ext_end);
	if (w->has_inline) {
		/* inline data stands alone: the extents hold more */
		struct arb_key ik = {w->ino, ARB_EXTENT_DATA_KEY, 0};
		int err = bad_extent(wk, &ik, "holds inline data but the file has other extents");

		if (err)
			return err;
		w->has_inline = false;
		w->ext_sum -= w->inline_len;
	}
	if (h.type == ARB_EXTENT_INLINE) {
		w->has_inline = true;
		w->inline_len = n;
	} else {
		w->has_other = true;
	}
	if (h.type == ARB_EXTENT_REG)
		w->reg_end = k->offset + n;
	w->ext_end = k->offset + n;
	w->ext_sum += n;
	if (!c->quiet)
		c->data_bytes += n;
	if (h.type == ARB_EXTENT_REG && c->o->check_data && !c->quiet)
		return verify_data(wk, k, data, n);
	return 0;
}

/* ---- one inode ---- */

static int do_inode_item(struct walk *wk, const struct arb_key *k, const uint8_t *data,
                         uint32_t len)
{
	struct fsck_sv *c = wk->c;
	struct wcur *w = &wk->w;
	struct arb_inode_item ii;
	uint32_t mode;
	struct fino *f;

	if (!c->quiet) {
		c->inode_items++;
		c->max_ino = k->objectid > c->max_ino ? k->objectid : c->max_ino;
	}
	memcpy(&ii, data, len < sizeof(ii) ? len : sizeof(ii));
	mode = le32toh(ii.mode);
	if (len != sizeof(ii) || !dtype_of_mode(mode)) {
		if (len != sizeof(ii))
			fsck_problem(c, w->ino, "inode item of %u bytes (not %zu)", len,
			             sizeof(ii));
		else
			fsck_problem(c, w->ino, "inode item with an invalid mode 0%o", mode);
		fsck_fixed(c, w->ino, "removed the inode and its items");
		c->removed_inodes += !c->quiet;
		w->bad_item = true;
		return queue_del_item(c, w->ino, k);
	}
	w->valid = true;
	w->mode = mode;
	w->nlink = le32toh(ii.nlink);
	w->size = le64toh(ii.size);
	w->nbytes = le64toh(ii.nbytes);
	w->next_index = le64toh(ii.next_index);
	f = fsck_ino(c, w->ino, !c->quiet);
	if (!f)
		return c->quiet ? 0 : -ENOMEM;
	if (c->quiet)
		return 0;
	f->flags |= FI_ITEM;
	f->dtype = (uint8_t)dtype_of_mode(mode);
	f->nlink = w->nlink;
	c->r->inodes++;
	if (S_ISDIR(mode))
		c->r->directories++;
	else if (S_ISREG(mode))
		c->r->files++;
	else if (S_ISLNK(mode))
		c->r->symlinks++;
	else
		c->r->other++;
	return 0;
}

static int unknown_item(struct walk *wk, const struct arb_key *k)
{
	fsck_problem(wk->c, k->objectid, "item of unknown type %u (offset %llu)", k->type,
	             (unsigned long long)k->offset);
	fsck_fixed(wk->c, k->objectid, "removed the item");
	return queue_del_item(wk->c, k->objectid, k);
}

static int not_a_dir(struct walk *wk, const struct arb_key *k)
{
	fsck_problem(wk->c, k->objectid,
	             "not a directory, but holds a directory entry item (type %u, offset %llu)",
	             k->type, (unsigned long long)k->offset);
	fsck_fixed(wk->c, k->objectid, "removed the item");
	return queue_del_item(wk->c, k->objectid, k);
}

static int do_inode_member(struct walk *wk, const struct arb_key *k, const uint8_t *data,
                           uint32_t len)
{
	struct wcur *w = &wk->w;

	if (k->type == ARB_INODE_ITEM_KEY && k->offset == 0)
		return do_inode_item(wk, k, data, len);
	if (!w->valid) {
		/* removed with the inode: one line for all of them */
		w->stray++;
		return queue_del_item(wk->c, w->ino, k);
	}
	switch (k->type) {
	case ARB_INODE_REF_KEY:
		return do_inode_ref(wk, k, data, len);
	case ARB_XATTR_ITEM_KEY:
		return do_xattr(wk, k, data, len);
	case ARB_DIR_ITEM_KEY:
		return S_ISDIR(w->mode) ? do_dir_item(wk, k, data, len) : not_a_dir(wk, k);
	case ARB_DIR_INDEX_KEY:
		return S_ISDIR(w->mode) ? do_dir_index(wk, k, data, len) : not_a_dir(wk, k);
	case ARB_EXTENT_DATA_KEY:
		return do_extent(wk, k, data, len);
	}
	return unknown_item(wk, k);
}

/* The figures of a directory, for the checks between inodes. */
static int finish_dir(struct walk *wk)
{
	struct fsck_sv *c = wk->c;
	struct wcur *w = &wk->w;
	struct fdir *d;
	int err = start_merge(w);

	if (!err)
		err = merge_until(wk, UINT64_MAX);
	if (err || c->quiet)
		return err;
	d = fhash_add(&c->dirs, w->ino);
	if (!d)
		return -ENOMEM;
	d->size = w->size;
	d->nlink = w->nlink;
	d->next_index = w->next_index;
	d->names_len = w->names_len;
	d->subdirs = w->subdirs;
	d->max_index = w->max_index;
	return 0;
}

static void finish_file(struct walk *wk)
{
	struct fsck_sv *c = wk->c;
	struct wcur *w = &wk->w;
	uint64_t limit = (w->size + ARB_SECTOR_SIZE - 1) / ARB_SECTOR_SIZE * ARB_SECTOR_SIZE;
	struct fact *a;
	unsigned fields = 0;
	uint64_t size = w->size;

	/* inline data is the whole file; other data may not pass the last
	 * sector of the file (preallocated sectors may: KEEP_SIZE) */
	if (w->has_inline && w->size != w->inline_len) {
		fsck_problem(c, w->ino, "size %llu, but its inline data holds %llu bytes",
		             (unsigned long long)w->size, (unsigned long long)w->inline_len);
		size = w->inline_len;
		fields |= FS_SIZE;
	} else if (!w->has_inline && w->reg_end > limit) {
		fsck_problem(c, w->ino, "size %llu, but its data extends to %llu",
		             (unsigned long long)w->size, (unsigned long long)w->reg_end);
		size = w->reg_end;
		fields |= FS_SIZE;
	}
	if (w->nbytes != w->ext_sum) {
		fsck_problem(c, w->ino, "%llu bytes of data counted, but its extents hold %llu",
		             (unsigned long long)w->nbytes, (unsigned long long)w->ext_sum);
		fields |= FS_NBYTES;
	}
	if (!fields)
		return;
	a = fsck_act(c, FA_SET_INODE);
	if (!a) {
		c->r->errors++; /* no memory to queue the repair: it stays */
		return;
	}
	a->ino = w->ino;
	a->fields = fields;
	a->size = size;
	a->nbytes = w->ext_sum;
	if (fields & FS_SIZE)
		fsck_fixed(c, w->ino, "set the size to %llu", (unsigned long long)size);
	if (fields & FS_NBYTES)
		fsck_fixed(c, w->ino, "set the data byte count to %llu",
		           (unsigned long long)w->ext_sum);
}

static int finish_inode(struct walk *wk)
{
	struct fsck_sv *c = wk->c;
	struct wcur *w = &wk->w;
	int err = 0;

	if (!w->ino)
		return 0;
	if (w->stray && !w->bad_item) {
		fsck_problem(c, w->ino, "%llu items, but no valid inode item",
		             (unsigned long long)w->stray);
		fsck_fixed(c, w->ino, "removed the items");
	}
	if (w->valid && S_ISDIR(w->mode))
		err = finish_dir(wk);
	else if (w->valid && !c->quiet && (S_ISREG(w->mode) || S_ISLNK(w->mode)))
		finish_file(wk);
	else if (w->valid && !c->quiet && w->nbytes) {
		struct fact *a = fsck_act(c, FA_SET_INODE);

		fsck_problem(c, w->ino, "%llu bytes of data counted, but it holds no data",
		             (unsigned long long)w->nbytes);
		if (!a)
			return -ENOMEM;
		a->ino = w->ino;
		a->fields = FS_NBYTES;
		fsck_fixed(c, w->ino, "set the data byte count to 0");
	}
	return err;
}

static void start_inode(struct wcur *w, uint64_t ino)
{
	struct drec *recs = w->recs;
	uint32_t *byidx = w->byidx;
	char *arena = w->arena;
	uint8_t *buf = w->buf;
	size_t rcap = w->rcap, icap = w->ncap_idx, acap = w->acap;

	memset(w, 0, sizeof(*w));
	w->ino = ino;
	w->recs = recs;
	w->rcap = rcap;
	w->byidx = byidx;
	w->ncap_idx = icap;
	w->arena = arena;
	w->acap = acap;
	w->buf = buf;
}

/* ---- items below the first inode ---- */

static int do_special(struct walk *wk, const struct arb_key *k, const uint8_t *data, uint32_t len)
{
	struct fsck_sv *c = wk->c;

	if (k->objectid == ARB_SUBVOL_INFO_OBJ && k->type == ARB_SUBVOL_INFO_KEY && !k->offset) {
		if (len == sizeof(c->info)) {
			memcpy(&c->info, data, len);
			c->have_info = true;
			return 0;
		}
		fsck_problem(c, 0, "the subvolume information item has %u bytes (not %zu)", len,
		             sizeof(c->info));
		return 0; /* rewritten whole at the end */
	}
	if (k->objectid == ARB_ORPHAN_OBJ && k->type == ARB_ORPHAN_KEY) {
		if (len) {
			fsck_problem(c, k->offset, "orphan item holds %u bytes (not 0)", len);
			fsck_fixed(c, k->offset, "removed the orphan item");
			return queue_del_item(c, k->offset, k);
		}
		if (c->norphans == c->orphans_cap) {
			size_t cap = c->orphans_cap ? 2 * c->orphans_cap : 16;
			uint64_t *p = realloc(c->orphans, cap * sizeof(*p));

			if (!p)
				return -ENOMEM;
			c->orphans = p;
			c->orphans_cap = cap;
		}
		c->orphans[c->norphans++] = k->offset;
		return 0;
	}
	return unknown_item(wk, k);
}

static int walk_item(struct walk *wk, const struct arb_key *k, const uint8_t *data, uint32_t len)
{
	int err = 0;

	if (k->objectid != wk->w.ino) {
		err = finish_inode(wk);
		start_inode(&wk->w, k->objectid < ARB_FIRST_INO ? 0 : k->objectid);
	}
	if (err)
		return err;
	if (k->objectid < ARB_FIRST_INO)
		return wk->c->quiet ? 0 : do_special(wk, k, data, len);
	return do_inode_member(wk, k, data, len);
}

int fsck_walk(struct fsck_sv *c)
{
	struct walk wk = {.c = c};
	struct arb_key start = ARB_KEY_MIN, k;
	struct arb_iter *it;
	const void *data;
	uint32_t len;
	int ret = arb_iter_open(c->t, &start, ARB_ITER_FORWARD, &it);

	if (ret)
		return ret;
	while ((ret = arb_iter_next(it, &k, &data, &len)) == 1) {
		ret = walk_item(&wk, &k, data, len);
		if (ret)
			break;
	}
	arb_iter_close(it);
	if (!ret)
		ret = finish_inode(&wk);
	free(wk.w.recs);
	free(wk.w.byidx);
	free(wk.w.arena);
	free(wk.w.buf);
	return ret;
}
