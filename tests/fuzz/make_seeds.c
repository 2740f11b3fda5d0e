/* SPDX-License-Identifier: MIT */
/*
 * make_seeds.c - write the seed inputs of the fuzz harnesses into a
 * directory: make_seeds DIR.
 *
 * Inputs patch the base image (fuzz.h), so the seeds are made from it:
 * the unchanged image, the flag variants, and for each kind of metadata
 * (superblock fields, node header fields, each item type's length and
 * pointer fields, fsync log fields) one patch that puts an impossible
 * value there.  The fuzzer mutates from these.  Run it again (make
 * fuzz-seeds) whenever the format or the base image changes.
 */
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arbor/super.h"
#include "arbor_format.h"
#include "fuzz.h"

struct seed {
	uint8_t buf[256];
	size_t len;
};

static const char *out_dir;
static unsigned nseeds;

static void save(const struct seed *s, const char *what)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/seed-%03u-%s", out_dir, nseeds++, what);
	f = fopen(path, "wb");
	if (!f || fwrite(s->buf, 1, s->len, f) != s->len || fclose(f)) {
		fprintf(stderr, "make_seeds: cannot write %s\n", path);
		exit(1);
	}
}

/* One patch: value (le, width bytes) at offset off of block idx. */
static void patch(struct seed *s, size_t idx, uint32_t off, uint64_t value, unsigned width)
{
	uint8_t *p = s->buf + s->len;

	p[0] = (uint8_t)idx;
	p[1] = (uint8_t)off;
	p[2] = (uint8_t)(off >> 8);
	p[3] = (uint8_t)width;
	for (unsigned i = 0; i < width; i++)
		p[4 + i] = (uint8_t)(value >> (8 * i));
	s->len += 4 + width;
}

static void one(unsigned flags, size_t idx, uint32_t off, uint64_t value, unsigned width,
                const char *what)
{
	struct seed s = {.buf = {(uint8_t)flags}, .len = 1};

	patch(&s, idx, off, value, width);
	save(&s, what);
}

/* ---- superblock slots and node headers --------------------------------------- */

static void super_seeds(size_t idx)
{
	one(0, idx, offsetof(struct arb_super, generation), 99, 8, "sb-generation");
	one(0, idx, offsetof(struct arb_super, root_tree) + 24, 6, 1, "sb-root-level");
	one(0, idx, offsetof(struct arb_super, space_tree), 65536, 8, "sb-space-bytenr");
	one(0, idx, offsetof(struct arb_super, total_bytes), 1ull << 40, 8, "sb-total");
	one(0, idx, offsetof(struct arb_super, freed_count), 0xffff, 4, "sb-freed-count");
	one(0, idx, offsetof(struct arb_super, freed), 4096, 8, "sb-freed");
	one(0, idx, offsetof(struct arb_super, next_tree_id), 1, 8, "sb-next-tree");
	one(0, idx, offsetof(struct arb_super, log_bytenr), 65536 + 16384, 8, "sb-log");
	one(0, idx, offsetof(struct arb_super, incompat), 0, 8, "sb-incompat");
}

static void header_seeds(size_t idx)
{
	one(0, idx, offsetof(struct arb_node_header, nritems), 0x1ff, 2, "node-nritems");
	one(0, idx, offsetof(struct arb_node_header, level), 1, 1, "node-level");
	one(0, idx, offsetof(struct arb_node_header, bytenr), 8192, 8, "node-bytenr");
	one(0, idx, offsetof(struct arb_node_header, owner), 2, 8, "node-owner");
	one(FZ_NO_NODE_SEAL, idx, 100, 0xff, 1, "node-unsealed");
}

/* ---- items ----------------------------------------------------------------------------- */

struct field {
	uint8_t type;
	uint32_t off;
	unsigned width;
	uint64_t value;
	const char *what;
};

static const struct field fields[] = {
        {ARB_INODE_ITEM_KEY, offsetof(struct arb_inode_item, size), 8, 1ull << 62, "inode-size"},
        {ARB_INODE_ITEM_KEY, offsetof(struct arb_inode_item, mode), 4, 0040755, "inode-mode"},
        {ARB_INODE_ITEM_KEY, offsetof(struct arb_inode_item, nlink), 4, 0, "inode-nlink"},
        {ARB_INODE_REF_KEY, offsetof(struct arb_inode_ref, name_len), 2, 0xffff, "iref-namelen"},
        {ARB_INODE_REF_KEY, offsetof(struct arb_inode_ref, parent), 8, 999, "iref-parent"},
        {ARB_XATTR_ITEM_KEY, offsetof(struct arb_xattr, name_len), 2, 0x1000, "xattr-namelen"},
        {ARB_XATTR_ITEM_KEY, offsetof(struct arb_xattr, value_len), 2, 0xffff, "xattr-valuelen"},
        {ARB_DIR_ITEM_KEY, offsetof(struct arb_dir_entry, name_len), 2, 0x200, "ditem-namelen"},
        {ARB_DIR_ITEM_KEY, offsetof(struct arb_dir_entry, ino), 8, 256, "ditem-ino"},
        {ARB_DIR_INDEX_KEY, offsetof(struct arb_dir_entry, name_len), 2, 0, "dindex-namelen"},
        {ARB_DIR_INDEX_KEY, offsetof(struct arb_dir_entry, type), 1, ARB_DT_SUBVOL, "dindex-type"},
        {ARB_EXTENT_DATA_KEY, offsetof(struct arb_file_extent, num_bytes), 8, 1ull << 63,
         "extent-numbytes"},
        {ARB_EXTENT_DATA_KEY, offsetof(struct arb_file_extent, disk_bytenr), 8, 1ull << 40,
         "extent-bytenr"},
        {ARB_EXTENT_DATA_KEY, offsetof(struct arb_file_extent, type), 1, 9, "extent-type"},
        {ARB_ORPHAN_KEY, 0, 1, 1, "orphan-data"},
        {ARB_SUBVOL_INFO_KEY, 0, 8, 0, "subvol-next-ino"},
        {ARB_ROOT_ITEM_KEY, 24, 1, 7, "root-item-level"},
        {ARB_ROOT_ITEM_KEY, offsetof(struct arb_root_item, flags), 8, ARB_ROOT_DROPPING,
         "root-item-flags"},
        {ARB_ROOT_ITEM_KEY, offsetof(struct arb_root_item, drop_key), 8, 300, "root-item-drop"},
        {ARB_ROOT_REF_KEY, offsetof(struct arb_root_ref, name_len), 2, 0xfff, "root-ref-namelen"},
        {ARB_ROOT_BACKREF_KEY, offsetof(struct arb_root_ref, dirid), 8, 5, "root-backref-dirid"},
        {ARB_DEFAULT_SUBVOL_KEY, 0, 8, 1, "default-subvol"},
        {ARB_SM_CHUNK_KEY, 0, 8, UINT64_MAX, "sm-chunk"},
        {ARB_SM_DEFER_KEY, 0, 8, 0, "sm-defer"},
};

/* The first item of this type in the leaf at img + off: its data's offset
 * in the node, or 0. */
static uint32_t find_item(const uint8_t *node, uint8_t type)
{
	const struct arb_node_header *h = (const void *)node;
	const struct arb_item *it = (const void *)(node + sizeof(*h));

	if (le32toh(h->magic) != ARB_NODE_MAGIC || h->level)
		return 0;
	for (uint32_t i = 0; i < le16toh(h->nritems); i++)
		if (it[i].key.type == type)
			return (uint32_t)sizeof(*h) + le32toh(it[i].offset);
	return 0;
}

static void item_seeds(const uint8_t *img, const struct fz_block *b, size_t nb)
{
	for (size_t f = 0; f < sizeof(fields) / sizeof(fields[0]); f++)
		for (size_t i = 0; i < nb; i++) {
			uint32_t at = find_item(img + b[i].offset, fields[f].type);

			if (!at)
				continue;
			one(0, i, at + fields[f].off, fields[f].value, fields[f].width,
			    fields[f].what);
			break;
		}
}

/* Item 0 of the first leaf: its size and offset fields. */
static void item_header_seeds(const uint8_t *img, const struct fz_block *b, size_t nb)
{
	uint32_t it0 = (uint32_t)sizeof(struct arb_node_header);

	for (size_t i = 0; i < nb; i++)
		if (find_item(img + b[i].offset, ARB_INODE_ITEM_KEY)) {
			one(0, i, it0 + offsetof(struct arb_item, size), 4000, 4, "item-size");
			one(0, i, it0 + offsetof(struct arb_item, offset), 0, 4, "item-offset");
			return;
		}
}

static bool is_node(const uint8_t *img, const struct fz_block *b)
{
	const struct arb_node_header *h = (const void *)(img + b->offset);

	return le32toh(h->magic) == ARB_NODE_MAGIC;
}

/* The slot of the newest commit. */
static size_t newest_slot(const uint8_t *img, const struct fz_block *b, size_t nb)
{
	uint64_t best_gen = 0;
	size_t best = 0;

	for (size_t i = 0; i < nb; i++) {
		const struct arb_super *sb = (const void *)(img + b[i].offset);

		if (le64toh(sb->magic) == ARB_SUPER_MAGIC && le64toh(sb->generation) > best_gen) {
			best_gen = le64toh(sb->generation);
			best = i;
		}
	}
	return best;
}

static bool is_log(const uint8_t *img, const struct fz_block *b)
{
	const struct arb_log_header *lh = (const void *)(img + b->offset);

	return le64toh(lh->magic) == ARB_LOG_MAGIC;
}

static void log_seeds(const uint8_t *img, const struct fz_block *b, size_t nb)
{
	uint32_t rec = (uint32_t)sizeof(struct arb_log_header);

	for (size_t i = 0; i < nb; i++)
		if (is_log(img, &b[i])) {
			one(0, i, offsetof(struct arb_log_header, used), 0xffff, 4, "log-used");
			one(0, i, rec + offsetof(struct arb_log_rec, len), 0xfffff, 4,
			    "log-rec-len");
			one(0, i, rec + offsetof(struct arb_log_rec, type), 9, 1, "log-rec-type");
			one(0, i, rec + offsetof(struct arb_log_rec, num_bytes), 1ull << 60, 8,
			    "log-rec-bytes");
			one(0, i, offsetof(struct arb_log_header, next), 4096, 8, "log-next");
			return;
		}
}

int main(int argc, char **argv)
{
	const struct fz_block *b;
	const uint8_t *img = fz_base_image();
	struct seed s = {.len = 1};
	size_t nb;

	if (argc != 2 || !img) {
		fprintf(stderr, "usage: make_seeds DIR\n");
		return 2;
	}
	out_dir = argv[1];
	nb = fz_blocks(&b);
	save(&s, "base");
	for (unsigned back = 1; back <= FZ_GEN_BACK_MASK; back++) {
		s.buf[0] = (uint8_t)(back << FZ_GEN_BACK_SHIFT);
		save(&s, "older-commit");
	}
	super_seeds(newest_slot(img, b, nb));
	for (size_t i = 0; i < nb; i++)
		if (is_node(img, &b[i])) {
			header_seeds(i);
			break;
		}
	item_header_seeds(img, b, nb);
	item_seeds(img, b, nb);
	log_seeds(img, b, nb);
	printf("%u seeds in %s (base image: %zu metadata blocks)\n", nseeds, out_dir, nb);
	return 0;
}
