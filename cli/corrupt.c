/* SPDX-License-Identifier: MIT */
/*
 * corrupt.c - "arbor inspect corrupt": damage an unmounted image on
 * purpose, for tests and for learning fsck.arbor.  Superblock slots and
 * tree nodes are edited as raw bytes (their checksums left wrong, or
 * recomputed along every pointer up to the superblock, so that only the
 * structure is wrong); reference counts through the engine's transaction
 * (corrupt_item.c edits items the same way); file data as raw bytes.
 */
#include <ctype.h>
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "corrupt.h"

#include "arbor/btree.h"
#include "arbor/crc32c.h"
#include "arbor/fs.h"
#include "arbor/io.h"
#include "arbor/super.h"
#include "arbor/vfs.h"

#define MAX_SLOTS (ARB_SUPER_COPIES * ARB_SUPER_SLOTS)
/* deepest tree the walk follows (node_check refuses level 8 and above) */
#define MAX_DEPTH 8
/* pointers from a node up to the superblock: its tree, a root item, the
 * root tree, the superblock */
#define MAX_HOPS (2 * MAX_DEPTH + 2)

/* ---- shared helpers ----------------------------------------------------------- */

const struct corrupt_field *corrupt_find_field(const struct corrupt_field *tab, size_t n,
                                               const char *name)
{
	for (size_t i = 0; i < n; i++) {
		if (!strcmp(tab[i].name, name))
			return &tab[i];
	}
	return NULL;
}

const struct corrupt_field *corrupt_arg_field(const struct cmd_struct *cmd,
                                              const struct corrupt_field *tab, size_t n,
                                              const char *name)
{
	const struct corrupt_field *f = corrupt_find_field(tab, n, name);
	char list[512] = "";
	size_t len = 0;

	if (f)
		return f;
	for (size_t i = 0; i < n && len < sizeof(list); i++)
		len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%s", i ? ", " : "",
		                        tab[i].name);
	exit(cli_usage_error(cmd, "unknown field '%s' (fields: %s)", name, list));
}

void corrupt_put_le(uint8_t *p, uint8_t size, uint64_t v)
{
	for (uint8_t i = 0; i < size; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

void corrupt_arg_assign(const struct cmd_struct *cmd, const char *arg, char *name, size_t size,
                        uint64_t *ret)
{
	const char *eq = strchr(arg, '=');
	size_t n = eq ? (size_t)(eq - arg) : 0;

	if (!eq || !n || n >= size || cli_parse_u64(eq + 1, ret))
		exit(cli_usage_error(cmd, "invalid assignment '%s' (NAME=NUMBER)", arg));
	memcpy(name, arg, n);
	name[n] = '\0';
}

/* Key types of the filesystem layer; the engine's come from cli. */
static const struct {
	uint8_t type;
	const char *name;
} fs_key_types[] = {
        {ARB_INODE_ITEM_KEY, "INODE_ITEM"},
        {ARB_INODE_REF_KEY, "INODE_REF"},
        {ARB_XATTR_ITEM_KEY, "XATTR_ITEM"},
        {ARB_ORPHAN_KEY, "ORPHAN"},
        {ARB_DIR_ITEM_KEY, "DIR_ITEM"},
        {ARB_DIR_INDEX_KEY, "DIR_INDEX"},
        {ARB_EXTENT_DATA_KEY, "EXTENT_DATA"},
        {ARB_SUBVOL_INFO_KEY, "SUBVOL_INFO"},
        {ARB_DEFAULT_SUBVOL_KEY, "DEFAULT_SUBVOL"},
        {ARB_ROOT_REF_KEY, "ROOT_REF"},
        {ARB_ROOT_BACKREF_KEY, "ROOT_BACKREF"},
};
#define N_FS_KEY_TYPES (sizeof(fs_key_types) / sizeof(fs_key_types[0]))

static int parse_key_type(const char *s, uint8_t *ret)
{
	for (size_t i = 0; i < N_FS_KEY_TYPES; i++) {
		if (!strcasecmp(s, fs_key_types[i].name)) {
			*ret = fs_key_types[i].type;
			return 0;
		}
	}
	return cli_parse_key_type(s, ret);
}

const char *corrupt_key_string(const struct arb_key *k, char *buf, size_t len)
{
	char num[16];
	const char *name = cli_key_type_name(k->type, num, sizeof(num));

	for (size_t i = 0; i < N_FS_KEY_TYPES; i++) {
		if (fs_key_types[i].type == k->type)
			name = fs_key_types[i].name;
	}
	snprintf(buf, len, "(%" PRIu64 " %s %" PRIu64 ")", k->objectid, name, k->offset);
	return buf;
}

int corrupt_parse_key(const char *s, struct arb_key *ret)
{
	char copy[128], *parts[3], *save = NULL;
	int n = 0;

	if (strlen(s) >= sizeof(copy))
		return -EINVAL;
	strcpy(copy, s);
	for (char *p = strtok_r(copy, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
		if (n == 3)
			return -EINVAL;
		parts[n++] = p;
	}
	if (n != 3 || cli_parse_u64(parts[0], &ret->objectid) ||
	    parse_key_type(parts[1], &ret->type) || cli_parse_u64(parts[2], &ret->offset))
		return -EINVAL;
	return 0;
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int corrupt_parse_hex(const char *s, uint8_t **ret, size_t *ret_len)
{
	uint8_t *buf = malloc(strlen(s) / 2 + 1);
	size_t n = 0;

	if (!buf)
		return -ENOMEM;
	while (*s) {
		int hi, lo;

		if (*s == ' ' || *s == ':') {
			s++;
			continue;
		}
		hi = hex_digit(s[0]);
		lo = hi < 0 ? -1 : hex_digit(s[1]);
		if (lo < 0) {
			free(buf);
			return -EINVAL;
		}
		buf[n++] = (uint8_t)(hi << 4 | lo);
		s += 2;
	}
	*ret = buf;
	*ret_len = n;
	return 0;
}

/* ---- opening the image -------------------------------------------------------- */

static int open_for_damage(struct arb_dev **ret)
{
	int err = arb_dev_open_file(cli_globals.image, ARB_DEV_EXCL, ret);

	if (err == -EWOULDBLOCK || err == -EBUSY)
		cli_error("refusing to damage %s: it is in use (mounted by arborfs?)",
		          cli_globals.image);
	else if (err < 0)
		cli_error("cannot open %s: %s", cli_globals.image, strerror(-err));
	return err;
}

int corrupt_with_dev(cli_dev_fn fn, void *arg)
{
	struct arb_dev *dev;
	int err = open_for_damage(&dev);

	if (err < 0)
		return CLI_EXIT_ERROR;
	err = fn(dev, arg);
	if (err >= 0)
		err = cli_result(NULL, arb_dev_flush(dev), NULL, "flush failed");
	arb_dev_close(dev);
	return err < 0 ? CLI_EXIT_ERROR : CLI_EXIT_OK;
}

int corrupt_with_fs(bool write, uint64_t max_gen, cli_fs_fn fn, void *arg)
{
	struct arb_open_opts opts = {
	        .read_only = !write,
	        .max_generation = max_gen,
	        .time_sec = cli_source_date_epoch(),
	        .msg = cli_msg,
	};
	struct cli_fs cfs = {NULL, NULL};
	int err = open_for_damage(&cfs.dev);

	if (err < 0)
		return CLI_EXIT_ERROR;
	err = arb_open(cfs.dev, &opts, &cfs.fs);
	if (err < 0) {
		cli_error("cannot open the filesystem on %s: %s", cli_globals.image,
		          strerror(-err));
	} else {
		err = fn(&cfs, arg);
		if (err >= 0 && write)
			err = cli_commit(&cfs);
		arb_close(cfs.fs);
	}
	if (err >= 0)
		err = cli_result(NULL, arb_dev_flush(cfs.dev), NULL, "flush failed");
	arb_dev_close(cfs.dev);
	return err < 0 ? CLI_EXIT_ERROR : CLI_EXIT_OK;
}

/* ---- raw edits: flips, fields, swapped keys ----------------------------------- */

struct raw_edit {
	uint32_t flips[CORRUPT_MAX_EDITS]; /* byte offsets to invert */
	int nflips;
	const struct corrupt_field *fields[CORRUPT_MAX_EDITS];
	uint64_t values[CORRUPT_MAX_EDITS];
	int nfields;
	bool swap; /* nodes: swap the keys of entries swap_i and swap_j */
	uint32_t swap_i, swap_j;
	bool fix_csum;
};

/* Options every raw edit takes. */
enum {
	OPT_OFFSET = 0x100,
	OPT_FIELD,
	OPT_FIX_CSUM,
	OPT_SWAP,
	OPT_COPY,
	OPT_SLOT,
	OPT_GEN,
	OPT_ALL_COPIES,
	OPT_ALL,
	OPT_TREE,
	OPT_LEVEL,
	OPT_NTH,
};

static void add_flip(const struct cmd_struct *cmd, struct raw_edit *e, const char *arg,
                     uint32_t size)
{
	uint64_t off;

	cli_check_arg(cmd, cli_parse_u64(arg, &off) || off >= size, "offset", arg);
	if (e->nflips == CORRUPT_MAX_EDITS)
		exit(cli_usage_error(cmd, "too many --offset"));
	e->flips[e->nflips++] = (uint32_t)off;
}

static void add_field(const struct cmd_struct *cmd, struct raw_edit *e, const char *arg,
                      const struct corrupt_field *tab, size_t n)
{
	char name[32];
	uint64_t v;

	corrupt_arg_assign(cmd, arg, name, sizeof(name), &v);
	if (e->nfields == CORRUPT_MAX_EDITS)
		exit(cli_usage_error(cmd, "too many --field"));
	e->fields[e->nfields] = corrupt_arg_field(cmd, tab, n, name);
	e->values[e->nfields++] = v;
}

/* Without an edit, the last byte is flipped.  The checksum is recomputed
 * for field and key edits, or when asked. */
static bool edit_reseals(const struct raw_edit *e)
{
	return e->fix_csum || e->nfields || e->swap;
}

static void apply_flips_fields(const struct raw_edit *e, uint8_t *buf, uint32_t size)
{
	if (!e->nflips && !e->nfields && !e->swap)
		buf[size - 1] ^= 0xff;
	for (int i = 0; i < e->nflips; i++)
		buf[e->flips[i]] ^= 0xff;
	for (int i = 0; i < e->nfields; i++)
		corrupt_put_le(buf + e->fields[i]->off, e->fields[i]->size, e->values[i]);
}

/* What an edit did, for the report line. */
static void describe_edit(const struct raw_edit *e, uint32_t size, char *buf, size_t len)
{
	size_t n = 0;

	if (!e->nflips && !e->nfields && !e->swap)
		n += (size_t)snprintf(buf + n, len - n, "flipped byte %" PRIu32, size - 1);
	for (int i = 0; i < e->nflips && n < len; i++)
		n += (size_t)snprintf(buf + n, len - n, "%sflipped byte %" PRIu32, n ? ", " : "",
		                      e->flips[i]);
	for (int i = 0; i < e->nfields && n < len; i++)
		n += (size_t)snprintf(buf + n, len - n, "%s%s=%" PRIu64, n ? ", " : "",
		                      e->fields[i]->name, e->values[i]);
	if (e->swap && n < len)
		snprintf(buf + n, len - n, "%sswapped keys %" PRIu32 " and %" PRIu32, n ? ", " : "",
		         e->swap_i, e->swap_j);
}

/* ---- corrupt slot --------------------------------------------------------------- */

#define SB_FIELD(name, member)                                                                     \
	{                                                                                          \
		name, offsetof(struct arb_super, member), sizeof(((struct arb_super *)0)->member)  \
	}
#define SB_PTR(name, ptr, member)                                                                  \
	{                                                                                          \
		name, offsetof(struct arb_super, ptr) + offsetof(struct arb_blkptr, member),       \
		        sizeof(((struct arb_blkptr *)0)->member)                                   \
	}

static const struct corrupt_field slot_fields[] = {
        SB_FIELD("magic", magic),
        SB_FIELD("bytenr", bytenr),
        SB_FIELD("generation", generation),
        SB_FIELD("format_version", format_version),
        SB_FIELD("csum_type", csum_type),
        SB_FIELD("slot", slot),
        SB_FIELD("sectorsize", sectorsize),
        SB_FIELD("nodesize", nodesize),
        SB_FIELD("total_bytes", total_bytes),
        SB_FIELD("compat", compat),
        SB_FIELD("ro_compat", ro_compat),
        SB_FIELD("incompat", incompat),
        SB_PTR("root_bytenr", root_tree, bytenr),
        SB_PTR("root_generation", root_tree, generation),
        SB_PTR("root_csum", root_tree, csum),
        SB_PTR("root_level", root_tree, level),
        SB_PTR("space_bytenr", space_tree, bytenr),
        SB_PTR("space_generation", space_tree, generation),
        SB_PTR("space_csum", space_tree, csum),
        SB_PTR("space_level", space_tree, level),
        SB_FIELD("sectors_used", sectors_used),
        SB_FIELD("alloc_cursor", alloc_cursor),
        SB_FIELD("next_tree_id", next_tree_id),
        SB_FIELD("hash_seed", hash_seed),
        SB_FIELD("commit_time_sec", commit_time_sec),
        SB_FIELD("freed_count", freed_count),
        SB_FIELD("log_bytenr", log_bytenr),
        SB_FIELD("log_nonce", log_nonce),
};
#define N_SLOT_FIELDS (sizeof(slot_fields) / sizeof(slot_fields[0]))

struct slot_args {
	struct raw_edit edit;
	int copy, slot; /* -1: not given */
	uint64_t generation;
	bool all_copies, all;
};

static bool slot_selected(const struct slot_args *a, const struct arb_super_slot *s)
{
	if (a->all)
		return s->status != ARB_SLOT_EMPTY && s->status != ARB_SLOT_IO_ERROR;
	if (a->generation)
		return s->status != ARB_SLOT_EMPTY && le64toh(s->sb.generation) == a->generation &&
		       (a->all_copies || s->copy == 0);
	return s->copy == a->copy && s->slot == a->slot;
}

static int damage_slot(struct arb_dev *dev, const struct slot_args *a, struct arb_super_slot *s)
{
	char what[256];
	int err;

	apply_flips_fields(&a->edit, (uint8_t *)&s->sb, sizeof(s->sb));
	if (edit_reseals(&a->edit))
		arb_super_set_csum(&s->sb);
	err = arb_dev_write(dev, &s->sb, sizeof(s->sb), s->offset);
	if (err < 0) {
		cli_error("cannot write copy %d slot %d: %s", s->copy, s->slot, strerror(-err));
		return err;
	}
	describe_edit(&a->edit, sizeof(s->sb), what, sizeof(what));
	printf("copy %d slot %d (offset %" PRIu64 ", generation %" PRIu64 "): %s; checksum %s\n",
	       s->copy, s->slot, s->offset, le64toh(s->sb.generation), what,
	       edit_reseals(&a->edit) ? "recomputed" : "now wrong");
	return 0;
}

static int damage_slots(struct arb_dev *dev, void *arg)
{
	const struct slot_args *a = arg;
	struct arb_super_slot *slots = calloc(MAX_SLOTS, sizeof(*slots));
	int n, done = 0, err = 0;

	if (!slots) {
		cli_error("out of memory");
		return -ENOMEM;
	}
	n = arb_super_read_all(dev, slots, MAX_SLOTS);
	if (n < 0)
		cli_error("cannot read the superblocks: %s", strerror(-n));
	for (int i = 0; i < n && !err; i++) {
		if (slot_selected(a, &slots[i])) {
			err = damage_slot(dev, a, &slots[i]);
			done++;
		}
	}
	free(slots);
	if (n >= 0 && !done) {
		cli_error("no superblock slot matches");
		return -ENOENT;
	}
	return n < 0 ? n : err;
}

static void parse_slot_option(const struct cmd_struct *cmd, int c, struct slot_args *a)
{
	uint64_t v;

	switch (c) {
	case OPT_COPY:
	case OPT_SLOT:
		cli_check_arg(cmd,
		              cli_parse_u64(optarg, &v) ||
		                      v >= (c == OPT_COPY ? ARB_SUPER_COPIES : ARB_SUPER_SLOTS),
		              c == OPT_COPY ? "copy" : "slot", optarg);
		*(c == OPT_COPY ? &a->copy : &a->slot) = (int)v;
		break;
	case OPT_GEN:
		cli_check_arg(cmd, cli_parse_u64(optarg, &a->generation) || !a->generation,
		              "generation", optarg);
		break;
	case OPT_ALL_COPIES:
		a->all_copies = true;
		break;
	case OPT_ALL:
		a->all = true;
		break;
	case OPT_OFFSET:
		add_flip(cmd, &a->edit, optarg, ARB_SUPER_SLOT_SIZE);
		break;
	case OPT_FIELD:
		add_field(cmd, &a->edit, optarg, slot_fields, N_SLOT_FIELDS);
		break;
	case OPT_FIX_CSUM:
		a->edit.fix_csum = true;
		break;
	}
}

static void parse_slot_args(const struct cmd_struct *cmd, int argc, char **argv,
                            struct slot_args *a)
{
	static const struct option longopts[] = {
	        {"copy", required_argument, NULL, OPT_COPY},
	        {"slot", required_argument, NULL, OPT_SLOT},
	        {"generation", required_argument, NULL, OPT_GEN},
	        {"all-copies", no_argument, NULL, OPT_ALL_COPIES},
	        {"all", no_argument, NULL, OPT_ALL},
	        {"offset", required_argument, NULL, OPT_OFFSET},
	        {"field", required_argument, NULL, OPT_FIELD},
	        {"fix-csum", no_argument, NULL, OPT_FIX_CSUM},
	        {NULL, 0, NULL, 0},
	};
	int c, ways;

	while ((c = cli_getopt(cmd, argc, argv, "", longopts)) != -1)
		parse_slot_option(cmd, c, a);
	cli_check_argc(cmd, argc - optind, 0, 0);
	if ((a->copy < 0) != (a->slot < 0))
		exit(cli_usage_error(cmd, "--copy and --slot go together"));
	ways = (a->copy >= 0) + (a->generation != 0) + a->all;
	if (ways != 1)
		exit(cli_usage_error(cmd, "choose the slots: --copy C --slot S, --generation G "
		                          "or --all"));
	if (a->all_copies && !a->generation)
		exit(cli_usage_error(cmd, "--all-copies goes with --generation"));
}

static int cmd_corrupt_slot(const struct cmd_struct *cmd, int argc, char **argv)
{
	struct slot_args a = {.copy = -1, .slot = -1};

	parse_slot_args(cmd, argc, argv, &a);
	return corrupt_with_dev(damage_slots, &a);
}

static const char *const cmd_corrupt_slot_usage[] = {
        "arbor -i IMAGE inspect corrupt slot (--copy C --slot S | --generation G [--all-copies] "
        "| --all) [--offset OFF]... [--field NAME=VALUE]... [--fix-csum]",
        "",
        "Damage superblock slots.",
        "",
        "Without an edit, the last byte of each slot is flipped: its checksum",
        "fails.  --field sets a field and recomputes the checksum: the slot",
        "verifies, but says something wrong.  See 'arbor inspect superblock'.",
        "",
        OPTLINE("--copy C --slot S", "slot S (0-3) of superblock copy C (0-3)"),
        OPTLINE("--generation G", "the slot holding generation G, in copy 0"),
        OPTLINE("--all-copies", "with --generation: that slot in every copy"),
        OPTLINE("--all", "every slot of every copy that holds a superblock"),
        OPTLINE("--offset OFF", "flip (invert) byte OFF of the slot (0-4095)"),
        OPTLINE("--field NAME=VALUE", "set a field: magic, bytenr, generation, "
                                      "format_version, csum_type,"),
        "            slot, sectorsize, nodesize, total_bytes, compat, ro_compat,",
        "            incompat, root_bytenr, root_generation, root_csum, root_level,",
        "            space_bytenr, space_generation, space_csum, space_level,",
        "            sectors_used, alloc_cursor, next_tree_id, hash_seed,",
        "            commit_time_sec, freed_count, log_bytenr, log_nonce",
        OPTLINE("--fix-csum", "recompute the checksum after --offset flips too"),
        NULL,
};

static const struct cmd_struct cmd_struct_corrupt_slot = {"slot", cmd_corrupt_slot,
                                                          cmd_corrupt_slot_usage, NULL, CMD_IMAGE};

/* ---- corrupt node: finding the node and every pointer to it --------------------- */

enum hop_kind { HOP_PTR, HOP_ROOT_ITEM, HOP_SUPER_ROOT, HOP_SUPER_SPACE };

/* Where a pointer to the thing below lives: entry index of node bytenr
 * (a key pointer, or the root item of a leaf), or a superblock field. */
struct hop {
	enum hop_kind kind;
	uint32_t index;
	uint64_t bytenr;
};

struct path {
	struct hop h[MAX_HOPS];
	int n;
	uint64_t tree;
};

/* The root item of a user tree: where it is, and the way up from there. */
struct root_loc {
	uint64_t id;
	struct path p;
};

struct node_find {
	/* the node: by address, or the nth at a level of sel_tree */
	uint64_t target;
	int target_level; /* -1: unknown */
	bool by_nth;
	uint8_t level;
	uint64_t nth, seen;
	/* or the leaf holding key, its item key_index */
	bool by_key;
	struct arb_key key;
	uint32_t key_index;
	/* the walk */
	uint64_t tree;
	uint64_t stack[MAX_DEPTH];
	uint32_t idx[MAX_DEPTH], children[MAX_DEPTH];
	/* found */
	struct path *paths;
	size_t npaths, cap;
	struct root_loc *roots;
	size_t nroots, rcap;
	uint8_t found_level;
	int err;
};

static int grow(void **arr, size_t *cap, size_t n, size_t esz)
{
	size_t c = *cap ? 2 * *cap : 8;
	void *p;

	if (n < *cap)
		return 0;
	p = realloc(*arr, c * esz);
	if (!p)
		return -ENOMEM;
	*arr = p;
	*cap = c;
	return 0;
}

/* The hops from the node at depth d of the tree being walked to its root. */
static void path_up(const struct node_find *f, int d, struct path *p)
{
	for (int k = d; k > 0 && p->n < MAX_HOPS; k--)
		p->h[p->n++] = (struct hop){HOP_PTR, f->idx[k], f->stack[k - 1]};
}

static const struct root_loc *find_root_loc(const struct node_find *f, uint64_t id)
{
	for (size_t i = 0; i < f->nroots; i++) {
		if (f->roots[i].id == id)
			return &f->roots[i];
	}
	return NULL;
}

/* From the tree root on: to the superblock, or through the root item. */
static void path_tail(const struct node_find *f, struct path *p)
{
	const struct root_loc *rl;

	if (f->tree == ARB_ROOT_TREE_ID || f->tree == ARB_SPACE_TREE_ID) {
		p->h[p->n++] = (struct hop){
		        f->tree == ARB_ROOT_TREE_ID ? HOP_SUPER_ROOT : HOP_SUPER_SPACE, 0, 0};
		return;
	}
	rl = find_root_loc(f, f->tree);
	for (int i = 0; rl && i < rl->p.n && p->n < MAX_HOPS; i++)
		p->h[p->n++] = rl->p.h[i];
}

static int record_path(struct node_find *f, int depth)
{
	struct path *p;

	if (grow((void **)&f->paths, &f->cap, f->npaths, sizeof(*p)))
		return -ENOMEM;
	p = &f->paths[f->npaths++];
	memset(p, 0, sizeof(*p));
	p->tree = f->tree;
	path_up(f, depth, p);
	path_tail(f, p);
	return 0;
}

/* In a leaf of the root tree: where each root item is. */
static int record_root_items(struct node_find *f, const struct arb_node_view *v)
{
	for (int i = 0; i < v->nritems; i++) {
		struct root_loc *rl;
		struct arb_key k;

		arb_node_view_key(v, i, &k);
		if (k.type != ARB_ROOT_ITEM_KEY)
			continue;
		if (grow((void **)&f->roots, &f->rcap, f->nroots, sizeof(*rl)))
			return -ENOMEM;
		rl = &f->roots[f->nroots++];
		memset(rl, 0, sizeof(*rl));
		rl->id = k.objectid;
		rl->p.h[rl->p.n++] = (struct hop){HOP_ROOT_ITEM, (uint32_t)i, v->bytenr};
		path_up(f, v->depth, &rl->p);
		rl->p.h[rl->p.n++] = (struct hop){HOP_SUPER_ROOT, 0, 0};
	}
	return 0;
}

static void note_nth(struct node_find *f, const struct arb_node_view *v)
{
	if (f->by_nth && v->level == f->level && f->seen++ == f->nth) {
		f->target = v->bytenr;
		f->target_level = v->level;
		f->by_nth = false;
	}
}

static void note_key(struct node_find *f, const struct arb_node_view *v)
{
	for (int i = 0; f->by_key && v->level == 0 && i < v->nritems; i++) {
		struct arb_key k;

		arb_node_view_key(v, i, &k);
		if (!arb_key_cmp(&k, &f->key)) {
			f->target = v->bytenr;
			f->target_level = 0;
			f->key_index = (uint32_t)i;
			f->by_key = false;
		}
	}
}

static int find_node_cb(void *ctx, const struct arb_node_view *v)
{
	struct node_find *f = ctx;
	int d = v->depth, err = 0;

	if (d >= MAX_DEPTH)
		return -EUCLEAN;
	if (d > 0)
		f->idx[d] = f->children[d - 1]++;
	f->stack[d] = v->bytenr;
	f->children[d] = 0;
	note_nth(f, v);
	note_key(f, v);
	if (f->tree == ARB_ROOT_TREE_ID && v->level == 0)
		err = record_root_items(f, v);
	if (!err && v->bytenr == f->target) {
		f->found_level = v->level;
		err = record_path(f, d);
	}
	if (err)
		return err;
	/* below the node's level there is nothing more to find */
	return f->tree != ARB_ROOT_TREE_ID && !f->by_nth && !f->by_key && f->target_level >= 0 &&
	       v->level <= f->target_level;
}

static int walk_one(struct cli_fs *cfs, struct node_find *f, uint64_t id)
{
	struct arb_tree *t;
	int err = arb_tree_get(cfs->fs, id, &t);

	if (err == -ENOENT && id >= ARB_FIRST_USER_TREE)
		return 0; /* a deleted tree being freed */
	if (err < 0)
		return cli_tree_result(cfs, id, err, "cannot open the tree");
	f->tree = id;
	err = arb_tree_walk(t, find_node_cb, f);
	if (err < 0)
		cli_error("cannot walk tree %" PRIu64 ": %s", id, strerror(-err));
	return err;
}

/* Every tree of the commit: the root tree first (it says where the root
 * items are), then the space tree and every user tree. */
static int walk_all(struct cli_fs *cfs, struct node_find *f)
{
	int err = walk_one(cfs, f, ARB_ROOT_TREE_ID);

	if (!err)
		err = walk_one(cfs, f, ARB_SPACE_TREE_ID);
	for (size_t i = 0; !err && i < f->nroots; i++)
		err = walk_one(cfs, f, f->roots[i].id);
	return err;
}

/* ---- corrupt node: the edit, and the checksums up to the superblock -------------- */

static uint64_t get_le64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return le64toh(v);
}

static uint32_t stored_csum(const uint8_t *buf)
{
	uint32_t v;

	memcpy(&v, buf, sizeof(v));
	return le32toh(v);
}

/* A node's checksum (arbor_format.h: crc32c of bytes 32..nodesize-1). */
static void seal_node(uint8_t *buf, uint32_t nodesize)
{
	memset(buf, 0, ARB_CSUM_SIZE);
	corrupt_put_le(buf, 4, arb_crc32c(0, buf + ARB_CSUM_SIZE, nodesize - ARB_CSUM_SIZE));
}

struct reseal {
	struct arb_dev *dev;
	uint32_t nodesize;
	uint64_t generation; /* of the commit whose slots name the trees */
	uint8_t *buf;
	uint64_t ptrs, slots; /* pointers and slots rewritten */
	bool changed;         /* in this pass */
};

static int read_node(struct reseal *r, uint64_t bytenr)
{
	int err = arb_dev_read(r->dev, r->buf, r->nodesize, bytenr);

	if (err < 0)
		cli_error("cannot read node %" PRIu64 ": %s", bytenr, strerror(-err));
	return err;
}

static int write_node(struct reseal *r, uint64_t bytenr)
{
	int err = arb_dev_write(r->dev, r->buf, r->nodesize, bytenr);

	if (err < 0)
		cli_error("cannot write node %" PRIu64 ": %s", bytenr, strerror(-err));
	return err;
}

/* The pointer a hop names inside the node in r->buf: its bytenr field;
 * the checksum field is 16 bytes further in both layouts. */
static uint8_t *hop_pointer(struct reseal *r, const struct hop *h)
{
	const uint32_t hsz = sizeof(struct arb_node_header);
	const struct arb_node_header *hdr = (const struct arb_node_header *)r->buf;
	struct arb_item item;

	if (h->index >= le16toh(hdr->nritems))
		return NULL;
	if (h->kind == HOP_PTR)
		return r->buf + hsz + h->index * sizeof(struct arb_key_ptr) +
		       offsetof(struct arb_key_ptr, bytenr);
	memcpy(&item, r->buf + hsz + h->index * sizeof(item), sizeof(item));
	if ((uint64_t)le32toh(item.offset) + hsz + sizeof(struct arb_root_item) > r->nodesize)
		return NULL;
	return r->buf + hsz + le32toh(item.offset) + offsetof(struct arb_root_item, root);
}

_Static_assert(offsetof(struct arb_key_ptr, csum) - offsetof(struct arb_key_ptr, bytenr) == 16,
               "key pointer: csum 16 bytes after bytenr");
_Static_assert(offsetof(struct arb_blkptr, csum) - offsetof(struct arb_blkptr, bytenr) == 16,
               "blkptr: csum 16 bytes after bytenr");

/* Point the hop's pointer to child at csum; *child and *csum become the
 * node holding it. */
static int reseal_in_node(struct reseal *r, const struct hop *h, uint64_t *child, uint32_t *csum)
{
	uint8_t *p;
	int err = read_node(r, h->bytenr);

	if (err < 0)
		return err;
	p = hop_pointer(r, h);
	if (!p || get_le64(p) != *child) {
		cli_error("node %" PRIu64 " no longer points to %" PRIu64, h->bytenr, *child);
		return -EUCLEAN;
	}
	if (get_le64(p + 16) != *csum) {
		corrupt_put_le(p + 16, 8, *csum);
		seal_node(r->buf, r->nodesize);
		err = write_node(r, h->bytenr);
		r->ptrs++;
		r->changed = true;
	}
	*child = h->bytenr;
	*csum = stored_csum(r->buf);
	return err;
}

static int reseal_slot(struct reseal *r, struct arb_super_slot *s, const struct hop *h,
                       uint64_t child, uint32_t csum)
{
	struct arb_blkptr *p = h->kind == HOP_SUPER_ROOT ? &s->sb.root_tree : &s->sb.space_tree;
	int err;

	if (le64toh(p->bytenr) != child) {
		cli_error("superblock copy %d slot %d does not point to %" PRIu64, s->copy, s->slot,
		          child);
		return -EUCLEAN;
	}
	if (le64toh(p->csum) == csum)
		return 0;
	p->csum = htole64(csum);
	arb_super_set_csum(&s->sb);
	err = arb_dev_write(r->dev, &s->sb, sizeof(s->sb), s->offset);
	if (err < 0)
		cli_error("cannot write copy %d slot %d: %s", s->copy, s->slot, strerror(-err));
	r->slots++;
	r->changed = true;
	return err;
}

/* Every valid slot of the commit, in every copy. */
static int reseal_super(struct reseal *r, const struct hop *h, uint64_t child, uint32_t csum)
{
	struct arb_super_slot *slots = calloc(MAX_SLOTS, sizeof(*slots));
	int n, seen = 0, err = 0;

	if (!slots)
		return -ENOMEM;
	n = arb_super_read_all(r->dev, slots, MAX_SLOTS);
	for (int i = 0; i < n && !err; i++) {
		if (slots[i].status != ARB_SLOT_VALID ||
		    le64toh(slots[i].sb.generation) != r->generation)
			continue;
		err = reseal_slot(r, &slots[i], h, child, csum);
		seen++;
	}
	free(slots);
	if (!err && !seen) {
		cli_error("no valid superblock slot holds generation %" PRIu64, r->generation);
		err = -ENOENT;
	}
	return n < 0 ? n : err;
}

static int reseal_path(struct reseal *r, const struct path *p, uint64_t target)
{
	uint64_t child = target;
	uint32_t csum;
	int err = read_node(r, target);

	csum = stored_csum(r->buf);
	for (int i = 0; !err && i < p->n; i++) {
		if (p->h[i].kind == HOP_PTR || p->h[i].kind == HOP_ROOT_ITEM)
			err = reseal_in_node(r, &p->h[i], &child, &csum);
		else
			err = reseal_super(r, &p->h[i], child, csum);
	}
	return err;
}

/* Paths share nodes (a shared subtree has a parent in every tree that
 * holds it): repeat until a pass changes nothing. */
static int reseal_all(struct reseal *r, const struct node_find *f)
{
	int err = 0;

	for (int pass = 0; pass <= MAX_HOPS && !err; pass++) {
		r->changed = false;
		for (size_t i = 0; i < f->npaths && !err; i++)
			err = reseal_path(r, &f->paths[i], f->target);
		if (!r->changed)
			return err;
	}
	return err;
}

/* ---- corrupt node: the command ---------------------------------------------------- */

#define NODE_FIELD(name, member)                                                                   \
	{                                                                                          \
		name, offsetof(struct arb_node_header, member),                                    \
		        sizeof(((struct arb_node_header *)0)->member)                              \
	}

static const struct corrupt_field node_fields[] = {
        NODE_FIELD("bytenr", bytenr),   NODE_FIELD("generation", generation),
        NODE_FIELD("owner", owner),     NODE_FIELD("magic", magic),
        NODE_FIELD("nritems", nritems), NODE_FIELD("level", level),
        NODE_FIELD("flags", flags),
};
#define N_NODE_FIELDS (sizeof(node_fields) / sizeof(node_fields[0]))

struct node_args {
	struct raw_edit edit;
	uint64_t bytenr; /* 0: the nth node at level of tree */
	uint64_t tree;
	bool have_tree;
	uint8_t level;
	uint64_t nth;
	uint64_t generation; /* 0: the newest commit */
};

/* Walk tree id choosing the node (f->by_nth or f->by_key) into f->target. */
static int select_in_tree(struct cli_fs *cfs, uint64_t id, struct node_find *f)
{
	struct arb_tree *t;
	int err = cli_get_tree(cfs, id, &t);

	if (err < 0)
		return err;
	f->tree = id;
	err = arb_tree_walk(t, find_node_cb, f);
	if (err < 0) {
		cli_error("cannot walk tree %" PRIu64 ": %s", id, strerror(-err));
		return err;
	}
	/* what this walk gathered is gathered again, completely, by walk_all */
	f->npaths = 0;
	f->nroots = 0;
	return 0;
}

/* The nth node at a level of a tree (key order), into f->target. */
static int select_nth(struct cli_fs *cfs, const struct node_args *a, struct node_find *f)
{
	int err;

	f->by_nth = true;
	f->level = a->level;
	f->nth = a->nth;
	err = select_in_tree(cfs, a->tree, f);
	if (!err && f->by_nth) {
		cli_error("tree %" PRIu64 " has %" PRIu64 " nodes at level %u", a->tree, f->seen,
		          a->level);
		return -ENOENT;
	}
	return err;
}

static int find_target(struct cli_fs *cfs, const struct node_args *a, struct node_find *f,
                       struct reseal *r)
{
	int err = 0;

	f->target_level = -1;
	if (a->have_tree)
		err = select_nth(cfs, a, f);
	else if (!(err = read_node(r, a->bytenr)))
		f->target = a->bytenr;
	if (!err && !a->have_tree &&
	    le32toh(((const struct arb_node_header *)r->buf)->magic) == ARB_NODE_MAGIC)
		f->target_level = ((const struct arb_node_header *)r->buf)->level;
	if (!err)
		err = walk_all(cfs, f);
	if (!err && !f->npaths) {
		cli_error("no tree of generation %" PRIu64 " holds a node at %" PRIu64,
		          r->generation, f->target);
		err = -ENOENT;
	}
	return err;
}

static int swap_keys(const struct raw_edit *e, uint8_t *buf, uint64_t bytenr)
{
	const struct arb_node_header *h = (const struct arb_node_header *)buf;
	uint32_t n = le16toh(h->nritems);
	size_t sz = h->level ? sizeof(struct arb_key_ptr) : sizeof(struct arb_item);
	uint8_t *ki = buf + sizeof(*h) + e->swap_i * sz, *kj = buf + sizeof(*h) + e->swap_j * sz;
	struct arb_disk_key tmp;

	if (e->swap_i >= n || e->swap_j >= n) {
		cli_error("node %" PRIu64 " has %" PRIu32 " entries", bytenr, n);
		return -EINVAL;
	}
	memcpy(&tmp, ki, sizeof(tmp));
	memcpy(ki, kj, sizeof(tmp));
	memcpy(kj, &tmp, sizeof(tmp));
	return 0;
}

static int edit_node(const struct raw_edit *e, struct reseal *r, const struct node_find *f)
{
	int err = read_node(r, f->target);

	for (int i = 0; !err && i < e->nflips; i++) {
		if (e->flips[i] >= r->nodesize) {
			cli_error("offset %" PRIu32 " is beyond the node (%" PRIu32 " bytes)",
			          e->flips[i], r->nodesize);
			err = -EINVAL;
		}
	}
	if (!err && e->swap)
		err = swap_keys(e, r->buf, f->target);
	if (err)
		return err;
	apply_flips_fields(e, r->buf, r->nodesize);
	if (edit_reseals(e))
		seal_node(r->buf, r->nodesize);
	err = write_node(r, f->target);
	return !err && edit_reseals(e) ? reseal_all(r, f) : err;
}

/* "tree 256" or "trees 256, 257" for a shared node. */
static void list_trees(const struct node_find *f, char *buf, size_t len)
{
	size_t n = 0, count = 0;

	for (size_t i = 0; i < f->npaths && n < len; i++) {
		bool dup = false;

		for (size_t j = 0; j < i; j++)
			dup = dup || f->paths[j].tree == f->paths[i].tree;
		if (!dup)
			n += (size_t)snprintf(buf + n, len - n, "%s%" PRIu64, count++ ? ", " : "",
			                      f->paths[i].tree);
	}
}

static void report_node(const struct raw_edit *e, const struct reseal *r, const struct node_find *f)
{
	char what[256], trees[128];

	describe_edit(e, r->nodesize, what, sizeof(what));
	list_trees(f, trees, sizeof(trees));
	printf("node %" PRIu64 " (tree%s %s, level %u, generation %" PRIu64 "): %s; ", f->target,
	       strchr(trees, ',') ? "s" : "", trees, f->found_level, r->generation, what);
	if (edit_reseals(e))
		printf("checksum recomputed, %" PRIu64 " pointers and %" PRIu64
		       " superblock slots updated\n",
		       r->ptrs, r->slots);
	else
		printf("checksum now wrong\n");
}

static int reseal_init(struct cli_fs *cfs, bool newest, struct reseal *r)
{
	struct arb_fs_info info;

	arb_fs_info(cfs->fs, &info);
	r->dev = cfs->dev;
	r->nodesize = info.nodesize;
	r->generation = info.generation;
	r->buf = malloc(r->nodesize);
	if (!r->buf) {
		cli_error("out of memory");
		return -ENOMEM;
	}
	if (info.fallback_from && newest)
		cli_warning("generation %" PRIu64 " does not verify: damaging generation %" PRIu64,
		            info.fallback_from, info.generation);
	return 0;
}

static int damage_node(struct cli_fs *cfs, void *arg)
{
	const struct node_args *a = arg;
	struct node_find f = {0};
	struct reseal r = {0};
	int err = reseal_init(cfs, !a->generation, &r);

	if (err)
		return err;
	err = find_target(cfs, a, &f, &r);
	if (!err)
		err = edit_node(&a->edit, &r, &f);
	if (!err)
		report_node(&a->edit, &r, &f);
	free(f.paths);
	free(f.roots);
	free(r.buf);
	return err;
}

static void parse_node_option(const struct cmd_struct *cmd, int c, struct node_args *a)
{
	uint64_t v;

	switch (c) {
	case OPT_TREE:
		cli_arg_tree(cmd, optarg, &a->tree);
		a->have_tree = true;
		break;
	case OPT_LEVEL:
		cli_check_arg(cmd, cli_parse_u64(optarg, &v) || v >= MAX_DEPTH, "level", optarg);
		a->level = (uint8_t)v;
		break;
	case OPT_NTH:
		cli_check_arg(cmd, cli_parse_u64(optarg, &a->nth), "node number", optarg);
		break;
	case OPT_GEN:
		cli_check_arg(cmd, cli_parse_u64(optarg, &a->generation) || !a->generation,
		              "generation", optarg);
		break;
	case OPT_OFFSET:
		add_flip(cmd, &a->edit, optarg, ARB_MAX_NODESIZE);
		break;
	case OPT_FIELD:
		add_field(cmd, &a->edit, optarg, node_fields, N_NODE_FIELDS);
		break;
	case OPT_FIX_CSUM:
		a->edit.fix_csum = true;
		break;
	}
}

/* --swap-keys I J: the second number is the next argument. */
static void parse_swap(const struct cmd_struct *cmd, int argc, char **argv, struct raw_edit *e)
{
	uint64_t i, j;

	if (optind >= argc)
		exit(cli_usage_error(cmd, "--swap-keys needs two entry numbers"));
	cli_check_arg(cmd, cli_parse_u64(optarg, &i) || i > UINT16_MAX, "entry", optarg);
	cli_check_arg(cmd, cli_parse_u64(argv[optind], &j) || j > UINT16_MAX || i == j, "entry",
	              argv[optind]);
	optind++;
	e->swap = true;
	e->swap_i = (uint32_t)i;
	e->swap_j = (uint32_t)j;
}

static void parse_node_args(const struct cmd_struct *cmd, int argc, char **argv,
                            struct node_args *a)
{
	static const struct option longopts[] = {
	        {"tree", required_argument, NULL, OPT_TREE},
	        {"level", required_argument, NULL, OPT_LEVEL},
	        {"nth", required_argument, NULL, OPT_NTH},
	        {"generation", required_argument, NULL, OPT_GEN},
	        {"offset", required_argument, NULL, OPT_OFFSET},
	        {"field", required_argument, NULL, OPT_FIELD},
	        {"fix-csum", no_argument, NULL, OPT_FIX_CSUM},
	        {"swap-keys", required_argument, NULL, OPT_SWAP},
	        {NULL, 0, NULL, 0},
	};
	int c;

	while ((c = cli_getopt(cmd, argc, argv, "", longopts)) != -1) {
		if (c == OPT_SWAP)
			parse_swap(cmd, argc, argv, &a->edit);
		else
			parse_node_option(cmd, c, a);
	}
	cli_check_argc(cmd, argc - optind, a->have_tree ? 0 : 1, a->have_tree ? 0 : 1);
	if (!a->have_tree)
		cli_check_arg(cmd,
		              cli_parse_u64(argv[optind], &a->bytenr) || !a->bytenr ||
		                      a->bytenr % ARB_SECTOR_SIZE,
		              "node address", argv[optind]);
}

static int cmd_corrupt_node(const struct cmd_struct *cmd, int argc, char **argv)
{
	struct node_args a = {0};

	parse_node_args(cmd, argc, argv, &a);
	return corrupt_with_fs(false, a.generation, damage_node, &a);
}

static const char *const cmd_corrupt_node_usage[] = {
        "arbor -i IMAGE inspect corrupt node (BYTENR | --tree TREE [--level L] [--nth N]) "
        "[--generation G] [--offset OFF]... [--field NAME=VALUE]... [--swap-keys I J] "
        "[--fix-csum]",
        "",
        "Damage a tree node.",
        "",
        "The node is the one at BYTENR, or the Nth node (from 0, in key order) at",
        "level L (default 0: a leaf) of tree TREE (a number, 'root' or 'space'),",
        "in the newest commit or the newest at or before generation G.",
        "",
        "Without an edit, the last byte of the node is flipped: its checksum",
        "fails.  --field and --swap-keys change the node and recompute its",
        "checksum and every checksum on the way to it, in the parents, the root",
        "item of its tree, the root tree and every superblock slot of the",
        "commit: the node verifies, but its structure is wrong.",
        "",
        OPTLINE("--offset OFF", "flip (invert) byte OFF of the node"),
        OPTLINE("--field NAME=VALUE", "set a header field: bytenr, generation, owner, magic,"),
        "            nritems, level, flags",
        OPTLINE("--swap-keys I J", "swap the keys of entries I and J (items or pointers)"),
        OPTLINE("--fix-csum", "recompute the checksums after --offset flips too"),
        NULL,
};

static const struct cmd_struct cmd_struct_corrupt_node = {"node", cmd_corrupt_node,
                                                          cmd_corrupt_node_usage, NULL, CMD_IMAGE};

/* ---- an item edited in place (corrupt item on the root tree) ------------------------ */

/* Item key_index of the leaf in r->buf: its data. */
static uint8_t *leaf_item_data(struct reseal *r, uint32_t index, uint32_t *ret_len)
{
	const uint32_t hsz = sizeof(struct arb_node_header);
	struct arb_item item;

	memcpy(&item, r->buf + hsz + index * sizeof(item), sizeof(item));
	*ret_len = le32toh(item.size);
	if ((uint64_t)hsz + le32toh(item.offset) + *ret_len > r->nodesize)
		return NULL;
	return r->buf + hsz + le32toh(item.offset);
}

static int edit_in_leaf(struct reseal *r, const struct node_find *f, corrupt_raw_fn fn, void *ctx)
{
	uint8_t *data;
	uint32_t len;
	int err = read_node(r, f->target);

	if (err)
		return err;
	data = leaf_item_data(r, f->key_index, &len);
	if (!data) {
		cli_error("node %" PRIu64 ": item %" PRIu32 " lies outside it", f->target,
		          f->key_index);
		return -EUCLEAN;
	}
	err = fn(ctx, data, len);
	if (err)
		return err;
	seal_node(r->buf, r->nodesize);
	err = write_node(r, f->target);
	return err ? err : reseal_all(r, f);
}

int corrupt_raw_item(struct cli_fs *cfs, uint64_t tree, const struct arb_key *key,
                     corrupt_raw_fn fn, void *ctx)
{
	struct node_find f = {.by_key = true, .key = *key, .target_level = -1};
	struct reseal r = {0};
	int err = reseal_init(cfs, true, &r);

	if (!err)
		err = select_in_tree(cfs, tree, &f);
	if (!err && f.by_key) {
		char kbuf[96];

		cli_error("tree %" PRIu64 " has no item %s", tree,
		          corrupt_key_string(key, kbuf, sizeof(kbuf)));
		err = -ENOENT;
	}
	if (!err)
		err = walk_all(cfs, &f);
	if (!err)
		err = edit_in_leaf(&r, &f, fn, ctx);
	free(f.paths);
	free(f.roots);
	free(r.buf);
	return err;
}

/* ---- paths and extents (corrupt data, corrupt item --path) ------------------------ */

int corrupt_resolve(struct cli_fs *cfs, const char *path, struct cli_node *ret)
{
	struct cli_vfs v = {.cfs = cfs, .fs = cfs->fs};
	int err = arb_vfs_root(cfs->fs, 0, &v.root);

	if (err < 0)
		return cli_result(cfs, err, "the filesystem has no root directory",
		                  "cannot find the root directory");
	err = cli_vfs_resolve(&v, path, ret);
	if (err < 0)
		cli_report(cfs, path, err);
	return err;
}

static int extent_at(struct arb_iter *it, uint64_t local, uint64_t off, struct arb_key *ret,
                     struct arb_file_extent *fe)
{
	const void *data;
	uint32_t len;
	int err = arb_iter_next(it, ret, &data, &len);

	if (err < 0)
		return err;
	if (!err || ret->objectid != local || ret->type != ARB_EXTENT_DATA_KEY || len < sizeof(*fe))
		return -ENOENT;
	memcpy(fe, data, sizeof(*fe));
	return off - ret->offset < le64toh(fe->num_bytes) ? 0 : -ENOENT;
}

int corrupt_find_extent(struct arb_tree *t, uint64_t local, uint64_t off, struct arb_key *ret,
                        struct arb_file_extent *fe)
{
	struct arb_key start = {local, ARB_EXTENT_DATA_KEY, off};
	struct arb_iter *it;
	int err = arb_iter_open(t, &start, ARB_ITER_BACKWARD, &it);

	if (err < 0)
		return err;
	err = extent_at(it, local, off, ret, fe);
	arb_iter_close(it);
	return err;
}

/* ---- corrupt data ------------------------------------------------------------------ */

struct data_args {
	const char *path;
	uint64_t offset;
};

static int flip_disk_byte(struct arb_dev *dev, uint64_t where)
{
	uint8_t b;
	int err = arb_dev_read(dev, &b, 1, where);

	if (!err) {
		b ^= 0xff;
		err = arb_dev_write(dev, &b, 1, where);
	}
	if (err < 0)
		cli_error("cannot flip byte %" PRIu64 ": %s", where, strerror(-err));
	return err;
}

/* The data extent holding the byte: -EINVAL (printed) when it has no
 * checksummed copy on disk. */
static int data_extent(struct cli_fs *cfs, const struct data_args *a, const struct cli_node *n,
                       struct arb_key *key, struct arb_file_extent *fe)
{
	struct arb_tree *t;
	int err = cli_get_tree(cfs, arb_ino_subvol(n->st.ino), &t);

	if (!err)
		err = corrupt_find_extent(t, arb_ino_local(n->st.ino), a->offset, key, fe);
	if (err == -ENOENT)
		cli_error("%s: no data at offset %" PRIu64 " (a hole, or past the end)", a->path,
		          a->offset);
	else if (err < 0)
		cli_report(cfs, a->path, err);
	else if (fe->type != ARB_EXTENT_REG)
		cli_error("%s: the data at offset %" PRIu64 " is %s", a->path, a->offset,
		          fe->type == ARB_EXTENT_INLINE
		                  ? "inline, in a leaf (use 'corrupt item --path PATH extent')"
		                  : "preallocated, without checksums");
	return err ? err : fe->type == ARB_EXTENT_REG ? 0 : -EINVAL;
}

static int damage_data(struct cli_fs *cfs, void *arg)
{
	const struct data_args *a = arg;
	struct arb_file_extent fe = {0};
	struct cli_node n;
	struct arb_key key;
	uint64_t where;
	int err = corrupt_resolve(cfs, a->path, &n);

	if (!err && !S_ISREG(n.st.mode)) {
		cli_error("%s: not a regular file", a->path);
		err = -EINVAL;
	}
	if (!err)
		err = data_extent(cfs, a, &n, &key, &fe);
	if (err)
		return err;
	where = le64toh(fe.disk_bytenr) + (a->offset - key.offset);
	err = flip_disk_byte(cfs->dev, where);
	if (!err)
		printf("%s: flipped the byte at offset %" PRIu64 " (disk byte %" PRIu64
		       " in the extent of %" PRIu64 " bytes at %" PRIu64 ")\n",
		       a->path, a->offset, where, le64toh(fe.num_bytes), le64toh(fe.disk_bytenr));
	return err;
}

static int cmd_corrupt_data(const struct cmd_struct *cmd, int argc, char **argv)
{
	static const struct option longopts[] = {
	        {"offset", required_argument, NULL, OPT_OFFSET},
	        {NULL, 0, NULL, 0},
	};
	struct data_args a = {NULL, 0};
	int c;

	while ((c = cli_getopt(cmd, argc, argv, "", longopts)) != -1)
		cli_check_arg(cmd, cli_parse_u64(optarg, &a.offset), "offset", optarg);
	a.path = cli_path_arg(cmd, argc, argv);
	return corrupt_with_fs(false, 0, damage_data, &a);
}

static const char *const cmd_corrupt_data_usage[] = {
        "arbor -i IMAGE inspect corrupt data PATH [--offset N]",
        "",
        "Flip a byte of a file's data on disk.",
        "",
        "The byte at offset N (default 0) of the regular file PATH (in the",
        "default subvolume) is inverted where it is stored: reading it fails",
        "with EIO, and fsck.arbor --check-data reports the checksum mismatch.",
        "Inline data (small files) lives in a leaf: see 'corrupt item'.",
        NULL,
};

static const struct cmd_struct cmd_struct_corrupt_data = {"data", cmd_corrupt_data,
                                                          cmd_corrupt_data_usage, NULL, CMD_IMAGE};

/* ---- corrupt refcount ---------------------------------------------------------------- */

struct ref_args {
	uint64_t bytenr, nsectors;
	int64_t delta;
	uint64_t alloc; /* --alloc: sectors to allocate, referenced nowhere */
};

static int leak_sectors(struct cli_fs *cfs, const struct ref_args *a)
{
	uint64_t bytenr;
	int err = arb_extent_alloc(cfs->fs, a->alloc, &bytenr);

	if (err < 0)
		return cli_result(cfs, err, NULL, "cannot allocate");
	printf("allocated %" PRIu64 " sectors at %" PRIu64 ", referenced nowhere (leaked)\n",
	       a->alloc, bytenr);
	return 0;
}

/* The lowest count of the range, which a negative delta must not pass. */
static int lowest_count(struct cli_fs *cfs, const struct ref_args *a, uint32_t *ret)
{
	*ret = UINT32_MAX;
	for (uint64_t s = 0; s < a->nsectors; s++) {
		uint32_t c;
		int err = arb_sector_refcount(cfs->fs, a->bytenr + s * ARB_SECTOR_SIZE, &c);

		if (err < 0)
			return cli_result(cfs, err, NULL, "no such sector");
		*ret = c < *ret ? c : *ret;
	}
	return 0;
}

static int change_refcount(struct cli_fs *cfs, void *arg)
{
	const struct ref_args *a = arg;
	uint64_t steps = (uint64_t)(a->delta < 0 ? -a->delta : a->delta);
	uint32_t before;
	int err;

	if (a->alloc)
		return leak_sectors(cfs, a);
	err = lowest_count(cfs, a, &before);
	if (!err && a->delta < 0 && before < steps) {
		cli_error("the count of sector %" PRIu64 " is %" PRIu32
		          ": it cannot drop by %" PRIu64,
		          a->bytenr, before, steps);
		err = -ERANGE;
	}
	for (uint64_t i = 0; !err && i < steps; i++)
		err = cli_result(
		        cfs, arb_extent_ref(cfs->fs, a->bytenr, a->nsectors, a->delta < 0 ? -1 : 1),
		        NULL, "cannot change the count");
	if (!err)
		printf("%" PRIu64 " sectors at %" PRIu64 ": count %+" PRId64 " (was %" PRIu32
		       "%s)\n",
		       a->nsectors, a->bytenr, a->delta, before,
		       a->nsectors > 1 ? " at least" : "");
	return err;
}

static void parse_delta(const struct cmd_struct *cmd, const char *s, int64_t *ret)
{
	uint64_t v;
	bool neg = s[0] == '-';

	cli_check_arg(cmd, cli_parse_u64(s + (neg || s[0] == '+'), &v) || !v || v > 1000000,
	              "delta", s);
	*ret = neg ? -(int64_t)v : (int64_t)v;
}

/* By hand rather than getopt: DELTA may be negative. */
static void parse_ref_args(const struct cmd_struct *cmd, int argc, char **argv, struct ref_args *a)
{
	const char *pos[2];
	int npos = 0;

	for (int i = 1; i < argc; i++) {
		const char *s = argv[i];
		uint64_t *opt = !strcmp(s, "--sectors") ? &a->nsectors
		                : !strcmp(s, "--alloc") ? &a->alloc
		                                        : NULL;

		if (!strcmp(s, "--help")) {
			cli_usage(cmd, true, stdout);
			exit(CLI_EXIT_OK);
		}
		if (opt && i + 1 < argc) {
			i++;
			cli_check_arg(cmd, cli_parse_u64(argv[i], opt) || !*opt, "sector count",
			              argv[i]);
		} else if (opt || (s[0] == '-' && !isdigit((unsigned char)s[1]))) {
			exit(cli_usage_error(cmd, "unknown option or missing argument '%s'", s));
		} else if (npos == 2) {
			exit(cli_usage_error(cmd, "too many arguments"));
		} else {
			pos[npos++] = s;
		}
	}
	if (a->alloc) {
		cli_check_argc(cmd, npos, 0, 0);
		return;
	}
	cli_check_argc(cmd, npos, 2, 2);
	cli_check_arg(cmd, cli_parse_u64(pos[0], &a->bytenr) || a->bytenr % ARB_SECTOR_SIZE,
	              "sector address", pos[0]);
	parse_delta(cmd, pos[1], &a->delta);
}

static int cmd_corrupt_refcount(const struct cmd_struct *cmd, int argc, char **argv)
{
	struct ref_args a = {.nsectors = 1};

	parse_ref_args(cmd, argc, argv, &a);
	return corrupt_with_fs(true, 0, change_refcount, &a);
}

static const char *const cmd_corrupt_refcount_usage[] = {
        "arbor -i IMAGE inspect corrupt refcount BYTENR DELTA [--sectors N]",
        "arbor -i IMAGE inspect corrupt refcount --alloc N",
        "",
        "Make the space map count wrong, in a normal commit.",
        "",
        "Adds DELTA (say +1 or -1) to the reference count of the N sectors",
        "(default 1) from BYTENR.  Too high, a sector stays allocated when its",
        "last user frees it; too low, a sector in use counts as free, and a",
        "later allocation may overwrite it.  With --alloc, N new sectors are",
        "allocated and referenced nowhere: a leak.  'arbor engine check' and",
        "fsck.arbor find the difference.",
        "",
        OPTLINE("--sectors N", "change N sectors from BYTENR"),
        OPTLINE("--alloc N", "allocate N sectors that nothing references"),
        NULL,
};

static const struct cmd_struct cmd_struct_corrupt_refcount = {
        "refcount", cmd_corrupt_refcount, cmd_corrupt_refcount_usage, NULL, CMD_IMAGE};

/* ---- the group ------------------------------------------------------------------------ */

static const char *const cmd_inspect_corrupt_usage[] = {
        "arbor -i IMAGE inspect corrupt COMMAND",
        "",
        "Damage an unmounted image on purpose, for tests and to learn fsck.arbor.",
        "",
        "Every command refuses an image in use (mounted by arborfs) and prints",
        "what it changed.  Make a copy first: the damage is real.",
        NULL,
};

static const struct cmd_struct *const corrupt_commands[] = {
        &cmd_struct_corrupt_slot,     &cmd_struct_corrupt_node, &cmd_struct_corrupt_item,
        &cmd_struct_corrupt_refcount, &cmd_struct_corrupt_data, NULL,
};

static const struct cmd_group corrupt_group = {cmd_inspect_corrupt_usage, corrupt_commands};

const struct cmd_struct cmd_struct_inspect_corrupt = {"corrupt", NULL, cmd_inspect_corrupt_usage,
                                                      &corrupt_group, 0};
