/* SPDX-License-Identifier: MIT */
/*
 * subvol.c - "arbor subvolume" and "arbor snapshot": make, snapshot,
 * delete, list and show subvolumes, and choose the default one.
 *
 * Every command works offline (-i IMAGE) and online (on a mounted arborfs)
 * alike, written once against struct sv_ops (svctx.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "svctx.h"

#include "arbor/vfs.h"

/* ---- paths from the top level ---------------------------------------------------------- */

static char *ent_path(struct sv_ctx *c, struct sv_table *t, struct sv_ent *e);

/* The path of e from its parent's: parent path, link directory, name. */
static char *linked_path(struct sv_ctx *c, struct sv_table *t, const struct sv_ent *e)
{
	struct sv_ent *parent = sv_table_find(t, e->sv.parent_id);
	const char *pp = parent ? ent_path(c, t, parent) : NULL;
	char *dir = NULL, *base, *out;

	if (!pp || c->ops->dir_path(c, e->sv.parent_id, e->sv.dirid, &dir))
		return NULL;
	base = sv_path_join(pp, dir);
	out = base ? sv_path_join(base, e->sv.name) : NULL;
	free(base);
	free(dir);
	return out;
}

/* The top level (linked nowhere) is "/"; a cycle, or a directory that
 * cannot be found, leaves the path unknown (NULL). */
static char *ent_path(struct sv_ctx *c, struct sv_table *t, struct sv_ent *e)
{
	if (e->state)
		return e->path; /* done, or NULL when part of a cycle */
	e->state = 1;
	e->path = e->sv.parent_id ? linked_path(c, t, e) : strdup("/");
	e->state = 2;
	return e->path;
}

/* Every subvolume, with its path. */
static int sv_load(struct sv_ctx *c, struct sv_table *t, const char *shown)
{
	int ret;

	c->table = t;
	ret = c->ops->list(c, t);
	if (ret == -ENOTTY && c->online)
		return sv_fail(c, SV_QUERY, shown, ret);
	if (ret) {
		cli_report(c->v ? c->v->cfs : NULL, "cannot list the subvolumes", ret);
		return ret;
	}
	for (size_t i = 0; i < t->count; i++)
		ent_path(c, t, &t->ents[i]);
	return 0;
}

/* ---- output ------------------------------------------------------------------------------ */

/* "ro,default,mounted" or "-" */
static const char *flags_string(const struct sv_ent *e, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s%s%s%s", e->sv.readonly ? "ro" : "",
	         e->sv.readonly && e->sv.is_default ? "," : "", e->sv.is_default ? "default" : "",
	         (e->sv.readonly || e->sv.is_default) && e->mounted ? "," : "",
	         e->mounted ? "mounted" : "");
	return buf[0] ? buf : "-";
}

/* A path that is not known: "?/NAME" in text, null in JSON. */
static void print_path(const struct sv_ent *e)
{
	if (e->path)
		fputs(e->path, stdout);
	else
		printf("?/%s", e->sv.name);
}

static void print_header(void)
{
	printf("%-8s %-8s %-8s %-18s %s\n", "ID", "GEN", "PARENT", "FLAGS", "PATH");
}

static void print_row(const struct sv_ent *e)
{
	char flags[32];

	printf("%-8" PRIu64 " %-8" PRIu64 " %-8" PRIu64 " %-18s ", e->sv.id, e->sv.generation,
	       e->sv.parent_id, flags_string(e, flags, sizeof(flags)));
	print_path(e);
	putchar('\n');
}

/* ISO 8601 in local time with its offset: 2026-01-31T12:00:00+01:00. */
static const char *iso_time(const struct timespec *ts, char *buf, size_t len)
{
	time_t t = ts->tv_sec;
	struct tm tm;
	long off;

	if (!localtime_r(&t, &tm) || !strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm)) {
		snprintf(buf, len, "1970-01-01T00:00:00+00:00");
		return buf;
	}
	off = tm.tm_gmtoff / 60;
	snprintf(buf + strlen(buf), len - strlen(buf), "%c%02ld:%02ld", off < 0 ? '-' : '+',
	         labs(off) / 60, labs(off) % 60);
	return buf;
}

static bool uuid_is_zero(const uint8_t u[16])
{
	for (int i = 0; i < 16; i++) {
		if (u[i])
			return false;
	}
	return true;
}

static void json_uuid(const char *key, const uint8_t u[16], const char *indent)
{
	char s[37];

	printf("%s\"%s\": ", indent, key);
	if (uuid_is_zero(u)) {
		printf("null,\n");
		return;
	}
	cli_print_uuid(u, s);
	printf("\"%s\",\n", s);
}

/* "1.50 MiB" (binary units), or "512 B" */
static const char *human_bytes(uint64_t n, char *buf, size_t len)
{
	static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
	double v = (double)n;
	int u = -1;

	if (n < 1024) {
		snprintf(buf, len, "%" PRIu64 " B", n);
		return buf;
	}
	while (v >= 1024 && u < 5) {
		v /= 1024;
		u++;
	}
	snprintf(buf, len, "%.2f %s", v, units[u]);
	return buf;
}

/* show's space fields: exact bytes, null when the daemon cannot tell */
static void json_usage(const struct arb_subvol_usage *u, const char *indent)
{
	if (!u) {
		printf("%s\"referenced_bytes\": null,\n%s\"exclusive_bytes\": null,\n", indent,
		       indent);
		return;
	}
	printf("%s\"referenced_bytes\": %" PRIu64 ",\n", indent, u->referenced_bytes);
	printf("%s\"exclusive_bytes\": %" PRIu64 ",\n", indent, u->exclusive_bytes);
}

/* One subvolume as a JSON object; indent is that of its fields; with
 * show, its space too (u, NULL when not known). */
static void json_ent(const struct sv_ent *e, const char *indent, bool show,
                     const struct arb_subvol_usage *u)
{
	const struct arb_subvol *sv = &e->sv;
	char when[64];

	printf("{\n%s\"id\": %" PRIu64 ",\n%s\"name\": ", indent, sv->id, indent);
	sv_json_string(sv->name);
	printf(",\n%s\"path\": ", indent);
	if (e->path)
		sv_json_string(e->path);
	else
		printf("null");
	printf(",\n%s\"parent_id\": %" PRIu64 ",\n", indent, sv->parent_id);
	printf("%s\"readonly\": %s,\n", indent, sv->readonly ? "true" : "false");
	printf("%s\"default\": %s,\n", indent, sv->is_default ? "true" : "false");
	printf("%s\"mounted\": %s,\n", indent, e->mounted ? "true" : "false");
	json_uuid("uuid", sv->uuid, indent);
	json_uuid("parent_uuid", sv->parent_uuid, indent);
	printf("%s\"source_id\": %" PRIu64 ",\n", indent, sv->source_id);
	printf("%s\"ctime\": \"%s\",\n", indent, iso_time(&sv->ctime, when, sizeof(when)));
	if (show)
		json_usage(u, indent);
	printf("%s\"generation\": %" PRIu64 "\n", indent, sv->generation);
	printf("%.*s}", (int)strlen(indent) - 2, indent);
}

static void print_json_one(const struct sv_ent *e, bool show, const struct arb_subvol_usage *u)
{
	json_ent(e, "  ", show, u);
	putchar('\n');
}

static void print_json_list(const struct sv_table *t)
{
	printf("[");
	for (size_t i = 0; i < t->count; i++) {
		printf("%s\n  ", i ? "," : "");
		json_ent(&t->ents[i], "    ", false, NULL);
	}
	printf("%s]\n", t->count ? "\n" : "");
}

/* Like stat: one "key value" line each; u: the space, NULL if not known. */
static void print_show(const struct sv_table *t, const struct sv_ent *e,
                       const struct arb_subvol_usage *u)
{
	const struct arb_subvol *sv = &e->sv;
	char buf[64], uuid[37];
	bool any = false;

	printf("%-11s ", "path");
	print_path(e);
	printf("\n%-11s %s\n", "name", sv->name[0] ? sv->name : "(top level)");
	printf("%-11s %" PRIu64 "\n", "id", sv->id);
	printf("%-11s %" PRIu64 "\n", "parent id", sv->parent_id);
	printf("%-11s %s\n", "flags", flags_string(e, buf, sizeof(buf)));
	cli_print_uuid(sv->uuid, uuid);
	printf("%-11s %s\n", "uuid", uuid);
	cli_print_uuid(sv->parent_uuid, uuid);
	printf("%-11s %s\n", "parent uuid", uuid_is_zero(sv->parent_uuid) ? "-" : uuid);
	if (sv->source_id)
		printf("%-11s %" PRIu64 "\n", "source id", sv->source_id);
	else
		printf("%-11s -\n", "source id");
	printf("%-11s %s\n", "ctime", cli_time_string(&sv->ctime, true, buf, sizeof(buf)));
	printf("%-11s %" PRIu64 "\n", "create gen", sv->create_gen);
	printf("%-11s %" PRIu64 "\n", "generation", sv->generation);
	printf("%-11s %s\n", "referenced",
	       u ? human_bytes(u->referenced_bytes, buf, sizeof(buf)) : "-");
	printf("%-11s %s\n", "exclusive",
	       u ? human_bytes(u->exclusive_bytes, buf, sizeof(buf)) : "-");
	printf("%-11s", "snapshots");
	for (size_t i = 0; i < t->count; i++) {
		if (t->ents[i].sv.source_id != sv->id)
			continue;
		putchar(' ');
		print_path(&t->ents[i]);
		any = true;
	}
	printf("%s\n", any ? "" : " -");
}

/* ---- running a command in either mode ---------------------------------------------------- */

struct sv_op;
typedef int (*sv_op_fn)(struct sv_ctx *c, struct sv_op *op);

struct sv_op {
	const struct cmd_struct *cmd;
	sv_op_fn fn;
	enum sv_format fmt;
	char **args; /* the positional arguments */
	int nargs;
	uint32_t perm; /* create */
	bool rdonly;   /* snapshot -r */
	/* results, printed once the work is durable */
	struct sv_table table;
	uint64_t id;
	char *where;    /* snapshot: the new name */
	uint64_t *ids;  /* delete: per argument, 0 if not deleted */
	bool any_error; /* delete, online: some failed, others may not */
	bool wait;      /* delete --wait: until the space is free */
	/* show: the space of op->id; have_usage false when unknown */
	struct arb_subvol_usage usage;
	bool have_usage;
};

static int op_call(struct sv_ctx *c, void *arg)
{
	struct sv_op *op = arg;

	return op->fn(c, op);
}

/* sv_run() of op->fn */
static int op_run(struct sv_op *op, bool rdonly, const char *path, enum sv_anchor how,
                  enum sv_verb verb)
{
	return sv_run(op_call, op, rdonly, path, how, verb);
}

static void op_free(struct sv_op *op)
{
	sv_table_free(&op->table);
	free(op->where);
	free(op->ids);
}

/* The subvolume with op->id, found in the table: printed as show, a
 * table row or JSON.  None: an error (it went away meanwhile). */
static int print_result(struct sv_op *op, int status, bool show)
{
	const struct sv_ent *e = sv_table_find(&op->table, op->id);

	if (status != CLI_EXIT_OK)
		return status;
	if (!e) {
		cli_error("subvolume %" PRIu64 " went away", op->id);
		return CLI_EXIT_ERROR;
	}
	if (op->fmt == SV_JSON) {
		print_json_one(e, show, op->have_usage ? &op->usage : NULL);
	} else if (show) {
		print_show(&op->table, e, op->have_usage ? &op->usage : NULL);
	} else {
		print_header();
		print_row(e);
	}
	return CLI_EXIT_OK;
}

/* ---- argument parsing ------------------------------------------------------------------ */

static const struct option format_longopts[] = {
        SV_FORMAT_LONGOPT,
        {NULL, 0, NULL, 0},
};

/* --format FMT or -j, the others given by optstring (m:, r); returns an
 * option the caller handles, or -1 at the end. */
static int sv_getopt(struct sv_op *op, int argc, char **argv, const char *optstring)
{
	char all[16];
	int c;

	snprintf(all, sizeof(all), "j%s", optstring);
	while ((c = cli_getopt(op->cmd, argc, argv, all, format_longopts)) != -1) {
		if (!sv_format_opt(op->cmd, c, &op->fmt))
			return c;
	}
	return -1;
}

/* The positional arguments, after the options: between min and max. */
static void sv_args(struct sv_op *op, int argc, char **argv, int min, int max)
{
	cli_check_argc(op->cmd, argc - optind, min, max);
	op->args = argv + optind;
	op->nargs = argc - optind;
}

/* Offline, paths in the image are absolute. */
static void sv_arg_path(const struct sv_op *op, const char *path)
{
	if (cli_globals.image)
		cli_arg_path(op->cmd, path);
}

static bool is_id(const char *s)
{
	return *s && strspn(s, "0123456789") == strlen(s);
}

/* ---- subvolume create ------------------------------------------------------------------ */

static int do_create(struct sv_ctx *c, struct sv_op *op)
{
	int ret = c->ops->create(c, op->args[0], op->perm, &op->id);

	if (ret)
		return sv_fail(c, SV_CREATE, op->args[0], ret);
	/* text names only the id: spare the paths (online, maybe a search) */
	return op->fmt == SV_JSON ? sv_load(c, &op->table, op->args[0]) : 0;
}

/* MODE in octal, as chmod and mkdir -m take it. */
static int parse_mode(const char *s, uint32_t *ret)
{
	size_t n = strlen(s);
	unsigned long v;

	if (!n || n > 5 || strspn(s, "01234567") != n)
		return -EINVAL;
	v = strtoul(s, NULL, 8);
	if (v > 07777)
		return -EINVAL;
	*ret = (uint32_t)v;
	return 0;
}

static void parse_create(struct sv_op *op, int argc, char **argv)
{
	mode_t mask = umask(0);
	bool has_mode = false;

	umask(mask);
	while (sv_getopt(op, argc, argv, "m:") == 'm') {
		cli_check_arg(op->cmd, parse_mode(optarg, &op->perm), "mode", optarg);
		has_mode = true;
	}
	if (!has_mode)
		op->perm = 0777 & ~(uint32_t)mask;
	sv_args(op, argc, argv, 1, 1);
	sv_arg_path(op, op->args[0]);
}

static int cmd_subvol_create(const struct cmd_struct *cmd, int argc, char **argv)
{
	struct sv_op op = {.cmd = cmd, .fn = do_create};
	int ret;

	parse_create(&op, argc, argv);
	ret = op_run(&op, false, op.args[0], AT_PARENT, SV_CREATE);
	if (ret == CLI_EXIT_OK && op.fmt == SV_TEXT)
		printf("Create subvolume '%s' (id %" PRIu64 ")\n", op.args[0], op.id);
	else if (ret == CLI_EXIT_OK)
		ret = print_result(&op, ret, false);
	op_free(&op);
	return ret;
}

static const char *const cmd_subvol_create_usage[] = {
        "arbor [-i IMAGE] subvolume create [-m MODE] [--format FMT] PATH",
        "",
        "Create a new, empty subvolume named PATH.",
        "",
        "A subvolume is a tree of its own that appears as a directory; it can be",
        "snapshotted and deleted as a whole.  Its root directory is owned by the",
        "caller, with mode 0777 less the umask unless -m is given.",
        "",
        OPTLINE("-m MODE", "permission bits of its root directory, in octal (as chmod)"),
        OPTLINE("--format FMT", "text (the default) or json: the new subvolume as JSON"),
        OPTLINE("-j", "the same as --format json"),
        "",
        "With -i, PATH is an absolute path in the image's default subvolume;",
        "without, a path on a mounted arborfs.",
        NULL,
};

static const struct cmd_struct cmd_struct_subvol_create = {"create", cmd_subvol_create,
                                                           cmd_subvol_create_usage, NULL, 0};

/* ---- snapshot create ------------------------------------------------------------------- */

/* The name a snapshot gets inside a directory: SOURCE's last name (online
 * of its canonical path when it ends in "." or ".."); NULL if it has none. */
static char *source_name(const struct sv_ctx *c, const char *src)
{
	char *dir = NULL, *name = NULL;

	if (!c->online) {
		const char *end = src + strlen(src), *start;

		while (end > src && end[-1] == '/')
			end--;
		start = end;
		while (start > src && start[-1] != '/')
			start--;
		if (end == start || (end - start == 1 && *start == '.') ||
		    (end - start == 2 && !strncmp(start, "..", 2)))
			return NULL;
		return strndup(start, (size_t)(end - start));
	}
	if (sv_split_path(src, &dir, &name))
		return NULL;
	free(dir);
	if (!name[0]) {
		free(name);
		return NULL;
	}
	return name;
}

/* Where the snapshot goes: DEST/NAME when DEST is a directory, else DEST. */
static int snapshot_where(struct sv_ctx *c, struct sv_op *op)
{
	const char *src = op->args[0], *dest = op->args[1];
	char *name;

	if (!c->ops->is_dir(c, dest)) {
		op->where = strdup(dest);
		return op->where ? 0 : -ENOMEM;
	}
	name = source_name(c, src);
	if (!name)
		return -EDESTADDRREQ;
	op->where = sv_path_join(dest, name);
	free(name);
	return op->where ? 0 : -ENOMEM;
}

static int do_snapshot(struct sv_ctx *c, struct sv_op *op)
{
	uint64_t src;
	int ret = c->ops->subvol_at(c, op->args[0], &src);

	if (ret)
		return sv_fail(c, SV_SUBVOL, op->args[0], ret);
	ret = snapshot_where(c, op);
	if (ret)
		return sv_fail(c, SV_SNAPSHOT, op->args[1], ret);
	ret = c->ops->snapshot(c, src, op->where, op->rdonly, &op->id);
	if (ret)
		return sv_fail(c, SV_SNAPSHOT, op->where, ret);
	return op->fmt == SV_JSON ? sv_load(c, &op->table, op->where) : 0;
}

static int run_snapshot(const struct cmd_struct *cmd, int argc, char **argv)
{
	struct sv_op op = {.cmd = cmd, .fn = do_snapshot};
	int c, ret;

	while ((c = sv_getopt(&op, argc, argv, "r")) != -1)
		op.rdonly = true;
	sv_args(&op, argc, argv, 2, 2);
	sv_arg_path(&op, op.args[0]);
	sv_arg_path(&op, op.args[1]);
	ret = op_run(&op, false, op.args[0], AT_PATH, SV_SUBVOL);
	if (ret == CLI_EXIT_OK && op.fmt == SV_TEXT)
		printf("Create a %ssnapshot of '%s' in '%s' (id %" PRIu64 ")\n",
		       op.rdonly ? "read-only " : "", op.args[0], op.where, op.id);
	else if (ret == CLI_EXIT_OK)
		ret = print_result(&op, ret, false);
	op_free(&op);
	return ret;
}

static const char *const cmd_snapshot_create_usage[] = {
        "arbor [-i IMAGE] snapshot create [-r] [--format FMT] SOURCE DEST",
        "",
        "Snapshot the subvolume SOURCE as DEST, in constant time.",
        "",
        "SOURCE is the root directory of a subvolume (\"/\" offline is the default",
        "one).  When DEST is an existing directory the snapshot goes into it under",
        "SOURCE's last name; otherwise DEST is the snapshot's new name.  The",
        "snapshot shares every block with SOURCE until either changes.  It is",
        "writable unless -r is given.  Subvolumes nested in SOURCE are not part",
        "of it: their names are absent from the snapshot.",
        "",
        OPTLINE("-r", "make a read-only snapshot: every change to it fails"),
        OPTLINE("--format FMT", "text (the default) or json: the snapshot as JSON"),
        OPTLINE("-j", "the same as --format json"),
        "",
        "With -i, paths are absolute paths in the image's default subvolume;",
        "without, paths on a mounted arborfs (SOURCE and DEST on one mount).",
        NULL,
};

static const struct cmd_struct cmd_struct_snapshot_create = {"create", run_snapshot,
                                                             cmd_snapshot_create_usage, NULL, 0};

static const char *const cmd_subvol_snapshot_usage[] = {
        "arbor [-i IMAGE] subvolume snapshot [-r] [--format FMT] SOURCE DEST",
        "",
        "The same as arbor snapshot create (the name btrfs users know).",
        "",
        OPTLINE("-r", "make a read-only snapshot: every change to it fails"),
        OPTLINE("--format FMT", "text (the default) or json: the snapshot as JSON"),
        OPTLINE("-j", "the same as --format json"),
        NULL,
};

static const struct cmd_struct cmd_struct_subvol_snapshot = {"snapshot", run_snapshot,
                                                             cmd_subvol_snapshot_usage, NULL, 0};

/* ---- subvolume delete ------------------------------------------------------------------ */

static int do_delete(struct sv_ctx *c, struct sv_op *op)
{
	for (int i = 0; i < op->nargs; i++) {
		const char *path = op->args[i];
		uint64_t id = 0;
		int ret = c->ops->destroy(c, path, &id);

		if (ret) {
			sv_fail(c, SV_DELETE, path, ret);
			/* offline nothing is committed after an error: stop */
			if (!c->online)
				return ret;
			op->any_error = true;
			continue;
		}
		op->ids[i] = id;
		if (c->online)
			printf("Delete subvolume '%s' (id %" PRIu64 ")\n", path, id);
	}
	if (op->wait && c->ops->wait_cleaned(c)) {
		cli_error("waiting for the deleted subvolumes to be freed failed: %s (the daemon "
		          "frees them in the background, or at the next mount)",
		          strerror(errno));
		return -EIO;
	}
	return op->any_error ? -EIO : 0;
}

static int cmd_subvol_delete(const struct cmd_struct *cmd, int argc, char **argv)
{
	static const struct option longopts[] = {
	        {"wait", no_argument, NULL, 'w'},
	        {NULL, 0, NULL, 0},
	};
	struct sv_op op = {.cmd = cmd, .fn = do_delete};
	int ret;

	op.wait = cli_flags(cmd, argc, argv, "w", longopts) & 1;
	sv_args(&op, argc, argv, 1, INT_MAX);
	for (int i = 0; i < op.nargs; i++)
		sv_arg_path(&op, op.args[i]);
	op.ids = calloc((size_t)op.nargs, sizeof(*op.ids));
	if (!op.ids) {
		cli_error("out of memory");
		return CLI_EXIT_ERROR;
	}
	/* online, the mount is found by the subvolume itself (its directory
	 * is on another filesystem when it is the mount point), or by the
	 * directory of a path that does not exist, reported with the others */
	ret = op_run(&op, false, op.args[0], AT_LINK, SV_DELETE);
	/* offline: only now, after the commit, are they gone */
	for (int i = 0; cli_globals.image && ret == CLI_EXIT_OK && i < op.nargs; i++)
		printf("Delete subvolume '%s' (id %" PRIu64 ")\n", op.args[i], op.ids[i]);
	op_free(&op);
	return ret;
}

static const char *const cmd_subvol_delete_usage[] = {
        "arbor [-i IMAGE] subvolume delete [-w|--wait] PATH...",
        "",
        "Delete subvolumes (and snapshots) with everything in them.",
        "",
        "PATH is where the subvolume is linked.  The default subvolume, a mounted",
        "one and one with subvolumes linked inside cannot be deleted.  A deletion",
        "returns at once, whatever the size: on a mounted filesystem the daemon",
        "frees the space only the subvolume used in the background (df shows it",
        "coming back).  With --wait the command returns once it is free and that",
        "is committed.  Offline the space is freed before the command ends.",
        "",
        "Offline (-i) the deletions are one transaction: if one fails, none is",
        "made.  Online each is made on its own and the others go on.",
        NULL,
};

static const struct cmd_struct cmd_struct_subvol_delete = {"delete", cmd_subvol_delete,
                                                           cmd_subvol_delete_usage, NULL, 0};

/* ---- subvolume list -------------------------------------------------------------------- */

static int do_list(struct sv_ctx *c, struct sv_op *op)
{
	const char *path = op->nargs ? op->args[0] : ".";
	int ret = op->nargs ? c->ops->exists(c, path) : 0;

	if (ret)
		return sv_fail(c, SV_SUBVOL, path, ret);
	return sv_load(c, &op->table, path);
}

static int cmd_subvol_list(const struct cmd_struct *cmd, int argc, char **argv)
{
	struct sv_op op = {.cmd = cmd, .fn = do_list};
	const char *anchor;
	int ret;

	while (sv_getopt(&op, argc, argv, "") != -1)
		;
	sv_args(&op, argc, argv, 0, 1);
	if (op.nargs)
		sv_arg_path(&op, op.args[0]);
	anchor = op.nargs ? op.args[0] : ".";
	ret = op_run(&op, true, anchor, AT_PATH, SV_SUBVOL);
	if (ret == CLI_EXIT_OK && op.fmt == SV_JSON) {
		print_json_list(&op.table);
	} else if (ret == CLI_EXIT_OK) {
		print_header();
		for (size_t i = 0; i < op.table.count; i++)
			print_row(&op.table.ents[i]);
	}
	op_free(&op);
	return ret;
}

static const char *const cmd_subvol_list_usage[] = {
        "arbor [-i IMAGE] subvolume list [--format FMT] [PATH]",
        "",
        "List every subvolume of the filesystem.",
        "",
        "Online PATH (default: the current directory) names the mounted arborfs;",
        "offline it must exist in the image.  Columns: the subvolume's id, the",
        "generation that last changed it, the subvolume it is linked in (0: the",
        "top level, linked nowhere), flags (ro: read-only, default, mounted: shown",
        "at the root of this mount) and its path from the top level.  Online, a",
        "path the mount cannot show is given as ?/NAME.",
        "",
        OPTLINE("--format FMT", "text (the default) or json: an array of objects"),
        OPTLINE("-j", "the same as --format json"),
        NULL,
};

static const struct cmd_struct cmd_struct_subvol_list = {"list", cmd_subvol_list,
                                                         cmd_subvol_list_usage, NULL, 0};

/* ---- subvolume show --------------------------------------------------------------------- */

static int do_show(struct sv_ctx *c, struct sv_op *op)
{
	int ret = c->ops->subvol_at(c, op->args[0], &op->id);

	if (ret)
		return sv_fail(c, SV_SUBVOL, op->args[0], ret);
	ret = sv_load(c, &op->table, op->args[0]);
	if (ret)
		return ret;
	ret = c->ops->usage(c, op->id, &op->usage);
	op->have_usage = !ret;
	if (ret == -ENOTTY && c->online)
		return 0; /* an older arborfs: shown as unknown */
	return ret ? sv_fail_fmt(c, NULL, "cannot read the space of '%s'", op->args[0], ret) : 0;
}

static int cmd_subvol_show(const struct cmd_struct *cmd, int argc, char **argv)
{
	struct sv_op op = {.cmd = cmd, .fn = do_show};
	int ret;

	while (sv_getopt(&op, argc, argv, "") != -1)
		;
	sv_args(&op, argc, argv, 1, 1);
	sv_arg_path(&op, op.args[0]);
	ret = print_result(&op, op_run(&op, true, op.args[0], AT_PATH, SV_SUBVOL), true);
	op_free(&op);
	return ret;
}

static const char *const cmd_subvol_show_usage[] = {
        "arbor [-i IMAGE] subvolume show [--format FMT] PATH",
        "",
        "Show a subvolume: PATH is its root directory.",
        "",
        "Its path from the top level, name, id, the subvolume it is linked in,",
        "flags, UUID, for a snapshot its source's UUID and id, the creation time",
        "and generation, the generation that last changed it, its space and the",
        "snapshots made of it.",
        "",
        "Referenced is the space of everything the subvolume holds, shared with",
        "others or not; exclusive is what only it holds: what deleting it would",
        "free.  Text shows them in binary units (KiB, MiB, ...), JSON in bytes",
        "(referenced_bytes, exclusive_bytes).  Exclusive is found by a walk of",
        "the unshared part of the subvolume, so it costs time in proportion to",
        "what the subvolume does not share.",
        "",
        OPTLINE("--format FMT", "text (the default) or json"),
        OPTLINE("-j", "the same as --format json"),
        NULL,
};

static const struct cmd_struct cmd_struct_subvol_show = {"show", cmd_subvol_show,
                                                         cmd_subvol_show_usage, NULL, 0};

/* ---- subvolume set-default / get-default ---------------------------------------------- */

static int do_set_default(struct sv_ctx *c, struct sv_op *op)
{
	const char *arg = op->args[0];
	int ret;

	if (!is_id(arg)) {
		ret = c->ops->subvol_at(c, arg, &op->id);
		if (ret)
			return sv_fail(c, SV_SUBVOL, arg, ret);
	} else if (op->nargs > 1) {
		ret = c->ops->exists(c, op->args[1]);
		if (ret)
			return sv_fail(c, SV_SUBVOL, op->args[1], ret);
	}
	ret = c->ops->set_default(c, op->id);
	return ret ? sv_fail(c, SV_QUERY, arg, ret) : 0;
}

static int cmd_subvol_set_default(const struct cmd_struct *cmd, int argc, char **argv)
{
	struct sv_op op = {.cmd = cmd, .fn = do_set_default};
	const char *anchor;

	cli_no_options(cmd, argc, argv, 1, 2);
	sv_args(&op, argc, argv, 1, 2);
	if (is_id(op.args[0])) {
		cli_check_arg(cmd, cli_parse_u64(op.args[0], &op.id), "subvolume id", op.args[0]);
		anchor = op.nargs > 1 ? op.args[1] : ".";
	} else if (op.nargs > 1) {
		return cli_usage_error(cmd, "give PATH, or ID and PATH");
	} else {
		anchor = op.args[0];
	}
	for (int i = is_id(op.args[0]); i < op.nargs; i++)
		sv_arg_path(&op, op.args[i]);
	return op_run(&op, false, anchor, AT_PATH, SV_SUBVOL);
}

static const char *const cmd_subvol_set_default_usage[] = {
        "arbor [-i IMAGE] subvolume set-default PATH",
        "arbor [-i IMAGE] subvolume set-default ID [PATH]",
        "",
        "Make a subvolume the default one: what a mount shows without -o subvol.",
        "",
        "PATH is the subvolume's root directory; or give its ID (an argument of",
        "digits only is an ID), online with a PATH on the mount (default: the",
        "current directory).  Offline, \"/\" is the default subvolume's root, so",
        "after a change the paths of the next commands start there; an ID reaches",
        "any subvolume.  Online, only root may change the default.",
        NULL,
};

static const struct cmd_struct cmd_struct_subvol_set_default = {
        "set-default", cmd_subvol_set_default, cmd_subvol_set_default_usage, NULL, 0};

static int do_get_default(struct sv_ctx *c, struct sv_op *op)
{
	const char *path = op->nargs ? op->args[0] : ".";
	int ret = op->nargs ? c->ops->exists(c, path) : 0;

	if (ret)
		return sv_fail(c, SV_SUBVOL, path, ret);
	ret = sv_load(c, &op->table, path);
	for (size_t i = 0; !ret && i < op->table.count; i++) {
		if (op->table.ents[i].sv.is_default) {
			op->id = op->table.ents[i].sv.id;
			return 0;
		}
	}
	if (!ret)
		cli_error("the filesystem has no default subvolume");
	return ret ? ret : -ENOENT;
}

static int cmd_subvol_get_default(const struct cmd_struct *cmd, int argc, char **argv)
{
	struct sv_op op = {.cmd = cmd, .fn = do_get_default};
	const char *anchor;
	int ret;

	while (sv_getopt(&op, argc, argv, "") != -1)
		;
	sv_args(&op, argc, argv, 0, 1);
	if (op.nargs)
		sv_arg_path(&op, op.args[0]);
	anchor = op.nargs ? op.args[0] : ".";
	ret = print_result(&op, op_run(&op, true, anchor, AT_PATH, SV_SUBVOL), false);
	op_free(&op);
	return ret;
}

static const char *const cmd_subvol_get_default_usage[] = {
        "arbor [-i IMAGE] subvolume get-default [--format FMT] [PATH]",
        "",
        "Show the default subvolume, as a row of subvolume list.",
        "",
        "Online PATH (default: the current directory) names the mounted arborfs.",
        "",
        OPTLINE("--format FMT", "text (the default) or json"),
        OPTLINE("-j", "the same as --format json"),
        NULL,
};

static const struct cmd_struct cmd_struct_subvol_get_default = {
        "get-default", cmd_subvol_get_default, cmd_subvol_get_default_usage, NULL, 0};

/* ---- the groups --------------------------------------------------------------------------- */

static const char *const cmd_subvol_usage[] = {
        "arbor [-i IMAGE] subvolume COMMAND",
        "",
        "Create, delete, list and show subvolumes; choose the default one.",
        "",
        "With -i IMAGE the commands work on an unmounted image, with absolute",
        "paths in its default subvolume, and commit before they exit.  Without",
        "it they work on a mounted arborfs, through its daemon, with ordinary",
        "paths.",
        NULL,
};

static const struct cmd_struct *const subvol_commands[] = {
        &cmd_struct_subvol_create,      &cmd_struct_subvol_delete,
        &cmd_struct_subvol_list,        &cmd_struct_subvol_show,
        &cmd_struct_subvol_snapshot,    &cmd_struct_subvol_set_default,
        &cmd_struct_subvol_get_default, NULL,
};

static const struct cmd_group subvol_group = {cmd_subvol_usage, subvol_commands};

const struct cmd_struct cmd_struct_subvolume = {"subvolume", NULL, cmd_subvol_usage, &subvol_group,
                                                0};

static const char *const cmd_snapshot_usage[] = {
        "arbor [-i IMAGE] snapshot COMMAND",
        "",
        "Snapshots: subvolumes made as an O(1) copy of another.",
        "",
        "A snapshot is a subvolume like any other: list, show and delete it with",
        "the subvolume commands.",
        NULL,
};

static const struct cmd_struct *const snapshot_commands[] = {
        &cmd_struct_snapshot_create,
        NULL,
};

static const struct cmd_group snapshot_group = {cmd_snapshot_usage, snapshot_commands};

const struct cmd_struct cmd_struct_snapshot = {"snapshot", NULL, cmd_snapshot_usage,
                                               &snapshot_group, 0};
