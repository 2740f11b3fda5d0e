/* SPDX-License-Identifier: MIT */
/*
 * fuzz_walk.c - what the harnesses do on an open filesystem: read all of
 * it as a mount would, and change a little of it (see fuzz.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arbor/vfs.h"
#include "fuzz.h"

#define MAX_ENTRIES 2048u   /* over the whole walk */
#define MAX_DEPTH 16u       /* of directories */
#define MAX_FILE_READ 65536 /* bytes read per file */
#define MAX_SUBVOLS 16u
#define MAX_DIRS 256u /* directories remembered, so that none is walked twice */

struct walk {
	struct arb_fs *fs;
	unsigned entries;
	uint64_t subvols[MAX_SUBVOLS];
	unsigned nsubvols;
	arb_ino_t dirs[MAX_DIRS];
	unsigned ndirs;
};

struct dent {
	char name[ARB_NAME_MAX + 1];
	arb_ino_t ino;
	unsigned dtype;
	uint64_t cookie;
};

struct dlist {
	struct dent *v;
	size_t n, cap;
	struct walk *w;
};

/* ---- reading -------------------------------------------------------------------- */

/* err, said through fz_msg (ARBOR_FUZZ_VERBOSE=1 shows it). */
static int note(int err, const char *what, arb_ino_t ino)
{
	if (err) {
		char text[96];

		snprintf(text, sizeof(text), "walk: %s of %#llx: %d", what, (unsigned long long)ino,
		         err);
		fz_msg(NULL, ARB_MSG_DEBUG, text);
	}
	return err;
}

static void walk_xattrs(struct arb_fs *fs, arb_ino_t ino)
{
	char list[4096], value[4096];
	size_t len = 0, vlen;

	if (arb_vfs_listxattr(fs, ino, NULL, 0, &len) ||
	    arb_vfs_listxattr(fs, ino, list, sizeof(list), &len))
		return;
	if (len > sizeof(list))
		abort(); /* the call said it fit */
	for (size_t p = 0; p < len;) {
		const char *name = list + p;
		size_t n = strnlen(name, len - p);

		if (n == len - p)
			break; /* not NUL-terminated: the core's business to refuse */
		if (!arb_vfs_getxattr(fs, ino, name, value, sizeof(value), &vlen) &&
		    vlen > sizeof(value))
			abort(); /* the call said it fit */
		p += n + 1;
	}
}

/* One read of the start (each read call costs the core a 1 MiB bounce
 * buffer), one of the end when it lies beyond. */
static void walk_file(struct arb_fs *fs, arb_ino_t ino, uint64_t size)
{
	static uint8_t buf[MAX_FILE_READ];
	uint64_t pos;
	size_t got;

	if (!arb_vfs_read(fs, ino, 0, buf, sizeof(buf), &got) && got > sizeof(buf))
		abort();
	if (size > sizeof(buf) && !arb_vfs_read(fs, ino, size - 4096, buf, 8192, &got) &&
	    got > 8192)
		abort();
	(void)arb_vfs_lseek(fs, ino, 0, SEEK_DATA, &pos);
	(void)arb_vfs_lseek(fs, ino, 0, SEEK_HOLE, &pos);
}

static void walk_dir(struct walk *w, arb_ino_t dir, unsigned depth);

static void walk_inode(struct walk *w, arb_ino_t ino, unsigned depth)
{
	struct arb_stat st;
	char target[4200];
	size_t len;

	if (note(arb_vfs_getattr(w->fs, ino, &st), "getattr", ino))
		return;
	walk_xattrs(w->fs, ino);
	if (S_ISDIR(st.mode))
		walk_dir(w, ino, depth + 1);
	else if (S_ISREG(st.mode))
		walk_file(w->fs, ino, st.size);
	else if (S_ISLNK(st.mode))
		(void)arb_vfs_readlink(w->fs, ino, target, sizeof(target), &len);
}

static int collect(void *ctx, const char *name, size_t name_len, arb_ino_t ino, unsigned dtype,
                   uint64_t cookie)
{
	struct dlist *l = ctx;
	struct dent *d;

	fz_touch(name, name_len);
	if (l->w->entries >= MAX_ENTRIES)
		return 1;
	l->w->entries++;
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 16;
		struct dent *v = realloc(l->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	d = &l->v[l->n++];
	memset(d->name, 0, sizeof(d->name));
	memcpy(d->name, name, name_len < ARB_NAME_MAX ? name_len : ARB_NAME_MAX);
	d->ino = ino;
	d->dtype = dtype;
	d->cookie = cookie;
	return 0;
}

/* Is this the first visit of dir? */
static bool first_visit(struct walk *w, arb_ino_t dir)
{
	for (unsigned i = 0; i < w->ndirs; i++)
		if (w->dirs[i] == dir)
			return false;
	if (w->ndirs < MAX_DIRS)
		w->dirs[w->ndirs++] = dir;
	return true;
}

static void walk_dir(struct walk *w, arb_ino_t dir, unsigned depth)
{
	struct dlist l = {.w = w};
	struct arb_stat st;
	arb_ino_t parent;

	if (depth > MAX_DEPTH || !first_visit(w, dir))
		return;
	(void)arb_vfs_parent(w->fs, dir, &parent);
	(void)note(arb_vfs_readdir(w->fs, dir, 0, collect, &l), "readdir", dir);
	if (l.n > 1) { /* resume from the middle */
		struct dlist again = {.w = w};

		(void)arb_vfs_readdir(w->fs, dir, l.v[l.n / 2].cookie, collect, &again);
		free(again.v);
	}
	for (size_t i = 0; i < l.n; i++) {
		(void)note(arb_vfs_lookup(w->fs, dir, l.v[i].name, &st), "lookup", dir);
		walk_inode(w, l.v[i].ino, depth);
	}
	free(l.v);
}

static int note_subvol(void *ctx, const struct arb_subvol *sv)
{
	struct walk *w = ctx;

	if (w->nsubvols < MAX_SUBVOLS)
		w->subvols[w->nsubvols++] = sv->id;
	return 0;
}

static int diff_fn(void *ctx, char kind, const char *path)
{
	fz_touch(path, strlen(path));
	return 0;
}

static void walk_subvols(struct walk *w)
{
	struct arb_subvol_usage u;
	struct arb_subvol sv;
	arb_ino_t root;
	uint64_t nodes;

	(void)arb_vfs_subvol_list(w->fs, note_subvol, w);
	for (unsigned i = 0; i < w->nsubvols; i++) {
		(void)arb_vfs_subvol_get(w->fs, w->subvols[i], &sv);
		(void)arb_vfs_subvol_usage(w->fs, w->subvols[i], &u);
		if (i > 0)
			(void)arb_vfs_diff(w->fs, w->subvols[0], w->subvols[i], diff_fn, NULL,
			                   &nodes);
		if (!arb_vfs_root(w->fs, w->subvols[i], &root))
			walk_inode(w, root, 0);
	}
}

void fz_walk(struct arb_fs *fs)
{
	struct walk w = {.fs = fs};
	struct arb_statfs sfs;
	arb_ino_t root;
	uint64_t id;

	(void)arb_vfs_statfs(fs, &sfs);
	(void)arb_vfs_subvol_default(fs, &id);
	if (!arb_vfs_root(fs, 0, &root))
		walk_inode(&w, root, 0);
	walk_subvols(&w);
}

/* ---- changing ------------------------------------------------------------------ */

static const struct arb_cred cred = {.uid = 0, .gid = 0};

/* The entries of dir (at most MAX_ENTRIES); the caller frees l->v. */
static void list_dir(struct arb_fs *fs, arb_ino_t dir, struct walk *w, struct dlist *l)
{
	*w = (struct walk){.fs = fs};
	*l = (struct dlist){.w = w};
	(void)arb_vfs_readdir(fs, dir, 0, collect, l);
}

/* The first entry of l of this type (DT_*), or NULL. */
static const struct dent *first_of(const struct dlist *l, unsigned dtype)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i].dtype == dtype)
			return &l->v[i];
	return NULL;
}

/* A subvolume linked in root: its entry names another tree's root. */
static bool is_subvol(const struct dent *d, arb_ino_t root)
{
	return arb_ino_local(d->ino) == ARB_FIRST_INO &&
	       arb_ino_subvol(d->ino) != arb_ino_subvol(root);
}

static arb_ino_t new_file(struct arb_fs *fs, arb_ino_t root)
{
	static const uint8_t data[10000];
	struct arb_stat d, f, s;
	size_t done;

	if (arb_vfs_mkdir(fs, root, "fz-new", 0755, &cred, &d) ||
	    arb_vfs_mknod(fs, d.ino, "file", S_IFREG | 0644, 0, &cred, &f))
		return 0;
	(void)arb_vfs_write(fs, f.ino, 0, data, sizeof(data), &done);
	(void)arb_vfs_setxattr(fs, f.ino, "user.fz", "x", 1, 0);
	(void)arb_vfs_link(fs, f.ino, root, "fz-link", &s);
	(void)arb_vfs_symlink(fs, d.ino, "sym", "file", &cred, &s);
	(void)arb_vfs_rename(fs, root, "fz-new", root, "fz-renamed", 0);
	return f.ino;
}

/* Data operations on a file the image holds (its extents may be damaged). */
static void change_file(struct arb_fs *fs, arb_ino_t root, const struct dent *e, arb_ino_t mine)
{
	struct arb_setattr sa = {.valid = ARB_SET_SIZE, .size = 5000};
	struct arb_stat st;
	uint64_t copied;
	size_t done;

	(void)arb_vfs_write(fs, e->ino, 100, "overwrite", 9, &done);
	(void)arb_vfs_fsync(fs, e->ino); /* an fsync log record, or a commit */
	if (mine)
		(void)arb_vfs_copy_range(fs, e->ino, 0, mine, 4096, 65536, &copied);
	(void)arb_vfs_fallocate(fs, e->ino, ARB_FALLOC_KEEP_SIZE | ARB_FALLOC_PUNCH_HOLE, 4096,
	                        4096);
	(void)arb_vfs_fallocate(fs, e->ino, ARB_FALLOC_ZERO_RANGE, 12000, 5000);
	(void)arb_vfs_fallocate(fs, e->ino, 0, 40000, 8192);
	(void)arb_vfs_setattr(fs, e->ino, &sa, &st);
	(void)arb_vfs_removexattr(fs, e->ino, "user.small");
	(void)arb_vfs_setxattr(fs, e->ino, "user.big", "replaced", 8, ARB_XATTR_REPLACE);
	(void)arb_vfs_unlink(fs, root, e->name);
}

/* Snapshot the default subvolume, roll the first subvolume linked in the
 * root back to it, delete the next one. */
static void change_subvols(struct arb_fs *fs, arb_ino_t root, const struct dlist *l)
{
	struct arb_stat st;
	uint64_t id, snap, made;
	bool rolled = false;

	if (arb_vfs_subvol_default(fs, &id) || arb_vfs_snapshot(fs, id, root, "fz-snap", 0, &st))
		return;
	snap = arb_ino_subvol(st.ino);
	for (size_t i = 0; i < l->n; i++) {
		if (!is_subvol(&l->v[i], root))
			continue;
		if (!rolled) {
			rolled = true;
			(void)arb_vfs_rollback(fs, root, l->v[i].name, snap, "fz-old", &made);
		} else if (!arb_vfs_subvol_delete(fs, root, l->v[i].name)) {
			break;
		}
	}
	(void)arb_vfs_subvol_set_default(fs, snap);
}

void fz_change(struct arb_fs *fs)
{
	const struct dent *e;
	struct walk w;
	struct dlist l;
	arb_ino_t root, mine;
	uint64_t freed;

	(void)arb_vfs_orphan_cleanup(fs, &freed);
	if (arb_vfs_root(fs, 0, &root))
		return;
	list_dir(fs, root, &w, &l);
	mine = new_file(fs, root);
	e = first_of(&l, 8 /* DT_REG */);
	if (e)
		change_file(fs, root, e, mine);
	e = first_of(&l, 4 /* DT_DIR */);
	if (e && !is_subvol(e, root) && !arb_vfs_rename(fs, root, e->name, root, "fz-moved", 0))
		(void)arb_vfs_rmdir(fs, root, "fz-moved");
	change_subvols(fs, root, &l);
	(void)arb_fs_drop_all(fs);
	free(l.v);
}
