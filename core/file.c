/* SPDX-License-Identifier: MIT */
/*
 * file.c - file data: inline data for small files, extents of up to
 * EXT_MAX_SECTORS sectors with one crc32c per sector, holes, preallocated
 * ranges, truncation, punching, SEEK_DATA/SEEK_HOLE.
 *
 * Data is copy-on-write like everything else: a write allocates fresh
 * sectors, writes them, and replaces the extent items covering the range;
 * the old sectors lose their reference (and wait out the superblock ring
 * when it was the last).  Each item references exactly the sectors it
 * covers, so overwriting the middle of an extent frees the middle.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arbor/crc32c.h"
#include "vfs_internal.h"

#define EXT_HDR ((uint32_t)sizeof(struct arb_file_extent))
#define EXT_MAX_SECTORS 256u /* 1 MiB: 1 KiB of checksums per item */

/* Host copy of an extent item; csums point into data owned elsewhere. */
struct fext {
	uint64_t off, gen, num_bytes, disk_bytenr;
	uint8_t type;
	const uint8_t *payload; /* inline bytes or checksums */
	uint32_t payload_len;
};

static uint32_t sector(const struct vnode *v)
{
	return v->t->fs->sectorsize;
}

static uint64_t round_up(uint64_t x, uint64_t a)
{
	return (x + a - 1) / a * a;
}

static uint32_t inline_max(const struct arb_fs *fs)
{
	uint32_t m = arb_max_item_size(fs) - EXT_HDR;

	return m < 2048 ? m : 2048;
}

static int parse_extent(const struct arb_key *k, const void *data, uint32_t len, struct fext *e)
{
	struct arb_file_extent h;

	if (len < EXT_HDR)
		return -EUCLEAN;
	memcpy(&h, data, EXT_HDR);
	e->off = k->offset;
	e->gen = le64toh(h.generation);
	e->num_bytes = le64toh(h.num_bytes);
	e->disk_bytenr = le64toh(h.disk_bytenr);
	e->type = h.type;
	e->payload = (const uint8_t *)data + EXT_HDR;
	e->payload_len = len - EXT_HDR;
	switch (e->type) {
	case ARB_EXTENT_INLINE:
		return e->payload_len == e->num_bytes && e->off == 0 ? 0 : -EUCLEAN;
	case ARB_EXTENT_REG:
		return e->num_bytes % ARB_SECTOR_SIZE == 0 && e->num_bytes &&
		                       e->payload_len == e->num_bytes / ARB_SECTOR_SIZE * 4
		               ? 0
		               : -EUCLEAN;
	case ARB_EXTENT_PREALLOC:
		return e->num_bytes % ARB_SECTOR_SIZE == 0 && e->num_bytes && !e->payload_len
		               ? 0
		               : -EUCLEAN;
	}
	return -EUCLEAN;
}

int arb_item_extent(const struct arb_key *key, const void *data, uint32_t len, uint64_t *ret_bytenr,
                    uint64_t *ret_nsectors)
{
	struct fext e;

	if (key->type != ARB_EXTENT_DATA_KEY || parse_extent(key, data, len, &e) ||
	    e.type == ARB_EXTENT_INLINE)
		return 0;
	*ret_bytenr = e.disk_bytenr;
	*ret_nsectors = e.num_bytes / ARB_SECTOR_SIZE;
	return 1;
}

/* ---- walking the extents of a range ---------------------------------------- */

typedef int (*extent_fn)(void *ctx, const struct fext *e);

/* Call fn for every extent item of v overlapping [start, end), in order. */
static int for_extents(struct vnode *v, uint64_t start, uint64_t end, extent_fn fn, void *ctx)
{
	struct arb_key k = {v->local, ARB_EXTENT_DATA_KEY, start}, got;
	struct arb_iter *it;
	const void *data;
	uint32_t len;
	int ret;

	/* the item starting at or before start may reach into the range */
	ret = arb_iter_open(v->t, &k, ARB_ITER_BACKWARD, &it);
	if (ret)
		return ret;
	ret = arb_iter_next(it, &got, NULL, NULL);
	arb_iter_close(it);
	if (ret < 0)
		return ret;
	if (ret == 1 && got.objectid == v->local && got.type == ARB_EXTENT_DATA_KEY)
		k.offset = got.offset;
	ret = arb_iter_open(v->t, &k, ARB_ITER_FORWARD, &it);
	if (ret)
		return ret;
	while ((ret = arb_iter_next(it, &got, &data, &len)) == 1) {
		struct fext e;

		if (got.objectid != v->local || got.type != ARB_EXTENT_DATA_KEY ||
		    got.offset >= end)
			break;
		ret = parse_extent(&got, data, len, &e);
		if (ret)
			break;
		if (e.off + e.num_bytes <= start)
			continue;
		ret = fn(ctx, &e);
		if (ret)
			break;
	}
	arb_iter_close(it);
	return ret < 0 ? ret : 0;
}

/* Copies of the extent items of a range, for edits that change the tree. */
struct ext_list {
	struct fext *v;
	size_t n, cap;
};

static int collect_cb(void *ctx, const struct fext *e)
{
	struct ext_list *l = ctx;
	uint8_t *copy;

	if (l->n == l->cap) {
		struct fext *p = realloc(l->v, (l->cap = l->cap ? 2 * l->cap : 16) * sizeof(*p));

		if (!p)
			return -ENOMEM;
		l->v = p;
	}
	copy = malloc(e->payload_len ? e->payload_len : 1);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, e->payload, e->payload_len);
	l->v[l->n] = *e;
	l->v[l->n++].payload = copy;
	return 0;
}

static void ext_list_free(struct ext_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free((void *)l->v[i].payload);
	free(l->v);
}

/* ---- reading ------------------------------------------------------------------ */

struct read_ctx {
	struct vnode *v;
	uint64_t off, end;
	uint8_t *buf; /* receives [off, end) */
	uint8_t *bounce;
};

static int verify_sectors(struct arb_fs *fs, const struct fext *e, uint64_t first,
                          const uint8_t *data, uint64_t nsec)
{
	for (uint64_t s = 0; s < nsec; s++) {
		uint32_t want;

		memcpy(&want, e->payload + (first + s) * 4, 4);
		if (arb_crc32c(0, data + s * ARB_SECTOR_SIZE, ARB_SECTOR_SIZE) != le32toh(want)) {
			arb_msgf(fs, ARB_MSG_ERR,
			         "data checksum mismatch at %llu (sector %llu of extent %llu)",
			         (unsigned long long)(e->disk_bytenr +
			                              (first + s) * ARB_SECTOR_SIZE),
			         (unsigned long long)(first + s),
			         (unsigned long long)e->disk_bytenr);
			return -EIO;
		}
	}
	return 0;
}

static int read_reg(struct read_ctx *r, const struct fext *e, uint64_t lo, uint64_t hi)
{
	struct arb_fs *fs = r->v->t->fs;
	uint64_t first = (lo - e->off) / ARB_SECTOR_SIZE;
	uint64_t last = (hi - e->off + ARB_SECTOR_SIZE - 1) / ARB_SECTOR_SIZE;
	uint64_t nsec = last - first;
	int err = arb_dev_read(fs->dev, r->bounce, nsec * ARB_SECTOR_SIZE,
	                       e->disk_bytenr + first * ARB_SECTOR_SIZE);

	if (err) {
		arb_msgf(fs, ARB_MSG_ERR, "data read at %llu failed (%d)",
		         (unsigned long long)e->disk_bytenr, err);
		return -EIO;
	}
	err = verify_sectors(fs, e, first, r->bounce, nsec);
	if (!err)
		memcpy(r->buf + (lo - r->off), r->bounce + (lo - e->off - first * ARB_SECTOR_SIZE),
		       hi - lo);
	return err;
}

static int read_cb(void *ctx, const struct fext *e)
{
	struct read_ctx *r = ctx;
	uint64_t lo = e->off > r->off ? e->off : r->off;
	uint64_t hi = e->off + e->num_bytes < r->end ? e->off + e->num_bytes : r->end;

	if (lo >= hi)
		return 0;
	if (e->type == ARB_EXTENT_INLINE)
		memcpy(r->buf + (lo - r->off), e->payload + lo, hi - lo);
	else if (e->type == ARB_EXTENT_REG)
		return read_reg(r, e, lo, hi);
	return 0; /* preallocated: zeros */
}

int file_read(struct vnode *v, uint64_t off, void *buf, size_t len, size_t *ret_read)
{
	struct read_ctx r = {.v = v, .off = off, .buf = buf};
	int err;

	*ret_read = 0;
	if (off >= v->size || !len)
		return 0;
	if (len > v->size - off)
		len = (size_t)(v->size - off);
	r.end = off + len;
	memset(buf, 0, len); /* holes */
	r.bounce = malloc((EXT_MAX_SECTORS + 1) * ARB_SECTOR_SIZE);
	if (!r.bounce)
		return -ENOMEM;
	err = for_extents(v, off, r.end, read_cb, &r);
	free(r.bounce);
	if (!err)
		*ret_read = len;
	return err;
}

/* ---- dropping ranges ------------------------------------------------------------- */

static int put_extent(struct vnode *v, const struct fext *e)
{
	struct arb_key k = {v->local, ARB_EXTENT_DATA_KEY, e->off};
	struct arb_file_extent h = {
	        htole64(e->gen), htole64(e->num_bytes), htole64(e->disk_bytenr), e->type, {0}};
	uint8_t *item = malloc(EXT_HDR + e->payload_len);
	int err;

	if (!item)
		return -ENOMEM;
	memcpy(item, &h, EXT_HDR);
	if (e->payload_len)
		memcpy(item + EXT_HDR, e->payload, e->payload_len);
	err = arb_put(v->t, &k, item, EXT_HDR + e->payload_len);
	free(item);
	return err;
}

/* The part [lo, hi) of a REG/PREALLOC extent, as a new item of v at file
 * offset at. */
static int put_piece_at(struct vnode *v, const struct fext *e, uint64_t lo, uint64_t hi,
                        uint64_t at)
{
	struct fext p = *e;
	uint64_t skip = (lo - e->off) / ARB_SECTOR_SIZE;

	p.off = at;
	p.num_bytes = hi - lo;
	p.disk_bytenr = e->disk_bytenr + skip * ARB_SECTOR_SIZE;
	if (e->type == ARB_EXTENT_REG) {
		p.payload = e->payload + skip * 4;
		p.payload_len = (uint32_t)(p.num_bytes / ARB_SECTOR_SIZE * 4);
	}
	return put_extent(v, &p);
}

static int put_piece(struct vnode *v, const struct fext *e, uint64_t lo, uint64_t hi)
{
	return put_piece_at(v, e, lo, hi, lo);
}

/* Remove [lo, hi) from one extent: keep what lies outside, unreference
 * what lies inside. */
static int cut_extent(struct vnode *v, const struct fext *e, uint64_t start, uint64_t end)
{
	struct arb_fs *fs = v->t->fs;
	uint64_t eend = e->off + e->num_bytes;
	uint64_t lo = e->off > start ? e->off : start, hi = eend < end ? eend : end;
	struct arb_key k = {v->local, ARB_EXTENT_DATA_KEY, e->off};
	int err;

	if (lo >= hi)
		return 0;
	if (e->type == ARB_EXTENT_INLINE) {
		/* inline data is a prefix of the file: keep [0, lo) */
		v->nbytes -= e->num_bytes - lo;
		if (lo == 0)
			return arb_delete(v->t, &k);
		struct fext p = *e;

		p.num_bytes = lo;
		p.payload_len = (uint32_t)lo;
		return put_extent(v, &p);
	}
	err = arb_data_ref(fs, e->disk_bytenr + (lo - e->off), (hi - lo) / ARB_SECTOR_SIZE, -1);
	if (!err)
		err = arb_delete(v->t, &k);
	if (!err && e->off < lo)
		err = put_piece(v, e, e->off, lo);
	if (!err && hi < eend)
		err = put_piece(v, e, hi, eend);
	v->nbytes -= hi - lo;
	return err;
}

/* Remove every extent byte in [start, end); start and end are sector
 * multiples (end may be UINT64_MAX), except around inline data. */
static int drop_range(struct vnode *v, uint64_t start, uint64_t end)
{
	struct ext_list l = {0};
	int err = for_extents(v, start, end, collect_cb, &l);

	for (size_t i = 0; i < l.n && !err; i++)
		err = cut_extent(v, &l.v[i], start, end);
	ext_list_free(&l);
	return err;
}

int file_drop_all(struct vnode *v)
{
	return drop_range(v, 0, UINT64_MAX);
}

/* ---- writing ------------------------------------------------------------------------- */

static int has_inline(struct vnode *v, struct fext *ret, uint8_t *copy);

/* An inline file is small: its content is copied, not shared. */
static bool has_inline_now(const struct vnode *v)
{
	struct fext e;

	return v->size && has_inline((struct vnode *)v, &e, NULL) != 0;
}

static int has_inline(struct vnode *v, struct fext *ret, uint8_t *copy)
{
	struct arb_key k = {v->local, ARB_EXTENT_DATA_KEY, 0};
	uint8_t *buf;
	uint32_t len;
	int err = hitem_read(v->t, &k, &buf, &len);

	if (err)
		return err == -ENOENT ? 0 : err;
	err = parse_extent(&k, buf, len, ret);
	if (!err && ret->type == ARB_EXTENT_INLINE && copy)
		memcpy(copy, ret->payload, ret->payload_len);
	bool inl = !err && ret->type == ARB_EXTENT_INLINE;

	free(buf);
	return err ? err : inl;
}

static int put_inline(struct vnode *v, const uint8_t *data, uint64_t len)
{
	struct fext e = {.off = 0,
	                 .gen = arb_generation_running(v->t->fs),
	                 .num_bytes = len,
	                 .type = ARB_EXTENT_INLINE,
	                 .payload = data,
	                 .payload_len = (uint32_t)len};
	int err = drop_range(v, 0, UINT64_MAX);

	if (!err && len)
		err = put_extent(v, &e);
	v->nbytes = len;
	return err;
}

/* Allocate, write and reference fresh sectors for data (nsec sectors,
 * already padded) at file offset off, in extents of at most
 * EXT_MAX_SECTORS, smaller where free space is fragmented. */
static int write_sectors(struct vnode *v, uint64_t off, const uint8_t *data, uint64_t nsec)
{
	struct arb_fs *fs = v->t->fs;
	uint8_t csums[EXT_MAX_SECTORS * 4];

	while (nsec) {
		uint64_t n = nsec < EXT_MAX_SECTORS ? nsec : EXT_MAX_SECTORS, bytenr;
		int err;

		while ((err = arb_extent_alloc(fs, n, &bytenr)) == -ENOSPC && n > 1)
			n /= 2;
		if (err)
			return err;
		err = arb_dev_write(fs->dev, data, n * ARB_SECTOR_SIZE, bytenr);
		if (err)
			return err;
		for (uint64_t s = 0; s < n; s++) {
			uint32_t c =
			        htole32(arb_crc32c(0, data + s * ARB_SECTOR_SIZE, ARB_SECTOR_SIZE));

			memcpy(csums + s * 4, &c, 4);
		}
		struct fext e = {off,
		                 arb_generation_running(fs),
		                 n * ARB_SECTOR_SIZE,
		                 bytenr,
		                 ARB_EXTENT_REG,
		                 csums,
		                 (uint32_t)(n * 4)};

		err = put_extent(v, &e);
		if (err)
			return err;
		v->nbytes += n * ARB_SECTOR_SIZE;
		off += n * ARB_SECTOR_SIZE;
		data += n * ARB_SECTOR_SIZE;
		nsec -= n;
	}
	return 0;
}

/* Write [off, off+len) through whole sectors: the partial sectors at the
 * edges are completed with the current content (zeros past the end). */
static int write_piece(struct vnode *v, uint64_t off, const uint8_t *buf, size_t len, uint8_t *tmp,
                       bool *changed)
{
	uint32_t ss = sector(v);
	uint64_t s0 = off / ss * ss, s1 = round_up(off + len, ss);
	size_t got;
	int err = 0;

	memset(tmp, 0, s1 - s0);
	if (off > s0)
		err = file_read(v, s0, tmp, ss, &got);
	/* the last sector, unless it is the first one and was just read */
	if (!err && (off + len) % ss && !(s1 - ss == s0 && off > s0))
		err = file_read(v, s1 - ss, tmp + (s1 - ss - s0), ss, &got);
	if (err)
		return err; /* nothing changed yet: the old data stays */
	memcpy(tmp + (off - s0), buf, len);
	*changed = true;
	err = drop_range(v, s0, s1);
	return err ? err : write_sectors(v, s0, tmp, (s1 - s0) / ss);
}

/* An inline file that no longer fits inline becomes an extent. */
static int uninline(struct vnode *v)
{
	uint8_t *copy = malloc(arb_max_item_size(v->t->fs));
	uint8_t *tmp = malloc(round_up(inline_max(v->t->fs), ARB_SECTOR_SIZE));
	struct fext e;
	int ret = copy && tmp ? has_inline(v, &e, copy) : -ENOMEM;

	if (ret == 1) {
		uint64_t len = e.num_bytes;

		ret = drop_range(v, 0, UINT64_MAX);
		if (!ret && len) {
			memset(tmp, 0, round_up(len, ARB_SECTOR_SIZE));
			memcpy(tmp, copy, len);
			ret = write_sectors(v, 0, tmp,
			                    round_up(len, ARB_SECTOR_SIZE) / ARB_SECTOR_SIZE);
		}
	}
	free(copy);
	free(tmp);
	return ret < 0 ? ret : 0;
}

static int write_inline(struct vnode *v, uint64_t off, const void *buf, size_t len,
                        uint64_t newsize)
{
	uint8_t *data = calloc(1, newsize ? newsize : 1);
	size_t got;
	int err = data ? file_read(v, 0, data, v->size, &got) : -ENOMEM;

	if (!err) {
		memcpy(data + off, buf, len);
		err = put_inline(v, data, newsize);
	}
	free(data);
	return err;
}

#define WRITE_CHUNK (1u << 20)

int file_write(struct vnode *v, uint64_t off, const void *buf, size_t len)
{
	bool changed;

	return file_write_ex(v, off, buf, len, &changed, NULL);
}

int file_write_ex(struct vnode *v, uint64_t off, const void *buf, size_t len, bool *changed,
                  bool *was_inline)
{
	uint64_t end = off + len, newsize = end > v->size ? end : v->size;
	struct fext e;
	int err = 0;

	if (end < off || end > ARB_MAX_FILE_SIZE)
		return -EFBIG;
	if (!len)
		return 0;
	int inl = v->size ? has_inline(v, &e, NULL) : 1;

	*changed = false;
	if (inl < 0)
		return inl;
	*changed = inl;
	if (was_inline)
		*was_inline = inl;
	if (inl && newsize <= inline_max(v->t->fs))
		err = write_inline(v, off, buf, len, newsize);
	else if (inl)
		err = uninline(v);
	if (err || (inl && newsize <= inline_max(v->t->fs))) {
		if (!err)
			v->size = newsize;
		return err;
	}
	uint8_t *tmp = malloc(WRITE_CHUNK + 2 * ARB_SECTOR_SIZE);

	if (!tmp)
		return -ENOMEM;
	for (size_t done = 0; done < len && !err;) {
		/* pieces end on chunk boundaries so that big writes stay aligned */
		size_t n = WRITE_CHUNK - (size_t)((off + done) % WRITE_CHUNK);

		n = n < len - done ? n : len - done;
		err = write_piece(v, off + done, (const uint8_t *)buf + done, n, tmp, changed);
		done += n;
	}
	free(tmp);
	if (!err)
		v->size = newsize;
	return err;
}

/* Rewrite the sectors of [s0, s1) with their current content (used to zero
 * what lies past a new end of file). */
static int rewrite_sector(struct vnode *v, uint64_t s0)
{
	uint8_t *tmp = malloc(ARB_SECTOR_SIZE);
	size_t got;
	int err = tmp ? 0 : -ENOMEM;

	if (!err) {
		memset(tmp, 0, ARB_SECTOR_SIZE);
		err = file_read(v, s0, tmp, ARB_SECTOR_SIZE, &got);
	}
	if (!err)
		err = drop_range(v, s0, s0 + ARB_SECTOR_SIZE);
	if (!err)
		err = write_sectors(v, s0, tmp, 1);
	free(tmp);
	return err;
}

static int range_has_data_cb(void *ctx, const struct fext *e)
{
	*(bool *)ctx = *(bool *)ctx || e->type == ARB_EXTENT_REG;
	return 0;
}

static int has_data(struct vnode *v, uint64_t start, uint64_t end, bool *ret)
{
	*ret = false;
	return for_extents(v, start, end, range_has_data_cb, ret);
}

int file_truncate(struct vnode *v, uint64_t size)
{
	struct fext e;
	int inl = has_inline(v, &e, NULL);
	bool data;
	int err = 0;

	if (inl < 0)
		return inl;
	if (inl && size <= inline_max(v->t->fs)) {
		uint8_t *buf = calloc(1, size ? size : 1);
		size_t got;

		err = buf ? file_read(v, 0, buf, size, &got) : -ENOMEM;
		if (!err)
			err = put_inline(v, buf, size);
		free(buf);
	} else {
		if (inl)
			err = uninline(v);
		if (!err && size < v->size) {
			uint64_t cut = round_up(size, ARB_SECTOR_SIZE);

			err = drop_range(v, cut, UINT64_MAX);
			v->size = size;
			/* zero the tail of the last sector, so that growing
			 * the file again reads zeros there */
			if (!err && size % ARB_SECTOR_SIZE &&
			    !(err = has_data(v, cut - ARB_SECTOR_SIZE, cut, &data)) && data)
				err = rewrite_sector(v, cut - ARB_SECTOR_SIZE);
		}
	}
	if (!err)
		v->size = size;
	return err;
}

/* ---- public data calls ----------------------------------------------------------- */

/* Past the up-front checks a failure may leave a half-rewritten range in
 * memory: refuse further changes so that it is never committed. */
static int data_fail(struct arb_fs *fs, int err)
{
	return err ? arb_fail(fs, err, "file data update failed part-way") : 0;
}

static int regular_file(struct arb_fs *fs, arb_ino_t ino, struct vnode *v)
{
	int err = vnode_get(fs, ino, v);

	if (err)
		return err;
	if (vnode_is_dir(v))
		return -EISDIR;
	return S_ISREG(v->mode) ? 0 : -EINVAL;
}

int arb_vfs_read(struct arb_fs *fs, arb_ino_t ino, uint64_t off, void *buf, size_t len,
                 size_t *ret_read)
{
	struct vnode v;
	int err = regular_file(fs, ino, &v);

	*ret_read = 0;
	if (!err)
		err = file_read(&v, off, buf, len, ret_read);
	if (!err)
		vnode_accessed(&v);
	return err;
}

/* Free space for a data change of len bytes plus its metadata. */
static int reserve_data(struct arb_fs *fs, uint64_t len, bool freeing)
{
	uint64_t sectors = round_up(len, ARB_SECTOR_SIZE) / ARB_SECTOR_SIZE + 2;
	/* the extent items, in leaves at worst half full, each leaf shadowed
	 * and split once, plus the paths above them and the inode */
	uint64_t items = sectors / EXT_MAX_SECTORS + 2;
	uint64_t bytes = items * (EXT_HDR + EXT_MAX_SECTORS * 4 + sizeof(struct arb_item));
	uint64_t leaves = bytes / (fs->nodesize / 2 - sizeof(struct arb_node_header)) + 1;
	uint64_t nodes = leaves * 2 + 16;
	/* the data in whole node-sized groups, and two more broken at its
	 * ends; next-fit puts one write's extents side by side, and where
	 * free space is scattered, what else they break comes out of the
	 * reserve, which is many times one write's share */
	uint64_t groups = nodes + sectors / fs->node_sectors + 2;

	return vfs_reserve_ex(fs, sectors + nodes * fs->node_sectors, groups, freeing);
}

int arb_vfs_write(struct arb_fs *fs, arb_ino_t ino, uint64_t off, const void *buf, size_t len,
                  size_t *ret_written)
{
	struct vnode v;
	int err = arb_check_mutable(fs);

	*ret_written = 0;
	if (!err)
		err = regular_file(fs, ino, &v);
	if (!err)
		err = vfs_tree_writable(v.t);
	if (!err && (off + len < off || off + len > ARB_MAX_FILE_SIZE))
		err = -EFBIG;
	if (!err)
		err = reserve_data(fs, len, false);
	if (err || !len)
		return err;
	bool changed, was_inline = false;

	/* a write over extents is something the fsync log can replay */
	fs->log.writing = ino;
	err = file_write_ex(&v, off, buf, len, &changed, &was_inline);
	if (err && !changed) {
		fs->log.writing = 0;
		return err; /* e.g. -EIO reading a damaged sector to complete */
	}
	vnode_touch(&v, true);
	if (!err)
		err = vnode_put(&v);
	fs->log.writing = 0;
	if (!err && !was_inline)
		arb_log_inode_wrote(fs, ino, off / ARB_SECTOR_SIZE * ARB_SECTOR_SIZE,
		                    round_up(off + len, ARB_SECTOR_SIZE));
	else
		arb_log_inode_changed(fs, ino);
	if (!err)
		*ret_written = len;
	return data_fail(fs, err);
}

/* ---- fallocate ----------------------------------------------------------------- */

static int prealloc_hole(struct vnode *v, uint64_t lo, uint64_t hi)
{
	struct arb_fs *fs = v->t->fs;

	while (lo < hi) {
		uint64_t n = (hi - lo) / ARB_SECTOR_SIZE, bytenr;
		int err;

		n = n < EXT_MAX_SECTORS ? n : EXT_MAX_SECTORS;
		while ((err = arb_extent_alloc(fs, n, &bytenr)) == -ENOSPC && n > 1)
			n /= 2;
		if (err)
			return err;
		struct fext e = {lo,     arb_generation_running(fs), n * ARB_SECTOR_SIZE,
		                 bytenr, ARB_EXTENT_PREALLOC,        NULL,
		                 0};

		err = put_extent(v, &e);
		if (err)
			return err;
		v->nbytes += n * ARB_SECTOR_SIZE;
		lo += n * ARB_SECTOR_SIZE;
	}
	return 0;
}

/* Collect the holes first (the preallocation edits the tree we walk). */
struct hole_list {
	uint64_t pos;
	uint64_t (*v)[2];
	size_t n, cap;
};

static int holes_cb(void *ctx, const struct fext *e)
{
	struct hole_list *h = ctx;

	if (e->off > h->pos) {
		if (h->n == h->cap) {
			void *p =
			        realloc(h->v, (h->cap = h->cap ? 2 * h->cap : 16) * sizeof(*h->v));

			if (!p)
				return -ENOMEM;
			h->v = p;
		}
		h->v[h->n][0] = h->pos;
		h->v[h->n++][1] = e->off;
	}
	if (e->off + e->num_bytes > h->pos)
		h->pos = e->off + e->num_bytes;
	return 0;
}

static int prealloc_range(struct vnode *v, uint64_t s0, uint64_t s1)
{
	struct hole_list h = {.pos = s0};
	int err = for_extents(v, s0, s1, holes_cb, &h);

	if (!err && h.pos < s1) {
		struct fext fake = {.off = s1};

		err = holes_cb(&h, &fake);
	}
	for (size_t i = 0; i < h.n && !err; i++)
		err = prealloc_hole(v, h.v[i][0] > s0 ? h.v[i][0] : s0,
		                    h.v[i][1] < s1 ? h.v[i][1] : s1);
	free(h.v);
	return err;
}

/* Zero [off, end) inside the file: whole sectors become holes, partial
 * edge sectors are rewritten with zeros. */
static int zero_range(struct vnode *v, uint64_t off, uint64_t end)
{
	uint64_t s0, s1;
	uint8_t *zeros;
	int err = 0;

	if (end > v->size) /* nothing to zero past the end of the file */
		end = v->size;
	if (off >= end)
		return 0;
	s0 = round_up(off, ARB_SECTOR_SIZE);
	s1 = end / ARB_SECTOR_SIZE * ARB_SECTOR_SIZE;
	/* no piece written below is longer than two sectors */
	zeros = calloc(2, ARB_SECTOR_SIZE);
	if (!zeros)
		return -ENOMEM;
	if (s0 < s1) {
		err = drop_range(v, s0, s1);
		if (!err && off < s0)
			err = file_write(v, off, zeros, s0 - off);
		if (!err && s1 < end)
			err = file_write(v, s1, zeros, end - s1);
	} else {
		err = file_write(v, off, zeros, end - off);
	}
	free(zeros);
	return err;
}

int arb_vfs_fallocate(struct arb_fs *fs, arb_ino_t ino, int mode, uint64_t off, uint64_t len)
{
	struct vnode v;
	uint64_t end = off + len, oldsize;
	int err = arb_check_mutable(fs);

	if (err)
		return err;
	if (mode & ~(ARB_FALLOC_KEEP_SIZE | ARB_FALLOC_PUNCH_HOLE | ARB_FALLOC_ZERO_RANGE) ||
	    ((mode & ARB_FALLOC_PUNCH_HOLE) && !(mode & ARB_FALLOC_KEEP_SIZE)) ||
	    ((mode & ARB_FALLOC_PUNCH_HOLE) && (mode & ARB_FALLOC_ZERO_RANGE)))
		return -EOPNOTSUPP;
	if (!len)
		return -EINVAL;
	if (end < off || end > ARB_MAX_FILE_SIZE)
		return -EFBIG;
	err = regular_file(fs, ino, &v);
	if (!err)
		err = vfs_tree_writable(v.t);
	/* punching frees: it may use the deeper tier of the reserve */
	if (!err)
		err = reserve_data(fs, mode & ARB_FALLOC_PUNCH_HOLE ? 0 : len,
		                   mode & ARB_FALLOC_PUNCH_HOLE);
	if (err)
		return err;
	oldsize = v.size;
	if (mode & (ARB_FALLOC_PUNCH_HOLE | ARB_FALLOC_ZERO_RANGE))
		err = zero_range(&v, off, end);
	if (!err && !(mode & ARB_FALLOC_PUNCH_HOLE)) {
		err = uninline(&v);
		if (!err)
			err = prealloc_range(&v, off / ARB_SECTOR_SIZE * ARB_SECTOR_SIZE,
			                     round_up(end, ARB_SECTOR_SIZE));
		if (!err && !(mode & ARB_FALLOC_KEEP_SIZE) && end > v.size)
			v.size = end;
	}
	if (!err) {
		vnode_touch(&v, v.size != oldsize || (mode & ~ARB_FALLOC_KEEP_SIZE));
		err = vnode_put(&v);
	}
	return data_fail(fs, err);
}

/* ---- SEEK_DATA / SEEK_HOLE --------------------------------------------------------- */

struct seek_ctx {
	uint64_t pos;
	bool want_data, found;
};

static int seek_cb(void *ctx, const struct fext *e)
{
	struct seek_ctx *s = ctx;
	bool is_data = e->type != ARB_EXTENT_PREALLOC;

	if (s->want_data) {
		if (is_data) {
			s->pos = e->off > s->pos ? e->off : s->pos;
			s->found = true;
			return 1;
		}
		return 0;
	}
	if (!is_data || e->off > s->pos)
		return s->found = true, 1; /* a gap or a preallocated range: a hole */
	s->pos = e->off + e->num_bytes;
	return 0;
}

int arb_vfs_lseek(struct arb_fs *fs, arb_ino_t ino, uint64_t off, int whence, uint64_t *ret_off)
{
	struct vnode v;
	struct seek_ctx s = {.pos = off, .want_data = whence == SEEK_DATA};
	int err;

	if (whence != SEEK_DATA && whence != SEEK_HOLE)
		return -EINVAL;
	err = regular_file(fs, ino, &v);
	if (err)
		return err;
	if (off >= v.size)
		return -ENXIO;
	err = for_extents(&v, off, v.size, seek_cb, &s);
	if (err)
		return err;
	if (s.want_data && !s.found)
		return -ENXIO;
	*ret_off = s.pos < v.size ? s.pos : v.size;
	return 0;
}

/* ---- copy_file_range: shared extents ---------------------------------------- */

/* Copy [soff, soff+len) of src to doff of dst through buffers. */
static int copy_bytes(struct vnode *src, uint64_t soff, struct vnode *dst, uint64_t doff,
                      uint64_t len)
{
	uint8_t *buf = malloc(WRITE_CHUNK);
	int err = buf ? 0 : -ENOMEM;

	while (!err && len) {
		size_t n = len < WRITE_CHUNK ? (size_t)len : WRITE_CHUNK, got;

		err = file_read(src, soff, buf, n, &got);
		if (!err)
			err = file_write(dst, doff, buf, got);
		soff += n;
		doff += n;
		len -= n;
	}
	free(buf);
	return err;
}

/* Make dst's [doff, doff + (b - a)) reference the sectors src has at
 * [a, b) (sector aligned): a copy-on-write copy that writes no data. */
static int share_sectors(struct vnode *src, uint64_t a, uint64_t b, struct vnode *dst,
                         uint64_t doff)
{
	struct ext_list l = {0};
	int err = for_extents(src, a, b, collect_cb, &l);

	if (!err)
		err = uninline(dst);
	if (!err)
		err = drop_range(dst, doff, doff + (b - a));
	for (size_t i = 0; i < l.n && !err; i++) {
		const struct fext *e = &l.v[i];
		uint64_t lo = e->off > a ? e->off : a;
		uint64_t hi = e->off + e->num_bytes < b ? e->off + e->num_bytes : b;

		if (e->type == ARB_EXTENT_INLINE || lo >= hi)
			continue;
		err = arb_data_ref(dst->t->fs, e->disk_bytenr + (lo - e->off),
		                   (hi - lo) / ARB_SECTOR_SIZE, +1);
		if (!err)
			err = put_piece_at(dst, e, lo, hi, doff + (lo - a));
		dst->nbytes += hi - lo;
	}
	ext_list_free(&l);
	return err;
}

/* The sector-aligned middle of a copy that can be shared: src and dst
 * offsets agree modulo the sector, and the last partial sector is shared
 * only when it ends both the source and the new destination content. */
static void share_window(const struct vnode *src, uint64_t soff, uint64_t len,
                         const struct vnode *dst, uint64_t doff, uint64_t *a, uint64_t *b)
{
	uint64_t end = soff + len;

	*a = round_up(soff, ARB_SECTOR_SIZE);
	*b = end / ARB_SECTOR_SIZE * ARB_SECTOR_SIZE;
	if (end % ARB_SECTOR_SIZE && end == src->size && doff + len >= dst->size)
		*b = round_up(end, ARB_SECTOR_SIZE);
	if (soff % ARB_SECTOR_SIZE != doff % ARB_SECTOR_SIZE || *a >= *b || has_inline_now(src))
		*a = *b = soff;
}

int arb_vfs_copy_range(struct arb_fs *fs, arb_ino_t src_ino, uint64_t soff, arb_ino_t dst_ino,
                       uint64_t doff, uint64_t len, uint64_t *ret_copied)
{
	struct vnode src, dst;
	uint64_t a, b, end, tail;
	int err = arb_check_mutable(fs);

	*ret_copied = 0;
	if (!err)
		err = regular_file(fs, src_ino, &src);
	if (!err)
		err = regular_file(fs, dst_ino, &dst);
	if (!err)
		err = vfs_tree_writable(dst.t);
	if (err)
		return err;
	if (soff >= src.size || !len)
		return 0;
	len = len < src.size - soff ? len : src.size - soff;
	if (doff + len < doff || doff + len > ARB_MAX_FILE_SIZE)
		return -EFBIG;
	if (src_ino == dst_ino && soff < doff + len && doff < soff + len)
		return -EINVAL; /* overlapping ranges of one file */
	share_window(&src, soff, len, &dst, doff, &a, &b);
	/* data for the copied edges, metadata for the shared middle */
	err = reserve_data(fs, len - (b - a) + 2 * ARB_SECTOR_SIZE, false);
	if (err)
		return err;
	end = soff + len;
	tail = b > a ? b : soff; /* what is not shared is copied */
	if (b > a && a > soff)
		err = copy_bytes(&src, soff, &dst, doff, a - soff);
	if (!err && b > a)
		err = share_sectors(&src, a, b, &dst, doff + (a - soff));
	if (!err && tail < end)
		err = copy_bytes(&src, tail, &dst, doff + (tail - soff), end - tail);
	if (!err && doff + len > dst.size)
		dst.size = doff + len;
	vnode_touch(&dst, true);
	if (!err)
		err = vnode_put(&dst);
	if (!err)
		*ret_copied = len;
	return data_fail(fs, err);
}

/* ---- the fsync log ------------------------------------------------------------- */

/* A clipped piece as an item: header and (for REG) its checksums. */
static int emit_piece(const struct fext *e, uint64_t lo, uint64_t hi, file_log_fn fn, void *ctx)
{
	uint64_t skip = (lo - e->off) / ARB_SECTOR_SIZE;
	uint32_t clen = e->type == ARB_EXTENT_REG ? (uint32_t)((hi - lo) / ARB_SECTOR_SIZE * 4) : 0;
	uint8_t item[EXT_HDR + EXT_MAX_SECTORS * 4];
	struct arb_file_extent h = {htole64(e->gen),
	                            htole64(hi - lo),
	                            htole64(e->disk_bytenr + skip * ARB_SECTOR_SIZE),
	                            e->type,
	                            {0}};

	memcpy(item, &h, EXT_HDR);
	if (clen)
		memcpy(item + EXT_HDR, e->payload + skip * 4, clen);
	return fn(ctx, lo, hi - lo, item, EXT_HDR + clen);
}

struct log_walk {
	uint64_t pos, end;
	file_log_fn fn;
	void *ctx;
};

static int log_walk_cb(void *ctx, const struct fext *e)
{
	struct log_walk *w = ctx;
	uint64_t lo = e->off > w->pos ? e->off : w->pos;
	uint64_t hi = e->off + e->num_bytes < w->end ? e->off + e->num_bytes : w->end;
	int err = 0;

	if (e->type == ARB_EXTENT_INLINE)
		return -EAGAIN; /* inline data is not logged: the caller commits */
	if (lo >= hi)
		return 0;
	if (lo > w->pos)
		err = w->fn(w->ctx, w->pos, lo - w->pos, NULL, 0);
	if (!err)
		err = emit_piece(e, lo, hi, w->fn, w->ctx);
	w->pos = hi;
	return err;
}

int file_log_range(struct vnode *v, uint64_t start, uint64_t end, file_log_fn fn, void *ctx)
{
	struct log_walk w = {start, end, fn, ctx};
	int err;

	if (start % ARB_SECTOR_SIZE || end % ARB_SECTOR_SIZE || start >= end)
		return -EINVAL;
	err = for_extents(v, start, end, log_walk_cb, &w);
	if (!err && w.pos < end)
		err = fn(ctx, w.pos, end - w.pos, NULL, 0);
	return err;
}

static int log_item(uint64_t off, uint64_t len, const void *item, uint32_t item_len, struct fext *e)
{
	struct arb_key k = {0, ARB_EXTENT_DATA_KEY, off};
	int err = parse_extent(&k, item, item_len, e);

	if (!err && (e->type == ARB_EXTENT_INLINE || e->num_bytes != len))
		err = -EUCLEAN;
	return err;
}

int file_log_verify(struct arb_fs *fs, uint64_t off, uint64_t len, const void *item,
                    uint32_t item_len)
{
	struct fext e;
	int err = log_item(off, len, item, item_len, &e);
	uint8_t *buf;

	if (err || e.type != ARB_EXTENT_REG)
		return err;
	if (!arb_sm_valid_range(&fs->sm, e.disk_bytenr, len / ARB_SECTOR_SIZE))
		return -EUCLEAN;
	buf = malloc(len);
	if (!buf)
		return -ENOMEM;
	err = arb_dev_read(fs->dev, buf, len, e.disk_bytenr);
	if (!err)
		err = verify_sectors(fs, &e, 0, buf, len / ARB_SECTOR_SIZE);
	free(buf);
	return err ? -EIO : 0;
}

int file_log_apply(struct vnode *v, uint64_t off, uint64_t len, const void *item, uint32_t item_len)
{
	struct fext e;
	int err = 0;

	if (off % ARB_SECTOR_SIZE || len % ARB_SECTOR_SIZE || !len || len > ARB_MAX_FILE_SIZE ||
	    off > ARB_MAX_FILE_SIZE - len || !S_ISREG(v->mode))
		return -EUCLEAN; /* a logged range is sector-aligned, in a regular file */
	if (item)
		err = log_item(off, len, item, item_len, &e);
	if (!err)
		err = drop_range(v, off, off + len);
	if (err || !item)
		return err;
	err = arb_data_ref(v->t->fs, e.disk_bytenr, len / ARB_SECTOR_SIZE, 1);
	if (!err)
		err = put_extent(v, &e);
	if (!err)
		v->nbytes += len;
	return err;
}
