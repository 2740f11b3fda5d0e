/* SPDX-License-Identifier: MIT */
/* node.c - node checksum, structure checker and helpers (see node.h). */
#include "node.h"
#include "arbor/crc32c.h"

uint32_t node_usable(uint32_t nodesize)
{
	return nodesize - NODE_HDR;
}

uint32_t node_max_ptrs(uint32_t nodesize)
{
	return node_usable(nodesize) / KPTR_SZ;
}

uint32_t leaf_used(const uint8_t *buf, uint32_t nodesize)
{
	uint32_t n = node_nritems(buf);

	if (n == 0)
		return 0;
	/* data is packed in item order from the end: item n-1 lies lowest */
	return n * ITEM_SZ + (node_usable(nodesize) - item_off(buf, n - 1));
}

uint32_t leaf_free(const uint8_t *buf, uint32_t nodesize)
{
	return node_usable(nodesize) - leaf_used(buf, nodesize);
}

uint32_t node_lower_bound(const uint8_t *buf, const struct arb_key *key)
{
	uint32_t lo = 0, hi = node_nritems(buf);
	uint32_t sz = node_level(buf) ? KPTR_SZ : ITEM_SZ;
	const uint8_t *base = buf + NODE_HDR;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (dkey_cmp((const struct arb_disk_key *)(base + mid * sz), key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

uint32_t node_csum(const uint8_t *buf, uint32_t nodesize)
{
	return arb_crc32c(0, buf + ARB_CSUM_SIZE, nodesize - ARB_CSUM_SIZE);
}

uint32_t node_stored_csum(const uint8_t *buf)
{
	uint32_t v;

	memcpy(&v, buf, sizeof(v));
	return le32toh(v);
}

void node_set_csum(uint8_t *buf, uint32_t nodesize)
{
	uint32_t v = htole32(node_csum(buf, nodesize));

	memset(buf, 0, ARB_CSUM_SIZE);
	memcpy(buf, &v, sizeof(v));
}

void node_init(uint8_t *buf, uint32_t nodesize, const uint8_t fsid[16], uint64_t bytenr,
               uint64_t gen, uint64_t owner, uint8_t level)
{
	struct arb_node_header *h = node_hdr(buf);

	memset(buf, 0, nodesize);
	memcpy(h->fsid, fsid, 16);
	h->bytenr = htole64(bytenr);
	h->generation = htole64(gen);
	h->owner = htole64(owner);
	h->magic = htole32(ARB_NODE_MAGIC);
	h->level = level;
}

static int dkey_order(const struct arb_disk_key *a, const struct arb_disk_key *b)
{
	struct arb_key kb = {le64toh(b->objectid), b->type, le64toh(b->offset)};

	return dkey_cmp(a, &kb);
}

static const char *check_keys(const uint8_t *buf, uint32_t n)
{
	for (uint32_t i = 1; i < n; i++)
		if (dkey_order(node_dkey(buf, i - 1), node_dkey(buf, i)) >= 0)
			return "keys out of order";
	return NULL;
}

static const char *check_leaf(const uint8_t *buf, uint32_t nodesize)
{
	uint32_t n = node_nritems(buf), usable = node_usable(nodesize);
	uint32_t end = usable;

	if ((uint64_t)n * ITEM_SZ > usable)
		return "item count exceeds the node";
	for (uint32_t i = 0; i < n; i++) {
		uint32_t off = item_off(buf, i), size = item_size(buf, i);

		/* items are packed back to back from the end, in key order */
		if (size > end || off != end - size)
			return "item data not packed in order";
		if (off < n * ITEM_SZ)
			return "item data overlaps the item array";
		end = off;
	}
	return check_keys(buf, n);
}

static const char *check_internal(const uint8_t *buf, uint32_t nodesize, uint64_t total_bytes)
{
	uint32_t n = node_nritems(buf);
	uint64_t gen = node_gen(buf);

	if (n == 0)
		return "internal node without pointers";
	if (n > node_max_ptrs(nodesize))
		return "pointer count exceeds the node";
	for (uint32_t i = 0; i < n; i++) {
		const struct arb_key_ptr *p = node_ckptr(buf, i);
		uint64_t b = le64toh(p->bytenr);

		if (b == 0 || b % ARB_SECTOR_SIZE || b > total_bytes - nodesize)
			return "child pointer outside the device";
		if (le64toh(p->generation) > gen)
			return "child generation newer than its parent";
	}
	return check_keys(buf, n);
}

const char *node_check(const uint8_t *buf, uint32_t nodesize, uint64_t total_bytes, bool is_root)
{
	const struct arb_node_header *h = node_chdr(buf);

	if (le32toh(h->magic) != ARB_NODE_MAGIC)
		return "bad node magic";
	/* the checksum field beyond crc32c is not covered by the checksum:
	 * insist it is zero so that no header bit goes unchecked */
	for (uint32_t i = 4; i < ARB_CSUM_SIZE; i++)
		if (h->csum[i])
			return "non-zero bytes in the checksum field";
	if (h->flags || memcmp(h->reserved, (const uint8_t[16]){0}, 16))
		return "non-zero reserved header bytes";
	if (h->level >= 8)
		return "level too high";
	if (h->level == 0) {
		if (node_nritems(buf) == 0 && !is_root)
			return "empty leaf below the root";
		return check_leaf(buf, nodesize);
	}
	return check_internal(buf, nodesize, total_bytes);
}
