/* SPDX-License-Identifier: MIT */
/*
 * node.h - access to the bytes of a tree node (layout in arbor_format.h),
 * its checksum, and the structural checker run on every node read from
 * disk and before every node write.
 */
#ifndef ARBOR_NODE_H
#define ARBOR_NODE_H

#include <endian.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "arbor/btree.h"
#include "arbor_format.h"

#define NODE_HDR ((uint32_t)sizeof(struct arb_node_header))
#define ITEM_SZ ((uint32_t)sizeof(struct arb_item))
#define KPTR_SZ ((uint32_t)sizeof(struct arb_key_ptr))

static inline struct arb_node_header *node_hdr(uint8_t *buf)
{
	return (struct arb_node_header *)buf;
}
static inline const struct arb_node_header *node_chdr(const uint8_t *buf)
{
	return (const struct arb_node_header *)buf;
}
static inline uint32_t node_nritems(const uint8_t *buf)
{
	return le16toh(node_chdr(buf)->nritems);
}
static inline void node_set_nritems(uint8_t *buf, uint32_t n)
{
	node_hdr(buf)->nritems = htole16((uint16_t)n);
}
static inline uint8_t node_level(const uint8_t *buf)
{
	return node_chdr(buf)->level;
}
static inline uint64_t node_gen(const uint8_t *buf)
{
	return le64toh(node_chdr(buf)->generation);
}
static inline uint64_t node_bytenr(const uint8_t *buf)
{
	return le64toh(node_chdr(buf)->bytenr);
}
static inline uint64_t node_owner(const uint8_t *buf)
{
	return le64toh(node_chdr(buf)->owner);
}

/* ---- leaves ----------------------------------------------------------- */
static inline struct arb_item *leaf_item(uint8_t *buf, uint32_t i)
{
	return (struct arb_item *)(buf + NODE_HDR + i * ITEM_SZ);
}
static inline const struct arb_item *leaf_citem(const uint8_t *buf, uint32_t i)
{
	return (const struct arb_item *)(buf + NODE_HDR + i * ITEM_SZ);
}
static inline uint32_t item_off(const uint8_t *buf, uint32_t i)
{
	return le32toh(leaf_citem(buf, i)->offset);
}
static inline uint32_t item_size(const uint8_t *buf, uint32_t i)
{
	return le32toh(leaf_citem(buf, i)->size);
}
static inline uint8_t *item_data(uint8_t *buf, uint32_t i)
{
	return buf + NODE_HDR + item_off(buf, i);
}

/* ---- internal nodes ----------------------------------------------------- */
static inline struct arb_key_ptr *node_kptr(uint8_t *buf, uint32_t i)
{
	return (struct arb_key_ptr *)(buf + NODE_HDR + i * KPTR_SZ);
}
static inline const struct arb_key_ptr *node_ckptr(const uint8_t *buf, uint32_t i)
{
	return (const struct arb_key_ptr *)(buf + NODE_HDR + i * KPTR_SZ);
}

/* Key of entry i (item or pointer: both start with the disk key). */
static inline const struct arb_disk_key *node_dkey(const uint8_t *buf, uint32_t i)
{
	uint32_t sz = node_level(buf) ? KPTR_SZ : ITEM_SZ;

	return (const struct arb_disk_key *)(buf + NODE_HDR + i * sz);
}

static inline int dkey_cmp(const struct arb_disk_key *d, const struct arb_key *k)
{
	uint64_t o = le64toh(d->objectid);

	if (o != k->objectid)
		return o < k->objectid ? -1 : 1;
	if (d->type != k->type)
		return d->type < k->type ? -1 : 1;
	uint64_t off = le64toh(d->offset);

	if (off != k->offset)
		return off < k->offset ? -1 : 1;
	return 0;
}

/* Index of the first entry >= key (nritems if none). */
uint32_t node_lower_bound(const uint8_t *buf, const struct arb_key *key);

uint32_t node_usable(uint32_t nodesize);
/* Bytes used by the leaf's items and data. */
uint32_t leaf_used(const uint8_t *buf, uint32_t nodesize);
uint32_t leaf_free(const uint8_t *buf, uint32_t nodesize);
uint32_t node_max_ptrs(uint32_t nodesize);

uint32_t node_csum(const uint8_t *buf, uint32_t nodesize);
void node_set_csum(uint8_t *buf, uint32_t nodesize);
uint32_t node_stored_csum(const uint8_t *buf);

/* Structural check; returns NULL when sound or a description of the first
 * problem found.  total_bytes bounds child pointers. */
const char *node_check(const uint8_t *buf, uint32_t nodesize, uint64_t total_bytes, bool is_root);

/* Initialise an empty node. */
void node_init(uint8_t *buf, uint32_t nodesize, const uint8_t fsid[16], uint64_t bytenr,
               uint64_t gen, uint64_t owner, uint8_t level);

#endif
