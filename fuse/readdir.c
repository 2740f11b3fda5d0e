/* SPDX-License-Identifier: MIT */
/*
 * readdir.c - arborfs directory listings, with and without attributes.
 *
 * Offsets: 0 is the start, "." resumes at 1, ".." at 2, and an entry the
 * core lists with cookie c resumes at c + 2 (the core starts listing after
 * cookie off - 2).  Core cookies are directory indexes, far below 2^62.
 *
 * A listing first collects the entries that fit the kernel's buffer (the
 * core's iterator must not see other calls), then, still under the lock,
 * reads their attributes and counts a lookup for each readdirplus entry
 * but "." and "..", which the kernel does not count.
 */
#include "arborfs.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "arbor_format.h"

#define OFF_DOT 1
#define OFF_DOTDOT 2
#define OFF_FIRST 3 /* cookies start at 1 */

struct rd_entry {
	char *name;
	arb_ino_t ino;
	uint32_t mode; /* type bits only */
	off_t off;     /* resumes after this entry */
	bool dot;      /* "." or ".." */
	bool counted;  /* a lookup was counted */
};

struct rd_batch {
	fuse_req_t req;
	bool plus;
	size_t size; /* the kernel's buffer */
	size_t used; /* bytes the collected entries take */
	struct rd_entry *ents;
	size_t n, cap;
	int err;
};

static size_t entry_size(const struct rd_batch *b, const char *name)
{
	if (b->plus)
		return fuse_add_direntry_plus(b->req, NULL, 0, name, NULL, 0);
	return fuse_add_direntry(b->req, NULL, 0, name, NULL, 0);
}

/* Collect one entry; 1 when the buffer is full (or on error). */
static int rd_add(struct rd_batch *b, const char *name, size_t len, arb_ino_t ino, unsigned dtype,
                  off_t off)
{
	char tmp[ARB_NAME_MAX + 1];
	struct rd_entry *e;
	size_t sz;

	if (len > ARB_NAME_MAX) {
		b->err = -EUCLEAN;
		return 1;
	}
	memcpy(tmp, name, len);
	tmp[len] = '\0';
	sz = entry_size(b, tmp);
	if (b->used + sz > b->size)
		return 1;
	if (b->n == b->cap) {
		size_t cap = b->cap ? 2 * b->cap : 64;
		struct rd_entry *ents = realloc(b->ents, cap * sizeof(*ents));

		if (!ents) {
			b->err = -ENOMEM;
			return 1;
		}
		b->ents = ents;
		b->cap = cap;
	}
	e = &b->ents[b->n];
	e->name = strdup(tmp);
	if (!e->name) {
		b->err = -ENOMEM;
		return 1;
	}
	e->ino = ino;
	e->mode = (uint32_t)dtype << 12; /* DT_x == S_IFx >> 12 */
	e->off = off;
	e->dot = len <= 2 && name[0] == '.' && (len == 1 || name[1] == '.');
	e->counted = false;
	b->n++;
	b->used += sz;
	return 0;
}

static int rd_core_entry(void *ctx, const char *name, size_t name_len, arb_ino_t ino,
                         unsigned dtype, uint64_t cookie)
{
	return rd_add(ctx, name, name_len, ino, dtype, (off_t)(cookie + OFF_DOTDOT));
}

/* Locked: the entries from offset off that fit. */
static int rd_collect(struct afs *a, struct rd_batch *b, arb_ino_t dir, off_t off)
{
	arb_ino_t parent = dir;
	int ret;

	if (off < OFF_DOT)
		rd_add(b, ".", 1, dir, DT_DIR, OFF_DOT);
	/* the root of the mount is its own parent here, as the kernel wants */
	if (off < OFF_DOTDOT && dir != a->root && (ret = arb_vfs_parent(a->fs, dir, &parent)))
		return ret;
	if (off < OFF_DOTDOT)
		rd_add(b, "..", 2, parent, DT_DIR, OFF_DOTDOT);
	if (b->err)
		return b->err;
	ret = arb_vfs_readdir(a->fs, dir, off < OFF_FIRST ? 0 : (uint64_t)(off - OFF_DOTDOT),
	                      rd_core_entry, b);
	return ret ? ret : b->err;
}

/* Locked: one entry into buf; 0 when it does not fit. */
static size_t rd_emit(struct afs *a, struct rd_batch *b, struct rd_entry *re, char *buf,
                      size_t room, int *err)
{
	struct fuse_entry_param e = {0};
	struct arb_stat ast;
	size_t sz;

	if (!b->plus || re->dot) {
		e.attr.st_ino = re->ino;
		e.attr.st_mode = re->mode;
		if (!b->plus)
			sz = fuse_add_direntry(b->req, buf, room, re->name, &e.attr, re->off);
		else
			sz = fuse_add_direntry_plus(b->req, buf, room, re->name, &e, re->off);
		return sz <= room ? sz : 0;
	}
	*err = arb_vfs_getattr(a->fs, re->ino, &ast);
	if (!*err)
		*err = afs_entry(a, &ast, &e);
	if (*err)
		return 0;
	re->counted = e.ino != FUSE_ROOT_ID;
	sz = fuse_add_direntry_plus(b->req, buf, room, re->name, &e, re->off);
	if (sz <= room)
		return sz;
	if (re->counted)
		arb_vfs_forget(a->fs, re->ino, 1);
	re->counted = false;
	return 0;
}

/* Locked: the reply buffer; an error only if nothing could be listed. */
static int rd_fill(struct afs *a, struct rd_batch *b, char *buf, size_t *ret_len)
{
	size_t pos = 0;
	int err = 0;

	for (size_t i = 0; i < b->n; i++) {
		size_t sz = rd_emit(a, b, &b->ents[i], buf + pos, b->size - pos, &err);

		if (!sz)
			break;
		pos += sz;
	}
	*ret_len = pos;
	return pos ? 0 : err;
}

/* The kernel did not take the reply: give the lookups back. */
static void rd_unref(struct afs *a, struct rd_batch *b)
{
	afs_lock(a);
	for (size_t i = 0; i < b->n; i++)
		if (b->ents[i].counted)
			arb_vfs_forget(a->fs, b->ents[i].ino, 1);
	pthread_mutex_unlock(&a->lock);
}

static void rd_free(struct rd_batch *b)
{
	for (size_t i = 0; i < b->n; i++)
		free(b->ents[i].name);
	free(b->ents);
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus)
{
	struct afs *a = afs_req(req);
	struct rd_batch b = {.req = req, .plus = plus, .size = size};
	char *buf = malloc(size ? size : 1);
	size_t len = 0;
	int ret = buf ? 0 : -ENOMEM;

	if (!ret && off < 0)
		ret = -EINVAL;
	if (!ret) {
		afs_lock(a);
		ret = rd_collect(a, &b, afs_ino(a, ino), off);
		if (b.n) {
			int fill = rd_fill(a, &b, buf, &len);

			/* what was listed is answered; the error comes next time */
			ret = len ? 0 : fill ? fill : ret;
		}
		ret = afs_unlock(a, ret);
	}
	if (ret)
		fuse_reply_err(req, -ret);
	else if (fuse_reply_buf(req, buf, len) && plus)
		rd_unref(a, &b);
	rd_free(&b);
	free(buf);
}

void afs_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
	(void)fi;
	do_readdir(req, ino, size, off, false);
}

void afs_op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                        struct fuse_file_info *fi)
{
	(void)fi;
	do_readdir(req, ino, size, off, true);
}

void afs_op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	fi->fh = 0;
	fuse_reply_open(req, fi);
}

void afs_op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}
