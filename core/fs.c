/* SPDX-License-Identifier: MIT */
/*
 * fs.c - format, open (with fallback along the superblock ring), commit,
 * and the set of trees: create, clone (one reference on the root), drop.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "arbor/super.h"
#include "fs_internal.h"
#include "node.h"

/* Clean nodes kept in memory by default: 1/16 of the RAM, 64 MiB .. 1 GiB
 * (a filesystem that rereads its metadata from disk is slow). */
static size_t default_cache_bytes(void)
{
	long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
	uint64_t bytes = pages > 0 && psize > 0 ? (uint64_t)pages * (uint64_t)psize / 16 : 0;

	if (bytes < (64u << 20))
		bytes = 64u << 20;
	if (bytes > (1u << 30))
		bytes = 1u << 30;
	return (size_t)bytes;
}

/* ---- setup and teardown -------------------------------------------------- */

static void fs_free(struct arb_fs *fs)
{
	struct arb_tree *t = fs->user_trees;

	while (t) {
		struct arb_tree *next = t->next;

		free(t);
		t = next;
	}
	arb_vfs_free_state(fs);
	arb_log_free(fs);
	arb_cache_destroy(&fs->cache);
	arb_sm_destroy(&fs->sm);
	arb_btree_scratch_free(fs);
	free(fs);
}

static int fs_alloc(struct arb_dev *dev, uint32_t nodesize, uint64_t total_bytes,
                    size_t cache_bytes, struct arb_fs **ret)
{
	struct arb_fs *fs = calloc(1, sizeof(*fs));
	int err;

	if (!fs)
		return -ENOMEM;
	fs->dev = dev;
	fs->nodesize = nodesize;
	fs->sectorsize = ARB_SECTOR_SIZE;
	fs->node_sectors = nodesize / ARB_SECTOR_SIZE;
	fs->total_bytes = total_bytes;
	fs->ncopies = arb_super_copies(total_bytes, fs->super_offsets);
	fs->root_tree.fs = fs;
	fs->root_tree.id = ARB_ROOT_TREE_ID;
	fs->space_tree.fs = fs;
	fs->space_tree.id = ARB_SPACE_TREE_ID;
	err = arb_cache_init(&fs->cache, nodesize,
	                     cache_bytes ? cache_bytes : default_cache_bytes());
	if (!err)
		err = arb_sm_init(&fs->sm, total_bytes, ARB_SECTOR_SIZE, nodesize,
		                  fs->super_offsets, fs->ncopies);
	if (!err)
		err = arb_btree_scratch_init(fs);
	if (err) {
		fs_free(fs);
		return err;
	}
	*ret = fs;
	return 0;
}

void arb_close(struct arb_fs *fs)
{
	if (fs)
		fs_free(fs);
}

struct arb_dev *arb_fs_dev(const struct arb_fs *fs)
{
	return fs->dev;
}

static void now(uint64_t *sec, uint32_t *nsec)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	*sec = (uint64_t)ts.tv_sec;
	*nsec = (uint32_t)ts.tv_nsec;
}

void arb_random_bytes(void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = getrandom(p, len, 0);

		if (n <= 0) { /* no entropy source: fall back to time-derived bytes */
			uint64_t x = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)p;

			for (; len; len--, p++) {
				x = x * 6364136223846793005ull + 1442695040888963407ull;
				*p = (uint8_t)(x >> 56);
			}
			return;
		}
		p += n;
		len -= (size_t)n;
	}
}

static void random_uuid(uint8_t uuid[16])
{
	arb_random_bytes(uuid, 16);
	uuid[6] = (uint8_t)((uuid[6] & 0x0f) | 0x40); /* version 4 */
	uuid[8] = (uint8_t)((uuid[8] & 0x3f) | 0x80); /* RFC 4122 variant */
}

/* ---- commit --------------------------------------------------------------- */

int arb_tree_put_item(struct arb_fs *fs, struct arb_tree *t)
{
	struct arb_key key = {t->id, ARB_ROOT_ITEM_KEY, 0};

	arb_ptr_to_disk(&t->root, &t->item.root);
	t->item.last_snapshot = htole64(t->last_snapshot);
	t->item.ref_nodes = htole64(t->ref_nodes);
	t->item.ref_data_sectors = htole64(t->ref_data);
	return arb_sys_put(&fs->root_tree, &key, &t->item, sizeof(t->item));
}

/* A root written in this transaction gets its checksum once finalized. */
static int refresh_root_csum(struct arb_fs *fs, struct arb_tree *t)
{
	struct arb_node *n;

	if (t->root.generation != fs->transid)
		return 0;
	n = arb_cache_get(&fs->cache, t->root.bytenr);
	if (!n || !n->finalized) {
		if (n)
			arb_cache_unpin(&fs->cache, n);
		return arb_fail(fs, -EUCLEAN, "root of tree %llu missing at commit",
		                (unsigned long long)t->id);
	}
	t->root.csum = n->csum;
	arb_cache_unpin(&fs->cache, n);
	return 0;
}

static int commit_user_trees(struct arb_fs *fs)
{
	int err = arb_finalize_dirty(fs, true);

	for (struct arb_tree *t = fs->user_trees; t && !err; t = t->next) {
		if (!t->item_dirty && t->root.generation != fs->transid)
			continue;
		err = refresh_root_csum(fs, t);
		if (!err)
			err = arb_tree_put_item(fs, t);
		t->item_dirty = false;
	}
	return err;
}

/* List a range in this commit's freed[]: its count drops to zero now and
 * the ring keeps it from reuse for ARB_DEFER_COMMITS commits.  false when
 * the list is full. */
static int list_freed(struct arb_fs *fs, uint64_t bytenr, uint64_t nsectors, bool *listed)
{
	struct arb_extent *last = fs->nfreed ? &fs->freed[fs->nfreed - 1] : NULL;
	int err;

	*listed = false;
	if (!last || last->bytenr + last->nsectors * fs->sectorsize != bytenr) {
		if (fs->nfreed == ARB_SUPER_FREED_MAX)
			return 0;
		last = &fs->freed[fs->nfreed++];
		*last = (struct arb_extent){bytenr, 0};
	}
	last->nsectors += nsectors;
	err = arb_sm_add(&fs->sm, bytenr, nsectors, -1);
	if (!err)
		err = arb_sm_quarantine(&fs->sm, fs->transid, bytenr, nsectors);
	*listed = true;
	return err;
}

/* Frees that do not fit in freed[]: DEFER items of this commit, each an
 * array of ranges as large as an item allows (one tree edit per item, not
 * per range: a commit of random updates frees thousands of nodes). */
static int write_defer_items(struct arb_fs *fs, const struct arb_extent *v, size_t n)
{
	size_t per_item = arb_max_item_size(fs) / sizeof(struct arb_freed_extent);
	struct arb_freed_extent *rec = malloc(per_item * sizeof(*rec));
	int err = rec ? 0 : -ENOMEM;

	for (size_t i = 0; i < n && !err;) {
		size_t m = n - i < per_item ? n - i : per_item;
		struct arb_key k = {fs->transid, ARB_SM_DEFER_KEY, fs->defer_seq++};

		for (size_t j = 0; j < m; j++) {
			rec[j].bytenr = htole64(v[i + j].bytenr);
			rec[j].nsectors = htole64(v[i + j].nsectors);
			fs->sm.defer_item_sectors += v[i + j].nsectors;
		}
		err = arb_sys_insert(&fs->space_tree, &k, rec, (uint32_t)(m * sizeof(*rec)));
		i += m;
	}
	free(rec);
	return err;
}

/* This transaction's frees: into freed[] while it has room, the rest into
 * DEFER items (still counted, so a crash cannot leak them). */
static int commit_pending_frees(struct arb_fs *fs, bool *progress)
{
	struct arb_spacemap *sm = &fs->sm;
	size_t n = sm->npending, nleft = 0;
	struct arb_extent *list;
	int err = 0;

	if (!n)
		return 0;
	list = malloc(n * sizeof(*list));
	if (!list)
		return -ENOMEM;
	memcpy(list, sm->pending, n * sizeof(*list));
	sm->npending = 0;
	sm->pending_sectors = 0;
	for (size_t i = 0; i < n && !err; i++) {
		bool listed;

		err = list_freed(fs, list[i].bytenr, list[i].nsectors, &listed);
		if (!err && !listed)
			list[nleft++] = list[i]; /* compacts in place: nleft <= i */
	}
	if (!err && nleft)
		err = write_defer_items(fs, list, nleft);
	free(list);
	*progress = true;
	return err;
}

/* Ranges of one DEFER item (an array of struct arb_freed_extent). */
static int defer_item_ranges(const void *data, uint32_t len, size_t *ret_n)
{
	if (!len || len % sizeof(struct arb_freed_extent))
		return -EUCLEAN;
	*ret_n = len / sizeof(struct arb_freed_extent);
	return 0;
}

static int push_defer_recs(const struct arb_key *k, const void *data, size_t m,
                           struct arb_defer_rec **recs, size_t *n, size_t *cap)
{
	if (*n + m > *cap) {
		size_t c = *cap ? *cap : 64;

		while (c < *n + m)
			c *= 2;
		struct arb_defer_rec *r = realloc(*recs, c * sizeof(*r));

		if (!r)
			return -ENOMEM;
		*recs = r;
		*cap = c;
	}
	for (size_t j = 0; j < m; j++) {
		struct arb_freed_extent fe;

		memcpy(&fe, (const uint8_t *)data + j * sizeof(fe), sizeof(fe));
		(*recs)[(*n)++] = (struct arb_defer_rec){k->objectid, k->offset, le64toh(fe.bytenr),
		                                         le64toh(fe.nsectors)};
	}
	return 0;
}

int arb_collect_defer_items(struct arb_fs *fs, uint64_t max_gen, struct arb_defer_rec **ret_recs,
                            size_t *ret_n)
{
	struct arb_key start = {1, ARB_SM_DEFER_KEY, 0}, k;
	struct arb_defer_rec *recs = NULL;
	size_t n = 0, cap = 0, m;
	struct arb_iter *it;
	const void *data;
	uint32_t len;
	int ret = arb_iter_open(&fs->space_tree, &start, ARB_ITER_FORWARD, &it);

	if (ret)
		return ret;
	while ((ret = arb_iter_next(it, &k, &data, &len)) == 1) {
		if (k.objectid > max_gen)
			break;
		if (k.type != ARB_SM_DEFER_KEY)
			continue;
		ret = defer_item_ranges(data, len, &m);
		if (!ret)
			ret = push_defer_recs(&k, data, m, &recs, &n, &cap);
		if (ret)
			break;
	}
	arb_iter_close(it);
	if (ret < 0) {
		free(recs);
		return ret;
	}
	*ret_recs = recs;
	*ret_n = n;
	return 0;
}

/*
 * Frees that overflowed freed[] of commit F wait in DEFER items, still
 * counted.  Once F is ARB_DEFER_COMMITS commits old no root in the ring can
 * reach them, so they become free at once, with no quarantine and no limit
 * per commit.
 */
static int release_defer_items(struct arb_fs *fs)
{
	struct arb_defer_rec *recs = NULL;
	size_t n = 0;
	int err;

	if (!fs->sm.defer_item_sectors || fs->transid <= ARB_DEFER_COMMITS)
		return 0;
	err = arb_collect_defer_items(fs, fs->transid - ARB_DEFER_COMMITS, &recs, &n);
	for (size_t i = 0; i < n && !err; i++) {
		struct arb_key dk = {recs[i].gen, ARB_SM_DEFER_KEY, recs[i].seq};

		/* the records of one item are consecutive: delete it once */
		if (i == 0 || recs[i - 1].gen != recs[i].gen || recs[i - 1].seq != recs[i].seq)
			err = arb_sys_delete(&fs->space_tree, &dk);
		if (!err)
			err = arb_sm_add(&fs->sm, recs[i].bytenr, recs[i].nsectors, -1);
		if (!err)
			fs->sm.defer_item_sectors -= recs[i].nsectors;
	}
	free(recs);
	return err;
}

static int write_dirty_chunks(struct arb_fs *fs, bool *progress)
{
	struct arb_spacemap *sm = &fs->sm;
	int err = 0;

	for (uint64_t i = 0; i < sm->nchunks && !err; i++) {
		struct arb_sm_chunk *c = sm->chunks[i];

		if (!c || !c->dirty)
			continue;
		struct arb_key k = {0, ARB_SM_CHUNK_KEY, i};

		c->dirty = false; /* the edit below may dirty it again */
		if (c->used) {
			err = arb_sys_put(&fs->space_tree, &k, c->counts, (c->nsectors + 3) / 4);
			c->on_disk = true;
		} else if (c->on_disk) { /* all zero: the absent item says so */
			err = arb_sys_delete(&fs->space_tree, &k);
			c->on_disk = false;
		}
		*progress = true;
	}
	return err;
}

static int write_dirty_overflow(struct arb_fs *fs, bool *progress)
{
	struct arb_spacemap *sm = &fs->sm;
	int err = 0;

	for (size_t i = 0; i < sm->ovf_cap && !err; i++) {
		struct arb_sm_overflow *o = &sm->ovf[i];

		if (!o->used || !o->dirty)
			continue;
		struct arb_key k = {0, ARB_SM_OVERFLOW_KEY, o->sector * sm->sectorsize};
		uint32_t v = htole32(o->count);

		o->dirty = false;
		if (o->count >= 3)
			err = arb_sys_put(&fs->space_tree, &k, &v, sizeof(v));
		else if ((err = arb_sys_delete(&fs->space_tree, &k)) == -ENOENT)
			err = 0;
		*progress = true;
	}
	return err;
}

/*
 * Write the space map into the space tree.  Doing so shadows space-tree
 * nodes, which allocates and frees, which changes the space map: repeat
 * until nothing changes (dm-thin "ties the knot" the same way).  Nodes
 * shadowed once are reused, so this converges in a few rounds.
 */
static int commit_space_map(struct arb_fs *fs)
{
	int err = release_defer_items(fs);

	for (int round = 0; round < 64 && !err; round++) {
		bool progress = false;

		err = commit_pending_frees(fs, &progress);
		if (!err)
			err = write_dirty_chunks(fs, &progress);
		if (!err)
			err = write_dirty_overflow(fs, &progress);
		if (!err && !progress)
			return 0;
	}
	return err ? err : arb_fail(fs, -ELOOP, "space map did not converge at commit");
}

static int cmp_node_addr(const void *a, const void *b)
{
	const struct arb_node *x = *(struct arb_node *const *)a, *y = *(struct arb_node *const *)b;

	return x->bytenr < y->bytenr ? -1 : x->bytenr > y->bytenr;
}

/* Write every dirty node, sorted by address, contiguous runs in one call. */
static int write_dirty_nodes(struct arb_fs *fs)
{
	size_t n = fs->cache.dirty.count, i = 0;
	struct arb_node **v = malloc((n ? n : 1) * sizeof(*v));
	struct iovec iov[256];
	int err = 0;

	if (!v)
		return -ENOMEM;
	for (struct arb_node *x = fs->cache.dirty.head; x; x = x->next)
		v[i++] = x;
	qsort(v, n, sizeof(*v), cmp_node_addr);
	for (i = 0; i < n && !err;) {
		size_t j = 0;
		uint64_t start = v[i]->bytenr;

		while (i + j < n && j < 256 && v[i + j]->bytenr == start + j * fs->nodesize) {
			if (!v[i + j]->finalized) {
				err = -EUCLEAN;
				break;
			}
			iov[j].iov_base = v[i + j]->buf;
			iov[j].iov_len = fs->nodesize;
			j++;
		}
		if (!err)
			err = arb_dev_writev(fs->dev, iov, (int)j, start);
		i += j;
	}
	free(v);
	return err;
}

static void fill_super(const struct arb_fs *fs, struct arb_super *sb)
{
	memset(sb, 0, sizeof(*sb));
	sb->magic = htole64(ARB_SUPER_MAGIC);
	memcpy(sb->fsid, fs->fsid, 16);
	memcpy(sb->dev_uuid, fs->dev_uuid, 16);
	sb->generation = htole64(fs->transid);
	sb->format_version = htole32(ARB_FORMAT_VERSION);
	sb->csum_type = htole16(ARB_CSUM_CRC32C);
	sb->sectorsize = htole32(fs->sectorsize);
	sb->nodesize = htole32(fs->nodesize);
	sb->total_bytes = htole64(fs->total_bytes);
	arb_ptr_to_disk(&fs->root_tree.root, &sb->root_tree);
	arb_ptr_to_disk(&fs->space_tree.root, &sb->space_tree);
	sb->sectors_used = htole64(fs->sm.sectors_used);
	sb->alloc_cursor = htole64(fs->sm.cursor * fs->sectorsize);
	sb->next_tree_id = htole64(fs->next_tree_id);
	sb->hash_seed = htole64(fs->hash_seed);
	sb->commit_time_sec = htole64(fs->commit_time_sec);
	sb->commit_time_nsec = htole32(fs->commit_time_nsec);
	memcpy(sb->label, fs->label, sizeof(sb->label));
	sb->incompat = htole64(ARB_FEATURE_INCOMPAT_FSYNC_LOG);
	sb->log_bytenr = htole64(fs->log.head);
	sb->log_nonce = htole64(fs->log.head ? fs->log.nonce : 0);
	sb->freed_count = htole32(fs->nfreed);
	for (uint32_t i = 0; i < fs->nfreed; i++) {
		sb->freed[i].bytenr = htole64(fs->freed[i].bytenr);
		sb->freed[i].nsectors = htole64(fs->freed[i].nsectors);
	}
}

/* Slot (generation % ring size) of every copy. */
static int write_supers(struct arb_fs *fs)
{
	struct arb_super sb;
	uint32_t slot = (uint32_t)(fs->transid % ARB_SUPER_SLOTS);
	int ok = 0, err = 0;

	fill_super(fs, &sb);
	sb.slot = htole16((uint16_t)slot);
	for (int c = 0; c < fs->ncopies; c++) {
		uint64_t off = fs->super_offsets[c] + (uint64_t)slot * ARB_SUPER_SLOT_SIZE;

		sb.bytenr = htole64(off);
		arb_super_set_csum(&sb);
		int e = arb_dev_write(fs->dev, &sb, sizeof(sb), off);

		if (e)
			err = e;
		else
			ok++;
	}
	/* one landed copy is enough to find this commit again */
	return ok ? 0 : err;
}

static int commit_locked(struct arb_fs *fs)
{
	/* the log's content is in the trees from this commit on */
	int err = arb_log_commit_prepare(fs);

	if (!err)
		err = commit_user_trees(fs);

	/* frees of commits the ring no longer holds become reusable */
	if (fs->transid > ARB_DEFER_COMMITS)
		arb_sm_expire(&fs->sm, fs->transid - ARB_DEFER_COMMITS);
	fs->nfreed = 0;
	fs->defer_seq = 0;
	if (!err)
		err = commit_space_map(fs);
	if (!err)
		err = arb_finalize_dirty(fs, false);
	if (!err)
		err = refresh_root_csum(fs, &fs->root_tree);
	if (!err)
		err = refresh_root_csum(fs, &fs->space_tree);
	if (!err)
		err = write_dirty_nodes(fs);
	if (!err)
		err = arb_dev_flush(fs->dev);
	if (err)
		return err;
	now(&fs->commit_time_sec, &fs->commit_time_nsec);
	if (fs->fixed_time) {
		fs->commit_time_sec = fs->fixed_time;
		fs->commit_time_nsec = 0;
	}
	err = write_supers(fs);
	if (!err)
		err = arb_dev_flush(fs->dev);
	return err;
}

/* Nothing changed and nothing waits to become free?  Then a commit has
 * nothing to do, and an idle filesystem writes nothing at all.  While freed
 * space waits out the ring, a commit with no other change only writes the
 * superblock slot, and after ARB_DEFER_COMMITS of them all of it is free. */
static bool txn_is_empty(const struct arb_fs *fs)
{
	if (fs->force_commit || fs->cache.dirty.count || fs->sm.npending ||
	    fs->sm.defer_item_sectors || fs->sm.quarantined)
		return false;
	for (const struct arb_tree *t = fs->user_trees; t; t = t->next)
		if (t->item_dirty)
			return false;
	for (uint64_t i = 0; i < fs->sm.nchunks; i++)
		if (fs->sm.chunks[i] && fs->sm.chunks[i]->dirty)
			return false;
	for (size_t i = 0; i < fs->sm.ovf_cap; i++)
		if (fs->sm.ovf[i].used && fs->sm.ovf[i].dirty)
			return false;
	return true;
}

int arb_commit(struct arb_fs *fs)
{
	int err = arb_check_mutable(fs);

	if (err)
		return err;
	if (txn_is_empty(fs))
		return 0;
	fs->in_commit = true;
	err = commit_locked(fs);
	fs->in_commit = false;
	if (err)
		return arb_fail(fs, err, "commit of generation %llu failed",
		                (unsigned long long)fs->transid);
	fs->generation = fs->transid;
	fs->transid++;
	fs->force_commit = false;
	arb_cache_clean_all(&fs->cache);
	return 0;
}

int arb_commit_every_slot(struct arb_fs *fs)
{
	int err = 0;

	for (unsigned i = 0; i < ARB_SUPER_SLOTS && !err; i++) {
		fs->force_commit = true;
		err = arb_commit(fs);
	}
	return err;
}

/* ---- format ----------------------------------------------------------------- */

static int check_format_opts(const struct arb_dev *dev, const struct arb_format_opts *o,
                             uint32_t *nodesize, uint64_t *total)
{
	*nodesize = o->nodesize ? o->nodesize : ARB_DEFAULT_NODESIZE;
	if (*nodesize < ARB_MIN_NODESIZE || *nodesize > ARB_MAX_NODESIZE ||
	    (*nodesize & (*nodesize - 1)))
		return -EINVAL;
	*total = (o->size ? o->size : dev->size) & ~(uint64_t)(ARB_SECTOR_SIZE - 1);
	if (o->size > dev->size || *total < ARB_MIN_DEVICE_SIZE)
		return -EINVAL;
	if (o->label && strlen(o->label) > 128)
		return -ENAMETOOLONG;
	return 0;
}

static int zero_super_copies(struct arb_fs *fs)
{
	static const uint8_t zero[ARB_SUPER_COPY_SIZE];

	for (int c = 0; c < fs->ncopies; c++) {
		int err = arb_dev_write(fs->dev, zero, sizeof(zero), fs->super_offsets[c]);

		if (err)
			return err;
	}
	return 0;
}

int arb_format(struct arb_dev *dev, const struct arb_format_opts *opts)
{
	static const struct arb_format_opts defaults;
	const struct arb_format_opts *o = opts ? opts : &defaults;
	uint32_t nodesize;
	uint64_t total;
	struct arb_fs *fs;
	int err = check_format_opts(dev, o, &nodesize, &total);

	if (err)
		return err;
	if (dev->read_only)
		return -EROFS;
	err = fs_alloc(dev, nodesize, total, 0, &fs);
	if (err)
		return err;
	if (o->fsid)
		memcpy(fs->fsid, o->fsid, 16);
	else
		random_uuid(fs->fsid);
	if (o->devuuid)
		memcpy(fs->dev_uuid, o->devuuid, 16);
	else
		random_uuid(fs->dev_uuid);
	if (o->label)
		strncpy(fs->label, o->label, sizeof(fs->label) - 1);
	fs->hash_seed = o->hash_seed;
	while (!fs->hash_seed)
		arb_random_bytes(&fs->hash_seed, sizeof(fs->hash_seed));
	fs->transid = 1;
	fs->next_tree_id = ARB_FIRST_USER_TREE;
	fs->fixed_time = o->time_sec; /* reproducible images (SOURCE_DATE_EPOCH) */
	err = zero_super_copies(fs);
	if (!err)
		err = arb_tree_init_empty(fs, &fs->root_tree, ARB_ROOT_TREE_ID);
	if (!err)
		err = arb_tree_init_empty(fs, &fs->space_tree, ARB_SPACE_TREE_ID);
	if (!err)
		err = arb_commit(fs);
	fs_free(fs);
	return err;
}

/* ---- open ------------------------------------------------------------------ */

static int check_features(const struct arb_super *sb, bool read_only, const struct arb_open_opts *o,
                          struct arb_fs *tmp)
{
	uint64_t incompat = le64toh(sb->incompat), ro = le64toh(sb->ro_compat);

	if (le32toh(sb->format_version) != ARB_FORMAT_VERSION) {
		arb_msgf(tmp, ARB_MSG_ERR, "unsupported format version %u (this build reads %u)",
		         le32toh(sb->format_version), ARB_FORMAT_VERSION);
		return -EOPNOTSUPP;
	}
	if (incompat & ~ARB_FEATURE_INCOMPAT_SUPP) {
		arb_msgf(tmp, ARB_MSG_ERR, "unsupported incompatible features 0x%llx",
		         (unsigned long long)(incompat & ~ARB_FEATURE_INCOMPAT_SUPP));
		return -EOPNOTSUPP;
	}
	if (!read_only && (ro & ~ARB_FEATURE_RO_COMPAT_SUPP)) {
		arb_msgf(tmp, ARB_MSG_ERR,
		         "unsupported features 0x%llx allow read-only access only",
		         (unsigned long long)(ro & ~ARB_FEATURE_RO_COMPAT_SUPP));
		return -EROFS;
	}
	(void)o;
	return 0;
}

static int load_space_map(struct arb_fs *fs)
{
	struct arb_iter *it;
	struct arb_key k;
	const void *data;
	uint32_t len;
	int ret = arb_iter_open(&fs->space_tree, &ARB_KEY_MIN, ARB_ITER_FORWARD, &it);

	if (ret)
		return ret;
	while ((ret = arb_iter_next(it, &k, &data, &len)) == 1) {
		uint64_t v64;
		uint32_t v32;
		size_t m;

		if (k.type == ARB_SM_CHUNK_KEY && k.objectid == 0) {
			ret = arb_sm_load_chunk(&fs->sm, k.offset, data, len);
		} else if (k.type == ARB_SM_OVERFLOW_KEY && k.objectid == 0 && len == 4) {
			memcpy(&v32, data, 4);
			ret = arb_sm_load_overflow(&fs->sm, k.offset, le32toh(v32));
		} else if (k.type == ARB_SM_DEFER_KEY && !defer_item_ranges(data, len, &m)) {
			for (size_t j = 0; j < m; j++) {
				memcpy(&v64, (const uint8_t *)data + j * 16 + 8, 8);
				fs->sm.defer_item_sectors += le64toh(v64);
			}
		} else {
			ret = -EUCLEAN;
		}
		if (ret < 0) {
			arb_msgf(fs, ARB_MSG_ERR, "space tree item (%llu %u %llu) is malformed",
			         (unsigned long long)k.objectid, k.type,
			         (unsigned long long)k.offset);
			break;
		}
	}
	arb_iter_close(it);
	if (ret < 0)
		return ret;
	fs->sm.sectors_used = arb_sm_count_used(&fs->sm);
	arb_sm_count_groups(&fs->sm, &fs->sm.free_groups, &fs->sm.zero_groups);
	return 0;
}

static void fs_from_super(struct arb_fs *fs, const struct arb_super *sb)
{
	memcpy(fs->fsid, sb->fsid, 16);
	memcpy(fs->dev_uuid, sb->dev_uuid, 16);
	memcpy(fs->label, sb->label, sizeof(sb->label));
	fs->label[128] = 0;
	fs->generation = le64toh(sb->generation);
	fs->transid = fs->generation + 1;
	fs->next_tree_id = le64toh(sb->next_tree_id);
	fs->hash_seed = le64toh(sb->hash_seed);
	fs->commit_time_sec = le64toh(sb->commit_time_sec);
	fs->commit_time_nsec = le32toh(sb->commit_time_nsec);
	arb_ptr_from_disk(&sb->root_tree, &fs->root_tree.root);
	arb_ptr_from_disk(&sb->space_tree, &fs->space_tree.root);
	fs->sm.cursor = le64toh(sb->alloc_cursor) / ARB_SECTOR_SIZE;
}

/* Try to open the commit described by one superblock slot. */
static int open_slot(struct arb_dev *dev, const struct arb_super *sb, const struct arb_open_opts *o,
                     struct arb_fs **ret)
{
	struct arb_fs *fs;
	struct arb_node *n;
	uint64_t total = le64toh(sb->total_bytes);
	int err;

	if (total > dev->size)
		return -EINVAL;
	err = fs_alloc(dev, le32toh(sb->nodesize), total, o->cache_bytes, &fs);
	if (err)
		return err;
	fs->msg = o->msg;
	fs->msg_ctx = o->msg_ctx;
	fs->read_only = o->read_only || dev->read_only;
	fs->fixed_time = o->time_sec;
	fs_from_super(fs, sb);
	err = arb_read_node(fs, &fs->root_tree.root, true, &n);
	if (!err) {
		arb_cache_unpin(&fs->cache, n);
		err = load_space_map(fs);
	}
	if (err) {
		fs_free(fs);
		return err;
	}
	*ret = fs;
	return 0;
}

/* Rebuild the quarantine from the freed[] lists of the ring's generations
 * that the opened one descends from. */
static int load_quarantine(struct arb_fs *fs, const struct arb_super_slot *slots, int n)
{
	uint64_t done[ARB_DEFER_COMMITS] = {0};

	for (int i = 0; i < n; i++) {
		const struct arb_super *sb = &slots[i].sb;
		uint64_t gen = le64toh(sb->generation);
		uint32_t cnt = le32toh(sb->freed_count);

		if (gen > fs->generation || gen + ARB_DEFER_COMMITS <= fs->generation ||
		    memcmp(sb->fsid, fs->fsid, 16) || done[gen % ARB_DEFER_COMMITS] == gen)
			continue;
		done[gen % ARB_DEFER_COMMITS] = gen;
		if (cnt > ARB_SUPER_FREED_MAX)
			return -EUCLEAN;
		for (uint32_t j = 0; j < cnt; j++) {
			int err = arb_sm_quarantine(&fs->sm, gen, le64toh(sb->freed[j].bytenr),
			                            le64toh(sb->freed[j].nsectors));
			if (err) {
				arb_msgf(fs, ARB_MSG_ERR, "superblock %llu: bad freed range",
				         (unsigned long long)gen);
				return err;
			}
		}
	}
	return 0;
}

static int cmp_slot_gen_desc(const void *a, const void *b)
{
	uint64_t x = le64toh(((const struct arb_super_slot *)a)->sb.generation);
	uint64_t y = le64toh(((const struct arb_super_slot *)b)->sb.generation);

	return x < y ? 1 : x > y ? -1 : 0;
}

static void open_msg(const struct arb_open_opts *o, enum arb_msg_level lvl, const char *text)
{
	if (o->msg)
		o->msg(o->msg_ctx, lvl, text);
}

int arb_open(struct arb_dev *dev, const struct arb_open_opts *opts, struct arb_fs **ret_fs)
{
	static const struct arb_open_opts defaults;
	const struct arb_open_opts *o = opts ? opts : &defaults;
	struct arb_super_slot slots[ARB_SUPER_COPIES * ARB_SUPER_SLOTS];
	int n = arb_super_read_all(dev, slots, (int)(sizeof(slots) / sizeof(slots[0])));
	int nvalid = 0, nmagic = 0, err = -EUCLEAN;
	uint64_t newest = 0, tried_gen = 0, failed_gen = 0;

	if (n < 0)
		return n;
	for (int i = 0; i < n; i++) {
		nmagic += slots[i].status != ARB_SLOT_EMPTY && slots[i].status != ARB_SLOT_IO_ERROR;
		if (slots[i].status == ARB_SLOT_VALID)
			slots[nvalid++] = slots[i];
	}
	if (!nvalid) {
		open_msg(o, ARB_MSG_ERR,
		         nmagic ? "every superblock slot is damaged" : "no Arbor superblock found");
		return nmagic ? -EUCLEAN : -EINVAL;
	}
	qsort(slots, (size_t)nvalid, sizeof(slots[0]), cmp_slot_gen_desc);
	newest = le64toh(slots[0].sb.generation);
	for (int i = 0; i < nvalid; i++) {
		uint64_t gen = le64toh(slots[i].sb.generation);
		struct arb_fs tmp = {.msg = o->msg, .msg_ctx = o->msg_ctx};

		if (gen == tried_gen || (o->max_generation && gen > o->max_generation))
			continue;
		if (memcmp(slots[i].sb.fsid, slots[0].sb.fsid, 16))
			continue; /* a leftover of another filesystem */
		err = check_features(&slots[i].sb, o->read_only || dev->read_only, o, &tmp);
		if (err)
			return err;
		tried_gen = gen;
		err = open_slot(dev, &slots[i].sb, o, ret_fs);
		if (err == 0) {
			err = load_quarantine(*ret_fs, slots, nvalid);
			if (err) {
				arb_close(*ret_fs);
				return err;
			}
			struct arb_fs *fs = *ret_fs;

			/* never reuse a generation number a damaged newer slot holds */
			fs->transid = newest + 1;
			/* only the newest commit's log is intact: later ones reused
			 * what older logs held */
			err = arb_log_replay(fs, le64toh(slots[i].sb.log_bytenr),
			                     le64toh(slots[i].sb.log_nonce), gen == newest);
			if (err) {
				arb_close(fs);
				return err;
			}
			if (failed_gen) {
				fs->fallback_from = failed_gen;
				arb_msgf(fs, ARB_MSG_WARN,
				         "generation %llu does not verify; using generation %llu",
				         (unsigned long long)failed_gen, (unsigned long long)gen);
			}
			return 0;
		}
		if (err == -ENOMEM)
			return err;
		if (!failed_gen)
			failed_gen = gen;
	}
	return err;
}

/* ---- information -------------------------------------------------------------- */

void arb_fs_info(const struct arb_fs *fs, struct arb_fs_info *info)
{
	memset(info, 0, sizeof(*info));
	info->generation = fs->generation;
	info->fallback_from = fs->fallback_from;
	info->nodesize = fs->nodesize;
	info->sectorsize = fs->sectorsize;
	info->total_bytes = fs->total_bytes;
	info->total_sectors = arb_sm_total_sectors(&fs->sm);
	info->used_sectors = fs->sm.sectors_used;
	info->deferred_sectors = fs->sm.defer_item_sectors + fs->sm.pending_sectors;
	info->quarantined_sectors = fs->sm.quarantined;
	info->free_sectors = arb_sm_free_sectors(&fs->sm);
	info->next_tree_id = fs->next_tree_id;
	info->hash_seed = fs->hash_seed;
	memcpy(info->fsid, fs->fsid, 16);
	memcpy(info->label, fs->label, sizeof(info->label));
	info->failed = fs->failed;
	info->read_only = fs->read_only;
}

const char *arb_fs_failed_reason(const struct arb_fs *fs)
{
	return fs->failed ? fs->failed_reason : NULL;
}

/* ---- trees ------------------------------------------------------------------- */

static struct arb_tree *find_loaded(struct arb_fs *fs, uint64_t id)
{
	for (struct arb_tree *t = fs->user_trees; t; t = t->next)
		if (t->id == id)
			return t;
	return NULL;
}

static int load_tree(struct arb_fs *fs, uint64_t id, struct arb_tree **ret)
{
	struct arb_key key = {id, ARB_ROOT_ITEM_KEY, 0};
	struct arb_tree *t = calloc(1, sizeof(*t));
	uint32_t len;
	int err;

	if (!t)
		return -ENOMEM;
	err = arb_lookup(&fs->root_tree, &key, &t->item, sizeof(t->item), &len);
	if (!err && len != sizeof(t->item))
		err = -EUCLEAN;
	if (err) {
		free(t);
		return err;
	}
	t->fs = fs;
	t->id = id;
	t->shareable = true;
	arb_ptr_from_disk(&t->item.root, &t->root);
	t->last_snapshot = le64toh(t->item.last_snapshot);
	t->ref_nodes = le64toh(t->item.ref_nodes);
	t->ref_data = le64toh(t->item.ref_data_sectors);
	t->next = fs->user_trees;
	fs->user_trees = t;
	*ret = t;
	return 0;
}

int arb_tree_get_any(struct arb_fs *fs, uint64_t id, struct arb_tree **ret_tree)
{
	if (id < ARB_FIRST_USER_TREE)
		return -ENOENT;
	*ret_tree = find_loaded(fs, id);
	return *ret_tree ? 0 : load_tree(fs, id, ret_tree);
}

bool arb_tree_dropping(const struct arb_tree *t)
{
	return (le64toh(t->item.flags) & ARB_ROOT_DROPPING) != 0;
}

int arb_tree_get(struct arb_fs *fs, uint64_t id, struct arb_tree **ret_tree)
{
	if (id == ARB_ROOT_TREE_ID || id == ARB_SPACE_TREE_ID) {
		*ret_tree = id == ARB_ROOT_TREE_ID ? &fs->root_tree : &fs->space_tree;
		return 0;
	}
	int err = arb_tree_get_any(fs, id, ret_tree);

	/* a deleted tree is gone for everyone but the dropper */
	return err ? err : arb_tree_dropping(*ret_tree) ? -ENOENT : 0;
}

static int new_handle(struct arb_fs *fs, struct arb_tree **ret)
{
	struct arb_tree *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	t->fs = fs;
	t->id = fs->next_tree_id++;
	t->shareable = true;
	t->item_dirty = true;
	t->item.create_gen = htole64(fs->transid);
	uint64_t sec;
	uint32_t nsec;

	now(&sec, &nsec);
	if (fs->fixed_time) {
		/* reproducible images: time from the tool, UUID from fsid + id */
		sec = fs->fixed_time;
		nsec = 0;
		memcpy(t->item.uuid, fs->fsid, 16);
		for (int i = 0; i < 8; i++)
			t->item.uuid[8 + i] ^= (uint8_t)(t->id >> (8 * i));
	} else {
		random_uuid(t->item.uuid);
	}
	t->item.ctime_sec = htole64(sec);
	t->item.ctime_nsec = htole32(nsec);
	t->next = fs->user_trees;
	fs->user_trees = t;
	*ret = t;
	return 0;
}

int arb_tree_create(struct arb_fs *fs, uint64_t *ret_id)
{
	struct arb_tree *t;
	int err = arb_check_mutable(fs);

	if (!err)
		err = new_handle(fs, &t);
	if (!err)
		err = arb_tree_init_empty(fs, t, t->id);
	if (!err)
		err = arb_tree_put_item(fs, t);
	if (err)
		return err == -ENOSPC && !fs->failed ? err
		                                     : arb_fail(fs, err, "tree create failed");
	*ret_id = t->id;
	return 0;
}

int arb_tree_clone(struct arb_fs *fs, uint64_t src_id, uint64_t *ret_id)
{
	struct arb_tree *src, *t;
	int err = arb_check_mutable(fs);

	if (!err)
		err = src_id >= ARB_FIRST_USER_TREE ? arb_tree_get(fs, src_id, &src) : -EINVAL;
	if (err)
		return err;
	err = new_handle(fs, &t);
	if (err)
		return err;
	/* Rodeh: the clone shares the root node, which gains one reference */
	t->root = src->root;
	t->ref_nodes = src->ref_nodes;
	t->ref_data = src->ref_data;
	t->last_snapshot = src->last_snapshot = fs->transid;
	src->item_dirty = true;
	memcpy(t->item.parent_uuid, src->item.uuid, 16);
	t->item.parent_id = htole64(src->id);
	err = arb_sm_add(&fs->sm, t->root.bytenr, fs->node_sectors, +1);
	if (!err)
		err = arb_tree_put_item(fs, t);
	if (err)
		return arb_fail(fs, err, "tree clone failed");
	*ret_id = t->id;
	return 0;
}

void arb_tree_forget(struct arb_fs *fs, struct arb_tree *t)
{
	struct arb_tree **pp = &fs->user_trees;

	while (*pp != t)
		pp = &(*pp)->next;
	*pp = t->next;
	free(t);
}

/* ---- extents -------------------------------------------------------------------- */

int arb_extent_alloc(struct arb_fs *fs, uint64_t nsectors, uint64_t *ret_bytenr)
{
	int err = arb_check_mutable(fs);

	return err ? err
	           : arb_sm_alloc(&fs->sm, nsectors, 1, arb_sm_commit_quarter(&fs->sm), ret_bytenr);
}

int arb_data_ref(struct arb_fs *fs, uint64_t bytenr, uint64_t nsectors, int delta)
{
	int err = 0;

	if (!arb_sm_valid_range(&fs->sm, bytenr, nsectors) || (delta != 1 && delta != -1))
		return -EUCLEAN;
	if (delta > 0)
		return arb_sm_add(&fs->sm, bytenr, nsectors, 1);
	/* the last reference: the sectors wait out the ring (invariant 4) */
	for (uint64_t s = 0; s < nsectors && !err; s++) {
		uint64_t b = bytenr + s * fs->sectorsize;
		uint32_t c = arb_sm_get(&fs->sm, b);

		if (c == 0)
			err = -EUCLEAN;
		else if (c > 1)
			err = arb_sm_add(&fs->sm, b, 1, -1);
		else
			err = arb_sm_defer(&fs->sm, b, 1);
	}
	return err;
}

int arb_extent_ref(struct arb_fs *fs, uint64_t bytenr, uint64_t nsectors, int delta)
{
	int err = arb_check_mutable(fs);

	if (err)
		return err;
	if (!arb_sm_valid_range(&fs->sm, bytenr, nsectors) || (delta != 1 && delta != -1))
		return -EINVAL;
	err = arb_data_ref(fs, bytenr, nsectors, delta);
	return err ? arb_fail(fs, err, "extent reference update failed") : 0;
}

int arb_sector_refcount(struct arb_fs *fs, uint64_t bytenr, uint32_t *ret_count)
{
	if (bytenr % fs->sectorsize || bytenr >= fs->total_bytes)
		return -EINVAL;
	*ret_count = arb_sm_get(&fs->sm, bytenr);
	return 0;
}
