/* SPDX-License-Identifier: MIT */
/*
 * corrupt_item.c - "arbor inspect corrupt item": edit, delete, move or add
 * an item through an ordinary transaction.  Every checksum stays valid:
 * the damage is logical (a wrong link count, a missing back-reference, an
 * entry naming nothing), the kind fsck.arbor's namespace phase finds.
 */
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "corrupt.h"

#include "arbor/btree.h"
#include "arbor/fs.h"
#include "arbor/vfs.h"

/* ---- fields of the items ---------------------------------------------------------- */

#define FIELD(type, name, member)                                                                  \
	{                                                                                          \
		name, offsetof(struct type, member), sizeof(((struct type *)0)->member)            \
	}
#define ROOT_PTR(name, member)                                                                     \
	{                                                                                          \
		name, offsetof(struct arb_root_item, root) + offsetof(struct arb_blkptr, member),  \
		        sizeof(((struct arb_blkptr *)0)->member)                                   \
	}

static const struct corrupt_field inode_fields[] = {
        FIELD(arb_inode_item, "generation", generation),
        FIELD(arb_inode_item, "size", size),
        FIELD(arb_inode_item, "nbytes", nbytes),
        FIELD(arb_inode_item, "nlink", nlink),
        FIELD(arb_inode_item, "uid", uid),
        FIELD(arb_inode_item, "gid", gid),
        FIELD(arb_inode_item, "mode", mode),
        FIELD(arb_inode_item, "rdev", rdev),
        FIELD(arb_inode_item, "flags", flags),
        FIELD(arb_inode_item, "next_index", next_index),
        FIELD(arb_inode_item, "sequence", sequence),
};
static const struct corrupt_field iref_fields[] = {
        FIELD(arb_inode_ref, "parent", parent),
        FIELD(arb_inode_ref, "index", index),
        FIELD(arb_inode_ref, "name_len", name_len),
};
static const struct corrupt_field dirent_fields[] = {
        FIELD(arb_dir_entry, "ino", ino),
        FIELD(arb_dir_entry, "index", index),
        FIELD(arb_dir_entry, "type", type),
        FIELD(arb_dir_entry, "name_len", name_len),
};
static const struct corrupt_field extent_fields[] = {
        FIELD(arb_file_extent, "generation", generation),
        FIELD(arb_file_extent, "num_bytes", num_bytes),
        FIELD(arb_file_extent, "disk_bytenr", disk_bytenr),
        FIELD(arb_file_extent, "type", type),
};
static const struct corrupt_field root_item_fields[] = {
        ROOT_PTR("root_bytenr", bytenr),
        ROOT_PTR("root_generation", generation),
        ROOT_PTR("root_csum", csum),
        ROOT_PTR("root_level", level),
        FIELD(arb_root_item, "last_snapshot", last_snapshot),
        FIELD(arb_root_item, "flags", flags),
        FIELD(arb_root_item, "create_gen", create_gen),
        FIELD(arb_root_item, "parent_id", parent_id),
        FIELD(arb_root_item, "ref_nodes", ref_nodes),
        FIELD(arb_root_item, "ref_data_sectors", ref_data_sectors),
};
static const struct corrupt_field root_ref_fields[] = {
        FIELD(arb_root_ref, "dirid", dirid),
        FIELD(arb_root_ref, "index", index),
        FIELD(arb_root_ref, "name_len", name_len),
};
static const struct corrupt_field xattr_fields[] = {
        FIELD(arb_xattr, "name_len", name_len),
        FIELD(arb_xattr, "value_len", value_len),
};
static const struct corrupt_field info_fields[] = {
        FIELD(arb_subvol_info, "next_ino", next_ino),
};
static const struct corrupt_field le64_fields[] = {
        {"id", 0, 8},
};

#define TABLE(t) t, sizeof(t) / sizeof(t[0])

static const struct {
	uint8_t type;
	const struct corrupt_field *fields;
	size_t n;
} item_tables[] = {
        {ARB_INODE_ITEM_KEY, TABLE(inode_fields)},
        {ARB_INODE_REF_KEY, TABLE(iref_fields)},
        {ARB_DIR_ITEM_KEY, TABLE(dirent_fields)},
        {ARB_DIR_INDEX_KEY, TABLE(dirent_fields)},
        {ARB_EXTENT_DATA_KEY, TABLE(extent_fields)},
        {ARB_ROOT_ITEM_KEY, TABLE(root_item_fields)},
        {ARB_ROOT_REF_KEY, TABLE(root_ref_fields)},
        {ARB_ROOT_BACKREF_KEY, TABLE(root_ref_fields)},
        {ARB_XATTR_ITEM_KEY, TABLE(xattr_fields)},
        {ARB_SUBVOL_INFO_KEY, TABLE(info_fields)},
        {ARB_DEFAULT_SUBVOL_KEY, TABLE(le64_fields)},
};

static const struct corrupt_field *type_field(const struct cmd_struct *cmd, uint8_t type,
                                              const char *name)
{
	for (size_t i = 0; i < sizeof(item_tables) / sizeof(item_tables[0]); i++) {
		if (item_tables[i].type == type)
			return corrupt_arg_field(cmd, item_tables[i].fields, item_tables[i].n,
			                         name);
	}
	exit(cli_usage_error(cmd, "--set knows no fields of key type %u: use --set-bytes", type));
}

/* ---- the command line ----------------------------------------------------------------- */

enum action { ACT_NONE, ACT_DELETE, ACT_SET, ACT_REKEY, ACT_INSERT };

/* What --path names. */
enum what { W_INODE, W_IREF, W_DIR_ITEM, W_DIR_INDEX, W_DIR_ENTRY, W_EXTENT, W_ORPHAN };

static const struct {
	const char *name;
	enum what what;
	uint8_t type;
} whats[] = {
        {"inode", W_INODE, ARB_INODE_ITEM_KEY},       {"inode-ref", W_IREF, ARB_INODE_REF_KEY},
        {"dir-item", W_DIR_ITEM, ARB_DIR_ITEM_KEY},   {"dir-index", W_DIR_INDEX, ARB_DIR_INDEX_KEY},
        {"dir-entry", W_DIR_ENTRY, ARB_DIR_ITEM_KEY}, {"extent", W_EXTENT, ARB_EXTENT_DATA_KEY},
        {"orphan", W_ORPHAN, ARB_ORPHAN_KEY},
};

struct byte_edit {
	uint32_t off;
	uint8_t *bytes;
	size_t len;
};

struct item_args {
	/* the item: --tree and KEY, or --path, WHAT and an extent's offset */
	bool have_tree;
	uint64_t tree;
	struct arb_key key;
	const char *path;
	enum what what;
	uint8_t type; /* of the key, for --set */
	uint64_t file_off;
	/* what to do */
	enum action action;
	const char *set_args[CORRUPT_MAX_EDITS];
	const struct corrupt_field *fields[CORRUPT_MAX_EDITS];
	uint64_t values[CORRUPT_MAX_EDITS];
	int nsets;
	struct byte_edit bytes[CORRUPT_MAX_EDITS];
	int nbytes;
	struct arb_key newkey; /* --rekey */
	uint8_t *data;         /* --insert */
	size_t data_len;
};

static void set_action(const struct cmd_struct *cmd, struct item_args *a, enum action act)
{
	if (a->action != ACT_NONE && a->action != act)
		exit(cli_usage_error(cmd, "give one of --delete, --set/--set-bytes, --rekey and "
		                          "--insert"));
	a->action = act;
}

static void add_set_bytes(const struct cmd_struct *cmd, struct item_args *a, const char *arg)
{
	const char *colon = strchr(arg, ':');
	struct byte_edit *b = &a->bytes[a->nbytes];
	char num[32];
	uint64_t off;

	if (a->nbytes == CORRUPT_MAX_EDITS)
		exit(cli_usage_error(cmd, "too many --set-bytes"));
	if (!colon || (size_t)(colon - arg) >= sizeof(num))
		exit(cli_usage_error(cmd, "invalid --set-bytes '%s' (OFFSET:HEX)", arg));
	memcpy(num, arg, (size_t)(colon - arg));
	num[colon - arg] = '\0';
	cli_check_arg(cmd, cli_parse_u64(num, &off) || off > UINT32_MAX, "offset", num);
	cli_check_arg(cmd, corrupt_parse_hex(colon + 1, &b->bytes, &b->len) || !b->len, "hex bytes",
	              colon + 1);
	b->off = (uint32_t)off;
	a->nbytes++;
}

static void parse_item_option(const struct cmd_struct *cmd, int c, struct item_args *a)
{
	switch (c) {
	case 't':
		cli_arg_tree(cmd, optarg, &a->tree);
		a->have_tree = true;
		break;
	case 'p':
		cli_arg_path(cmd, optarg);
		a->path = optarg;
		break;
	case 'd':
		set_action(cmd, a, ACT_DELETE);
		break;
	case 's':
		set_action(cmd, a, ACT_SET);
		if (a->nsets == CORRUPT_MAX_EDITS)
			exit(cli_usage_error(cmd, "too many --set"));
		a->set_args[a->nsets++] = optarg;
		break;
	case 'b':
		set_action(cmd, a, ACT_SET);
		add_set_bytes(cmd, a, optarg);
		break;
	case 'r':
		set_action(cmd, a, ACT_REKEY);
		cli_check_arg(cmd, corrupt_parse_key(optarg, &a->newkey), "key", optarg);
		break;
	case 'i':
		set_action(cmd, a, ACT_INSERT);
		cli_check_arg(cmd, optarg && corrupt_parse_hex(optarg, &a->data, &a->data_len),
		              "hex bytes", optarg);
		break;
	}
}

static void parse_what(const struct cmd_struct *cmd, int nargs, char **args, struct item_args *a)
{
	size_t i = 0, n = sizeof(whats) / sizeof(whats[0]);

	while (i < n && strcmp(whats[i].name, args[0]))
		i++;
	if (i == n)
		exit(cli_usage_error(cmd,
		                     "unknown item '%s' (inode, inode-ref, dir-item, "
		                     "dir-index, dir-entry, extent, orphan)",
		                     args[0]));
	a->what = whats[i].what;
	a->type = whats[i].type;
	cli_check_argc(cmd, nargs, 1, a->what == W_EXTENT ? 2 : 1);
	if (nargs == 2)
		cli_check_arg(cmd, cli_parse_u64(args[1], &a->file_off), "file offset", args[1]);
}

static void check_item_args(const struct cmd_struct *cmd, struct item_args *a)
{
	if (a->action == ACT_NONE)
		exit(cli_usage_error(cmd, "nothing to do: give --delete, --set, --set-bytes, "
		                          "--rekey or --insert"));
	if (a->have_tree && a->tree == ARB_SPACE_TREE_ID)
		exit(cli_usage_error(cmd, "the space map is edited with 'corrupt refcount'"));
	if (a->path && (a->action == ACT_REKEY || a->action == ACT_INSERT) &&
	    a->what == W_DIR_ENTRY)
		exit(cli_usage_error(cmd, "dir-entry is two items: --rekey or --insert one of "
		                          "dir-item and dir-index"));
	if (a->path && a->action == ACT_INSERT && a->what != W_ORPHAN)
		exit(cli_usage_error(cmd, "with --path, only an orphan item can be inserted"));
	for (int i = 0; i < a->nsets; i++) {
		char name[32];

		corrupt_arg_assign(cmd, a->set_args[i], name, sizeof(name), &a->values[i]);
		a->fields[i] = type_field(cmd, a->type, name);
	}
}

static void parse_item_args(const struct cmd_struct *cmd, int argc, char **argv,
                            struct item_args *a)
{
	static const struct option longopts[] = {
	        {"tree", required_argument, NULL, 't'},
	        {"path", required_argument, NULL, 'p'},
	        {"delete", no_argument, NULL, 'd'},
	        {"set", required_argument, NULL, 's'},
	        {"set-bytes", required_argument, NULL, 'b'},
	        {"rekey", required_argument, NULL, 'r'},
	        {"insert", optional_argument, NULL, 'i'},
	        {NULL, 0, NULL, 0},
	};
	int c, nargs;

	while ((c = cli_getopt(cmd, argc, argv, "", longopts)) != -1)
		parse_item_option(cmd, c, a);
	nargs = argc - optind;
	if (a->have_tree == !!a->path)
		exit(cli_usage_error(cmd, "give either --tree TREE KEY or --path PATH WHAT"));
	if (a->have_tree) {
		cli_check_argc(cmd, nargs, 1, 1);
		cli_check_arg(cmd, corrupt_parse_key(argv[optind], &a->key), "key", argv[optind]);
		a->type = a->key.type;
	} else {
		cli_check_argc(cmd, nargs, 1, 2);
		parse_what(cmd, nargs, argv + optind, a);
	}
	check_item_args(cmd, a);
}

/* ---- the items --path names ---------------------------------------------------------- */

/* One item to change, or one named record inside a hashed item. */
struct target {
	uint64_t tree;
	struct arb_key key;
	bool record;
	uint32_t rec_off, rec_len;
};

/* The name a path ends with. */
static int last_name(const char *path, char *name)
{
	size_t end = strlen(path), start;

	while (end > 0 && path[end - 1] == '/')
		end--;
	start = end;
	while (start > 0 && path[start - 1] != '/')
		start--;
	if (end == start || end - start > ARB_NAME_MAX)
		return -EINVAL;
	memcpy(name, path + start, end - start);
	name[end - start] = '\0';
	return strcmp(name, ".") && strcmp(name, "..") ? 0 : -EINVAL;
}

/* The record of name in a DIR_ITEM/DIR_INDEX or INODE_REF item (for the
 * latter, of that parent): its offset, or -1. */
static long find_record(uint8_t type, const uint8_t *d, uint32_t len, const char *name,
                        uint64_t parent, uint32_t *ret_len)
{
	bool iref = type == ARB_INODE_REF_KEY;
	uint32_t hsz = iref ? sizeof(struct arb_inode_ref) : sizeof(struct arb_dir_entry);
	uint32_t nl_off = iref ? offsetof(struct arb_inode_ref, name_len)
	                       : offsetof(struct arb_dir_entry, name_len);
	size_t nlen = strlen(name);

	for (uint32_t off = 0; off + hsz <= len;) {
		uint16_t n;
		uint64_t par;

		memcpy(&n, d + off + nl_off, sizeof(n));
		memcpy(&par, d + off, sizeof(par));
		n = le16toh(n);
		if (off + hsz + n > len)
			return -1;
		if (n == nlen && !memcmp(d + off + hsz, name, nlen) &&
		    (!iref || le64toh(par) == parent)) {
			*ret_len = hsz + n;
			return off;
		}
		off += hsz + n;
	}
	return -1;
}

static int scan_records(struct arb_iter *it, uint64_t obj, uint8_t type, const char *name,
                        uint64_t parent, struct target *tg)
{
	const void *data;
	uint32_t len;
	int err;

	while ((err = arb_iter_next(it, &tg->key, &data, &len)) == 1) {
		long off;

		if (tg->key.objectid != obj || tg->key.type != type)
			return -ENOENT;
		off = find_record(type, data, len, name, parent, &tg->rec_len);
		if (off >= 0) {
			tg->rec_off = (uint32_t)off;
			tg->record = true;
			return 0;
		}
	}
	return err < 0 ? err : -ENOENT;
}

/* The item of type of objectid obj in tree that holds name. */
static int find_named(struct cli_fs *cfs, uint64_t tree, uint64_t obj, uint8_t type,
                      const char *name, uint64_t parent, struct target *tg)
{
	struct arb_key start = {obj, type, 0};
	struct arb_tree *t;
	struct arb_iter *it;
	int err = cli_get_tree(cfs, tree, &t);

	if (!err)
		err = arb_iter_open(t, &start, ARB_ITER_FORWARD, &it);
	if (err < 0)
		return err;
	tg->tree = tree;
	err = scan_records(it, obj, type, name, parent, tg);
	arb_iter_close(it);
	return err;
}

static int extent_target(struct cli_fs *cfs, const struct item_args *a, arb_ino_t ino,
                         struct target *tg)
{
	struct arb_file_extent fe;
	struct arb_tree *t;
	int err = cli_get_tree(cfs, arb_ino_subvol(ino), &t);

	tg->tree = arb_ino_subvol(ino);
	if (!err)
		err = corrupt_find_extent(t, arb_ino_local(ino), a->file_off, &tg->key, &fe);
	if (err == -ENOENT)
		cli_error("%s: no extent at offset %" PRIu64 " (a hole, or past the end)", a->path,
		          a->file_off);
	return err;
}

/* The items of a named entry: the DIR_ITEM record, the DIR_INDEX, or both. */
static int entry_targets(struct cli_fs *cfs, const struct item_args *a, const struct cli_node *n,
                         const char *name, struct target *tg)
{
	uint64_t tree = arb_ino_subvol(n->dir), dir = arb_ino_local(n->dir);
	int nt = 0, err = 0;

	if (a->what != W_DIR_INDEX) {
		err = find_named(cfs, tree, dir, ARB_DIR_ITEM_KEY, name, 0, &tg[nt++]);
		if (err == -ENOENT)
			cli_error("%s: no DIR_ITEM names it", a->path);
	}
	if (!err && a->what != W_DIR_ITEM) {
		err = find_named(cfs, tree, dir, ARB_DIR_INDEX_KEY, name, 0, &tg[nt++]);
		if (err == -ENOENT)
			cli_error("%s: no DIR_INDEX names it", a->path);
	}
	return err < 0 ? err : nt;
}

/* The items a --path form names (1 or 2), into tg[]. */
static int path_targets(struct cli_fs *cfs, const struct item_args *a, struct target *tg)
{
	char name[ARB_NAME_MAX + 1];
	struct cli_node n;
	uint64_t tree, local;
	int err = corrupt_resolve(cfs, a->path, &n);

	if (err < 0)
		return err;
	tree = arb_ino_subvol(n.st.ino);
	local = arb_ino_local(n.st.ino);
	tg[0] = (struct target){.tree = tree, .key = {local, ARB_INODE_ITEM_KEY, 0}};
	if (a->what == W_INODE)
		return 1;
	if (a->what == W_ORPHAN) {
		tg[0].key = (struct arb_key){ARB_ORPHAN_OBJ, ARB_ORPHAN_KEY, local};
		return 1;
	}
	if (a->what == W_EXTENT)
		return extent_target(cfs, a, n.st.ino, tg) ? -ENOENT : 1;
	if (last_name(a->path, name)) {
		cli_error("%s: the path must end with a name", a->path);
		return -EINVAL;
	}
	if (a->what != W_IREF)
		return entry_targets(cfs, a, &n, name, tg);
	err = find_named(cfs, tree, local, ARB_INODE_REF_KEY, name, arb_ino_local(n.dir), tg);
	if (err == -ENOENT)
		cli_error("%s: no INODE_REF names it", a->path);
	return err < 0 ? err : 1;
}

/* ---- the edits ----------------------------------------------------------------------- */

struct item_buf {
	uint8_t *data;
	uint32_t len, max;
};

static void print_done(const struct target *tg, const char *what)
{
	char key[96];

	printf("tree %" PRIu64 " item %s: %s\n", tg->tree,
	       corrupt_key_string(&tg->key, key, sizeof(key)), what);
}

/* A named record goes alone when the item holds others (hash collisions). */
static int delete_item(struct arb_tree *t, const struct target *tg, struct item_buf *b)
{
	if (!tg->record || tg->rec_len == b->len)
		return arb_delete(t, &tg->key);
	memmove(b->data + tg->rec_off, b->data + tg->rec_off + tg->rec_len,
	        b->len - tg->rec_off - tg->rec_len);
	return arb_update(t, &tg->key, b->data, b->len - tg->rec_len);
}

static int set_fields(const struct item_args *a, const struct target *tg, struct item_buf *b)
{
	uint32_t base = tg->record ? tg->rec_off : 0;
	uint32_t end = tg->record ? tg->rec_off + tg->rec_len : b->len;

	for (int i = 0; i < a->nsets; i++) {
		const struct corrupt_field *f = a->fields[i];

		if (base + f->off + f->size > end) {
			cli_error("the item is too short (%" PRIu32 " bytes) for field %s", b->len,
			          f->name);
			return -EINVAL;
		}
		corrupt_put_le(b->data + base + f->off, f->size, a->values[i]);
	}
	for (int i = 0; i < a->nbytes; i++) {
		if ((uint64_t)a->bytes[i].off + a->bytes[i].len > b->len) {
			cli_error("--set-bytes %" PRIu32 ": past the end of the item (%" PRIu32
			          " bytes)",
			          a->bytes[i].off, b->len);
			return -EINVAL;
		}
		memcpy(b->data + a->bytes[i].off, a->bytes[i].bytes, a->bytes[i].len);
	}
	return 0;
}

static int rekey_item(struct arb_tree *t, const struct item_args *a, const struct target *tg,
                      const struct item_buf *b)
{
	int err = arb_insert(t, &a->newkey, b->data, b->len);

	if (err == -EEXIST)
		cli_error("the tree already holds an item with the new key");
	return err ? err : arb_delete(t, &tg->key);
}

static void describe(const struct item_args *a, char *buf, size_t len)
{
	char key[96];
	size_t n = 0;

	if (a->action == ACT_DELETE) {
		snprintf(buf, len, "deleted");
	} else if (a->action == ACT_INSERT) {
		snprintf(buf, len, "inserted (%zu bytes)", a->data_len);
	} else if (a->action == ACT_REKEY) {
		snprintf(buf, len, "moved to %s", corrupt_key_string(&a->newkey, key, sizeof(key)));
	} else {
		for (int i = 0; i < a->nsets && n < len; i++)
			n += (size_t)snprintf(buf + n, len - n, "%sset %s", n ? ", " : "",
			                      a->set_args[i]);
		for (int i = 0; i < a->nbytes && n < len; i++)
			n += (size_t)snprintf(buf + n, len - n, "%sset %zu bytes at %" PRIu32,
			                      n ? ", " : "", a->bytes[i].len, a->bytes[i].off);
	}
}

static int edit_existing(struct arb_tree *t, const struct item_args *a, const struct target *tg,
                         struct item_buf *b)
{
	int err = arb_lookup(t, &tg->key, b->data, b->max, &b->len);

	if (err == -ENOENT) {
		char key[96];

		cli_error("tree %" PRIu64 " has no item %s", tg->tree,
		          corrupt_key_string(&tg->key, key, sizeof(key)));
		return err;
	}
	if (err)
		return err;
	if (a->action == ACT_DELETE)
		return delete_item(t, tg, b);
	if (a->action == ACT_REKEY)
		return rekey_item(t, a, tg, b);
	err = set_fields(a, tg, b);
	return err ? err : arb_update(t, &tg->key, b->data, b->len);
}

static int apply_one(struct cli_fs *cfs, const struct item_args *a, const struct target *tg,
                     struct item_buf *b)
{
	char what[512];
	struct arb_tree *t;
	int err = cli_get_tree(cfs, tg->tree, &t);

	if (err < 0)
		return err;
	if (a->action == ACT_INSERT) {
		err = arb_insert(t, &tg->key, a->data, (uint32_t)a->data_len);
		if (err == -EEXIST)
			cli_error("tree %" PRIu64 " already holds that item", tg->tree);
	} else {
		err = edit_existing(t, a, tg, b);
	}
	if (err < 0)
		return err == -ENOENT || err == -EEXIST || err == -EINVAL
		               ? err
		               : cli_tree_result(cfs, tg->tree, err, "cannot change the item");
	describe(a, what, sizeof(what));
	print_done(tg, what);
	return 0;
}

static int damage_item(struct cli_fs *cfs, void *arg)
{
	const struct item_args *a = arg;
	struct target tg[2] = {{0}};
	struct item_buf b = {NULL, 0, arb_max_item_size(cfs->fs)};
	int n = 1, err = 0;

	if (a->have_tree)
		tg[0] = (struct target){.tree = a->tree, .key = a->key};
	else
		n = path_targets(cfs, a, tg);
	b.data = malloc(b.max);
	if (!b.data) {
		cli_error("out of memory");
		return -ENOMEM;
	}
	for (int i = 0; i < n && !err; i++)
		err = apply_one(cfs, a, &tg[i], &b);
	free(b.data);
	return n < 0 ? n : err;
}

/* ---- the root tree: edited in place ---------------------------------------------------- */

struct raw_ctx {
	const struct item_args *a;
	const struct target *tg;
};

static int raw_set(void *ctx, uint8_t *data, uint32_t len)
{
	const struct raw_ctx *c = ctx;
	struct item_buf b = {data, len, len};

	return set_fields(c->a, c->tg, &b);
}

static int damage_root_item(struct cli_fs *cfs, void *arg)
{
	const struct item_args *a = arg;
	struct target tg = {.tree = a->tree, .key = a->key};
	struct raw_ctx c = {a, &tg};
	char what[512];
	int err = corrupt_raw_item(cfs, a->tree, &a->key, raw_set, &c);

	if (err)
		return err;
	describe(a, what, sizeof(what));
	strncat(what, " in place (checksums recomputed)", sizeof(what) - strlen(what) - 1);
	print_done(&tg, what);
	return 0;
}

static int cmd_corrupt_item(const struct cmd_struct *cmd, int argc, char **argv)
{
	struct item_args a = {0};
	bool raw;
	int ret;

	parse_item_args(cmd, argc, argv, &a);
	raw = a.have_tree && a.tree == ARB_ROOT_TREE_ID;
	if (raw && a.action != ACT_SET)
		exit(cli_usage_error(cmd, "the root tree's items can only be changed in place "
		                          "(--set, --set-bytes)"));
	ret = raw ? corrupt_with_fs(false, 0, damage_root_item, &a)
	          : corrupt_with_fs(true, 0, damage_item, &a);
	for (int i = 0; i < a.nbytes; i++)
		free(a.bytes[i].bytes);
	free(a.data);
	return ret;
}

static const char *const cmd_corrupt_item_usage[] = {
        "arbor -i IMAGE inspect corrupt item --tree TREE KEY ACTION",
        "arbor -i IMAGE inspect corrupt item --path PATH WHAT [OFFSET] ACTION",
        "",
        "Change one item through an ordinary commit: checksums stay valid.",
        "",
        "KEY is OBJECTID,TYPE,OFFSET; TYPE is a number or a name: INODE_ITEM,",
        "INODE_REF, XATTR_ITEM, ORPHAN, DIR_ITEM, DIR_INDEX, EXTENT_DATA,",
        "SUBVOL_INFO, DEFAULT_SUBVOL, ROOT_REF, ROOT_BACKREF, ROOT_ITEM.  TREE is",
        "a number or 'root' ('space' is changed with 'corrupt refcount').",
        "The engine allows no ordinary change of the root tree: its items are",
        "changed in place (--set and --set-bytes only), in the newest commit,",
        "and the checksums on the way to the superblock recomputed.",
        "",
        "With --path, PATH (in the default subvolume) says which items:",
        "    inode      its INODE_ITEM",
        "    inode-ref  its INODE_REF record for the directory in PATH",
        "    dir-item   the DIR_ITEM record naming it in its directory",
        "    dir-index  the DIR_INDEX naming it",
        "    dir-entry  both of these",
        "    extent     its EXTENT_DATA item covering file OFFSET (default 0)",
        "    orphan     the ORPHAN item of its inode (say, with --insert)",
        "",
        "ACTION is one of:",
        OPTLINE("--delete", "delete the item (of a hashed item, the named record only)"),
        OPTLINE("--set FIELD=VALUE", "set a field (repeatable): for INODE_ITEM generation, "
                                     "size,"),
        "            nbytes, nlink, uid, gid, mode, rdev, flags, next_index, sequence;",
        "            INODE_REF parent, index, name_len; DIR_ITEM and DIR_INDEX ino,",
        "            index, type, name_len; EXTENT_DATA generation, num_bytes,",
        "            disk_bytenr, type; ROOT_ITEM root_bytenr, root_generation,",
        "            root_csum, root_level, last_snapshot, flags, create_gen,",
        "            parent_id, ref_nodes, ref_data_sectors; ROOT_REF and",
        "            ROOT_BACKREF dirid, index, name_len; XATTR_ITEM name_len,",
        "            value_len; SUBVOL_INFO next_ino; DEFAULT_SUBVOL id",
        OPTLINE("--set-bytes OFF:HEX", "overwrite bytes of the item's data from OFF "
                                       "(repeatable)"),
        OPTLINE("--rekey KEY", "move the item to another key"),
        OPTLINE("--insert[=HEX]", "insert the item, with these bytes (default: empty)"),
        NULL,
};

const struct cmd_struct cmd_struct_corrupt_item = {"item", cmd_corrupt_item, cmd_corrupt_item_usage,
                                                   NULL, CMD_IMAGE};
