/* SPDX-License-Identifier: MIT */
/*
 * svctx.c - the two backends of the subvolume commands (see svctx.h):
 * offline through the core API on the image, online through the ioctls of
 * a mounted arborfs; and what runs a command in either mode, the error
 * messages they share, and small helpers.
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

#include "svctx.h"

#include "arbor/ioctl.h"
#include "arbor/vfs.h"

#define FUSE_SUPER_MAGIC 0x65735546
#define ARBORFS_FSTYPE "fuse.arborfs"
/* the local number of every subvolume's root directory, as st_ino shows it */
#define LOCAL_MASK ((1ull << ARB_SUBVOL_SHIFT) - 1)
/* how deep the online search for a directory goes */
#define SCAN_DEPTH 64

/* ---- the subvolume table ------------------------------------------------------ */

int sv_table_add(struct sv_table *t, const struct arb_subvol *sv, bool mounted)
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

void sv_table_free(struct sv_table *t)
{
	for (size_t i = 0; i < t->count; i++)
		free(t->ents[i].path);
	free(t->ents);
	memset(t, 0, sizeof(*t));
}

struct sv_ent *sv_table_find(const struct sv_table *t, uint64_t id)
{
	for (size_t i = 0; i < t->count; i++) {
		if (t->ents[i].sv.id == id)
			return &t->ents[i];
	}
	return NULL;
}

/* a/b, with one '/' between non-empty parts; NULL when out of memory */
char *sv_path_join(const char *a, const char *b)
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
	case -ENOSPC:
		return "cannot create '%s': the filesystem is full: a new subvolume or snapshot "
		       "needs free space beyond the reserve kept for deleting (df shows what is "
		       "left as Avail); delete files or old snapshots first";
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

int sv_fail_fmt(const struct sv_ctx *c, const char *fmt, const char *what_fmt, const char *path,
                int err)
{
	char what[PATH_MAX + 256];

	if (err == -EXDEV && c->online) {
		cli_error("'%s' is not on the arborfs mount of '%s': give paths of one mount", path,
		          c->shown);
		return err;
	}
	snprintf(what, sizeof(what), fmt ? fmt : what_fmt, path);
	if (fmt)
		cli_error("%s", what);
	else
		cli_report(c->v ? c->v->cfs : NULL, what, err);
	return err;
}

int sv_fail(const struct sv_ctx *c, enum sv_verb verb, const char *path, int err)
{
	const char *fmt;

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
	if (verb == SV_CREATE || verb == SV_SNAPSHOT)
		return sv_fail_fmt(c, fmt, "cannot create '%s'", path, err);
	if (verb == SV_DELETE)
		return sv_fail_fmt(c, fmt, "cannot delete '%s'", path, err);
	return sv_fail_fmt(c, fmt, "%s", path, err);
}

/* ---- JSON ---------------------------------------------------------------------------- */

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
void sv_json_string(const char *s)
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
	return sv_table_add(ctx, sv, false);
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
		p = sv_path_join(n.name, path);
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

static int off_usage(struct sv_ctx *c, uint64_t id, struct arb_subvol_usage *u)
{
	return arb_vfs_subvol_usage(c->v->fs, id, u);
}

static int off_diff(struct sv_ctx *c, uint64_t a, uint64_t b, arb_vfs_diff_fn fn, void *ctx,
                    uint64_t *ret_nodes_read)
{
	return arb_vfs_diff(c->v->fs, a, b, fn, ctx, ret_nodes_read);
}

static int off_rollback(struct sv_ctx *c, const char *path, uint64_t snap, const char *keep_name,
                        uint64_t *ret_id, uint64_t *ret_old_id)
{
	struct cli_place pl;
	struct arb_stat st;
	int ret = cli_vfs_place(c->v, path, &pl);

	if (!ret && !pl.name[0])
		ret = -EBUSY; /* "/": the default subvolume, linked nowhere in reach */
	if (!ret)
		ret = cli_vfs_lookup(c->v, &pl, &st);
	if (ret)
		return ret;
	*ret_old_id = arb_ino_local(st.ino) == ARB_FIRST_INO ? arb_ino_subvol(st.ino) : 0;
	return arb_vfs_rollback(c->v->fs, pl.dir, pl.name, snap, keep_name, ret_id);
}

/* The commit that ends every offline command frees deleted trees first
 * (cli_commit): nothing to wait for. */
static int off_wait_cleaned(struct sv_ctx *c)
{
	(void)c;
	return 0;
}

static const struct sv_ops offline_ops = {
        off_subvol_at, off_is_dir,      off_exists,       off_create,   off_snapshot,
        off_destroy,   off_set_default, off_list,         off_dir_path, off_usage,
        off_diff,      off_rollback,    off_wait_cleaned,
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
int sv_split_path(const char *path, char **ret_dir, char **ret_name)
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
	int fd = -1, ret = sv_split_path(path, &dir, &name);

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
	ret = sv_split_path(path, &dir, &name);
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
		ret = sv_table_add(t, &sv, info.flags & ARB_IOC_MOUNTED);
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

/* ---- online: space, diff, rollback ----------------------------------------------------- */

static int on_usage(struct sv_ctx *c, uint64_t id, struct arb_subvol_usage *u)
{
	struct arb_ioc_usage_args args;

	memset(&args, 0, sizeof(args));
	args.id = id;
	if (ioctl(c->fd, ARB_IOC_SUBVOL_USAGE, &args) < 0)
		return -errno;
	u->referenced_bytes = args.referenced_bytes;
	u->exclusive_bytes = args.exclusive_bytes;
	u->nodes_read = args.nodes_read;
	return 0;
}

/* A diff listing read from the daemon (records "K PATH\0"). */
struct listing {
	char *buf;
	uint64_t len, lines, nodes_read, gen[2];
};

/* One page at off into l; the first one sizes the listing.  -EAGAIN when
 * the page is of another version of the trees than the first. */
static int diff_page(struct sv_ctx *c, uint64_t a, uint64_t b, uint64_t off, struct listing *l,
                     struct arb_ioc_diff_args *args)
{
	memset(args, 0, sizeof(*args));
	args->a_id = a;
	args->b_id = b;
	args->offset = off;
	if (ioctl(c->fd, ARB_IOC_DIFF, args) < 0)
		return -errno;
	if (!off) {
		l->buf = malloc(args->total_bytes + 1);
		if (!l->buf)
			return -ENOMEM;
		l->len = args->total_bytes;
		l->lines = args->total_lines;
		l->nodes_read = args->nodes_read;
		l->gen[0] = args->a_gen;
		l->gen[1] = args->b_gen;
	} else if (args->a_gen != l->gen[0] || args->b_gen != l->gen[1] ||
	           args->total_bytes != l->len) {
		return -EAGAIN;
	}
	if (args->len > sizeof(args->buf) || args->len > l->len - off ||
	    (!args->len && off < l->len))
		return -EPROTO;
	memcpy(l->buf + off, args->buf, args->len);
	return 0;
}

/* The whole listing, page by page. */
static int diff_read(struct sv_ctx *c, uint64_t a, uint64_t b, struct listing *l)
{
	struct arb_ioc_diff_args args;
	uint64_t off = 0;
	int ret;

	memset(l, 0, sizeof(*l));
	do {
		ret = diff_page(c, a, b, off, l, &args);
		off += ret ? 0 : args.len;
	} while (!ret && off < l->len);
	if (ret) {
		free(l->buf);
		l->buf = NULL;
	}
	return ret;
}

/* Each record of the listing to fn; -EPROTO for one that is not "K /..." */
static int diff_emit(const struct listing *l, arb_vfs_diff_fn fn, void *ctx)
{
	uint64_t i = 0;

	while (i < l->len) {
		const char *rec = l->buf + i, *end = memchr(rec, '\0', l->len - i);
		int ret;

		if (!end || end - rec < 3 || !strchr("ACD", rec[0]) || rec[1] != ' ' ||
		    rec[2] != '/')
			return -EPROTO;
		ret = fn(ctx, rec[0], rec + 2);
		if (ret)
			return ret < 0 ? ret : 0;
		i += (uint64_t)(end - rec) + 1;
	}
	return 0;
}

/* Trees that change while the pages are read: start again, a few times. */
#define DIFF_TRIES 5

static int on_diff(struct sv_ctx *c, uint64_t a, uint64_t b, arb_vfs_diff_fn fn, void *ctx,
                   uint64_t *ret_nodes_read)
{
	struct listing l;
	int ret = -EAGAIN;

	for (int i = 0; i < DIFF_TRIES && ret == -EAGAIN; i++)
		ret = diff_read(c, a, b, &l);
	if (ret)
		return ret;
	if (ret_nodes_read)
		*ret_nodes_read = l.nodes_read;
	ret = diff_emit(&l, fn, ctx);
	free(l.buf);
	return ret;
}

/* The directory holding the subvolume linked as path, opened, and the
 * name: -EBUSY for the mount point (its parent is elsewhere). */
static int on_link_dir(struct sv_ctx *c, const char *path, int *ret_fd, char **ret_name)
{
	struct stat st, dst;
	char *dir = NULL;
	int ret = lstat(path, &st) < 0 ? -errno : st.st_dev != c->dev ? -EXDEV : 0;

	if (!ret)
		ret = sv_split_path(path, &dir, ret_name);
	if (!ret && (!(*ret_name)[0] || stat(dir, &dst) < 0 || dst.st_dev != c->dev))
		ret = -EBUSY;
	if (!ret && strlen(*ret_name) > ARB_IOC_NAME_MAX)
		ret = -ENAMETOOLONG;
	if (!ret)
		ret = on_open_dir(c, dir, ret_fd);
	free(dir);
	return ret;
}

static int on_rollback(struct sv_ctx *c, const char *path, uint64_t snap, const char *keep_name,
                       uint64_t *ret_id, uint64_t *ret_old_id)
{
	struct arb_ioc_rollback_args args;
	char *name = NULL;
	int fd = -1, ret = keep_name && strlen(keep_name) > ARB_IOC_NAME_MAX ? -ENAMETOOLONG : 0;

	if (!ret)
		ret = on_link_dir(c, path, &fd, &name);
	if (!ret) {
		memset(&args, 0, sizeof(args));
		args.snap_id = snap;
		args.flags = keep_name ? 0 : ARB_IOC_NO_KEEP;
		strcpy(args.name, name);
		strcpy(args.keep_name, keep_name ? keep_name : "");
		ret = ioctl(fd, ARB_IOC_ROLLBACK, &args) < 0 ? -errno : 0;
		close(fd);
	}
	if (!ret) {
		*ret_id = args.id;
		*ret_old_id = args.old_id;
	}
	free(name);
	return ret;
}

static int on_wait_cleaned(struct sv_ctx *c)
{
	return ioctl(c->fd, ARB_IOC_WAIT_CLEANED) < 0 ? -errno : 0;
}

static const struct sv_ops online_ops = {
        on_subvol_at, on_is_dir,      on_exists,       on_create,   on_snapshot,
        on_destroy,   on_set_default, on_list,         on_dir_path, on_usage,
        on_diff,      on_rollback,    on_wait_cleaned,
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

		ret = sv_split_path(path, &dir, &name);
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

struct sv_call {
	sv_fn fn;
	void *arg;
};

static int run_offline(struct cli_vfs *v, void *arg)
{
	const struct sv_call *call = arg;
	struct sv_ctx c = {.ops = &offline_ops, .v = v, .fd = -1};

	return call->fn(&c, call->arg);
}

/* The directory holding path, or path itself: malloc'ed in *ret. */
static int anchor_of(const char *path, enum sv_anchor how, char **ret)
{
	char *name = NULL;
	int err;

	if (how == AT_PATH || (how == AT_LINK && access(path, F_OK) == 0)) {
		*ret = strdup(path);
		return *ret ? 0 : -ENOMEM;
	}
	err = sv_split_path(path, ret, &name);
	free(name);
	return err;
}

int sv_run(sv_fn fn, void *arg, bool rdonly, const char *path, enum sv_anchor how,
           enum sv_verb verb)
{
	struct sv_ctx c = {.ops = &online_ops, .online = true, .shown = path, .fd = -1};
	struct sv_call call = {fn, arg};
	char *anchor = NULL;
	int ret;

	if (cli_globals.image)
		return cli_with_vfs(rdonly, run_offline, &call);
	ret = anchor_of(path, how, &anchor);
	if (ret)
		sv_fail(&c, verb, path, ret);
	else
		ret = online_open(&c, anchor, verb);
	if (!ret)
		ret = fn(&c, arg);
	online_close(&c);
	free(anchor);
	return ret < 0 ? CLI_EXIT_ERROR : CLI_EXIT_OK;
}

/* ---- options ---------------------------------------------------------------------------- */

bool sv_format_opt(const struct cmd_struct *cmd, int opt, enum sv_format *fmt)
{
	if (opt == 'j') {
		*fmt = SV_JSON;
		return true;
	}
	if (opt != 'F')
		return false;
	if (strcmp(optarg, "json") && strcmp(optarg, "text"))
		exit(cli_usage_error(cmd, "invalid format '%s' (json or text)", optarg));
	*fmt = strcmp(optarg, "json") ? SV_TEXT : SV_JSON;
	return true;
}
