/* SPDX-License-Identifier: MIT */
/*
 * engine.c - "arbor engine": drive the core engine directly on an image
 * (format, trees, raw items, check) until mkfs and the FUSE daemon exist.
 * Every command that changes the image commits before it exits.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#include "arbor/btree.h"
#include "arbor/check.h"
#include "arbor/fs.h"

/* engine fill: key type, value size, commit interval */
#define FILL_KEY_TYPE 1u
#define FILL_VALUE_SIZE 100u
#define FILL_COMMIT_EVERY 1000u

/* ---- engine format ---------------------------------------------------------- */

struct format_args {
	struct arb_format_opts opts;
	uint64_t size; /* -s: create or grow the file to this size */
};

/* Create the image file if needed and grow it to size bytes. */
static int prepare_image(const char *path, uint64_t size)
{
	struct stat st;
	int fd, ret = 0;

	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		cli_error("cannot create %s: %s", path, strerror(errno));
		return -errno;
	}
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		cli_error("cannot stat %s: %s", path, strerror(errno));
	} else if (S_ISREG(st.st_mode) && (uint64_t)st.st_size < size &&
	           ftruncate(fd, (off_t)size) < 0) {
		ret = -errno;
		cli_error("cannot resize %s: %s", path, strerror(errno));
	}
	close(fd);
	return ret;
}

static bool valid_nodesize(uint64_t n)
{
	return n >= ARB_MIN_NODESIZE && n <= ARB_MAX_NODESIZE && !(n & (n - 1));
}

static void parse_format_args(const struct cmd_struct *cmd, int argc, char **argv,
                              struct format_args *fa)
{
	uint64_t v;
	int c;

	while ((c = cli_getopt(cmd, argc, argv, "n:s:L:", NULL)) != -1) {
		switch (c) {
		case 'n':
			cli_check_arg(cmd, cli_parse_size(optarg, &v) || !valid_nodesize(v),
			              "node size", optarg);
			fa->opts.nodesize = (uint32_t)v;
			break;
		case 's':
			cli_check_arg(cmd, cli_parse_size(optarg, &fa->size) || !fa->size, "size",
			              optarg);
			break;
		case 'L':
			if (strlen(optarg) >= sizeof(((struct arb_super *)0)->label))
				exit(cli_usage_error(cmd, "label too long (at most 127 bytes)"));
			fa->opts.label = optarg;
			break;
		}
	}
	cli_check_argc(cmd, argc - optind, 0, 0);
}

static void print_formatted(struct arb_dev *dev)
{
	struct arb_fs_info info;
	char uuid[37];

	if (cli_fs_info_of(dev, &info) < 0) {
		cli_warning("the new filesystem does not open");
		return;
	}
	cli_print_uuid(info.fsid, uuid);
	printf("formatted %s: %" PRIu64 " bytes, nodesize %" PRIu32 ", fsid %s, label \"%s\"\n",
	       cli_globals.image, info.total_bytes, info.nodesize, uuid, info.label);
}

static int do_format(struct arb_dev *dev, void *arg)
{
	const struct format_args *fa = arg;
	int ret = arb_format(dev, &fa->opts);

	if (ret < 0)
		cli_error("cannot format %s: %s", cli_globals.image, strerror(-ret));
	else
		print_formatted(dev);
	return ret;
}

static int cmd_engine_format(const struct cmd_struct *cmd, int argc, char **argv)
{
	struct format_args fa = {{0}, 0};

	parse_format_args(cmd, argc, argv, &fa);
	if (!fa.size && access(cli_globals.image, F_OK) < 0 && errno == ENOENT) {
		cli_error("%s does not exist: give its size with -s SIZE to create it",
		          cli_globals.image);
		return CLI_EXIT_ERROR;
	}
	if (fa.size && prepare_image(cli_globals.image, fa.size) < 0)
		return CLI_EXIT_ERROR;
	fa.opts.size = fa.size;
	fa.opts.time_sec = cli_source_date_epoch();
	return cli_with_dev(false, do_format, &fa);
}

static const char *const cmd_engine_format_usage[] = {
        "arbor -i IMAGE engine format [-n NODESIZE] [-s SIZE] [-L LABEL]",
        "",
        "Write an empty filesystem (generation 1) to the image.",
        "",
        "Without -s the whole file or device is used.  Sizes take a K, M, G or T",
        "suffix (powers of 1024).  SOURCE_DATE_EPOCH sets the creation time.",
        "",
        OPTLINE("-n NODESIZE", "tree node size, a power of two from 4K to 64K (default 16K)"),
        OPTLINE("-s SIZE", "filesystem size; creates the file or grows it to SIZE"),
        OPTLINE("-L LABEL", "filesystem label, at most 127 bytes"),
        NULL,
};

static const struct cmd_struct cmd_struct_engine_format = {
        "format", cmd_engine_format, cmd_engine_format_usage, NULL, CMD_IMAGE};

/* ---- engine create-tree / clone / drop ------------------------------------------ */

struct tree_op {
	uint64_t src;    /* clone, drop */
	uint64_t new_id; /* create, clone */
};

/* The command's TREE argument (if nargs is 1) in op.src, fn, and the id
 * of the new tree printed if there is one. */
static int run_tree_op(const struct cmd_struct *cmd, int argc, char **argv, int nargs, cli_fs_fn fn)
{
	struct tree_op op = {0, 0};
	int ret;

	if (cli_no_options(cmd, argc, argv, nargs, nargs))
		cli_arg_tree(cmd, argv[optind], &op.src);
	ret = cli_with_fs(false, fn, &op);
	if (ret == CLI_EXIT_OK && op.new_id)
		printf("%" PRIu64 "\n", op.new_id);
	return ret;
}

static int do_create_tree(struct cli_fs *cfs, void *arg)
{
	struct tree_op *op = arg;

	return cli_result(cfs, arb_tree_create(cfs->fs, &op->new_id), NULL, "cannot create a tree");
}

static int cmd_engine_create_tree(const struct cmd_struct *cmd, int argc, char **argv)
{
	return run_tree_op(cmd, argc, argv, 0, do_create_tree);
}

static const char *const cmd_engine_create_tree_usage[] = {
        "arbor -i IMAGE engine create-tree",
        "",
        "Create an empty user tree and print its id.",
        NULL,
};

static const struct cmd_struct cmd_struct_engine_create_tree = {
        "create-tree", cmd_engine_create_tree, cmd_engine_create_tree_usage, NULL, CMD_IMAGE};

static int do_clone(struct cli_fs *cfs, void *arg)
{
	struct tree_op *op = arg;

	return cli_tree_result(cfs, op->src, arb_tree_clone(cfs->fs, op->src, &op->new_id),
	                       "cannot clone the tree");
}

static int cmd_engine_clone(const struct cmd_struct *cmd, int argc, char **argv)
{
	return run_tree_op(cmd, argc, argv, 1, do_clone);
}

static const char *const cmd_engine_clone_usage[] = {
        "arbor -i IMAGE engine clone TREE",
        "",
        "Clone a user tree in O(1) and print the new tree's id.",
        "",
        "The clone shares every node with TREE; nodes are copied on write.",
        NULL,
};

static const struct cmd_struct cmd_struct_engine_clone = {"clone", cmd_engine_clone,
                                                          cmd_engine_clone_usage, NULL, CMD_IMAGE};

static int do_drop(struct cli_fs *cfs, void *arg)
{
	struct tree_op *op = arg;

	return cli_tree_result(cfs, op->src, arb_tree_drop(cfs->fs, op->src),
	                       "cannot drop the tree");
}

static int cmd_engine_drop(const struct cmd_struct *cmd, int argc, char **argv)
{
	return run_tree_op(cmd, argc, argv, 1, do_drop);
}

static const char *const cmd_engine_drop_usage[] = {
        "arbor -i IMAGE engine drop TREE",
        "",
        "Remove a user tree; blocks only it referenced are freed.",
        NULL,
};

static const struct cmd_struct cmd_struct_engine_drop = {"drop", cmd_engine_drop,
                                                         cmd_engine_drop_usage, NULL, CMD_IMAGE};

/* ---- engine put / get / del ------------------------------------------------------ */

struct key_op {
	uint64_t tree;
	struct arb_key key;
	const char *value; /* put */
	bool hex;          /* get */
};

/* args: TREE OBJECTID TYPE OFFSET, into op; then fn on the filesystem. */
static int run_key_op(const struct cmd_struct *cmd, char **args, struct key_op *op, bool rdonly,
                      cli_fs_fn fn)
{
	cli_arg_tree(cmd, args[0], &op->tree);
	cli_arg_key(cmd, args + 1, &op->key);
	return cli_with_fs(rdonly, fn, op);
}

static int do_put(struct cli_fs *cfs, void *arg)
{
	struct key_op *op = arg;
	struct arb_tree *tree;
	int ret;

	ret = cli_get_tree(cfs, op->tree, &tree);
	if (ret < 0)
		return ret;
	ret = arb_put(tree, &op->key, op->value, (uint32_t)strlen(op->value));
	return cli_result(cfs, ret, NULL, "cannot put the item");
}

static int cmd_engine_put(const struct cmd_struct *cmd, int argc, char **argv)
{
	struct key_op op = {0};

	cli_no_options(cmd, argc, argv, 5, 5);
	op.value = argv[optind + 4];
	return run_key_op(cmd, argv + optind, &op, false, do_put);
}

static const char *const cmd_engine_put_usage[] = {
        "arbor -i IMAGE engine put TREE OBJECTID TYPE OFFSET VALUE",
        "",
        "Insert or replace one item; VALUE's bytes are the item data.",
        "",
        "TYPE is a number 0..255 or a name (ROOT_ITEM, SM_CHUNK, SM_OVERFLOW,",
        "SM_DEFER).  TREE is a tree id, 'root' or 'space'.",
        NULL,
};

static const struct cmd_struct cmd_struct_engine_put = {"put", cmd_engine_put, cmd_engine_put_usage,
                                                        NULL, CMD_IMAGE};

static int lookup_and_print(struct cli_fs *cfs, void *arg)
{
	const struct key_op *op = arg;
	struct arb_tree *tree;
	uint32_t bufsize = arb_max_item_size(cfs->fs), len = 0;
	uint8_t *buf;
	int ret;

	ret = cli_get_tree(cfs, op->tree, &tree);
	if (ret < 0)
		return ret;
	buf = malloc(bufsize ? bufsize : 1);
	if (!buf) {
		cli_error("out of memory");
		return -ENOMEM;
	}
	ret = cli_result(cfs, arb_lookup(tree, &op->key, buf, bufsize, &len), "no such item",
	                 "lookup failed");
	if (ret == 0)
		cli_print_value(buf, len, op->hex);
	free(buf);
	return ret;
}

static int cmd_engine_get(const struct cmd_struct *cmd, int argc, char **argv)
{
	static const struct option longopts[] = {
	        {"hex", no_argument, NULL, 'x'},
	        {NULL, 0, NULL, 0},
	};
	struct key_op op = {0};

	op.hex = cli_flags(cmd, argc, argv, "x", longopts);
	cli_check_argc(cmd, argc - optind, 4, 4);
	return run_key_op(cmd, argv + optind, &op, true, lookup_and_print);
}

static const char *const cmd_engine_get_usage[] = {
        "arbor -i IMAGE engine get [-x] TREE OBJECTID TYPE OFFSET",
        "",
        "Print one item's data (exit 1 if there is no such item).",
        "",
        "Printable data is shown as text, anything else as a hexdump.",
        "",
        OPTLINE("-x, --hex", "always print a hexdump"),
        NULL,
};

static const struct cmd_struct cmd_struct_engine_get = {"get", cmd_engine_get, cmd_engine_get_usage,
                                                        NULL, CMD_IMAGE};

static int do_del(struct cli_fs *cfs, void *arg)
{
	struct key_op *op = arg;
	struct arb_tree *tree;
	int ret;

	ret = cli_get_tree(cfs, op->tree, &tree);
	if (ret < 0)
		return ret;
	return cli_result(cfs, arb_delete(tree, &op->key), "no such item",
	                  "cannot delete the item");
}

static int cmd_engine_del(const struct cmd_struct *cmd, int argc, char **argv)
{
	struct key_op op = {0};

	cli_no_options(cmd, argc, argv, 4, 4);
	return run_key_op(cmd, argv + optind, &op, false, do_del);
}

static const char *const cmd_engine_del_usage[] = {
        "arbor -i IMAGE engine del TREE OBJECTID TYPE OFFSET",
        "",
        "Delete one item (exit 1 if there is no such item).",
        NULL,
};

static const struct cmd_struct cmd_struct_engine_del = {"del", cmd_engine_del, cmd_engine_del_usage,
                                                        NULL, CMD_IMAGE};

/* ---- engine fill -------------------------------------------------------------------- */

struct fill_op {
	uint64_t tree, count, seed;
	uint64_t commits;
};

/* splitmix64: small, fast, and good enough for test keys. */
static uint64_t next_random(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void random_item(uint64_t *state, struct arb_key *key, uint8_t *value)
{
	key->objectid = next_random(state);
	key->type = FILL_KEY_TYPE;
	key->offset = next_random(state);
	for (uint32_t i = 0; i < FILL_VALUE_SIZE; i += 8) {
		uint64_t r = next_random(state);
		uint32_t n = FILL_VALUE_SIZE - i < 8 ? FILL_VALUE_SIZE - i : 8;

		memcpy(value + i, &r, n);
	}
}

static int do_fill(struct cli_fs *cfs, void *arg)
{
	struct fill_op *op = arg;
	uint8_t value[FILL_VALUE_SIZE];
	uint64_t state = op->seed;
	struct arb_tree *tree;
	struct arb_key key;
	int ret;

	ret = cli_get_tree(cfs, op->tree, &tree);
	if (ret < 0)
		return ret;
	for (uint64_t i = 1; i <= op->count; i++) {
		random_item(&state, &key, value);
		ret = cli_result(cfs, arb_put(tree, &key, value, FILL_VALUE_SIZE), NULL,
		                 "cannot insert");
		if (ret < 0)
			return ret;
		/* the last commit is cli_with_fs()'s */
		if (i % FILL_COMMIT_EVERY || i == op->count)
			continue;
		ret = cli_commit(cfs);
		if (ret < 0)
			return ret;
		op->commits++;
	}
	op->commits++; /* the final one, done by cli_with_fs() */
	return 0;
}

static void parse_fill_args(const struct cmd_struct *cmd, int argc, char **argv, struct fill_op *op)
{
	static const struct option longopts[] = {
	        {"seed", required_argument, NULL, 'S'},
	        {NULL, 0, NULL, 0},
	};
	bool seeded = false;
	int c;

	while ((c = cli_getopt(cmd, argc, argv, "", longopts)) != -1) {
		if (c != 'S')
			continue;
		cli_check_arg(cmd, cli_parse_u64(optarg, &op->seed), "seed", optarg);
		seeded = true;
	}
	cli_check_argc(cmd, argc - optind, 2, 2);
	cli_arg_tree(cmd, argv[optind], &op->tree);
	cli_check_arg(cmd, cli_parse_u64(argv[optind + 1], &op->count), "count", argv[optind + 1]);
	if (!seeded)
		op->seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
}

static int cmd_engine_fill(const struct cmd_struct *cmd, int argc, char **argv)
{
	struct fill_op op = {0, 0, 0, 0};
	int ret;

	parse_fill_args(cmd, argc, argv, &op);
	ret = cli_with_fs(false, do_fill, &op);
	if (ret == CLI_EXIT_OK)
		printf("inserted %" PRIu64 " items into tree %" PRIu64 " (seed %" PRIu64
		       ", %" PRIu64 " commits)\n",
		       op.count, op.tree, op.seed, op.commits);
	return ret;
}

static const char *const cmd_engine_fill_usage[] = {
        "arbor -i IMAGE engine fill TREE N [--seed S]",
        "",
        "Insert N random items into a tree, committing every 1000.",
        "",
        "Keys are (random, 1, random), 16 random bytes; values are 100 random",
        "bytes.  The same seed gives the same items; without --seed one is",
        "chosen and printed.",
        "",
        OPTLINE("--seed S", "seed of the random generator"),
        NULL,
};

static const struct cmd_struct cmd_struct_engine_fill = {"fill", cmd_engine_fill,
                                                         cmd_engine_fill_usage, NULL, CMD_IMAGE};

/* ---- engine list ------------------------------------------------------------------- */

static int print_tree_row(void *ctx, const struct cli_root_info *ri)
{
	char uuid[37];

	cli_print_uuid(ri->uuid, uuid);
	printf("%-8" PRIu64 " %-8" PRIu64 " %-12" PRIu64 " %-5u %-8" PRIu64 " %-10" PRIu64
	       " %-9" PRIu64 " %-6s %s\n",
	       ri->id, ri->parent_id, ri->bytenr, ri->level, ri->generation, ri->create_gen,
	       ri->last_snapshot, ri->flags & ARB_ROOT_RDONLY ? "ro" : "-", uuid);
	return 0;
}

static int list_trees(struct cli_fs *cfs, void *arg)
{
	printf("%-8s %-8s %-12s %-5s %-8s %-10s %-9s %-6s %s\n", "ID", "PARENT", "ROOT", "LEVEL",
	       "GEN", "CREATE_GEN", "LAST_SNAP", "FLAGS", "UUID");
	return cli_for_each_root(cfs, print_tree_row, arg);
}

static int cmd_engine_list(const struct cmd_struct *cmd, int argc, char **argv)
{
	cli_no_options(cmd, argc, argv, 0, 0);
	return cli_with_fs(true, list_trees, NULL);
}

static const char *const cmd_engine_list_usage[] = {
        "arbor -i IMAGE engine list",
        "",
        "List the user trees (the ROOT_ITEMs of the root tree).",
        "",
        "PARENT is the tree a clone was made from (0: none), ROOT the address",
        "of the root node, GEN the generation that wrote it.",
        NULL,
};

static const struct cmd_struct cmd_struct_engine_list = {"list", cmd_engine_list,
                                                         cmd_engine_list_usage, NULL, CMD_IMAGE};

/* ---- engine check ------------------------------------------------------------------ */

static void print_report(const struct arb_check_report *r)
{
	printf("trees           %" PRIu64 "\n", r->trees);
	printf("nodes           %" PRIu64 "\n", r->nodes);
	printf("bad nodes       %" PRIu64 "\n", r->bad_nodes);
	printf("count mismatch  %" PRIu64 "\n", r->count_mismatch);
	printf("leaked          %" PRIu64 "\n", r->leaked);
	printf("missing         %" PRIu64 "\n", r->missing);
	printf("used mismatch   %" PRIu64 "\n", r->used_mismatch);
	printf("tree totals     %" PRIu64 "\n", r->tree_totals);
	printf("bad extents     %" PRIu64 "\n", r->bad_extents);
	printf("being freed     %" PRIu64 "\n", r->dropping);
}

static int check_fs(struct cli_fs *cfs, void *arg)
{
	struct arb_check_report report;
	struct arb_fs_info info;
	int ret;

	memset(&report, 0, sizeof(report));
	arb_fs_info(cfs->fs, &info);
	printf("checking generation %" PRIu64 " of %s\n", info.generation, cli_globals.image);
	ret = arb_check(cfs->fs, &report);
	if (ret < 0 && ret != -EUCLEAN) {
		cli_error("check failed: %s", strerror(-ret));
		return ret;
	}
	print_report(&report);
	if (ret == -EUCLEAN)
		cli_error("the filesystem has errors");
	else
		printf("clean\n");
	return ret;
}

static int cmd_engine_check(const struct cmd_struct *cmd, int argc, char **argv)
{
	cli_no_options(cmd, argc, argv, 0, 0);
	return cli_with_fs(true, check_fs, NULL);
}

static const char *const cmd_engine_check_usage[] = {
        "arbor -i IMAGE engine check",
        "",
        "Verify every node and every reference count (exit 1 if not clean).",
        "",
        "Reads every node of every tree, recomputes the reference counts from",
        "all roots and deferred frees, and compares them with the space map.",
        "Details of problems are printed as error messages.",
        NULL,
};

static const struct cmd_struct cmd_struct_engine_check = {"check", cmd_engine_check,
                                                          cmd_engine_check_usage, NULL, CMD_IMAGE};

/* ---- engine info ------------------------------------------------------------------- */

static void print_info(const struct arb_fs_info *i)
{
	char uuid[37];

	cli_print_uuid(i->fsid, uuid);
	printf("generation        %" PRIu64 "\n", i->generation);
	if (i->fallback_from)
		printf("fallback from     %" PRIu64 " (newer generation failed to verify)\n",
		       i->fallback_from);
	printf("fsid              %s\n", uuid);
	printf("label             \"%s\"\n", i->label);
	printf("nodesize          %" PRIu32 "\n", i->nodesize);
	printf("sectorsize        %" PRIu32 "\n", i->sectorsize);
	printf("total bytes       %" PRIu64 "\n", i->total_bytes);
	printf("total sectors     %" PRIu64 "\n", i->total_sectors);
	printf("used sectors      %" PRIu64 "\n", i->used_sectors);
	printf("deferred sectors  %" PRIu64 "\n", i->deferred_sectors);
	printf("free sectors      %" PRIu64 "\n",
	       i->total_sectors > i->used_sectors ? i->total_sectors - i->used_sectors : 0);
	printf("next tree id      %" PRIu64 "\n", i->next_tree_id);
	printf("hash seed         0x%016" PRIx64 "\n", i->hash_seed);
	if (i->failed)
		printf("state             failed\n");
}

static int show_info(struct cli_fs *cfs, void *arg)
{
	struct arb_fs_info info;

	arb_fs_info(cfs->fs, &info);
	print_info(&info);
	return 0;
}

static int cmd_engine_info(const struct cmd_struct *cmd, int argc, char **argv)
{
	cli_no_options(cmd, argc, argv, 0, 0);
	return cli_with_fs(true, show_info, NULL);
}

static const char *const cmd_engine_info_usage[] = {
        "arbor -i IMAGE engine info",
        "",
        "Print the state of the last commit: generation, sizes, space use.",
        NULL,
};

static const struct cmd_struct cmd_struct_engine_info = {"info", cmd_engine_info,
                                                         cmd_engine_info_usage, NULL, CMD_IMAGE};

/* ---- the group --------------------------------------------------------------------- */

static const char *const cmd_engine_usage[] = {
        "arbor -i IMAGE engine COMMAND",
        "",
        "Drive the storage engine directly (until mkfs and the FUSE daemon exist).",
        "",
        "Commands that change the image commit before they exit.",
        NULL,
};

static const struct cmd_struct *const engine_commands[] = {
        &cmd_struct_engine_format, &cmd_struct_engine_create_tree, &cmd_struct_engine_put,
        &cmd_struct_engine_get,    &cmd_struct_engine_del,         &cmd_struct_engine_fill,
        &cmd_struct_engine_clone,  &cmd_struct_engine_drop,        &cmd_struct_engine_list,
        &cmd_struct_engine_check,  &cmd_struct_engine_info,        NULL,
};

static const struct cmd_group engine_group = {cmd_engine_usage, engine_commands};

const struct cmd_struct cmd_struct_engine = {"engine", NULL, cmd_engine_usage, &engine_group, 0};
