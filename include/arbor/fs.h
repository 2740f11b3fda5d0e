/* SPDX-License-Identifier: MIT */
/*
 * fs.h - an open Arbor filesystem: format, open, commit, and the set of
 * trees (create, clone, drop).  Single-threaded: callers serialise.
 *
 * Transactions: changes accumulate in memory in the running transaction
 * until arb_commit() makes them durable atomically (invariant 3 in
 * arbor_format.h).  arb_close() discards what was not committed.  If any
 * mutation fails part-way (I/O error, corruption found, no space), the
 * filesystem enters the failed state: every later mutation and commit
 * returns -EROFS, and what is on disk stays the last good commit.
 */
#ifndef ARBOR_FS_H
#define ARBOR_FS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arbor/io.h"
#include "arbor/msg.h"

struct arb_fs;
struct arb_tree;

struct arb_format_opts {
	uint32_t nodesize;      /* 0: ARB_DEFAULT_NODESIZE */
	uint64_t size;          /* 0: the whole device */
	const uint8_t *fsid;    /* 16 bytes, NULL: random */
	const uint8_t *devuuid; /* 16 bytes, NULL: random */
	const char *label;      /* NULL: empty */
	uint64_t hash_seed;     /* 0: random */
	uint64_t time_sec;      /* 0: now (SOURCE_DATE_EPOCH honoured by tools) */
};

/* Write an empty filesystem (generation 1, empty root and space trees). */
int arb_format(struct arb_dev *dev, const struct arb_format_opts *opts);

struct arb_open_opts {
	bool read_only;
	size_t cache_bytes;      /* bound for clean cached nodes; 0: RAM/16, 64 MiB..1 GiB */
	uint64_t max_generation; /* 0: newest; else newest slot <= this */
	uint64_t time_sec;       /* non-zero: use as the time of every change and
	                            commit (reproducible images, SOURCE_DATE_EPOCH) */
	arb_msg_fn msg;
	void *msg_ctx;
};

/* Open the newest valid commit, falling back to older slots when the
 * newest does not verify.  The device stays owned by the caller. */
int arb_open(struct arb_dev *dev, const struct arb_open_opts *opts, struct arb_fs **ret_fs);
/* Free everything; uncommitted changes are discarded. */
void arb_close(struct arb_fs *fs);

/* Make the running transaction durable. */
int arb_commit(struct arb_fs *fs);
/* Commit as many times as the superblock ring has slots, empty or not, so
 * that every slot of every copy names this state (fsck, after damaged
 * slots; the older roots of the ring are given up). */
int arb_commit_every_slot(struct arb_fs *fs);

struct arb_fs_info {
	uint64_t generation;    /* of the last durable commit */
	uint64_t fallback_from; /* non-zero: newer generation that failed to verify */
	uint32_t nodesize, sectorsize;
	uint64_t total_bytes;
	uint64_t total_sectors;       /* allocatable */
	uint64_t used_sectors;        /* count > 0 (includes deferred_sectors) */
	uint64_t deferred_sectors;    /* unreferenced, still counted: freed in the running
	                                 transaction or carried over in DEFER items */
	uint64_t quarantined_sectors; /* count 0, reusable once the superblock ring has
	                                 moved past the commit that freed them */
	uint64_t free_sectors;        /* allocatable now */
	uint64_t next_tree_id;
	uint64_t hash_seed;
	uint8_t fsid[16];
	char label[129];
	bool failed;
	bool read_only;
};
void arb_fs_info(const struct arb_fs *fs, struct arb_fs_info *info);

/* Human-readable reason of the failed state, or NULL. */
const char *arb_fs_failed_reason(const struct arb_fs *fs);

/* ---- trees ---------------------------------------------------------- */

/* A new empty user tree; its id is returned. */
int arb_tree_create(struct arb_fs *fs, uint64_t *ret_id);
/* A new tree sharing every node of src: O(1), one count on the root. */
int arb_tree_clone(struct arb_fs *fs, uint64_t src_id, uint64_t *ret_id);
/* Delete a user tree in O(1): it is gone (-ENOENT) for every call at once;
 * the blocks only it referenced come back as arb_fs_drop_step frees it. */
int arb_tree_drop(struct arb_fs *fs, uint64_t id);
/* Free deleted trees, taking up at most max_nodes nodes: a bounded piece
 * of work for one transaction.  *ret_left: trees still being freed. */
int arb_fs_drop_step(struct arb_fs *fs, uint64_t max_nodes, uint64_t *ret_left);
/* Free every deleted tree now. */
int arb_fs_drop_all(struct arb_fs *fs);
/* How many deleted trees are still being freed. */
int arb_fs_dropping(struct arb_fs *fs, uint64_t *ret_trees);
/* A handle to a tree (root, space, or user), owned by fs: valid until the
 * tree is dropped or fs closed. -ENOENT if no such tree. */
int arb_tree_get(struct arb_fs *fs, uint64_t id, struct arb_tree **ret_tree);

/* Reference counts of extents (for the filesystem layer and tests). */
int arb_extent_alloc(struct arb_fs *fs, uint64_t nsectors, uint64_t *ret_bytenr);
int arb_extent_ref(struct arb_fs *fs, uint64_t bytenr, uint64_t nsectors, int delta);
/* Current count of one sector (committed + running transaction). */
int arb_sector_refcount(struct arb_fs *fs, uint64_t bytenr, uint32_t *ret_count);

struct arb_dev *arb_fs_dev(const struct arb_fs *fs);

#endif
