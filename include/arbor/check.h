/* SPDX-License-Identifier: MIT */
/*
 * check.h - whole-filesystem verification: every node of every tree is read
 * and verified (checksum, header, structure, parent/child agreement), every
 * reference count is recomputed from all roots and the deferred frees, and
 * compared with the space map.  fsck builds on it; tests call it after every
 * scenario to prove there is no leak and no double use.
 */
#ifndef ARBOR_CHECK_H
#define ARBOR_CHECK_H

#include <stdbool.h>
#include <stdint.h>

#include "arbor/fs.h"

struct arb_check_report {
	uint64_t nodes; /* distinct nodes visited */
	uint64_t trees;
	uint64_t bad_nodes;      /* failed to read or verify */
	uint64_t count_mismatch; /* sectors whose space map count is wrong */
	uint64_t leaked;         /* counted in the map, referenced nowhere */
	uint64_t missing;        /* referenced, but the map counts it free */
	uint64_t used_mismatch;  /* superblock sectors_used differs (0 or 1) */
	uint64_t tree_totals;    /* trees whose referenced counts are wrong */
	uint64_t dropping;       /* deleted trees not yet freed (counted in trees) */
	uint64_t bad_extents;    /* extent items naming sectors outside the device */
};

/* Check the last committed state plus the running transaction.  Returns 0
 * when clean, -EUCLEAN when problems were found (details through the message
 * channel and the report), other negative errno on operational failure. */
int arb_check(struct arb_fs *fs, struct arb_check_report *report);

struct arb_check_opts {
	/* Repair in the running transaction (the caller commits): set every
	 * space map count and each tree's referenced totals to what the walk
	 * found.  Counts that drop to zero are deferred like any free.  Not
	 * done when a node failed to read: the walk would undercount. */
	bool fix;
	/* every 1024 nodes: visited so far, and about how many in all */
	void (*progress)(void *ctx, uint64_t done, uint64_t total);
	void *progress_ctx;
};
/* arb_check with options (NULL: as arb_check).  The report counts what
 * was found, fixed or not. */
int arb_check_ex(struct arb_fs *fs, const struct arb_check_opts *opts,
                 struct arb_check_report *report);

#endif
