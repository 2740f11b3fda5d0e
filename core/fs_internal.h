/* SPDX-License-Identifier: MIT */
/*
 * fs_internal.h - the in-memory state of an open filesystem, shared by the
 * core's modules (cache, space map, B-tree, commit, check).  Not installed.
 */
#ifndef ARBOR_FS_INTERNAL_H
#define ARBOR_FS_INTERNAL_H

#include <endian.h>
#include <stdbool.h>
#include <stdint.h>

#include "arbor/btree.h"
#include "arbor/fs.h"
#include "arbor_format.h"
#include "cache.h"
#include "log.h"
#include "spacemap.h"

#define ARB_MAX_LEVEL 8

/* Host-endian copy of a struct arb_blkptr. */
struct arb_ptr {
	uint64_t bytenr;
	uint64_t generation;
	uint64_t csum;
	uint8_t level;
};

struct arb_tree {
	struct arb_fs *fs;
	uint64_t id;
	struct arb_ptr root;
	uint64_t last_snapshot;
	struct arb_root_item item; /* on-disk copy, refreshed at commit */
	bool shareable;            /* user trees: nodes are reference counted */
	bool item_dirty;           /* root item must be rewritten at commit */
	uint64_t ref_nodes;        /* nodes reachable from the root */
	uint64_t ref_data;         /* data sectors its items name */
	uint64_t modseq;           /* bumped by every mutation (iterators) */
	struct arb_tree *next;
};

struct arb_fs {
	struct arb_dev *dev;
	bool read_only;
	bool failed;
	char failed_reason[160];
	bool in_commit;
	bool force_commit; /* commit even an empty transaction (fsck) */

	/* geometry */
	uint32_t nodesize, sectorsize;
	uint32_t node_sectors;
	uint64_t total_bytes;
	uint8_t fsid[16];
	uint8_t dev_uuid[16];
	char label[129];
	uint64_t hash_seed;
	int ncopies;
	uint64_t super_offsets[ARB_SUPER_COPIES];

	/* transactions */
	uint64_t generation; /* last durable commit */
	uint64_t transid;    /* running transaction = generation + 1 (or more after fallback) */
	uint64_t fallback_from;
	uint64_t next_tree_id;
	uint64_t commit_time_sec;
	uint32_t commit_time_nsec;
	uint64_t fixed_time; /* non-zero: commit time to record (reproducible mkfs) */

	struct arb_cache cache;
	struct arb_spacemap sm;
	/* freed[] list of the commit in progress (host endian) */
	struct arb_extent freed[ARB_SUPER_FREED_MAX];
	uint32_t nfreed;
	uint64_t defer_seq; /* next DEFER item of the commit in progress */

	struct arb_tree root_tree;
	struct arb_tree space_tree;
	struct arb_tree *user_trees; /* handles loaded so far */
	bool drop_counted;           /* drop_pending is known */
	uint64_t drop_pending;       /* trees with ARB_ROOT_DROPPING (drop.c) */

	arb_msg_fn msg;
	void *msg_ctx;

	struct vfs_state *vfs; /* filesystem layer: open counts */
	struct arb_log log;    /* the fsync log of the running transaction */
	uint8_t *scratch;      /* 2 * nodesize, for repacking nodes */
	struct ventry *vent;   /* entries of two nodes being repacked */
};

/* fs.c: the DEFER items of commits <= max_gen (caller frees *ret_recs) */
struct arb_defer_rec {
	uint64_t gen, seq; /* key of the DEFER item holding the range */
	uint64_t bytenr, nsectors;
};
int arb_collect_defer_items(struct arb_fs *fs, uint64_t max_gen, struct arb_defer_rec **ret_recs,
                            size_t *ret_n);

/* One reference more or less on data sectors; the last one defers. */
int arb_data_ref(struct arb_fs *fs, uint64_t bytenr, uint64_t nsectors, int delta);
/* file.c: the data extent a leaf item references, if any (1, or 0). */
int arb_item_extent(const struct arb_key *key, const void *data, uint32_t len, uint64_t *ret_bytenr,
                    uint64_t *ret_nsectors);

/* Generation of the running transaction (written by the next commit). */
static inline uint64_t arb_generation_running(const struct arb_fs *fs)
{
	return fs->transid;
}

/* fs.c: fill buf from the system's random source */
void arb_random_bytes(void *buf, size_t len);

/* msg.c */
void arb_msgf(const struct arb_fs *fs, enum arb_msg_level level, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
/* Enter the failed state (first reason wins) and return err. */
int arb_fail(struct arb_fs *fs, int err, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

struct ventry;
struct vfs_state;

/* inode.c: the filesystem layer's per-open state */
void arb_vfs_free_state(struct arb_fs *fs);

/* btree.c: internals used by fs.c and check.c */
int arb_btree_scratch_init(struct arb_fs *fs);
void arb_btree_scratch_free(struct arb_fs *fs);
int arb_tree_init_empty(struct arb_fs *fs, struct arb_tree *t, uint64_t id);
int arb_read_node(struct arb_fs *fs, const struct arb_ptr *ptr, bool is_root,
                  struct arb_node **ret);
/* Edits of the engine's own trees (root, space), refused through the
 * public calls. */
int arb_sys_insert(struct arb_tree *tree, const struct arb_key *key, const void *data,
                   uint32_t len);
int arb_sys_put(struct arb_tree *tree, const struct arb_key *key, const void *data, uint32_t len);
int arb_sys_delete(struct arb_tree *tree, const struct arb_key *key);
/* fs.c: a user tree's handle, dropping or not (arb_tree_get hides the
 * dropping ones); unlinking a handle whose root item is gone */
int arb_tree_get_any(struct arb_fs *fs, uint64_t id, struct arb_tree **ret_tree);
bool arb_tree_dropping(const struct arb_tree *t);
void arb_tree_forget(struct arb_fs *fs, struct arb_tree *t);
/* Write a user tree's root item now (commit writes it when item_dirty). */
int arb_tree_put_item(struct arb_fs *fs, struct arb_tree *t);
/* Give back the references of a dropping tree from *cursor on, taking up
 * at most *budget nodes (what is left is returned there): 1 when the whole
 * tree is gone, 0 when the budget ran out (*cursor moved), or -errno. */
int arb_tree_drop_some(struct arb_tree *t, struct arb_key *cursor, uint64_t *budget);
int arb_finalize_dirty(struct arb_fs *fs, bool user_trees);
int arb_check_mutable(struct arb_fs *fs);

static inline void arb_key_to_disk(const struct arb_key *k, struct arb_disk_key *d)
{
	d->objectid = htole64(k->objectid);
	d->type = k->type;
	d->offset = htole64(k->offset);
}

static inline void arb_key_from_disk(const struct arb_disk_key *d, struct arb_key *k)
{
	k->objectid = le64toh(d->objectid);
	k->type = d->type;
	k->offset = le64toh(d->offset);
}

static inline void arb_ptr_to_disk(const struct arb_ptr *p, struct arb_blkptr *d)
{
	d->bytenr = htole64(p->bytenr);
	d->generation = htole64(p->generation);
	d->csum = htole64(p->csum);
	d->level = p->level;
	for (int i = 0; i < 7; i++)
		d->reserved[i] = 0;
}

static inline void arb_ptr_from_disk(const struct arb_blkptr *d, struct arb_ptr *p)
{
	p->bytenr = le64toh(d->bytenr);
	p->generation = le64toh(d->generation);
	p->csum = le64toh(d->csum);
	p->level = d->level;
}

#endif
