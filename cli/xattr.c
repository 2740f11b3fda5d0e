/* SPDX-License-Identifier: MIT */
/*
 * xattr.c - "arbor xattr": list, read, set and remove the extended
 * attributes of an inode in the filesystem.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#include "arbor/vfs.h"

struct xattr_op;
/* One sub-command on the inode of the op's path. */
typedef int (*xattr_fn)(struct cli_vfs *v, const struct xattr_op *op, arb_ino_t ino);

struct xattr_op {
	const char *path;
	const char *name;  /* get, set, rm */
	const char *value; /* set */
	bool hex;          /* get */
	xattr_fn fn;
};

static int do_xattr(struct cli_vfs *v, void *arg)
{
	const struct xattr_op *op = arg;
	char what[4096];
	struct cli_node n;
	int ret = cli_path_result(v, op->path, cli_vfs_resolve(v, op->path, &n));

	if (ret)
		return ret;
	/* "error: PATH: NAME: strerror" */
	snprintf(what, sizeof(what), "%s%s%s", op->path, op->name ? ": " : "",
	         op->name ? op->name : "");
	return cli_path_result(v, what, op->fn(v, op, n.st.ino));
}

/* After the options: PATH [NAME [VALUE]], nargs of them; then op->fn. */
static int run_xattr(const struct cmd_struct *cmd, int argc, char **argv, int nargs, bool rdonly,
                     struct xattr_op *op)
{
	cli_check_argc(cmd, argc - optind, nargs, nargs);
	op->path = argv[optind];
	cli_arg_path(cmd, op->path);
	if (nargs > 1)
		op->name = argv[optind + 1];
	if (nargs > 2)
		op->value = argv[optind + 2];
	return cli_with_vfs(rdonly, do_xattr, op);
}

/* ---- xattr list ------------------------------------------------------------- */

static int print_names(struct cli_vfs *v, const struct xattr_op *op, arb_ino_t ino)
{
	size_t size = 0;
	char *buf;
	int ret = arb_vfs_listxattr(v->fs, ino, NULL, 0, &size);

	if (ret)
		return ret;
	buf = malloc(size + 1);
	if (!buf)
		return -ENOMEM;
	ret = arb_vfs_listxattr(v->fs, ino, buf, size, &size);
	buf[ret ? 0 : size] = '\0';
	for (size_t off = 0; !ret && off < size; off += strlen(buf + off) + 1)
		puts(buf + off);
	free(buf);
	return ret;
}

static int cmd_xattr_list(const struct cmd_struct *cmd, int argc, char **argv)
{
	struct xattr_op op = {.fn = print_names};

	cli_flags(cmd, argc, argv, "", NULL);
	return run_xattr(cmd, argc, argv, 1, true, &op);
}

static const char *const cmd_xattr_list_usage[] = {
        "arbor -i IMAGE xattr list PATH",
        "",
        "Print the names of an inode's extended attributes, one a line.",
        NULL,
};

static const struct cmd_struct cmd_struct_xattr_list = {"list", cmd_xattr_list,
                                                        cmd_xattr_list_usage, NULL, CMD_IMAGE};

/* ---- xattr get ------------------------------------------------------------------ */

static int print_xattr(struct cli_vfs *v, const struct xattr_op *op, arb_ino_t ino)
{
	size_t size = 0;
	void *buf;
	int ret = arb_vfs_getxattr(v->fs, ino, op->name, NULL, 0, &size);

	if (ret)
		return ret;
	buf = malloc(size ? size : 1);
	if (!buf)
		return -ENOMEM;
	ret = arb_vfs_getxattr(v->fs, ino, op->name, buf, size, &size);
	if (!ret)
		cli_print_value(buf, (uint32_t)size, op->hex);
	free(buf);
	return ret;
}

static int cmd_xattr_get(const struct cmd_struct *cmd, int argc, char **argv)
{
	static const struct option longopts[] = {
	        {"hex", no_argument, NULL, 'x'},
	        {NULL, 0, NULL, 0},
	};
	struct xattr_op op = {.fn = print_xattr};

	op.hex = cli_flags(cmd, argc, argv, "x", longopts);
	return run_xattr(cmd, argc, argv, 2, true, &op);
}

static const char *const cmd_xattr_get_usage[] = {
        "arbor -i IMAGE xattr get [-x] PATH NAME",
        "",
        "Print the value of an extended attribute.",
        "",
        "A printable value is shown as a line of text, anything else as a",
        "hexdump.",
        "",
        OPTLINE("-x, --hex", "always print a hexdump"),
        NULL,
};

static const struct cmd_struct cmd_struct_xattr_get = {"get", cmd_xattr_get, cmd_xattr_get_usage,
                                                       NULL, CMD_IMAGE};

/* ---- xattr set, rm ---------------------------------------------------------------- */

static int set_xattr(struct cli_vfs *v, const struct xattr_op *op, arb_ino_t ino)
{
	return arb_vfs_setxattr(v->fs, ino, op->name, op->value, strlen(op->value), 0);
}

static int cmd_xattr_set(const struct cmd_struct *cmd, int argc, char **argv)
{
	struct xattr_op op = {.fn = set_xattr};

	cli_flags(cmd, argc, argv, "", NULL);
	return run_xattr(cmd, argc, argv, 3, false, &op);
}

static const char *const cmd_xattr_set_usage[] = {
        "arbor -i IMAGE xattr set PATH NAME VALUE",
        "",
        "Create or replace an extended attribute; VALUE's bytes are its value.",
        "",
        "NAME is in the user., trusted. or security. namespace, or is",
        "system.posix_acl_access or system.posix_acl_default.",
        NULL,
};

static const struct cmd_struct cmd_struct_xattr_set = {"set", cmd_xattr_set, cmd_xattr_set_usage,
                                                       NULL, CMD_IMAGE};

static int remove_xattr(struct cli_vfs *v, const struct xattr_op *op, arb_ino_t ino)
{
	return arb_vfs_removexattr(v->fs, ino, op->name);
}

static int cmd_xattr_rm(const struct cmd_struct *cmd, int argc, char **argv)
{
	struct xattr_op op = {.fn = remove_xattr};

	cli_flags(cmd, argc, argv, "", NULL);
	return run_xattr(cmd, argc, argv, 2, false, &op);
}

static const char *const cmd_xattr_rm_usage[] = {
        "arbor -i IMAGE xattr rm PATH NAME",
        "",
        "Remove an extended attribute.",
        NULL,
};

static const struct cmd_struct cmd_struct_xattr_rm = {"rm", cmd_xattr_rm, cmd_xattr_rm_usage, NULL,
                                                      CMD_IMAGE};

/* ---- the group ---------------------------------------------------------------------- */

static const char *const cmd_xattr_usage[] = {
        "arbor -i IMAGE xattr COMMAND PATH [NAME [VALUE]]",
        "",
        "Extended attributes of an inode (symbolic links are not followed).",
        NULL,
};

static const struct cmd_struct *const xattr_commands[] = {
        &cmd_struct_xattr_list,
        &cmd_struct_xattr_get,
        &cmd_struct_xattr_set,
        &cmd_struct_xattr_rm,
        NULL,
};

static const struct cmd_group xattr_group = {cmd_xattr_usage, xattr_commands};

const struct cmd_struct cmd_struct_xattr = {"xattr", NULL, cmd_xattr_usage, &xattr_group, 0};
