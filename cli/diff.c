/* SPDX-License-Identifier: MIT */
/*
 * diff.c - "arbor diff A B": what changed from subvolume A to subvolume B
 * (say a snapshot and its source), one line per path, as docker diff
 * prints it: "A PATH" (added), "C PATH" (changed), "D PATH" (deleted),
 * sorted by path, paths from the subvolume's root.  Offline through
 * arb_vfs_diff, online through ARB_IOC_DIFF (paged, see arbor/ioctl.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "svctx.h"

struct diff_op {
	const struct cmd_struct *cmd;
	enum sv_format fmt;
	bool stats;
	const char *a, *b;
	uint64_t nodes_read;
	uint64_t lines;
};

static int diff_line(void *ctx, char kind, const char *path)
{
	struct diff_op *op = ctx;

	if (op->fmt == SV_JSON) {
		printf("%s\n  {\"change\": \"%c\", \"path\": ", op->lines ? "," : "[", kind);
		sv_json_string(path);
		putchar('}');
	} else {
		printf("%c %s\n", kind, path);
	}
	op->lines++;
	return 0;
}

/* Why the comparison failed, saying what to do. */
static int diff_fail(const struct sv_ctx *c, const struct diff_op *op, int err)
{
	char both[2 * PATH_MAX + 16];

	snprintf(both, sizeof(both), "'%s' with '%s'", op->a, op->b);
	switch (err) {
	case -EPERM:
		cli_error("cannot compare %s: only root or the owner of both subvolumes' root "
		          "directories may (the changes show names)",
		          both);
		return err;
	case -EAGAIN:
		cli_error("cannot compare %s: they kept changing while being compared; try again, "
		          "or compare read-only snapshots (arbor snapshot create -r)",
		          both);
		return err;
	case -ENOTTY:
		if (!c->online)
			break;
		cli_error("cannot compare %s: the arborfs serving them does not support diff (an "
		          "older version?); unmount it and use arbor -i IMAGE diff",
		          both);
		return err;
	case -EPROTO:
		cli_error("cannot compare %s: the daemon's answer is not a valid listing", both);
		return err;
	}
	return sv_fail_fmt(c, NULL, "cannot compare %s", both, err);
}

static int do_diff(struct sv_ctx *c, void *arg)
{
	struct diff_op *op = arg;
	uint64_t a, b;
	int ret = c->ops->subvol_at(c, op->a, &a);

	if (ret)
		return sv_fail(c, SV_SUBVOL, op->a, ret);
	ret = c->ops->subvol_at(c, op->b, &b);
	if (ret)
		return sv_fail(c, SV_SUBVOL, op->b, ret);
	ret = c->ops->diff(c, a, b, diff_line, op, &op->nodes_read);
	if (ret)
		return diff_fail(c, op, ret);
	if (op->fmt == SV_JSON)
		printf("%s]\n", op->lines ? "\n" : "[");
	return 0;
}

static const struct option diff_longopts[] = {
        SV_FORMAT_LONGOPT,
        {"stats", no_argument, NULL, 's'},
        {NULL, 0, NULL, 0},
};

static int cmd_diff(const struct cmd_struct *cmd, int argc, char **argv)
{
	struct diff_op op = {.cmd = cmd};
	int c, ret;

	while ((c = cli_getopt(cmd, argc, argv, "js", diff_longopts)) != -1) {
		if (!sv_format_opt(cmd, c, &op.fmt))
			op.stats = true;
	}
	cli_check_argc(cmd, argc - optind, 2, 2);
	op.a = argv[optind];
	op.b = argv[optind + 1];
	if (cli_globals.image) {
		cli_arg_path(cmd, op.a);
		cli_arg_path(cmd, op.b);
	}
	ret = sv_run(do_diff, &op, true, op.a, AT_PATH, SV_SUBVOL);
	if (ret == CLI_EXIT_OK && op.stats)
		fprintf(stderr, "%" PRIu64 " changes, %" PRIu64 " tree nodes read\n", op.lines,
		        op.nodes_read);
	return ret;
}

static const char *const cmd_diff_usage[] = {
        "arbor [-i IMAGE] diff [--format FMT] [--stats] A B",
        "",
        "Show what changed from subvolume A to subvolume B.",
        "",
        "A and B are root directories of subvolumes or snapshots, say a snapshot",
        "and the subvolume it was taken of.  One line per path, sorted by path,",
        "paths from the subvolume's root: \"A PATH\" exists only in B (added),",
        "\"D PATH\" only in A (deleted), \"C PATH\" in both and what it names",
        "changed: content, attributes, a directory's entries, or another file",
        "under that name.  Only the parts of the two subvolumes that are not",
        "shared are read: the time follows the size of the change, not of the",
        "subvolumes.  Subvolumes nested inside are not followed.",
        "",
        "Online only root or the owner of both subvolumes' root directories may",
        "compare them.",
        "",
        OPTLINE("--format FMT", "text (the default) or json: an array of"),
        "            {\"change\": \"A\", \"path\": \"/x\"} objects",
        OPTLINE("-j", "the same as --format json"),
        OPTLINE("-s, --stats", "print the number of changes and of tree nodes read on stderr"),
        "",
        "With -i, paths are absolute paths in the image's default subvolume;",
        "without, paths on a mounted arborfs (A and B on one mount).",
        NULL,
};

const struct cmd_struct cmd_struct_diff = {"diff", cmd_diff, cmd_diff_usage, NULL, 0};
