/* SPDX-License-Identifier: MIT */
/*
 * super.h - the superblock ring: placement of the copies, reading every slot
 * (for mount, inspect and fsck), and writing one slot everywhere (commit).
 */
#ifndef ARBOR_SUPER_H
#define ARBOR_SUPER_H

#include <stdint.h>

#include "arbor/io.h"
#include "arbor_format.h"

/* Byte offsets of the superblock copies a device of this size holds.
 * Returns how many (1..ARB_SUPER_COPIES), 0 if the device is too small. */
int arb_super_copies(uint64_t dev_size, uint64_t offsets[ARB_SUPER_COPIES]);

enum arb_slot_status {
	ARB_SLOT_VALID = 0,
	ARB_SLOT_EMPTY = 1,     /* all zero or no magic */
	ARB_SLOT_BAD_CSUM = 2,  /* magic present, checksum wrong (torn write, rot) */
	ARB_SLOT_BAD_FIELD = 3, /* checksum fine, a field is impossible */
	ARB_SLOT_IO_ERROR = 4,
};

struct arb_super_slot {
	uint64_t offset;
	int copy, slot;
	enum arb_slot_status status;
	struct arb_super sb; /* raw on-disk (little-endian) contents */
};

/* Read every slot of every copy (up to ARB_SUPER_COPIES * ARB_SUPER_SLOTS).
 * Returns the number of slots read or a negative errno. */
int arb_super_read_all(struct arb_dev *dev, struct arb_super_slot *slots, int max);

/* Validate one raw slot read from `offset`; fills nothing. */
enum arb_slot_status arb_super_validate(const struct arb_super *sb, uint64_t offset);

/* Compute and store the checksum of a slot. */
void arb_super_set_csum(struct arb_super *sb);

const char *arb_slot_status_str(enum arb_slot_status st);

#endif
