/* SPDX-License-Identifier: MIT */
/*
 * subvol.c - "arbor subvolume" and "arbor snapshot": make, snapshot,
 * delete, list and show subvolumes, and choose the default one.
 *
 * Every command works in one of two modes.  Offline (-i IMAGE), paths are
 * absolute paths in the image's default subvolume, the work is done
 * through the core API, and one commit at the end makes it durable (a
 * command that fails commits nothing).  Online (no -i), paths are ordinary
 * paths on a mounted arborfs, and the daemon does the work: the ioctls of
 * arbor/ioctl.h on a directory of the mount.  The commands are written
 * once, against struct sv_ops; the two backends implement it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#include "arbor/ioctl.h"
#include "arbor/vfs.h"

#define FUSE_SUPER_MAGIC 0x65735546
#define ARBORFS_FSTYPE "fuse.arborfs"
/* the local number of every subvolume's root directory, as st_ino shows it */
#define LOCAL_MASK ((1ull << ARB_SUBVOL_SHIFT) - 1)
/* how deep the online search for a directory goes */
#define SCAN_DEPTH 64

enum sv_format { SV_TEXT, SV_JSON };

/* What a command was doing when it failed: chooses the error message. */
enum sv_verb {
	SV_CREATE,   /* create: PATH */
	SV_SNAPSHOT, /* snapshot: the new name */
	SV_SUBVOL,   /* a path that must be a subvolume (source, show, set-default) */
	SV_DELETE,   /* delete: PATH */
	SV_QUERY,    /* list, get-default, set-default: the filesystem as a whole */
};

/* ---- the subvolume table ------------------------------------------------------ */

struct sv_ent {
	struct arb_subvol sv;
	bool mounted; /* online: the subvolume the mount shows at its root */
	int state;    /* of path: 0 to do, 1 being found, 2 done */
	char *path;   /* from the top level ("/", "/a/b"); NULL: not known */
};

struct sv_table {
	struct sv_ent *ents; /* by id, as both backends list them */
	size_t count, cap;
};

static int table_add(struct sv_table *t, const struct arb_subvol *sv, bool mounted)
{
	if (t->count == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 16;
		struct sv_ent *e = realloc(t->ents, cap * sizeof(*e));

		if (!e)
			return -ENOMEM;
		t->ents = e;
		t->cap = cap;
	}
	t->ents[t->count++] = (struct sv_ent){*sv, mounted, 0, NULL};
	return 0;
}

static void table_free(struct sv_table *t)
{
	for (size_t i = 0; i < t->count; i++)
		free(t->ents[i].path);
	free(t->ents);
	memset(t, 0, sizeof(*t));
}

static struct sv_ent *table_find(const struct sv_table *t, uint64_t id)
{
	for (size_t i = 0; i < t->count; i++) {
		if (t->ents[i].sv.id == id)
			return &t->ents[i];
	}
	return NULL;
}

/* a/b, with one '/' between non-empty parts; NULL when out of memory */
static char *path_join(const char *a, const char *b)
{
	size_t la = strlen(a);
	char *out;

	if (!*b)
		return strdup(a);
	if (!la)
		return strdup(b);
	out = malloc(la + strlen(b) + 2);
	if (out)
		sprintf(out, "%s%s%s", a, a[la - 1] == '/' ? "" : "/", b);
	return out;
}

/* ---- the backends' interface ----------------------------------------------------- */

struct sv_ctx;

/* Every call returns 0 or a negative errno and prints nothing. */
struct sv_ops {
	/* the subvolume whose root directory path is: -ENOTTY for anything else */
	int (*subvol_at)(struct sv_ctx *c, const char *path, uint64_t *ret_id);
	/* 1 if path is a directory, 0 if it is something else or nothing */
	int (*is_dir)(struct sv_ctx *c, const char *path);
	/* path exists (list and set-default name the filesystem by one) */
	int (*exists)(struct sv_ctx *c, const char *path);
	int (*create)(struct sv_ctx *c, const char *path, uint32_t perm, uint64_t *ret_id);
	int (*snapshot)(struct sv_ctx *c, uint64_t src, const char *path, bool rdonly,
	                uint64_t *ret_id);
	/* the subvolume linked as path: its id in *ret_id (0 if not known) */
	int (*destroy)(struct sv_ctx *c, const char *path, uint64_t *ret_id);
	int (*set_default)(struct sv_ctx *c, uint64_t id);
	/* every subvolume, by id */
	int (*list)(struct sv_ctx *c, struct sv_table *t);
	/* directory dirid of subvolume id, relative to its root ("" for the
	 * root, "a/b"): malloc'ed; -ENOENT when it cannot be found */
	int (*dir_path)(struct sv_ctx *c, uint64_t id, uint64_t dirid, char **ret);
};

/* A directory the online search found. */
struct sv_found {
	uint64_t ino;
	char *rel; /* from the mount point; NULL: still wanted */
};

struct sv_ctx {
	const struct sv_ops *ops;
	bool online;
	struct cli_vfs *v; /* offline */
	/* online */
	const char *shown; /* the path the mount was found by, for messages */
	int fd;            /* a directory of the mount: list, info, set-default */
	dev_t dev;
	char *mnt; /* the mount point */
	struct sv_found *found;
	size_t nfound, missing;
	bool scanned;
	struct sv_table *table; /* the one being given paths */
};

/* ---- messages ------------------------------------------------------------------ */

static const char *explain_make(const struct sv_ctx *c, enum sv_verb verb, int err)
{
	switch (err) {
	case -ENOENT:
		return "cannot create '%s': the directory to hold it does not exist";
	case -EEXIST:
		return "cannot create '%s': the name is taken; choose another";
	case -ENOTDIR:
		return "cannot create '%s': a part of the path before the name is not a directory";
	case -EROFS:
		return c->online ? "cannot create '%s': its parent directory is in a read-only "
		                   "subvolume, or the mount is read-only"
		                 : "cannot create '%s': its parent directory is in a read-only "
		                   "subvolume";
	case -EINVAL:
		return "cannot create '%s': invalid name (not '.' or '..', no '/')";
	case -ENOTTY:
		return c->online ? "cannot create '%s': this arborfs does not support "
		                   "subvolumes (an older version?)"
		                 : NULL;
	case -EACCES:
		return "cannot create '%s': permission denied: you need write and search "
		       "permission on its parent directory";
	case -EPERM:
		return verb == SV_SNAPSHOT ? "cannot create '%s': only the owner of the source "
		                             "subvolume's root directory (or root) may snapshot it"
		                           : NULL;
	}
	return NULL;
}

static const char *explain_delete(const struct sv_ctx *c, int err)
{
	switch (err) {
	case -ENOENT:
		return "cannot delete '%s': it does not exist";
	case -ENOTTY:
		return "cannot delete '%s': it is not a subvolume (arbor subvolume list shows "
		       "them)";
	case -EBUSY:
		return c->online ? "cannot delete '%s': it is the default subvolume or it is "
		                   "mounted; make another one the default (arbor subvolume "
		                   "set-default) or unmount it first"
		                 : "cannot delete '%s': it is the default subvolume; make another "
		                   "one the default first (arbor subvolume set-default)";
	case -ENOTEMPTY:
		return "cannot delete '%s': subvolumes are linked inside it; delete them first";
	case -EROFS:
		return c->online ? "cannot delete '%s': the directory holding it is in a "
		                   "read-only subvolume, or the mount is read-only"
		                 : "cannot delete '%s': the directory holding it is in a "
		                   "read-only subvolume";
	case -EACCES:
		return "cannot delete '%s': permission denied: you need write and search "
		       "permission on the directory holding it";
	case -EPERM:
		return "cannot delete '%s': only the owner of its root directory (or root) may "
		       "delete it";
	}
	return NULL;
}

static const char *explain_other(const struct sv_ctx *c, enum sv_verb verb, int err)
{
	switch (err) {
	case -ENOENT:
		return verb == SV_QUERY ? "no subvolume %s (arbor subvolume list shows them)"
		                        : "'%s' does not exist";
	case -ENOTTY:
		if (verb == SV_QUERY && c->online)
			return "the arborfs serving '%s' does not support subvolumes (an older "
			       "version?)";
		return "'%s' is not a subvolume: give the root directory of one (arbor "
		       "subvolume list shows them)";
	case -EPERM:
		return verb == SV_QUERY ? "cannot change the default subvolume (%s): only root "
		                          "may"
		                        : NULL;
	case -EROFS:
		return verb == SV_QUERY ? "cannot change the default subvolume (%s): the mount "
		                          "is read-only"
		                        : NULL;
	}
	return NULL;
}

/* Print why what failed on path, saying what to do when there is
 * something to do; returns err. */
static int sv_fail(const struct sv_ctx *c, enum sv_verb verb, const char *path, int err)
{
	const struct cli_fs *cfs = c->v ? c->v->cfs : NULL;
	const char *fmt;
	char what[PATH_MAX + 64];

	if (err == -EXDEV && c->online) {
		cli_error("'%s' is not on the arborfs mount of '%s': give paths of one mount", path,
		          c->shown);
		return err;
	}
	if (err == -EDESTADDRREQ) {
		cli_error("'%s' is a directory and the source has no name to give the snapshot "
		          "in it: name the snapshot, as in %s/NAME",
		          path, path);
		return err;
	}
	if (verb == SV_CREATE || verb == SV_SNAPSHOT)
		fmt = explain_make(c, verb, err);
	else if (verb == SV_DELETE)
		fmt = explain_delete(c, err);
	else
		fmt = explain_other(c, verb, err);
	if (fmt) {
		snprintf(what, sizeof(what), fmt, path);
		cli_error("%s", what);
		return err;
	}
	if (verb == SV_CREATE || verb == SV_SNAPSHOT)
		snprintf(what, sizeof(what), "cannot create '%s'", path);
	else if (verb == SV_DELETE)
		snprintf(what, sizeof(what), "cannot delete '%s'", path);
	else
		snprintf(what, sizeof(what), "%s", path);
	cli_report(cfs, what, err);
	return err;
}

/* ---- paths from the top level ---------------------------------------------------------- */

static char *ent_path(struct sv_ctx *c, struct sv_table *t, struct sv_ent *e);

/* The path of e from its parent's: parent path, link directory, name. */
static char *linked_path(struct sv_ctx *c, struct sv_table *t, const struct sv_ent *e)
{
	struct sv_ent *parent = table_find(t, e->sv.parent_id);
	const char *pp = parent ? ent_path(c, t, parent) : NULL;
	char *dir = NULL, *base, *out;

	if (!pp || c->ops->dir_path(c, e->sv.parent_id, e->sv.dirid, &dir))
		return NULL;
	base = path_join(pp, dir);
	out = base ? path_join(base, e->sv.name) : NULL;
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

/* The length of the valid UTF-8 sequence of 2 to 4 bytes at p, else 0. */
static int utf8_seq(const unsigned char *p)
{
	int n;

	if (p[0] < 0xc2 || p[0] > 0xf4)
		return 0;
	n = p[0] >= 0xf0 ? 4 : p[0] >= 0xe0 ? 3 : 2;
	for (int i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0; /* also stops at the NUL */
	}
	/* overlong forms, surrogates, beyond U+10FFFF */
	if ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] >= 0xa0) ||
	    (p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] >= 0x90))
		return 0;
	return n;
}

/* A JSON string.  Names are bytes: those that are not UTF-8 are written as
 * \u00XX, so that the output is valid JSON whatever the names. */
static void json_string(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	putchar('"');
	while (*p) {
		int n = utf8_seq(p);

		if (n) {
			fwrite(p, 1, (size_t)n, stdout);
			p += n;
		} else if (*p == '"' || *p == '\\') {
			printf("\\%c", *p++);
		} else if (*p < 0x20 || *p >= 0x7f) {
			printf("\\u%04x", *p++);
		} else {
			putchar(*p++);
		}
	}
	putchar('"');
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

/* One subvolume as a JSON object; indent is that of its fields. */
static void json_ent(const struct sv_ent *e, const char *indent)
{
	const struct arb_subvol *sv = &e->sv;
	char when[64];

	printf("{\n%s\"id\": %" PRIu64 ",\n%s\"name\": ", indent, sv->id, indent);
	json_string(sv->name);
	printf(",\n%s\"path\": ", indent);
	if (e->path)
		json_string(e->path);
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
	printf("%s\"generation\": %" PRIu64 "\n", indent, sv->generation);
	printf("%.*s}", (int)strlen(indent) - 2, indent);
}

static void print_json_one(const struct sv_ent *e)
{
	json_ent(e, "  ");
	putchar('\n');
}

static void print_json_list(const struct sv_table *t)
{
	printf("[");
	for (size_t i = 0; i < t->count; i++) {
		printf("%s\n  ", i ? "," : "");
		json_ent(&t->ents[i], "    ");
	}
	printf("%s]\n", t->count ? "\n" : "");
}

/* Like stat: one "key value" line each. */
static void print_show(const struct sv_table *t, const struct sv_ent *e)
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

/* ---- offline: the core API on the image ------------------------------------------- */

static int off_subvol_at(struct sv_ctx *c, const char *path, uint64_t *ret_id)
{
	struct cli_node n;
	int ret = cli_vfs_resolve(c->v, path, &n);

	if (ret)
		return ret;
	if (!S_ISDIR(n.st.mode) || arb_ino_local(n.st.ino) != ARB_FIRST_INO)
		return -ENOTTY;
	*ret_id = arb_ino_subvol(n.st.ino);
	return 0;
}

static int off_is_dir(struct sv_ctx *c, const char *path)
{
	struct cli_node n;

	return !cli_vfs_resolve(c->v, path, &n) && S_ISDIR(n.st.mode);
}

static int off_exists(struct sv_ctx *c, const char *path)
{
	struct cli_node n;

	return cli_vfs_resolve(c->v, path, &n);
}

/* The place of a new name: the root, which exists, is -EEXIST. */
static int off_new_place(struct sv_ctx *c, const char *path, struct cli_place *pl)
{
	int ret = cli_vfs_place(c->v, path, pl);

	return !ret && !pl->name[0] ? -EEXIST : ret;
}

static int off_create(struct sv_ctx *c, const char *path, uint32_t perm, uint64_t *ret_id)
{
	struct cli_place pl;
	struct arb_stat st = {0};
	int ret = off_new_place(c, path, &pl);

	if (!ret)
		ret = arb_vfs_subvol_make(c->v->fs, pl.dir, pl.name, perm, &c->v->cred, &st);
	if (!ret)
		*ret_id = arb_ino_subvol(st.ino);
	return ret;
}

static int off_snapshot(struct sv_ctx *c, uint64_t src, const char *path, bool rdonly,
                        uint64_t *ret_id)
{
	struct cli_place pl;
	struct arb_stat st = {0};
	int ret = off_new_place(c, path, &pl);

	if (!ret)
		ret = arb_vfs_snapshot(c->v->fs, src, pl.dir, pl.name,
		                       rdonly ? ARB_SNAPSHOT_RDONLY : 0, &st);
	if (!ret)
		*ret_id = arb_ino_subvol(st.ino);
	return ret;
}

static int off_destroy(struct sv_ctx *c, const char *path, uint64_t *ret_id)
{
	struct cli_place pl;
	struct arb_stat st;
	int ret = cli_vfs_place(c->v, path, &pl);

	if (!ret && !pl.name[0])
		ret = -EBUSY; /* "/": the default subvolume */
	if (!ret)
		ret = cli_vfs_lookup(c->v, &pl, &st);
	if (ret)
		return ret;
	*ret_id = arb_ino_local(st.ino) == ARB_FIRST_INO ? arb_ino_subvol(st.ino) : 0;
	return arb_vfs_subvol_delete(c->v->fs, pl.dir, pl.name);
}

static int off_set_default(struct sv_ctx *c, uint64_t id)
{
	return arb_vfs_subvol_set_default(c->v->fs, id);
}

static int off_list_one(void *ctx, const struct arb_subvol *sv)
{
	return table_add(ctx, sv, false);
}

static int off_list(struct sv_ctx *c, struct sv_table *t)
{
	return arb_vfs_subvol_list(c->v->fs, off_list_one, t);
}

struct name_of {
	arb_ino_t ino;
	char name[ARB_NAME_MAX + 1];
	bool found;
};

static int name_of_one(void *ctx, const char *name, size_t len, arb_ino_t ino, unsigned dtype,
                       uint64_t cookie)
{
	struct name_of *n = ctx;

	if (ino != n->ino)
		return 0;
	memcpy(n->name, name, len);
	n->name[len] = '\0';
	n->found = true;
	return 1;
}

/* Walk up from the directory to the subvolume's root, finding each
 * directory's name in its parent's entries (directories have one). */
static int off_dir_path(struct sv_ctx *c, uint64_t id, uint64_t dirid, char **ret)
{
	arb_ino_t ino = arb_ino_make(id, dirid), parent;
	char *path = strdup(""), *p;
	int err = 0;

	for (int depth = 0; path && !err && arb_ino_local(ino) != ARB_FIRST_INO; depth++) {
		struct name_of n = {ino, "", false};

		err = depth > 4096 ? -ELOOP : arb_vfs_parent(c->v->fs, ino, &parent);
		if (!err)
			err = arb_vfs_readdir(c->v->fs, parent, 0, name_of_one, &n);
		if (!err && (!n.found || arb_ino_subvol(parent) != id))
			err = -ENOENT;
		if (err)
			break;
		p = path_join(n.name, path);
		free(path);
		path = p;
		ino = parent;
	}
	if (!path)
		err = -ENOMEM;
	if (err)
		free(path);
	else
		*ret = path;
	return err;
}

static const struct sv_ops offline_ops = {
        off_subvol_at, off_is_dir,      off_exists, off_create,   off_snapshot,
        off_destroy,   off_set_default, off_list,   off_dir_path,
};

/* ---- online: ioctls on a mounted arborfs -------------------------------------------------- */

/* Undo the octal escapes of /proc/self/mountinfo ("\040" is a space). */
static void unescape(char *s)
{
	char *out = s;

	while (*s) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*out++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 4;
		} else {
			*out++ = *s++;
		}
	}
	*out = '\0';
}

/* One line of mountinfo: "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [TAGS] - TYPE
 * SOURCE SUPEROPTS".  1 if it is the mount of dev, with its type and
 * mount point in the line's own memory. */
static int mountinfo_line(char *line, dev_t dev, char **root, char **mnt, char **type)
{
	char *save = NULL, *tok[5], *t;
	unsigned int maj, min;
	int n = 0;

	for (t = strtok_r(line, " \n", &save); t && n < 5; t = strtok_r(NULL, " \n", &save))
		tok[n++] = t;
	if (n < 5 || sscanf(tok[2], "%u:%u", &maj, &min) != 2 || maj != major(dev) ||
	    min != minor(dev))
		return 0;
	while (t && strcmp(t, "-"))
		t = strtok_r(NULL, " \n", &save);
	t = t ? strtok_r(NULL, " \n", &save) : NULL;
	if (!t)
		return 0;
	*root = tok[3];
	*mnt = tok[4];
	*type = t;
	return 1;
}

/* Whether the filesystem of dev is mounted as an arborfs: 1 with its
 * mount point (preferring a mount of its whole tree to a bind mount of a
 * part), 0 if not, or a negative errno. */
static int arborfs_mount(dev_t dev, char **ret_mnt)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL, *root, *mnt, *type;
	size_t cap = 0;
	bool whole = false;
	int ret = 0;

	if (!f)
		return -errno;
	while (!whole && getline(&line, &cap, f) > 0) {
		if (!mountinfo_line(line, dev, &root, &mnt, &type))
			continue;
		if (strcmp(type, ARBORFS_FSTYPE)) {
			ret = 0;
			break;
		}
		unescape(mnt);
		free(*ret_mnt);
		*ret_mnt = strdup(mnt);
		ret = *ret_mnt ? 1 : -ENOMEM;
		whole = !strcmp(root, "/");
	}
	free(line);
	fclose(f);
	return ret;
}

/* The directory part of path ("." when there is none) and its last name,
 * malloc'ed; a path ending in "." or ".." is made canonical first, so that
 * it has a real last name.  The name is "" for "/". */
static int split_path(const char *path, char **ret_dir, char **ret_name)
{
	char *copy = strdup(path), *real = NULL, *end, *slash;

	if (!copy)
		return -ENOMEM;
	end = copy + strlen(copy);
	while (end > copy + 1 && end[-1] == '/')
		*--end = '\0';
	slash = strrchr(copy, '/');
	if (!strcmp(slash ? slash + 1 : copy, ".") || !strcmp(slash ? slash + 1 : copy, "..")) {
		real = realpath(copy, NULL);
		free(copy);
		if (!real)
			return -errno;
		copy = real;
		slash = strrchr(copy, '/');
	}
	if (!slash) {
		*ret_dir = strdup(".");
		*ret_name = copy;
	} else {
		*ret_name = strdup(slash + 1);
		slash[slash == copy] = '\0'; /* "/a" -> "/" */
		*ret_dir = copy;
	}
	if (!*ret_dir || !*ret_name) {
		free(*ret_dir == copy ? NULL : *ret_dir);
		free(*ret_name == copy ? NULL : *ret_name);
		free(copy);
		return -ENOMEM;
	}
	return 0;
}

/* Open a directory of this mount: -EXDEV if it is on another one. */
static int on_open_dir(struct sv_ctx *c, const char *path, int *ret_fd)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC), err = 0;
	struct stat st;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		err = -errno;
	else if (st.st_dev != c->dev)
		err = -EXDEV;
	if (err)
		close(fd);
	else
		*ret_fd = fd;
	return err;
}

static int on_stat(struct sv_ctx *c, const char *path, struct stat *st)
{
	if (stat(path, st) < 0)
		return -errno;
	return st->st_dev == c->dev ? 0 : -EXDEV;
}

static int on_subvol_at(struct sv_ctx *c, const char *path, uint64_t *ret_id)
{
	struct stat st;
	int ret = on_stat(c, path, &st);

	if (ret)
		return ret;
	if (!S_ISDIR(st.st_mode) || (st.st_ino & LOCAL_MASK) != ARB_FIRST_INO)
		return -ENOTTY;
	*ret_id = arb_ioc_subvol_of(st.st_ino);
	return 0;
}

static int on_is_dir(struct sv_ctx *c, const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int on_exists(struct sv_ctx *c, const char *path)
{
	struct stat st;

	return on_stat(c, path, &st);
}

/* Issue a create, snapshot or delete on the directory that holds path:
 * args gets the name. */
static int on_change(struct sv_ctx *c, const char *path, unsigned long req,
                     struct arb_ioc_subvol_args *args)
{
	char *dir = NULL, *name = NULL;
	int fd = -1, ret = split_path(path, &dir, &name);

	if (!ret && strlen(name) > ARB_IOC_NAME_MAX)
		ret = -ENAMETOOLONG;
	if (!ret && !name[0])
		ret = req == ARB_IOC_SUBVOL_DELETE ? -EBUSY : -EEXIST; /* "/" */
	if (!ret)
		ret = on_open_dir(c, dir, &fd);
	if (!ret) {
		strcpy(args->name, name);
		ret = ioctl(fd, req, args) < 0 ? -errno : 0;
		close(fd);
	}
	free(dir);
	free(name);
	return ret;
}

static int on_create(struct sv_ctx *c, const char *path, uint32_t perm, uint64_t *ret_id)
{
	struct arb_ioc_subvol_args args;
	struct stat st;
	int ret;

	if (lstat(path, &st) == 0)
		return -EEXIST; /* even the mount point, whose parent is elsewhere */
	memset(&args, 0, sizeof(args));
	args.mode = perm;
	ret = on_change(c, path, ARB_IOC_SUBVOL_CREATE, &args);
	if (!ret)
		*ret_id = args.id;
	return ret;
}

static int on_snapshot(struct sv_ctx *c, uint64_t src, const char *path, bool rdonly,
                       uint64_t *ret_id)
{
	struct arb_ioc_subvol_args args;
	struct stat st;
	int ret;

	if (lstat(path, &st) == 0)
		return -EEXIST;
	memset(&args, 0, sizeof(args));
	args.src_id = src;
	args.flags = rdonly ? ARB_IOC_RDONLY : 0;
	ret = on_change(c, path, ARB_IOC_SNAPSHOT, &args);
	if (!ret)
		*ret_id = args.id;
	return ret;
}

static int on_destroy(struct sv_ctx *c, const char *path, uint64_t *ret_id)
{
	struct arb_ioc_subvol_args args;
	struct stat st, dst;
	char *dir = NULL, *name = NULL;
	int ret;

	if (lstat(path, &st) < 0)
		return -errno;
	if (st.st_dev != c->dev)
		return -EXDEV;
	/* the mount point: its parent is on another filesystem */
	ret = split_path(path, &dir, &name);
	if (!ret && (stat(dir, &dst) < 0 || dst.st_dev != c->dev))
		ret = -EBUSY;
	free(dir);
	free(name);
	if (ret)
		return ret;
	*ret_id = S_ISDIR(st.st_mode) && (st.st_ino & LOCAL_MASK) == ARB_FIRST_INO
	                  ? arb_ioc_subvol_of(st.st_ino)
	                  : 0;
	memset(&args, 0, sizeof(args));
	return on_change(c, path, ARB_IOC_SUBVOL_DELETE, &args);
}

static int on_set_default(struct sv_ctx *c, uint64_t id)
{
	struct arb_ioc_subvol_args args;

	memset(&args, 0, sizeof(args));
	args.id = id;
	return ioctl(c->fd, ARB_IOC_SET_DEFAULT, &args) < 0 ? -errno : 0;
}

static void info_to_subvol(const struct arb_ioc_subvol_info *in, struct arb_subvol *sv)
{
	memset(sv, 0, sizeof(*sv));
	sv->id = in->id;
	sv->parent_id = in->parent_id;
	sv->dirid = in->dirid;
	memcpy(sv->name, in->name, sizeof(sv->name) - 1);
	sv->readonly = in->flags & ARB_IOC_RDONLY;
	sv->is_default = in->flags & ARB_IOC_DEFAULT;
	memcpy(sv->uuid, in->uuid, 16);
	memcpy(sv->parent_uuid, in->parent_uuid, 16);
	sv->source_id = in->source_id;
	sv->create_gen = in->create_gen;
	sv->ctime.tv_sec = (time_t)in->ctime_sec;
	sv->ctime.tv_nsec = (long)in->ctime_nsec;
	sv->generation = in->generation;
}

static int on_list(struct sv_ctx *c, struct sv_table *t)
{
	struct arb_ioc_subvol_info info;
	struct arb_subvol sv;
	uint64_t next = 0;
	int ret;

	for (;;) {
		memset(&info, 0, sizeof(info));
		info.id = next;
		if (ioctl(c->fd, ARB_IOC_SUBVOL_NEXT, &info) < 0)
			return errno == ENOENT ? 0 : -errno; /* ENOENT: no more */
		info_to_subvol(&info, &sv);
		ret = table_add(t, &sv, info.flags & ARB_IOC_MOUNTED);
		if (ret)
			return ret;
		if (info.id < next || info.id == UINT64_MAX)
			return 0; /* a daemon that does not move on */
		next = info.id + 1;
	}
}

/* ---- online: finding directories by inode number -------------------------------------- */

/* The directories whose paths the subvolume paths need: where each is
 * linked, and the root of the subvolume holding it. */
static int want(struct sv_ctx *c, uint64_t ino)
{
	struct sv_found *f;

	for (size_t i = 0; i < c->nfound; i++) {
		if (c->found[i].ino == ino)
			return 0;
	}
	f = realloc(c->found, (c->nfound + 1) * sizeof(*f));
	if (!f)
		return -ENOMEM;
	c->found = f;
	c->found[c->nfound++] = (struct sv_found){ino, NULL};
	c->missing++;
	return 0;
}

static void note(struct sv_ctx *c, uint64_t ino, const char *rel)
{
	for (size_t i = 0; i < c->nfound; i++) {
		if (c->found[i].ino == ino && !c->found[i].rel) {
			c->found[i].rel = strdup(rel);
			c->missing -= c->found[i].rel != NULL;
		}
	}
}

/* Depth first through the directories of the mount (never into another
 * filesystem) until every wanted one is found; dfd is closed. */
static void scan_dir(struct sv_ctx *c, int dfd, char *rel, size_t len, int depth)
{
	DIR *d = fdopendir(dfd);
	struct dirent *de;

	if (!d) {
		close(dfd);
		return;
	}
	while (c->missing && (de = readdir(d))) {
		size_t n = strlen(de->d_name);
		struct stat st;
		int fd;

		if ((de->d_type != DT_DIR && de->d_type != DT_UNKNOWN) ||
		    !strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") || len + n + 2 > PATH_MAX)
			continue;
		fd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (fstat(fd, &st) < 0 || st.st_dev != c->dev) {
			close(fd);
			continue;
		}
		sprintf(rel + len, "%s%s", len ? "/" : "", de->d_name);
		note(c, st.st_ino, rel);
		if (depth < SCAN_DEPTH)
			scan_dir(c, fd, rel, len + n + (len ? 1 : 0), depth + 1);
		else
			close(fd);
		rel[len] = '\0';
	}
	closedir(d);
}

/* Search the mount once, for every directory the table's paths need. */
static int scan_mount(struct sv_ctx *c, const struct sv_table *t)
{
	char rel[PATH_MAX] = "";
	struct stat st;
	int fd, ret = 0;

	c->scanned = true;
	for (size_t i = 0; i < t->count && !ret; i++) {
		const struct arb_subvol *sv = &t->ents[i].sv;

		if (!sv->parent_id || sv->dirid == ARB_FIRST_INO)
			continue;
		ret = want(c, arb_ino_make(sv->parent_id, sv->dirid));
		if (!ret)
			ret = want(c, arb_ino_make(sv->parent_id, ARB_FIRST_INO));
	}
	if (ret || !c->missing)
		return ret;
	fd = open(c->mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return 0; /* the paths stay unknown */
	if (fstat(fd, &st) == 0 && st.st_dev == c->dev) {
		note(c, st.st_ino, "");
		scan_dir(c, fd, rel, 0, 0);
	} else {
		close(fd);
	}
	return 0;
}

static const char *found_rel(const struct sv_ctx *c, uint64_t ino)
{
	for (size_t i = 0; i < c->nfound; i++) {
		if (c->found[i].ino == ino)
			return c->found[i].rel;
	}
	return NULL;
}

static int on_dir_path(struct sv_ctx *c, uint64_t id, uint64_t dirid, char **ret)
{
	const char *dir, *root;
	size_t rl;
	int err = 0;

	if (dirid == ARB_FIRST_INO) {
		*ret = strdup("");
		return *ret ? 0 : -ENOMEM;
	}
	if (!c->scanned)
		err = scan_mount(c, c->table);
	if (err)
		return err;
	dir = found_rel(c, arb_ino_make(id, dirid));
	root = found_rel(c, arb_ino_make(id, ARB_FIRST_INO));
	if (!dir || !root)
		return -ENOENT;
	rl = strlen(root);
	if (rl && (strncmp(dir, root, rl) || dir[rl] != '/'))
		return -ENOENT;
	*ret = strdup(dir + rl + (rl ? 1 : 0));
	return *ret ? 0 : -ENOMEM;
}

static const struct sv_ops online_ops = {
        on_subvol_at, on_is_dir,      on_exists, on_create,   on_snapshot,
        on_destroy,   on_set_default, on_list,   on_dir_path,
};

/* Find the mount of path (a directory, or the directory holding it):
 * it must be an arborfs. */
static int online_open(struct sv_ctx *c, const char *path, enum sv_verb verb)
{
	struct statfs sfs;
	struct stat st;
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC), ret;

	if (fd < 0 && errno == ENOTDIR) {
		char *dir = NULL, *name = NULL;

		ret = split_path(path, &dir, &name);
		fd = ret ? -1 : open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		free(dir);
		free(name);
		if (ret)
			return sv_fail(c, verb, c->shown, ret);
	}
	if (fd < 0)
		return sv_fail(c, verb, c->shown, -errno);
	c->fd = fd;
	if (fstatfs(fd, &sfs) < 0 || fstat(fd, &st) < 0)
		return sv_fail(c, SV_QUERY, c->shown, -errno);
	c->dev = st.st_dev;
	ret = (unsigned long)sfs.f_type == FUSE_SUPER_MAGIC ? arborfs_mount(st.st_dev, &c->mnt) : 0;
	if (ret < 0) {
		cli_error("cannot read /proc/self/mountinfo: %s", strerror(-ret));
		return ret;
	}
	if (!ret) {
		cli_error("'%s' is not on a mounted arborfs; give -i IMAGE to work on an unmounted "
		          "image",
		          c->shown);
		return -ENODEV;
	}
	return 0;
}

static void online_close(struct sv_ctx *c)
{
	if (c->fd >= 0)
		close(c->fd);
	for (size_t i = 0; i < c->nfound; i++)
		free(c->found[i].rel);
	free(c->found);
	free(c->mnt);
}

/* ---- running a command in either mode ---------------------------------------------------- */

struct sv_op;
typedef int (*sv_fn)(struct sv_ctx *c, struct sv_op *op);

struct sv_op {
	const struct cmd_struct *cmd;
	sv_fn fn;
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
};

static int run_offline(struct cli_vfs *v, void *arg)
{
	struct sv_op *op = arg;
	struct sv_ctx c = {.ops = &offline_ops, .v = v, .fd = -1};

	return op->fn(&c, op);
}

/* Online, which path finds the mount. */
enum sv_anchor {
	AT_PATH,   /* the path given */
	AT_PARENT, /* the directory holding it (a new name) */
	AT_LINK,   /* the path, or its directory if it does not exist */
};

/* The directory holding path, or path itself: malloc'ed in *ret. */
static int anchor_of(const char *path, enum sv_anchor how, char **ret)
{
	char *name = NULL;
	int err;

	if (how == AT_PATH || (how == AT_LINK && access(path, F_OK) == 0)) {
		*ret = strdup(path);
		return *ret ? 0 : -ENOMEM;
	}
	err = split_path(path, ret, &name);
	free(name);
	return err;
}

/* Run op->fn: offline in one transaction, or online on the mount found by
 * path (how: see sv_anchor; verb: what failure messages say); an exit
 * status. */
static int sv_run(struct sv_op *op, bool rdonly, const char *path, enum sv_anchor how,
                  enum sv_verb verb)
{
	struct sv_ctx c = {.ops = &online_ops, .online = true, .shown = path, .fd = -1};
	char *anchor = NULL;
	int ret;

	if (cli_globals.image)
		return cli_with_vfs(rdonly, run_offline, op);
	ret = anchor_of(path, how, &anchor);
	if (ret)
		sv_fail(&c, verb, path, ret);
	else
		ret = online_open(&c, anchor, verb);
	if (!ret)
		ret = op->fn(&c, op);
	online_close(&c);
	free(anchor);
	return ret < 0 ? CLI_EXIT_ERROR : CLI_EXIT_OK;
}

static void op_free(struct sv_op *op)
{
	table_free(&op->table);
	free(op->where);
	free(op->ids);
}

/* The subvolume with op->id, found in the table: printed as show, a
 * table row or JSON.  None: an error (it went away meanwhile). */
static int print_result(struct sv_op *op, int status, bool show)
{
	const struct sv_ent *e = table_find(&op->table, op->id);

	if (status != CLI_EXIT_OK)
		return status;
	if (!e) {
		cli_error("subvolume %" PRIu64 " went away", op->id);
		return CLI_EXIT_ERROR;
	}
	if (op->fmt == SV_JSON) {
		print_json_one(e);
	} else if (show) {
		print_show(&op->table, e);
	} else {
		print_header();
		print_row(e);
	}
	return CLI_EXIT_OK;
}

/* ---- argument parsing ------------------------------------------------------------------ */

static const struct option format_longopts[] = {
        {"format", required_argument, NULL, 'F'},
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
		if (c == 'j') {
			op->fmt = SV_JSON;
		} else if (c == 'F') {
			if (strcmp(optarg, "json") && strcmp(optarg, "text"))
				exit(cli_usage_error(op->cmd, "invalid format '%s' (json or text)",
				                     optarg));
			op->fmt = strcmp(optarg, "json") ? SV_TEXT : SV_JSON;
		} else {
			return c;
		}
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
	ret = sv_run(&op, false, op.args[0], AT_PARENT, SV_CREATE);
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
	if (split_path(src, &dir, &name))
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
	op->where = path_join(dest, name);
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
	ret = sv_run(&op, false, op.args[0], AT_PATH, SV_SUBVOL);
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
	return op->any_error ? -EIO : 0;
}

static int cmd_subvol_delete(const struct cmd_struct *cmd, int argc, char **argv)
{
	struct sv_op op = {.cmd = cmd, .fn = do_delete};
	int ret;

	cli_no_options(cmd, argc, argv, 1, INT_MAX);
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
	ret = sv_run(&op, false, op.args[0], AT_LINK, SV_DELETE);
	/* offline: only now, after the commit, are they gone */
	for (int i = 0; cli_globals.image && ret == CLI_EXIT_OK && i < op.nargs; i++)
		printf("Delete subvolume '%s' (id %" PRIu64 ")\n", op.args[i], op.ids[i]);
	op_free(&op);
	return ret;
}

static const char *const cmd_subvol_delete_usage[] = {
        "arbor [-i IMAGE] subvolume delete PATH...",
        "",
        "Delete subvolumes (and snapshots) with everything in them.",
        "",
        "PATH is where the subvolume is linked.  The default subvolume, a mounted",
        "one and one with subvolumes linked inside cannot be deleted.  The space",
        "only it used is free after a few commits.",
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
	ret = sv_run(&op, true, anchor, AT_PATH, SV_SUBVOL);
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
	return sv_load(c, &op->table, op->args[0]);
}

static int cmd_subvol_show(const struct cmd_struct *cmd, int argc, char **argv)
{
	struct sv_op op = {.cmd = cmd, .fn = do_show};
	int ret;

	while (sv_getopt(&op, argc, argv, "") != -1)
		;
	sv_args(&op, argc, argv, 1, 1);
	sv_arg_path(&op, op.args[0]);
	ret = print_result(&op, sv_run(&op, true, op.args[0], AT_PATH, SV_SUBVOL), true);
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
        "and generation, the generation that last changed it, and the snapshots",
        "made of it.",
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
	return sv_run(&op, false, anchor, AT_PATH, SV_SUBVOL);
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
	ret = print_result(&op, sv_run(&op, true, anchor, AT_PATH, SV_SUBVOL), false);
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
