/* SPDX-License-Identifier: MIT */
/*
 * rollback.c - "arbor rollback SUBVOLUME SNAPSHOT": make a subvolume hold
 * what a snapshot holds, atomically.  A writable snapshot of SNAPSHOT takes
 * SUBVOLUME's name (a new id) and the old subvolume is kept next to it
 * under another name, or deleted with --no-keep.  Offline through
 * arb_vfs_rollback, online through ARB_IOC_ROLLBACK.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "svctx.h"

/* The default name of the old content: NAME.old-YYYYMMDD-HHMMSS, then -2,
 * -3, ... when that is taken. */
#define KEEP_SUFFIX ".old-"
#define KEEP_TRIES 10

struct rb_op {
	const struct cmd_struct *cmd;
	enum sv_format fmt;
	const char *path, *snap;
	const char *keep; /* --keep NAME */
	bool no_keep;
	/* results */
	char *dir, *name; /* of path */
	char *keep_name;  /* the name the old content is kept as; NULL: deleted */
	char *keep_path;
	uint64_t id, old_id;
};

static const char *explain_rollback(const struct sv_ctx *c, const struct rb_op *op, int err)
{
	switch (err) {
	case -ENOENT:
		return "cannot roll back '%s': it does not exist";
	case -ENOTTY:
		return "cannot roll back '%s': it is not a subvolume (arbor subvolume list shows "
		       "them)";
	case -EEXIST:
		return "cannot roll back '%s': the name for its old content is taken; choose "
		       "another with --keep NAME";
	case -EINVAL:
		return "cannot roll back '%s' to itself: give a snapshot of it";
	case -EBUSY:
		return c->online ? "cannot roll back '%s': it is the subvolume this mount shows at "
		                   "its root, which would lose its files; roll it back through a "
		                   "mount that shows the subvolume holding it (or unmount and use "
		                   "arbor -i IMAGE)"
		                 : "cannot roll back '%s': it is the root of the image's default "
		                   "subvolume, not a name in a directory; give the path where the "
		                   "subvolume is linked (make another one the default first)";
	case -ENOTEMPTY:
		return op->no_keep
		               ? "cannot roll back '%s' with --no-keep: subvolumes are linked "
		                 "inside it; keep the old content (no --no-keep) or delete them "
		                 "first"
		               : NULL;
	case -EROFS:
		return c->online ? "cannot roll back '%s': the directory holding it is in a "
		                   "read-only subvolume, or the mount is read-only"
		                 : "cannot roll back '%s': the directory holding it is in a "
		                   "read-only subvolume";
	case -EACCES:
		return "cannot roll back '%s': permission denied: you need write and search "
		       "permission on the directory holding it";
	case -EPERM:
		return "cannot roll back '%s': only root or the owner of the root directories of "
		       "both the subvolume and the snapshot may";
	case -ENAMETOOLONG:
		return "cannot roll back '%s': the name for its old content would be too long; "
		       "give one with --keep NAME";
	}
	return NULL;
}

static int rb_fail(const struct sv_ctx *c, const struct rb_op *op, int err)
{
	return sv_fail_fmt(c, explain_rollback(c, op, err), "cannot roll back '%s'", op->path, err);
}

/* NAME.old-YYYYMMDD-HHMMSS[-N], free in the directory: malloc'ed. */
static int default_keep(struct sv_ctx *c, struct rb_op *op)
{
	char stamp[32], name[2 * ARB_NAME_MAX];
	time_t now = time(NULL);
	struct tm tm;

	if (!localtime_r(&now, &tm) || !strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm))
		return -EINVAL;
	for (int i = 1; i <= KEEP_TRIES; i++) {
		char *path;
		int ret;

		if (i == 1)
			snprintf(name, sizeof(name), "%s" KEEP_SUFFIX "%s", op->name, stamp);
		else
			snprintf(name, sizeof(name), "%s" KEEP_SUFFIX "%s-%d", op->name, stamp, i);
		if (strlen(name) > ARB_NAME_MAX)
			return -ENAMETOOLONG;
		path = sv_path_join(op->dir, name);
		ret = path ? c->ops->exists(c, path) : -ENOMEM;
		free(path);
		if (ret == -ENOENT) {
			op->keep_name = strdup(name);
			return op->keep_name ? 0 : -ENOMEM;
		}
		if (ret)
			return ret;
	}
	return -EEXIST;
}

static int keep_where(struct sv_ctx *c, struct rb_op *op)
{
	int ret = sv_split_path(op->path, &op->dir, &op->name);

	if (ret || op->no_keep)
		return ret;
	if (op->keep) {
		op->keep_name = strdup(op->keep);
		ret = op->keep_name ? 0 : -ENOMEM;
	} else {
		ret = default_keep(c, op);
	}
	if (!ret) {
		op->keep_path = sv_path_join(op->dir, op->keep_name);
		ret = op->keep_path ? 0 : -ENOMEM;
	}
	return ret;
}

static int do_rollback(struct sv_ctx *c, void *arg)
{
	struct rb_op *op = arg;
	uint64_t snap;
	int ret = c->ops->subvol_at(c, op->snap, &snap);

	if (ret)
		return sv_fail(c, SV_SUBVOL, op->snap, ret);
	ret = keep_where(c, op);
	if (!ret)
		ret = c->ops->rollback(c, op->path, snap, op->keep_name, &op->id, &op->old_id);
	return ret ? rb_fail(c, op, ret) : 0;
}

static void print_json(const struct rb_op *op)
{
	printf("{\n  \"path\": ");
	sv_json_string(op->path);
	printf(",\n  \"snapshot\": ");
	sv_json_string(op->snap);
	printf(",\n  \"id\": %" PRIu64 ",\n  \"old_id\": %" PRIu64 ",\n  \"kept\": ", op->id,
	       op->old_id);
	if (op->keep_name)
		sv_json_string(op->keep_name);
	else
		printf("null");
	printf(",\n  \"kept_path\": ");
	if (op->keep_path)
		sv_json_string(op->keep_path);
	else
		printf("null");
	printf("\n}\n");
}

static void print_text(const struct rb_op *op)
{
	printf("Roll back '%s' to '%s' (new id %" PRIu64 ")\n", op->path, op->snap, op->id);
	if (op->keep_path)
		printf("Keep its old content as '%s' (id %" PRIu64 ")\n", op->keep_path,
		       op->old_id);
	else
		printf("Delete its old content (id %" PRIu64 ")\n", op->old_id);
}

/* --keep takes a name, which goes next to SUBVOLUME. */
static void check_keep(const struct cmd_struct *cmd, const char *name)
{
	if (!*name || strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, ".."))
		exit(cli_usage_error(cmd, "--keep takes a name (no '/', not '.' or '..'): the old "
		                          "content goes next to SUBVOLUME"));
	if (strlen(name) > ARB_NAME_MAX)
		exit(cli_usage_error(cmd, "--keep NAME: the name is longer than %d bytes",
		                     ARB_NAME_MAX));
}

/* Offline SUBVOLUME must end in its own name: it is looked up, not on the host. */
static void check_link_path(const struct cmd_struct *cmd, const char *path)
{
	const char *end = path + strlen(path), *start;

	cli_arg_path(cmd, path);
	while (end > path && end[-1] == '/')
		end--;
	start = end;
	while (start > path && start[-1] != '/')
		start--;
	if ((end - start == 1 && *start == '.') || (end - start == 2 && !strncmp(start, "..", 2)))
		exit(cli_usage_error(cmd, "give SUBVOLUME by the path where it is linked, ending "
		                          "in its name (not '.' or '..')"));
}

static const struct option rb_longopts[] = {
        SV_FORMAT_LONGOPT,
        {"keep", required_argument, NULL, 'k'},
        {"no-keep", no_argument, NULL, 'n'},
        {NULL, 0, NULL, 0},
};

static void parse_rollback(struct rb_op *op, int argc, char **argv)
{
	int c;

	while ((c = cli_getopt(op->cmd, argc, argv, "jk:n", rb_longopts)) != -1) {
		if (sv_format_opt(op->cmd, c, &op->fmt))
			continue;
		if (c == 'k') {
			check_keep(op->cmd, optarg);
			op->keep = optarg;
		} else {
			op->no_keep = true;
		}
	}
	if (op->keep && op->no_keep)
		exit(cli_usage_error(op->cmd, "give --keep NAME or --no-keep, not both"));
	cli_check_argc(op->cmd, argc - optind, 2, 2);
	op->path = argv[optind];
	op->snap = argv[optind + 1];
	if (cli_globals.image) {
		check_link_path(op->cmd, op->path);
		cli_arg_path(op->cmd, op->snap);
	}
}

static int cmd_rollback(const struct cmd_struct *cmd, int argc, char **argv)
{
	struct rb_op op = {.cmd = cmd};
	int ret;

	parse_rollback(&op, argc, argv);
	/* online the mount is found by the subvolume (or, when it is the mount
	 * point, refused through its parent on another filesystem) */
	ret = sv_run(do_rollback, &op, false, op.path, AT_LINK, SV_SUBVOL);
	if (ret == CLI_EXIT_OK && op.fmt == SV_JSON)
		print_json(&op);
	else if (ret == CLI_EXIT_OK)
		print_text(&op);
	free(op.dir);
	free(op.name);
	free(op.keep_name);
	free(op.keep_path);
	return ret;
}

static const char *const cmd_rollback_usage[] = {
        "arbor [-i IMAGE] rollback [--keep NAME | --no-keep] [--format FMT] SUBVOLUME SNAPSHOT",
        "",
        "Make SUBVOLUME hold what SNAPSHOT holds, atomically.",
        "",
        "SUBVOLUME is the path where a subvolume is linked; SNAPSHOT the root",
        "directory of a subvolume, usually a snapshot of it.  A writable",
        "snapshot of SNAPSHOT takes SUBVOLUME's name in one step (it gets a new",
        "id; if SUBVOLUME was the default subvolume, the new one is), and the",
        "old subvolume is kept in the same directory as NAME.old-YYYYMMDD-HHMMSS",
        "(local time; -2, -3, ... added when taken), or under the name --keep",
        "gives, or deleted with --no-keep.  SNAPSHOT is not changed.  Subvolumes",
        "nested in the old subvolume stay in the kept one; with them, --no-keep",
        "is refused.",
        "",
        "Online the caller needs write and search permission on the directory",
        "holding SUBVOLUME and must be root or own the root directories of both",
        "SUBVOLUME and SNAPSHOT.  The subvolume a mount shows at its root cannot",
        "be rolled back through that mount.",
        "",
        OPTLINE("--keep NAME", "keep the old content as NAME, next to SUBVOLUME"),
        OPTLINE("--no-keep", "delete the old content"),
        OPTLINE("--format FMT", "text (the default) or json: the new id, the old id and"),
        "            the name the old content is kept as (null when deleted)",
        OPTLINE("-j", "the same as --format json"),
        "",
        "With -i, paths are absolute paths in the image's default subvolume;",
        "without, paths on a mounted arborfs (both on one mount).",
        NULL,
};

const struct cmd_struct cmd_struct_rollback = {"rollback", cmd_rollback, cmd_rollback_usage, NULL,
                                               0};
