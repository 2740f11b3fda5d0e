/* SPDX-License-Identifier: MIT */
/*
 * fspath.c - what the file commands (ls, cat, put, mkdir, ...) share:
 * opening the default subvolume, resolving paths to inodes, listing
 * directories, and formatting modes and times.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#include "arbor/vfs.h"

/* ---- opening ------------------------------------------------------------- */

struct vfs_call {
	cli_vfs_fn fn;
	void *arg;
	bool rdonly;
};

static int free_orphans(struct cli_vfs *v)
{
	uint64_t freed = 0;
	int ret = arb_vfs_orphan_cleanup(v->fs, &freed);

	if (ret < 0)
		cli_report(v->cfs, "cannot free orphaned inodes", ret);
	else if (freed && cli_globals.verbose)
		fprintf(stderr, "info: freed %" PRIu64 " orphaned inodes\n", freed);
	return ret;
}

static int start_vfs(struct cli_fs *cfs, void *arg)
{
	const struct vfs_call *call = arg;
	mode_t mask = umask(0);
	struct cli_vfs v = {
	        .cfs = cfs,
	        .fs = cfs->fs,
	        .cred = {(uint32_t)getuid(), (uint32_t)getgid()},
	        .umask = (uint32_t)mask,
	};
	int ret = arb_vfs_root(cfs->fs, 0, &v.root);

	umask(mask);
	if (ret == -ENOENT) {
		cli_error("%s has no root directory (make filesystems with mkfs.arbor)",
		          cli_globals.image);
		return ret;
	}
	if (ret < 0)
		return cli_result(cfs, ret, NULL, "cannot find the root directory");
	if (!call->rdonly) {
		ret = free_orphans(&v);
		if (ret < 0)
			return ret;
	}
	return call->fn(&v, call->arg);
}

int cli_with_vfs(bool rdonly, cli_vfs_fn fn, void *arg)
{
	struct vfs_call call = {fn, arg, rdonly};

	return cli_with_fs(rdonly, start_vfs, &call);
}

void cli_arg_path(const struct cmd_struct *cmd, const char *arg)
{
	if (arg[0] != '/')
		exit(cli_usage_error(cmd, "'%s': paths in the filesystem start with '/'", arg));
}

const char *cli_path_arg(const struct cmd_struct *cmd, int argc, char **argv)
{
	cli_check_argc(cmd, argc - optind, 1, 1);
	cli_arg_path(cmd, argv[optind]);
	return argv[optind];
}

int cli_run_on_path(const struct cmd_struct *cmd, int argc, char **argv, bool rdonly, cli_vfs_fn fn)
{
	cli_flags(cmd, argc, argv, "", NULL);
	cli_path_arg(cmd, argc, argv);
	return cli_with_vfs(rdonly, fn, argv[optind]);
}

int cli_path_result(const struct cli_vfs *v, const char *path, int ret)
{
	if (ret < 0)
		cli_report(v->cfs, path, ret);
	return ret;
}

/* ---- paths ----------------------------------------------------------------- */

/* path without empty and "." components, ".." applied: "/" or "/a/b";
 * malloc'ed, NULL when out of memory. */
static char *normalize(const char *path)
{
	char *out = malloc(strlen(path) + 2);
	size_t len = 0;

	if (!out)
		return NULL;
	while (*path) {
		const char *end = strchrnul(path, '/');
		size_t n = (size_t)(end - path);

		if (n == 2 && !memcmp(path, "..", 2)) {
			while (len > 0 && out[--len] != '/')
				;
		} else if (n && !(n == 1 && path[0] == '.')) {
			out[len++] = '/';
			memcpy(out + len, path, n);
			len += n;
		}
		path = *end ? end + 1 : end;
	}
	if (!len)
		out[len++] = '/';
	out[len] = '\0';
	return out;
}

/* The next component of a normalized path at *p into name; advances *p.
 * 0 at the end, 1 for a name, -ENAMETOOLONG. */
static int next_name(const char **p, char *name)
{
	const char *start = *p + 1, *end;
	size_t n;

	if (**p != '/' || !*start)
		return 0;
	end = strchrnul(start, '/');
	n = (size_t)(end - start);
	if (n > ARB_NAME_MAX)
		return -ENAMETOOLONG;
	memcpy(name, start, n);
	name[n] = '\0';
	*p = end;
	return 1;
}

/* Create a missing directory on the way (mkdir -p). */
static int walk_create(struct cli_vfs *v, arb_ino_t dir, const char *name, struct arb_stat *st)
{
	return arb_vfs_mkdir(v->fs, dir, name, 0777 & ~v->umask, &v->cred, st);
}

/* Walk a normalized path from the root. */
static int walk(struct cli_vfs *v, const char *norm, bool create, struct cli_node *n)
{
	char name[ARB_NAME_MAX + 1];
	int ret = arb_vfs_getattr(v->fs, v->root, &n->st);

	n->dir = v->root;
	while (ret == 0 && (ret = next_name(&norm, name)) == 1) {
		n->dir = n->st.ino;
		ret = arb_vfs_lookup(v->fs, n->dir, name, &n->st);
		if (ret == -ENOENT && create)
			ret = walk_create(v, n->dir, name, &n->st);
	}
	return ret;
}

static int resolve(struct cli_vfs *v, const char *path, bool create, struct cli_node *ret)
{
	char *norm = normalize(path);
	int err;

	if (!norm)
		return -ENOMEM;
	err = walk(v, norm, create, ret);
	free(norm);
	return err;
}

int cli_vfs_resolve(struct cli_vfs *v, const char *path, struct cli_node *ret)
{
	return resolve(v, path, false, ret);
}

int cli_vfs_mkdirs(struct cli_vfs *v, const char *path, struct cli_node *ret)
{
	int err = resolve(v, path, true, ret);

	if (!err && !S_ISDIR(ret->st.mode))
		err = -EEXIST;
	return err;
}

/* The place of a normalized path: walk its directory part. */
static int place_of(struct cli_vfs *v, char *norm, struct cli_place *ret)
{
	char *slash = strrchr(norm, '/');
	struct cli_node dir;
	size_t n = strlen(slash + 1);
	int err;

	if (n > ARB_NAME_MAX)
		return -ENAMETOOLONG;
	memcpy(ret->name, slash + 1, n + 1);
	*slash = '\0';
	err = walk(v, norm, false, &dir);
	if (err)
		return err;
	ret->dir = dir.st.ino;
	return S_ISDIR(dir.st.mode) ? 0 : -ENOTDIR;
}

int cli_vfs_place(struct cli_vfs *v, const char *path, struct cli_place *ret)
{
	char *norm = normalize(path);
	int err;

	if (!norm)
		return -ENOMEM;
	err = place_of(v, norm, ret);
	free(norm);
	return err;
}

int cli_vfs_target(struct cli_vfs *v, const char *path, const char *name, struct cli_place *ret)
{
	struct cli_node n;
	size_t len = name ? strlen(name) : 0;

	if (!len || cli_vfs_resolve(v, path, &n) || !S_ISDIR(n.st.mode))
		return cli_vfs_place(v, path, ret);
	if (len > ARB_NAME_MAX)
		return -ENAMETOOLONG;
	ret->dir = n.st.ino;
	memcpy(ret->name, name, len + 1);
	return 0;
}

int cli_vfs_lookup(struct cli_vfs *v, const struct cli_place *pl, struct arb_stat *st)
{
	if (!pl->name[0])
		return arb_vfs_getattr(v->fs, pl->dir, st);
	return arb_vfs_lookup(v->fs, pl->dir, pl->name, st);
}

/* ---- directory listings ------------------------------------------------------- */

int cli_dirlist_add(struct cli_dirlist *l, const char *name, size_t len, arb_ino_t ino,
                    unsigned dtype)
{
	struct cli_dirent *e;

	if (l->count == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 64;
		struct cli_dirent *ents = realloc(l->ents, cap * sizeof(*ents));

		if (!ents)
			return -ENOMEM;
		l->ents = ents;
		l->cap = cap;
	}
	e = &l->ents[l->count];
	memset(e, 0, sizeof(*e));
	e->name = strndup(name, len);
	if (!e->name)
		return -ENOMEM;
	e->ino = ino;
	e->dtype = dtype;
	l->count++;
	return 0;
}

void cli_dirlist_free(struct cli_dirlist *l)
{
	for (size_t i = 0; i < l->count; i++)
		free(l->ents[i].name);
	free(l->ents);
	memset(l, 0, sizeof(*l));
}

struct list_ctx {
	struct cli_dirlist *list;
	int err;
};

static int list_one(void *ctx, const char *name, size_t name_len, arb_ino_t ino, unsigned dtype,
                    uint64_t cookie)
{
	struct list_ctx *lc = ctx;

	lc->err = cli_dirlist_add(lc->list, name, name_len, ino, dtype);
	return lc->err;
}

int cli_vfs_list(struct cli_vfs *v, arb_ino_t dir, struct cli_dirlist *ret)
{
	struct list_ctx lc = {ret, 0};
	int err;

	memset(ret, 0, sizeof(*ret));
	err = arb_vfs_readdir(v->fs, dir, 0, list_one, &lc);
	if (!err)
		err = lc.err;
	if (err)
		cli_dirlist_free(ret);
	return err;
}

/* ---- formatting --------------------------------------------------------------- */

static char type_letter(uint32_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFDIR:
		return 'd';
	case S_IFLNK:
		return 'l';
	case S_IFCHR:
		return 'c';
	case S_IFBLK:
		return 'b';
	case S_IFIFO:
		return 'p';
	case S_IFSOCK:
		return 's';
	default:
		return '-';
	}
}

/* The x position of one class: x, or the special bit's letter. */
static char exec_letter(uint32_t mode, uint32_t xbit, uint32_t special, char set)
{
	if (mode & special)
		return (mode & xbit) ? set : (char)(set - 'a' + 'A');
	return (mode & xbit) ? 'x' : '-';
}

const char *cli_mode_string(uint32_t mode, char *buf)
{
	buf[0] = type_letter(mode);
	buf[1] = (mode & S_IRUSR) ? 'r' : '-';
	buf[2] = (mode & S_IWUSR) ? 'w' : '-';
	buf[3] = exec_letter(mode, S_IXUSR, S_ISUID, 's');
	buf[4] = (mode & S_IRGRP) ? 'r' : '-';
	buf[5] = (mode & S_IWGRP) ? 'w' : '-';
	buf[6] = exec_letter(mode, S_IXGRP, S_ISGID, 's');
	buf[7] = (mode & S_IROTH) ? 'r' : '-';
	buf[8] = (mode & S_IWOTH) ? 'w' : '-';
	buf[9] = exec_letter(mode, S_IXOTH, S_ISVTX, 't');
	buf[10] = '\0';
	return buf;
}

const char *cli_time_string(const struct timespec *ts, bool nsec, char *buf, size_t len)
{
	time_t t = ts->tv_sec;
	struct tm tm;
	char zone[8];

	if (!localtime_r(&t, &tm)) {
		snprintf(buf, len, "@%lld", (long long)ts->tv_sec);
		return buf;
	}
	if (!nsec) {
		strftime(buf, len, "%Y-%m-%d %H:%M", &tm);
		return buf;
	}
	strftime(zone, sizeof(zone), "%z", &tm);
	snprintf(buf, len, "%04d-%02d-%02d %02d:%02d:%02d.%09ld %s", tm.tm_year + 1900,
	         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (long)ts->tv_nsec,
	         zone);
	return buf;
}
