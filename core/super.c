/* SPDX-License-Identifier: MIT */
/* super.c - superblock copies and slots (see arbor/super.h). */
#include <endian.h>
#include <errno.h>
#include <string.h>

#include "arbor/crc32c.h"
#include "arbor/super.h"

int arb_super_copies(uint64_t dev_size, uint64_t offsets[ARB_SUPER_COPIES])
{
	static const uint64_t fixed[] = {ARB_SUPER_OFFSET0, ARB_SUPER_OFFSET1, ARB_SUPER_OFFSET2};
	uint64_t tail, end = 0;
	int n = 0;

	if (dev_size < ARB_MIN_DEVICE_SIZE)
		return 0;
	tail = (dev_size - ARB_SUPER_TAIL_GAP) & ~(ARB_SUPER_TAIL_GAP - 1);
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
		if (fixed[i] + ARB_SUPER_COPY_SIZE > tail)
			break;
		offsets[n++] = fixed[i];
		end = fixed[i] + ARB_SUPER_COPY_SIZE;
	}
	if (tail >= end)
		offsets[n++] = tail;
	return n;
}

static uint32_t super_csum(const struct arb_super *sb)
{
	return arb_crc32c(0, (const uint8_t *)sb + ARB_CSUM_SIZE, sizeof(*sb) - ARB_CSUM_SIZE);
}

void arb_super_set_csum(struct arb_super *sb)
{
	uint32_t v = htole32(super_csum(sb));

	memset(sb->csum, 0, sizeof(sb->csum));
	memcpy(sb->csum, &v, sizeof(v));
}

static bool power_of_two(uint32_t v)
{
	return v && !(v & (v - 1));
}

enum arb_slot_status arb_super_validate(const struct arb_super *sb, uint64_t offset)
{
	uint32_t stored;
	uint32_t nodesize = le32toh(sb->nodesize);

	if (le64toh(sb->magic) != ARB_SUPER_MAGIC)
		return ARB_SLOT_EMPTY;
	memcpy(&stored, sb->csum, sizeof(stored));
	if (le32toh(stored) != super_csum(sb))
		return ARB_SLOT_BAD_CSUM;
	for (size_t i = 4; i < sizeof(sb->csum); i++)
		if (sb->csum[i]) /* outside the checksum: must be zero */
			return ARB_SLOT_BAD_FIELD;
	if (le64toh(sb->bytenr) != offset || le32toh(sb->sectorsize) != ARB_SECTOR_SIZE ||
	    !power_of_two(nodesize) || nodesize < ARB_MIN_NODESIZE || nodesize > ARB_MAX_NODESIZE ||
	    le64toh(sb->generation) == 0 || le64toh(sb->total_bytes) < ARB_MIN_DEVICE_SIZE ||
	    le64toh(sb->total_bytes) % ARB_SECTOR_SIZE)
		return ARB_SLOT_BAD_FIELD;
	return ARB_SLOT_VALID;
}

const char *arb_slot_status_str(enum arb_slot_status st)
{
	switch (st) {
	case ARB_SLOT_VALID:
		return "valid";
	case ARB_SLOT_EMPTY:
		return "empty";
	case ARB_SLOT_BAD_CSUM:
		return "bad checksum";
	case ARB_SLOT_BAD_FIELD:
		return "impossible field";
	case ARB_SLOT_IO_ERROR:
		return "read error";
	}
	return "unknown";
}

static int read_copy(struct arb_dev *dev, uint64_t base, int copy, struct arb_super_slot *slots,
                     int room)
{
	int n = 0;

	for (uint32_t s = 0; s < ARB_SUPER_SLOTS && n < room; s++, n++) {
		struct arb_super_slot *sl = &slots[n];

		memset(sl, 0, sizeof(*sl));
		sl->offset = base + (uint64_t)s * ARB_SUPER_SLOT_SIZE;
		sl->copy = copy;
		sl->slot = (int)s;
		if (arb_dev_read(dev, &sl->sb, sizeof(sl->sb), sl->offset))
			sl->status = ARB_SLOT_IO_ERROR;
		else
			sl->status = arb_super_validate(&sl->sb, sl->offset);
	}
	return n;
}

/* The filesystem may be smaller than the device (formatted with a size):
 * the newest valid slot of copy 0 says where the other copies are. */
static uint64_t fs_size_hint(const struct arb_dev *dev, const struct arb_super_slot *slots, int n)
{
	uint64_t best_gen = 0, size = dev->size;

	for (int i = 0; i < n; i++) {
		uint64_t gen = le64toh(slots[i].sb.generation);
		uint64_t total = le64toh(slots[i].sb.total_bytes);

		if (slots[i].status == ARB_SLOT_VALID && gen > best_gen && total <= dev->size) {
			best_gen = gen;
			size = total;
		}
	}
	return size;
}

int arb_super_read_all(struct arb_dev *dev, struct arb_super_slot *slots, int max)
{
	uint64_t offs[ARB_SUPER_COPIES];
	int n, ncopies;

	if (max <= 0 || dev->size < ARB_MIN_DEVICE_SIZE)
		return -EINVAL;
	n = read_copy(dev, ARB_SUPER_OFFSET0, 0, slots, max);
	ncopies = arb_super_copies(fs_size_hint(dev, slots, n), offs);
	for (int c = 1; c < ncopies && n < max; c++)
		n += read_copy(dev, offs[c], c, slots + n, max - n);
	return n;
}
