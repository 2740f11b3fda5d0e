/* SPDX-License-Identifier: MIT */
/*
 * fsck.h - checking and repairing a whole Arbor filesystem, in phases:
 *
 *   1. the superblock ring and feature flags          (core/fsck.c)
 *   2. every tree: nodes, structure, reference counts, free space
 *                                                      (core/fsck.c, check.c)
 *   3. per subvolume: inodes against back-references against directory
 *      entries against the directory index, link counts, directory sizes,
 *      data extents, the orphan list, unreachable inodes; subvolume links
 *                                                      (core/fsck_fs.c)
 *
 * Every problem is reported through the message channel as one line
 * (ARB_MSG_ERR for a problem, ARB_MSG_INFO for a repair or a figure), and
 * counted in the report.  Repair changes the filesystem only through
 * ordinary transactions (never over a live block) and commits at the end;
 * a second run after a repair finds nothing.
 */
#ifndef ARBOR_FSCK_H
#define ARBOR_FSCK_H

#include <stdbool.h>
#include <stdint.h>

#include "arbor/fs.h"
#include "arbor/msg.h"

/* Progress: phase (1..3), done and total units of the phase. */
typedef void (*arb_fsck_progress_fn)(void *ctx, int phase, uint64_t done, uint64_t total);

struct arb_fsck_opts {
	bool repair;      /* fix what is found (the filesystem was opened writable) */
	bool check_data;  /* read every data sector and verify its checksum */
	bool no_rollback; /* repair, but not by going back to an older commit */
	arb_fsck_progress_fn progress;
	void *progress_ctx;
	arb_msg_fn msg; /* arb_fsck: where the problems go */
	void *msg_ctx;
};

struct arb_fsck_report {
	uint64_t errors; /* problems found, all phases */
	uint64_t fixed;  /* of those, repaired */

	/* phase 1 */
	uint64_t slots_valid, slots_damaged, slots_interrupted;
	uint64_t generation;   /* the commit checked (and, repaired, kept) */
	uint64_t newest_valid; /* the newest commit the ring names */
	uint64_t lost_commits; /* newer commits given up for a damaged tree */
	/* phase 2 */
	uint64_t trees, nodes, bad_nodes, count_errors, dropping;
	uint64_t used_sectors, total_sectors;

	/* phase 3 figures */
	uint64_t subvolumes, inodes, directories, files, symlinks, other;
	uint64_t data_bytes;     /* referenced by file extents */
	uint64_t data_checked;   /* bytes whose checksum was verified (check_data) */
	uint64_t lost_and_found; /* inodes reattached */
};

/*
 * The whole check of the filesystem on dev, and with o->repair its repair:
 * phases 1 to 3, then one commit (and, when superblock slots were damaged,
 * enough commits to rewrite every slot).  When a tree of the newest commit
 * is damaged, the newest older commit of the ring whose trees are intact
 * is used instead, and each commit given up is reported (repair makes the
 * choice permanent).  Returns 0 when it ran (see the report: errors,
 * fixed), or a negative errno when it could not check (no superblock,
 * unsupported features, I/O).
 */
int arb_fsck(struct arb_dev *dev, const struct arb_fsck_opts *o, struct arb_fsck_report *r);

/* Phase 3 alone, on an open filesystem whose trees and counts are sound
 * (phases 1 and 2 passed or were repaired).  Adds to *r.  Returns 0, or a
 * negative errno when it could not run (not for problems found). */
int arb_fsck_namespace(struct arb_fs *fs, const struct arb_fsck_opts *o, struct arb_fsck_report *r);

#endif
