/* SPDX-License-Identifier: MIT */
/*
 * log.h - the fsync log: fsync() of a file whose only changes since the
 * last commit are data writes appends the file's extent and inode items to
 * a chain of log blocks and flushes once, instead of committing.  The
 * format is described in arbor_format.h (FSYNC LOG BLOCK).  Not installed.
 */
#ifndef ARBOR_LOG_H
#define ARBOR_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arbor/vfs.h"

struct arb_fs;
struct log_inode;

struct arb_log {
	uint64_t head;    /* first block, allocated by the last commit; 0: none */
	uint64_t nonce;   /* carried by every block of the chain */
	uint64_t next;    /* where the next block goes */
	uint64_t seq;     /* its sequence number */
	uint64_t *blocks; /* every block of the chain, freed by the next commit */
	size_t nblocks, cap;
	bool wanted;           /* an fsync used (or wanted) the log since the last commit */
	bool all_commit;       /* lost track of some inode (no memory): commit */
	arb_ino_t writing;     /* arb_vfs_write in progress on this inode */
	struct log_inode *tab; /* per-inode state since the last commit */
	size_t tab_cap, tab_used;
};

/* An inode changed in a way the log cannot express (anything but a data
 * write): its next fsync commits. */
void arb_log_inode_changed(struct arb_fs *fs, arb_ino_t ino);
/* Only the timestamps of ino's inode item changed. */
void arb_log_inode_touched(struct arb_fs *fs, arb_ino_t ino);
/* A data write replaced the sectors of [start, end) of ino. */
void arb_log_inode_wrote(struct arb_fs *fs, arb_ino_t ino, uint64_t start, uint64_t end);

/* Commit: free the chain, forget the inode state, allocate the next head
 * when the log is in use.  Called before the space map is written. */
int arb_log_commit_prepare(struct arb_fs *fs);
/* Open: take over the head a superblock names (the next commit frees
 * it) and, with replay (the newest commit), replay its chain. */
int arb_log_replay(struct arb_fs *fs, uint64_t head, uint64_t nonce, bool replay);
void arb_log_free(struct arb_fs *fs);

#endif
