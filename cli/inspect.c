/* SPDX-License-Identifier: MIT */
/*
 * inspect.c - "arbor inspect": read-only views of an image for debugging
 * (superblock slots, tree nodes), plus the decoders of engine items that
 * other commands share.
 */
#include <ctype.h>
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uuid/uuid.h>

#include "cli.h"
#include "corrupt.h"

#include "arbor/btree.h"
#include "arbor/fs.h"
#include "arbor/super.h"

#define MAX_SLOTS (ARB_SUPER_COPIES * ARB_SUPER_SLOTS)
/* Bytes shown of items the tool cannot decode. */
#define DUMP_HEX_BYTES 32u

/* ---- shared decoders ----------------------------------------------------- */

void cli_print_uuid(const uint8_t uuid[16], char out[37])
{
	uuid_unparse(uuid, out);
}

void cli_hexdump(const void *data, uint32_t len, const char *indent)
{
	const uint8_t *p = data;

	for (uint32_t off = 0; off < len; off += 16) {
		uint32_t n = len - off < 16 ? len - off : 16;

		printf("%s%04" PRIx32 " ", indent, off);
		for (uint32_t i = 0; i < 16; i++) {
			if (i < n)
				printf(" %02x", p[off + i]);
			else
				printf("   ");
		}
		printf("  |");
		for (uint32_t i = 0; i < n; i++)
			putchar(isprint(p[off + i]) ? p[off + i] : '.');
		printf("|\n");
	}
}

static bool is_text(const uint8_t *p, uint32_t len)
{
	for (uint32_t i = 0; i < len; i++) {
		if (p[i] < 0x20 || p[i] > 0x7e)
			return false;
	}
	return true;
}

void cli_print_value(const void *data, uint32_t len, bool hex)
{
	if (hex || !is_text(data, len))
		cli_hexdump(data, len, "");
	else
		printf("%.*s\n", (int)len, (const char *)data);
}

int cli_decode_root_item(uint64_t id, const void *data, uint32_t len, struct cli_root_info *ret)
{
	struct arb_root_item ri;

	if (len < sizeof(ri))
		return -EUCLEAN;
	memcpy(&ri, data, sizeof(ri));
	memset(ret, 0, sizeof(*ret));
	ret->id = id;
	ret->bytenr = le64toh(ri.root.bytenr);
	ret->generation = le64toh(ri.root.generation);
	ret->csum = le64toh(ri.root.csum);
	ret->level = ri.root.level;
	ret->last_snapshot = le64toh(ri.last_snapshot);
	ret->flags = le64toh(ri.flags);
	ret->create_gen = le64toh(ri.create_gen);
	ret->ctime_sec = le64toh(ri.ctime_sec);
	ret->ctime_nsec = le32toh(ri.ctime_nsec);
	ret->parent_id = le64toh(ri.parent_id);
	memcpy(ret->uuid, ri.uuid, sizeof(ret->uuid));
	memcpy(ret->parent_uuid, ri.parent_uuid, sizeof(ret->parent_uuid));
	return 0;
}

static int visit_root_items(struct arb_iter *it, cli_root_fn fn, void *ctx)
{
	struct arb_key key;
	const void *data;
	uint32_t len;
	int ret;

	while ((ret = arb_iter_next(it, &key, &data, &len)) == 1) {
		struct cli_root_info ri;

		if (key.type != ARB_ROOT_ITEM_KEY)
			continue;
		if (cli_decode_root_item(key.objectid, data, len, &ri)) {
			cli_warning("root item of tree %" PRIu64 " is too short (%" PRIu32
			            " bytes)",
			            key.objectid, len);
			continue;
		}
		ret = fn(ctx, &ri);
		if (ret)
			return ret;
	}
	if (ret < 0)
		cli_error("cannot read the root tree: %s", strerror(-ret));
	return ret;
}

int cli_for_each_root(struct cli_fs *cfs, cli_root_fn fn, void *ctx)
{
	struct arb_key start = ARB_KEY_MIN;
	struct arb_tree *root;
	struct arb_iter *it;
	int ret;

	ret = cli_get_tree(cfs, ARB_ROOT_TREE_ID, &root);
	if (ret < 0)
		return ret;
	ret = arb_iter_open(root, &start, ARB_ITER_FORWARD, &it);
	if (ret < 0) {
		cli_error("cannot read the root tree: %s", strerror(-ret));
		return ret;
	}
	ret = visit_root_items(it, fn, ctx);
	arb_iter_close(it);
	return ret;
}

/* ---- inspect superblock ---------------------------------------------------- */

/* What arb_open picks on this device. */
struct mount_pick {
	int ret; /* arb_open's result */
	uint64_t generation;
	uint64_t fallback_from;
};

static void find_mount_pick(struct arb_dev *dev, struct mount_pick *pick)
{
	struct arb_fs_info info;

	memset(pick, 0, sizeof(*pick));
	pick->ret = cli_fs_info_of(dev, &info);
	if (pick->ret < 0)
		return;
	pick->generation = info.generation;
	pick->fallback_from = info.fallback_from;
}

static void print_blkptr(const char *name, const struct arb_blkptr *p)
{
	printf("    %-14s bytenr %" PRIu64 " gen %" PRIu64 " level %u csum 0x%08" PRIx64 "\n", name,
	       le64toh(p->bytenr), le64toh(p->generation), p->level, le64toh(p->csum));
}

static void print_label(const char *label, size_t max)
{
	size_t n = strnlen(label, max);

	printf("    %-14s \"", "label");
	for (size_t i = 0; i < n; i++)
		putchar(isprint((unsigned char)label[i]) ? label[i] : '?');
	printf("\"\n");
}

static void print_slot_fields(const struct arb_super *sb)
{
	char uuid[37];

	printf("    %-14s %" PRIu64 "\n", "generation", le64toh(sb->generation));
	print_blkptr("root_tree", &sb->root_tree);
	print_blkptr("space_tree", &sb->space_tree);
	printf("    %-14s %" PRIu64 "\n", "sectors_used", le64toh(sb->sectors_used));
	printf("    %-14s %" PRIu64 "\n", "total_bytes", le64toh(sb->total_bytes));
	printf("    %-14s %" PRIu32 "\n", "nodesize", le32toh(sb->nodesize));
	if (sb->log_bytenr)
		printf("    %-14s %" PRIu64 " (nonce %016" PRIx64 ")\n", "fsync_log",
		       le64toh(sb->log_bytenr), le64toh(sb->log_nonce));
	cli_print_uuid(sb->fsid, uuid);
	printf("    %-14s %s\n", "fsid", uuid);
	print_label(sb->label, sizeof(sb->label));
}

static bool slot_is_bad(enum arb_slot_status st)
{
	return st != ARB_SLOT_VALID && st != ARB_SLOT_EMPTY;
}

static void print_slot(const struct arb_super_slot *s, bool picked)
{
	printf("copy %d slot %d offset %" PRIu64 " (0x%" PRIx64 "): %s%s%s\n", s->copy, s->slot,
	       s->offset, s->offset, arb_slot_status_str(s->status),
	       slot_is_bad(s->status) ? " [BAD]" : "", picked ? "  <== mount" : "");
	if (s->status == ARB_SLOT_EMPTY || s->status == ARB_SLOT_IO_ERROR)
		return;
	if (s->status != ARB_SLOT_VALID)
		printf("    (fields below failed verification)\n");
	print_slot_fields(&s->sb);
}

/* Index of the slot mount uses: the first valid one holding its generation. */
static int picked_slot(const struct arb_super_slot *slots, int n, const struct mount_pick *pick)
{
	if (pick->ret < 0)
		return -1;
	for (int i = 0; i < n; i++) {
		if (slots[i].status == ARB_SLOT_VALID &&
		    le64toh(slots[i].sb.generation) == pick->generation)
			return i;
	}
	return -1;
}

static void print_pick(const struct arb_super_slot *slots, int picked,
                       const struct mount_pick *pick)
{
	if (pick->ret < 0) {
		printf("mount: fails (%s)\n", strerror(-pick->ret));
		return;
	}
	printf("mount: generation %" PRIu64, pick->generation);
	if (picked >= 0)
		printf(" (copy %d slot %d)", slots[picked].copy, slots[picked].slot);
	if (pick->fallback_from)
		printf(", fell back from generation %" PRIu64, pick->fallback_from);
	printf("\n");
}

static void print_copies(uint64_t dev_size)
{
	uint64_t offsets[ARB_SUPER_COPIES];
	int n = arb_super_copies(dev_size, offsets);

	printf("device size %" PRIu64 ", %d superblock cop%s at", dev_size, n,
	       n == 1 ? "y" : "ies");
	for (int i = 0; i < n; i++)
		printf(" %" PRIu64, offsets[i]);
	printf("\n\n");
}

static int print_superblocks(struct arb_dev *dev, struct arb_super_slot *slots)
{
	struct mount_pick pick;
	int n, picked;

	n = arb_super_read_all(dev, slots, MAX_SLOTS);
	if (n < 0) {
		cli_error("cannot read the superblocks of %s: %s", cli_globals.image, strerror(-n));
		return n;
	}
	find_mount_pick(dev, &pick);
	picked = picked_slot(slots, n, &pick);
	print_copies(dev->size);
	for (int i = 0; i < n; i++)
		print_slot(&slots[i], i == picked);
	printf("\n");
	print_pick(slots, picked, &pick);
	return 0;
}

static int show_superblocks(struct arb_dev *dev, void *arg)
{
	struct arb_super_slot *slots = calloc(MAX_SLOTS, sizeof(*slots));
	int ret;

	if (!slots) {
		cli_error("out of memory");
		return -ENOMEM;
	}
	ret = print_superblocks(dev, slots);
	free(slots);
	return ret;
}

static int cmd_inspect_superblock(const struct cmd_struct *cmd, int argc, char **argv)
{
	cli_no_options(cmd, argc, argv, 0, 0);
	return cli_with_dev(true, show_superblocks, NULL);
}

static const char *const cmd_inspect_superblock_usage[] = {
        "arbor -i IMAGE inspect superblock",
        "",
        "Print every slot of every superblock copy.",
        "",
        "For each slot: its place, its status, and the fields a mount relies on",
        "(generation, root and space tree pointers, sectors used, node size, fsid,",
        "label).  Slots that fail verification are flagged [BAD]; the slot a",
        "mount would use is marked '<== mount'.",
        NULL,
};

static const struct cmd_struct cmd_struct_inspect_superblock = {
        "superblock", cmd_inspect_superblock, cmd_inspect_superblock_usage, NULL, CMD_IMAGE};

/* ---- inspect dump-tree ------------------------------------------------------ */

struct dump_ctx {
	uint64_t tree_id;
	uint32_t nodesize;
	char indent[40];
};

static void set_indent(struct dump_ctx *d, int depth, int extra)
{
	int n = 2 * depth + extra;

	if (n > (int)sizeof(d->indent) - 1)
		n = (int)sizeof(d->indent) - 1;
	memset(d->indent, ' ', (size_t)n);
	d->indent[n] = '\0';
}

static void print_key(const struct arb_key *k)
{
	char buf[16];

	printf("(%" PRIu64 " %s %" PRIu64 ")", k->objectid,
	       cli_key_type_name(k->type, buf, sizeof(buf)), k->offset);
}

static void print_root_item(const struct dump_ctx *d, const struct arb_key *k, const void *data,
                            uint32_t len)
{
	struct cli_root_info ri;
	char uuid[37], puuid[37];

	if (cli_decode_root_item(k->objectid, data, len, &ri)) {
		printf("%sroot item too short\n", d->indent);
		cli_hexdump(data, len < DUMP_HEX_BYTES ? len : DUMP_HEX_BYTES, d->indent);
		return;
	}
	cli_print_uuid(ri.uuid, uuid);
	cli_print_uuid(ri.parent_uuid, puuid);
	printf("%sroot bytenr %" PRIu64 " gen %" PRIu64 " level %u csum 0x%08" PRIx64 "\n",
	       d->indent, ri.bytenr, ri.generation, ri.level, ri.csum);
	printf("%slast_snapshot %" PRIu64 " create_gen %" PRIu64 " flags 0x%" PRIx64
	       "%s parent %" PRIu64 "\n",
	       d->indent, ri.last_snapshot, ri.create_gen, ri.flags,
	       ri.flags & ARB_ROOT_RDONLY ? " (rdonly)" : "", ri.parent_id);
	printf("%suuid %s parent_uuid %s\n", d->indent, uuid, puuid);
}

static void count_chunk(const uint8_t *p, uint32_t len, uint64_t *used, uint64_t *overflow)
{
	*used = 0;
	*overflow = 0;
	for (uint32_t i = 0; i < len; i++) {
		for (int s = 0; s < 4; s++) {
			unsigned int v = (p[i] >> (2 * s)) & 3u;

			*used += v != 0;
			*overflow += v == ARB_SM_OVERFLOW_MARK;
		}
	}
}

static void print_chunk_item(const struct dump_ctx *d, const struct arb_key *k, const void *data,
                             uint32_t len)
{
	uint64_t first = k->offset * arb_sm_chunk_sectors(d->nodesize);
	uint64_t used, overflow;

	count_chunk(data, len, &used, &overflow);
	printf("%schunk %" PRIu64 ": sectors %" PRIu64 "..%" PRIu64 ", %" PRIu64 " used, %" PRIu64
	       " overflowed\n",
	       d->indent, k->offset, first, first + (uint64_t)len * 4 - 1, used, overflow);
}

static void print_le_item(const struct dump_ctx *d, const struct arb_key *k, const void *data,
                          uint32_t len)
{
	if (k->type == ARB_SM_OVERFLOW_KEY && len >= 4) {
		uint32_t count;

		memcpy(&count, data, sizeof(count));
		printf("%sbytenr %" PRIu64 " count %" PRIu32 "\n", d->indent, k->offset,
		       le32toh(count));
		return;
	}
	if (k->type == ARB_SM_DEFER_KEY && len >= 8) {
		uint64_t nr;

		memcpy(&nr, data, sizeof(nr));
		printf("%sfreed by commit %" PRIu64 ": bytenr %" PRIu64 ", %" PRIu64 " sectors\n",
		       d->indent, k->objectid, k->offset, le64toh(nr));
		return;
	}
	cli_hexdump(data, len < DUMP_HEX_BYTES ? len : DUMP_HEX_BYTES, d->indent);
}

static void print_item_data(const struct dump_ctx *d, const struct arb_key *k, const void *data,
                            uint32_t len)
{
	bool engine_tree = d->tree_id == ARB_ROOT_TREE_ID || d->tree_id == ARB_SPACE_TREE_ID;

	if (engine_tree && k->type == ARB_ROOT_ITEM_KEY)
		print_root_item(d, k, data, len);
	else if (engine_tree && k->type == ARB_SM_CHUNK_KEY)
		print_chunk_item(d, k, data, len);
	else if (engine_tree)
		print_le_item(d, k, data, len);
	else
		cli_hexdump(data, len < DUMP_HEX_BYTES ? len : DUMP_HEX_BYTES, d->indent);
}

static void print_leaf_items(struct dump_ctx *d, const struct arb_node_view *v)
{
	for (int i = 0; i < v->nritems; i++) {
		struct arb_key k;
		const void *data;
		uint32_t len;

		arb_node_view_key(v, i, &k);
		data = arb_node_view_data(v, i, &len);
		set_indent(d, v->depth, 2);
		printf("%sitem %d key ", d->indent, i);
		print_key(&k);
		printf(" size %" PRIu32 "\n", len);
		set_indent(d, v->depth, 4);
		print_item_data(d, &k, data, len);
	}
}

static void print_node_ptrs(struct dump_ctx *d, const struct arb_node_view *v)
{
	set_indent(d, v->depth, 2);
	for (int i = 0; i < v->nritems; i++) {
		struct arb_key k;
		uint64_t bytenr, gen, csum;

		arb_node_view_key(v, i, &k);
		arb_node_view_ptr(v, i, &bytenr, &gen, &csum);
		printf("%skey ", d->indent);
		print_key(&k);
		printf(" block %" PRIu64 " gen %" PRIu64 " csum 0x%08" PRIx64 "\n", bytenr, gen,
		       csum);
	}
}

static int dump_node(void *ctx, const struct arb_node_view *v)
{
	struct dump_ctx *d = ctx;

	set_indent(d, v->depth, 0);
	printf("%s%s %" PRIu64 " level %u items %u gen %" PRIu64 " owner %" PRIu64
	       " csum 0x%08" PRIx32 " used %" PRIu32 "/%" PRIu32 "\n",
	       d->indent, v->level ? "node" : "leaf", v->bytenr, v->level, v->nritems,
	       v->generation, v->owner, v->csum, v->used_bytes, d->nodesize);
	if (v->level)
		print_node_ptrs(d, v);
	else
		print_leaf_items(d, v);
	return 0;
}

static const char *tree_name(uint64_t id)
{
	if (id == ARB_ROOT_TREE_ID)
		return " (root tree)";
	if (id == ARB_SPACE_TREE_ID)
		return " (space tree)";
	return "";
}

static int dump_one_tree(struct cli_fs *cfs, uint64_t id, uint32_t nodesize)
{
	struct dump_ctx d = {.tree_id = id, .nodesize = nodesize};
	struct arb_tree *tree;
	int ret;

	ret = cli_get_tree(cfs, id, &tree);
	if (ret < 0)
		return ret;
	printf("tree %" PRIu64 "%s\n", id, tree_name(id));
	ret = arb_tree_walk(tree, dump_node, &d);
	if (ret < 0)
		cli_error("cannot walk tree %" PRIu64 ": %s", id, strerror(-ret));
	return ret;
}

struct id_list {
	uint64_t *ids;
	size_t nr, cap;
};

static int collect_id(void *ctx, const struct cli_root_info *ri)
{
	struct id_list *l = ctx;

	if (l->nr == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 16;
		uint64_t *ids = realloc(l->ids, cap * sizeof(*ids));

		if (!ids) {
			cli_error("out of memory");
			return -ENOMEM;
		}
		l->ids = ids;
		l->cap = cap;
	}
	l->ids[l->nr++] = ri->id;
	return 0;
}

static int dump_all_trees(struct cli_fs *cfs, uint32_t nodesize)
{
	struct id_list l = {NULL, 0, 0};
	int ret, err = 0;

	ret = dump_one_tree(cfs, ARB_ROOT_TREE_ID, nodesize);
	err = ret < 0 ? ret : err;
	printf("\n");
	ret = dump_one_tree(cfs, ARB_SPACE_TREE_ID, nodesize);
	err = ret < 0 ? ret : err;
	ret = cli_for_each_root(cfs, collect_id, &l);
	err = ret < 0 ? ret : err;
	for (size_t i = 0; i < l.nr; i++) {
		printf("\n");
		ret = dump_one_tree(cfs, l.ids[i], nodesize);
		err = ret < 0 ? ret : err;
	}
	free(l.ids);
	return err;
}

struct dump_args {
	bool all;
	uint64_t id;
};

static int dump_trees(struct cli_fs *cfs, void *arg)
{
	const struct dump_args *a = arg;
	struct arb_fs_info info;

	arb_fs_info(cfs->fs, &info);
	if (a->all)
		return dump_all_trees(cfs, info.nodesize);
	return dump_one_tree(cfs, a->id, info.nodesize);
}

static int cmd_inspect_dump_tree(const struct cmd_struct *cmd, int argc, char **argv)
{
	struct dump_args a = {true, 0};

	if (cli_no_options(cmd, argc, argv, 0, 1)) {
		a.all = false;
		cli_arg_tree(cmd, argv[optind], &a.id);
	}
	return cli_with_fs(true, dump_trees, &a);
}

static const char *const cmd_inspect_dump_tree_usage[] = {
        "arbor -i IMAGE inspect dump-tree [TREE_ID]",
        "",
        "Print every node of a tree, or of all trees.",
        "",
        "TREE_ID is a number, 'root' (1) or 'space' (2).  Without it: the root",
        "tree, the space tree, then every user tree named by a ROOT_ITEM.",
        "Each node shows its header; internal nodes list their keys and child",
        "pointers, leaves their items with sizes.  Engine items (ROOT_ITEM,",
        "SM_CHUNK, SM_OVERFLOW, SM_DEFER) are decoded, others hexdumped",
        "(first 32 bytes).  Keys print as (objectid TYPE offset).",
        NULL,
};

static const struct cmd_struct cmd_struct_inspect_dump_tree = {
        "dump-tree", cmd_inspect_dump_tree, cmd_inspect_dump_tree_usage, NULL, CMD_IMAGE};

/* ---- the group ------------------------------------------------------------- */

static const char *const cmd_inspect_usage[] = {
        "arbor -i IMAGE inspect COMMAND",
        "arbor inspect replay BASE LOG ...",
        "",
        "Read-only views of an image, for debugging (and corrupt, to damage one).",
        "",
        "replay needs no image: it rebuilds one from a recording of an arborfs run.",
        NULL,
};

static const struct cmd_struct *const inspect_commands[] = {
        &cmd_struct_inspect_superblock,
        &cmd_struct_inspect_dump_tree,
        &cmd_struct_inspect_corrupt,
        &cmd_struct_inspect_replay,
        NULL,
};

static const struct cmd_group inspect_group = {cmd_inspect_usage, inspect_commands};

const struct cmd_struct cmd_struct_inspect = {"inspect", NULL, cmd_inspect_usage, &inspect_group,
                                              0};
