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
};

/* Check the last committed state plus the running transaction.  Returns 0
 * when clean, -EUCLEAN when problems were found (details through the message
 * channel and the report), other negative errno on operational failure. */
int arb_check(struct arb_fs *fs, struct arb_check_report *report);

#endif
