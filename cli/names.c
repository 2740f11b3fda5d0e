/* SPDX-License-Identifier: MIT */
/*
 * names.c - the file commands that change the namespace: mkdir, mknod,
 * rm, rmdir, ln, mv.  Each is one transaction: it is committed whole when
 * it succeeds, and nothing of it is when it fails.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "cli.h"

#include "arbor/vfs.h"

/* The place of path; the root is refused with -EBUSY (rm, rmdir, mv). */
static int place_not_root(struct cli_vfs *v, const char *path, struct cli_place *pl)
{
	int ret = cli_vfs_place(v, path, pl);

	if (!ret && !pl->name[0])
		ret = -EBUSY;
	return ret;
}

/* A copy of the last name of path (cp and mv name what goes into a
 * directory so), or NULL. */
static char *last_name(const char *path)
{
	const char *end = path + strlen(path), *start;

	while (end > path && end[-1] == '/')
		end--;
	start = end;
	while (start > path && start[-1] != '/')
		start--;
	return end > start ? strndup(start, (size_t)(end - start)) : NULL;
}

/* ---- mkdir ------------------------------------------------------------------ */

struct mkdir_op {
	const char *path;
	bool parents;
};

static int do_mkdir(struct cli_vfs *v, void *arg)
{
	const struct mkdir_op *op = arg;
	struct cli_place pl;
	struct cli_node n;
	int ret;

	if (op->parents)
		return cli_path_result(v, op->path, cli_vfs_mkdirs(v, op->path, &n));
	ret = cli_vfs_place(v, op->path, &pl);
	if (!ret && !pl.name[0])
		ret = -EEXIST;
	if (!ret)
		ret = arb_vfs_mkdir(v->fs, pl.dir, pl.name, 0777 & ~v->umask, &v->cred, NULL);
	return cli_path_result(v, op->path, ret);
}

static int cmd_mkdir(const struct cmd_struct *cmd, int argc, char **argv)
{
	struct mkdir_op op;

	op.parents = cli_flags(cmd, argc, argv, "p", NULL);
	op.path = cli_path_arg(cmd, argc, argv);
	return cli_with_vfs(false, do_mkdir, &op);
}

static const char *const cmd_mkdir_usage[] = {
        "arbor -i IMAGE mkdir [-p] PATH",
        "",
        "Create a directory (mode 0777 less the umask, owned by the caller).",
        "",
        OPTLINE("-p", "create missing parents too; an existing directory is no error"),
        NULL,
};

const struct cmd_struct cmd_struct_mkdir = {"mkdir", cmd_mkdir, cmd_mkdir_usage, NULL, CMD_IMAGE};

/* ---- mknod ------------------------------------------------------------------ */

struct mknod_op {
	const char *path;
	uint32_t type; /* S_IF* */
	uint64_t rdev;
};

static int do_mknod(struct cli_vfs *v, void *arg)
{
	const struct mknod_op *op = arg;
	struct cli_place pl;
	int ret = cli_vfs_place(v, op->path, &pl);

	if (!ret && !pl.name[0])
		ret = -EEXIST;
	if (!ret)
		ret = arb_vfs_mknod(v->fs, pl.dir, pl.name, op->type | (0666 & ~v->umask), op->rdev,
		                    &v->cred, NULL);
	return cli_path_result(v, op->path, ret);
}

static uint32_t node_type(const char *s)
{
	if (!strcmp(s, "p"))
		return S_IFIFO;
	if (!strcmp(s, "c") || !strcmp(s, "u"))
		return S_IFCHR;
	if (!strcmp(s, "b"))
		return S_IFBLK;
	if (!strcmp(s, "s"))
		return S_IFSOCK;
	return 0;
}

static void parse_device(const struct cmd_struct *cmd, char **args, uint64_t *rdev)
{
	uint64_t maj, min;

	cli_check_arg(cmd, cli_parse_u64(args[0], &maj) || maj > 0xfff, "major", args[0]);
	cli_check_arg(cmd, cli_parse_u64(args[1], &min) || min > 0xfffff, "minor", args[1]);
	*rdev = makedev((unsigned int)maj, (unsigned int)min);
}

static int cmd_mknod(const struct cmd_struct *cmd, int argc, char **argv)
{
	struct mknod_op op = {NULL, 0, 0};
	int nargs = cli_no_options(cmd, argc, argv, 2, 4);
	bool dev;

	op.path = argv[optind];
	op.type = node_type(argv[optind + 1]);
	cli_arg_path(cmd, op.path);
	cli_check_arg(cmd, !op.type, "type", argv[optind + 1]);
	dev = op.type == S_IFCHR || op.type == S_IFBLK;
	if (nargs != (dev ? 4 : 2))
		return cli_usage_error(cmd, dev ? "a device needs MAJOR and MINOR"
		                                : "only devices take MAJOR and MINOR");
	if (dev)
		parse_device(cmd, argv + optind + 2, &op.rdev);
	return cli_with_vfs(false, do_mknod, &op);
}

static const char *const cmd_mknod_usage[] = {
        "arbor -i IMAGE mknod PATH p|s",
        "arbor -i IMAGE mknod PATH c|b MAJOR MINOR",
        "",
        "Create a special file: a fifo, a socket, a character or block device.",
        "",
        "The mode is 0666 less the umask; the caller owns it.",
        NULL,
};

const struct cmd_struct cmd_struct_mknod = {"mknod", cmd_mknod, cmd_mknod_usage, NULL, CMD_IMAGE};

/* ---- rm, rmdir ------------------------------------------------------------------ */

struct rm_op {
	const char *path;
	bool recursive;
};

static int remove_entry(struct cli_vfs *v, arb_ino_t dir, const struct cli_dirent *e);

/* Empty directory dir, depth first. */
static int remove_contents(struct cli_vfs *v, arb_ino_t dir)
{
	struct cli_dirlist l = {NULL, 0, 0};
	int ret = cli_vfs_list(v, dir, &l);

	for (size_t i = 0; i < l.count && !ret; i++)
		ret = remove_entry(v, dir, &l.ents[i]);
	cli_dirlist_free(&l);
	return ret;
}

static int remove_entry(struct cli_vfs *v, arb_ino_t dir, const struct cli_dirent *e)
{
	int ret;

	if (e->dtype != DT_DIR)
		return arb_vfs_unlink(v->fs, dir, e->name);
	ret = remove_contents(v, e->ino);
	return ret ? ret : arb_vfs_rmdir(v->fs, dir, e->name);
}

static int do_rm(struct cli_vfs *v, void *arg)
{
	const struct rm_op *op = arg;
	struct cli_place pl;
	struct arb_stat st;
	int ret = place_not_root(v, op->path, &pl);

	if (!ret)
		ret = cli_vfs_lookup(v, &pl, &st);
	if (ret)
		return cli_path_result(v, op->path, ret);
	if (!S_ISDIR(st.mode)) {
		ret = arb_vfs_unlink(v->fs, pl.dir, pl.name);
	} else if (!op->recursive) {
		ret = -EISDIR;
	} else {
		ret = remove_contents(v, st.ino);
		if (!ret)
			ret = arb_vfs_rmdir(v->fs, pl.dir, pl.name);
	}
	return cli_path_result(v, op->path, ret);
}

static int cmd_rm(const struct cmd_struct *cmd, int argc, char **argv)
{
	struct rm_op op;

	op.recursive = cli_flags(cmd, argc, argv, "rR", NULL);
	op.path = cli_path_arg(cmd, argc, argv);
	return cli_with_vfs(false, do_rm, &op);
}

static const char *const cmd_rm_usage[] = {
        "arbor -i IMAGE rm [-r] PATH",
        "",
        "Remove a file, a symbolic link or a special file.",
        "",
        "A symbolic link is removed, not what it points to.  An inode with",
        "other hard links stays, under its other names.",
        "",
        OPTLINE("-r, -R", "remove a directory and everything below it"),
        NULL,
};

const struct cmd_struct cmd_struct_rm = {"rm", cmd_rm, cmd_rm_usage, NULL, CMD_IMAGE};

static int do_rmdir(struct cli_vfs *v, void *arg)
{
	const char *path = arg;
	struct cli_place pl;
	int ret = place_not_root(v, path, &pl);

	if (!ret)
		ret = arb_vfs_rmdir(v->fs, pl.dir, pl.name);
	return cli_path_result(v, path, ret);
}

static int cmd_rmdir(const struct cmd_struct *cmd, int argc, char **argv)
{
	return cli_run_on_path(cmd, argc, argv, false, do_rmdir);
}

static const char *const cmd_rmdir_usage[] = {
        "arbor -i IMAGE rmdir PATH",
        "",
        "Remove an empty directory.",
        NULL,
};

const struct cmd_struct cmd_struct_rmdir = {"rmdir", cmd_rmdir, cmd_rmdir_usage, NULL, CMD_IMAGE};

/* ---- ln ------------------------------------------------------------------------ */

struct ln_op {
	const char *target, *path;
	bool symbolic;
};

/* The new name: path, or the target's last name inside directory path. */
static int link_place(struct cli_vfs *v, const struct ln_op *op, struct cli_place *pl)
{
	char *name = last_name(op->target);
	int ret = cli_vfs_target(v, op->path, name, pl);

	free(name);
	if (!ret && !pl->name[0])
		ret = -EEXIST;
	return ret;
}

static int do_ln(struct cli_vfs *v, void *arg)
{
	const struct ln_op *op = arg;
	struct cli_place pl;
	struct cli_node n;
	int ret;

	if (!op->symbolic) {
		ret = cli_vfs_resolve(v, op->target, &n);
		if (ret)
			return cli_path_result(v, op->target, ret);
	}
	ret = link_place(v, op, &pl);
	if (!ret && op->symbolic)
		ret = arb_vfs_symlink(v->fs, pl.dir, pl.name, op->target, &v->cred, NULL);
	else if (!ret)
		ret = arb_vfs_link(v->fs, n.st.ino, pl.dir, pl.name, NULL);
	return cli_path_result(v, op->path, ret);
}

static int cmd_ln(const struct cmd_struct *cmd, int argc, char **argv)
{
	struct ln_op op;

	op.symbolic = cli_flags(cmd, argc, argv, "s", NULL);
	cli_check_argc(cmd, argc - optind, 2, 2);
	op.target = argv[optind];
	op.path = argv[optind + 1];
	if (!op.symbolic)
		cli_arg_path(cmd, op.target);
	else if (!op.target[0])
		return cli_usage_error(cmd, "empty symbolic link target");
	cli_arg_path(cmd, op.path);
	return cli_with_vfs(false, do_ln, &op);
}

static const char *const cmd_ln_usage[] = {
        "arbor -i IMAGE ln [-s] TARGET PATH",
        "",
        "Make a hard link to TARGET, or with -s a symbolic link holding TARGET.",
        "",
        "When PATH is a directory the link goes into it under TARGET's last",
        "name.  Directories cannot be hard linked.  A symbolic link's TARGET",
        "is any text (up to 4095 bytes); it is not checked.",
        "",
        OPTLINE("-s", "make a symbolic link"),
        NULL,
};

const struct cmd_struct cmd_struct_ln = {"ln", cmd_ln, cmd_ln_usage, NULL, CMD_IMAGE};

/* ---- mv -------------------------------------------------------------------------- */

struct mv_op {
	const char *from, *to;
};

static int do_mv(struct cli_vfs *v, void *arg)
{
	const struct mv_op *op = arg;
	struct cli_place src, dst;
	struct arb_stat st;
	int ret = place_not_root(v, op->from, &src);

	if (!ret)
		ret = cli_vfs_lookup(v, &src, &st);
	if (ret)
		return cli_path_result(v, op->from, ret);
	ret = cli_vfs_target(v, op->to, src.name, &dst);
	if (!ret && !dst.name[0])
		ret = -EBUSY;
	if (!ret)
		ret = arb_vfs_rename(v->fs, src.dir, src.name, dst.dir, dst.name, 0);
	return cli_path_result(v, op->to, ret);
}

static int cmd_mv(const struct cmd_struct *cmd, int argc, char **argv)
{
	struct mv_op op;

	cli_no_options(cmd, argc, argv, 2, 2);
	op.from = argv[optind];
	op.to = argv[optind + 1];
	cli_arg_path(cmd, op.from);
	cli_arg_path(cmd, op.to);
	return cli_with_vfs(false, do_mv, &op);
}

static const char *const cmd_mv_usage[] = {
        "arbor -i IMAGE mv OLD NEW",
        "",
        "Rename or move a file or a directory, as rename(2).",
        "",
        "When NEW is a directory, OLD goes into it under its own name.",
        "Otherwise NEW is replaced if it exists: a non-directory by a",
        "non-directory, an empty directory by a directory.",
        NULL,
};

const struct cmd_struct cmd_struct_mv = {"mv", cmd_mv, cmd_mv_usage, NULL, CMD_IMAGE};
