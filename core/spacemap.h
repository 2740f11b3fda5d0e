/* SPDX-License-Identifier: MIT */
/*
 * spacemap.h - reference counts of every sector and the allocator.
 *
 * The whole space map is held in memory while the filesystem is open: the
 * chunk items of the space tree (2-bit counts, see arbor_format.h) plus the
 * overflow counts.  It costs 1/16384 of the device (64 MiB per TiB, and only
 * for the parts ever used), is read once at open, and means no B-tree search
 * ever happens inside an allocation.  Commit writes the dirty chunks back
 * into the space tree.
 *
 * Allocation is next-fit from a cursor that moves forward through the device
 * and wraps, so the blocks of one commit land together and sequentially.
 */
#ifndef ARBOR_SPACEMAP_H
#define ARBOR_SPACEMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arbor_format.h"

struct arb_sm_chunk {
	uint8_t *counts;   /* chunk_bytes of 2-bit counts */
	uint32_t nsectors; /* sectors covered (the last chunk may be short) */
	uint32_t used;     /* sectors with a non-zero count */
	uint32_t nquar;    /* sectors in quarantine (count zero, not reusable yet) */
	uint8_t *quar;     /* 1 bit per sector, NULL while nothing is quarantined */
	bool dirty;        /* differs from the space tree */
	bool on_disk;      /* the space tree holds an item for it */
};

struct arb_sm_overflow {
	uint64_t sector;
	uint32_t count; /* 0: deleted entry */
	bool dirty;
	bool used; /* slot holds an entry */
};

struct arb_extent {
	uint64_t bytenr;
	uint64_t nsectors;
};

/* Ranges freed by one commit: counted zero, but reusable only once the
 * superblock ring has moved past that commit (invariant 4). */
struct arb_sm_qlist {
	uint64_t gen;
	struct arb_extent *ext;
	size_t n, cap;
};

struct arb_spacemap {
	uint32_t sectorsize;
	uint32_t chunk_sectors, chunk_bytes;
	uint64_t total_sectors;
	uint64_t nchunks;
	struct arb_sm_chunk **chunks; /* NULL: every count zero */

	struct arb_sm_overflow *ovf; /* open-addressing hash of counts >= 3 */
	size_t ovf_cap, ovf_count;

	uint64_t resv_start[ARB_SUPER_COPIES + 1], resv_end[ARB_SUPER_COPIES + 1];
	int nresv;
	uint64_t resv_sectors; /* never allocatable: head and superblock copies */

	uint64_t sectors_used;
	/* node-aligned groups of node_sectors sectors that are wholly free: a
	 * node fits only there, so free sectors scattered in smaller holes
	 * (data freed sector by sector) do not count for metadata */
	uint32_t node_sectors;
	uint64_t free_groups;
	uint64_t zero_groups;     /* the same counting quarantined sectors free */
	uint64_t cursor;          /* sector where the next search starts */
	uint64_t reserve_sectors; /* kept free for commits */

	/* frees of this transaction, still counted until its commit */
	struct arb_extent *pending;
	size_t npending, pending_cap;
	uint64_t pending_sectors;
	uint64_t defer_item_sectors; /* frees carried over in DEFER items */
	struct arb_sm_qlist q[ARB_DEFER_COMMITS];
	uint64_t quarantined;
};

int arb_sm_init(struct arb_spacemap *sm, uint64_t total_bytes, uint32_t sectorsize,
                uint32_t nodesize, const uint64_t *super_offsets, int ncopies);
void arb_sm_destroy(struct arb_spacemap *sm);

/* Load one chunk item / overflow item read from the space tree at open. */
int arb_sm_load_chunk(struct arb_spacemap *sm, uint64_t idx, const void *data, uint32_t len);
int arb_sm_load_overflow(struct arb_spacemap *sm, uint64_t bytenr, uint32_t count);
/* Recount sectors_used from the loaded chunks. */
uint64_t arb_sm_count_used(const struct arb_spacemap *sm);

bool arb_sm_valid_range(const struct arb_spacemap *sm, uint64_t bytenr, uint64_t nsectors);
uint32_t arb_sm_get(const struct arb_spacemap *sm, uint64_t bytenr);
/* Add delta to the count of each sector of the range; -EUCLEAN if a count
 * would go negative or the range is not allocatable space. */
int arb_sm_add(struct arb_spacemap *sm, uint64_t bytenr, uint64_t nsectors, int delta);

/* Find nsectors free sectors aligned to `align` sectors, count them 1.
 * -ENOSPC if fewer than keep_free sectors would be left free. */
int arb_sm_alloc(struct arb_spacemap *sm, uint64_t nsectors, uint32_t align, uint64_t keep_free,
                 uint64_t *ret_bytenr);
/* What an allocation outside a commit leaves free: the quarter of the
 * reserve that is the commits' alone.  The operations themselves are
 * admitted up front against their tier (vfs_reserve), so this is only the
 * backstop that keeps a commit possible. */
static inline uint64_t arb_sm_commit_quarter(const struct arb_spacemap *sm)
{
	return sm->reserve_sectors / 4;
}

/* Queue a range whose last reference went away in this transaction; it
 * stays counted 1 until the commit lists it as freed. */
int arb_sm_defer(struct arb_spacemap *sm, uint64_t bytenr, uint64_t nsectors);

/* Keep a range freed by commit gen from reuse (its count is already 0). */
int arb_sm_quarantine(struct arb_spacemap *sm, uint64_t gen, uint64_t bytenr, uint64_t nsectors);
/* Make reusable every range freed by a commit <= gen. */
void arb_sm_expire(struct arb_spacemap *sm, uint64_t gen);

uint64_t arb_sm_free_sectors(const struct arb_spacemap *sm);
/* Count free_groups and zero_groups afresh from the counts and the
 * quarantine (after loading; arb_check compares). */
void arb_sm_count_groups(const struct arb_spacemap *sm, uint64_t *ret_free, uint64_t *ret_zero);
uint64_t arb_sm_total_sectors(const struct arb_spacemap *sm);

#endif
