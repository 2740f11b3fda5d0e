/* SPDX-License-Identifier: MIT */
/*
 * ops.c - arborfs low-level operations: session setup and teardown,
 * names (lookup, forget, create, link, remove, rename) and attributes.
 *
 * Permissions are the kernel's (default_permissions): nothing here checks
 * modes again.  Every name is bounded before the core sees it.
 */
#include "arborfs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h> /* RENAME_NOREPLACE, RENAME_EXCHANGE */
#include <string.h>
#include <syslog.h>

/* ---- session ------------------------------------------------------------------- */

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	struct afs *a = userdata;

	if (!a->read_only && (conn->capable & FUSE_CAP_WRITEBACK_CACHE))
		conn->want |= FUSE_CAP_WRITEBACK_CACHE;
	if (conn->capable & FUSE_CAP_CACHE_SYMLINKS)
		conn->want |= FUSE_CAP_CACHE_SYMLINKS;
	/* The kernel clears setuid/setgid itself (through setattr) when a
	 * write or chown asks for it: the core has no separate path. */
	conn->want &= ~FUSE_CAP_HANDLE_KILLPRIV;
	if (conn->max_write > AFS_MAX_WRITE)
		conn->max_write = AFS_MAX_WRITE;
	if (conn->max_readahead > AFS_MAX_READAHEAD)
		conn->max_readahead = AFS_MAX_READAHEAD;
	conn->time_gran = 1;
	afs_log(a, LOG_INFO, "FUSE %u.%u, want 0x%x, max_write %u, max_readahead %u",
	        conn->proto_major, conn->proto_minor, conn->want, conn->max_write,
	        conn->max_readahead);
}

/* Unmount or the end of the session loop: make everything durable. */
static void op_destroy(void *userdata)
{
	struct afs *a = userdata;
	int ret;

	afs_lock(a);
	ret = afs_commit_locked(a);
	pthread_mutex_unlock(&a->lock);
	if (ret < 0 && !a->failed)
		afs_log(a, LOG_ERR, "final commit failed: %s", strerror(-ret));
}

/* ---- replies -------------------------------------------------------------------- */

static void reply_err(fuse_req_t req, int ret)
{
	fuse_reply_err(req, -ret);
}

/* An entry reply: the lookup was counted; give it back if the kernel did
 * not take the reply (an interrupted request). */
static void reply_entry(fuse_req_t req, int ret, const struct fuse_entry_param *e)
{
	if (ret)
		reply_err(req, ret);
	else if (fuse_reply_entry(req, e))
		afs_unref(afs_req(req), e->ino);
}

static void reply_attr(fuse_req_t req, int ret, const struct arb_stat *ast)
{
	struct stat st;

	if (ret) {
		reply_err(req, ret);
		return;
	}
	afs_stat(ast, &st);
	fuse_reply_attr(req, &st, AFS_TIMEOUT);
}

/* ---- lookup counts --------------------------------------------------------------- */

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct afs *a = afs_req(req);
	struct fuse_entry_param e;
	struct arb_stat ast;
	int ret = afs_name_check(name);

	if (!ret) {
		afs_lock(a);
		ret = arb_vfs_lookup(a->fs, afs_ino(a, parent), name, &ast);
		if (!ret)
			ret = afs_entry(a, &ast, &e);
		ret = afs_unlock(a, ret);
	}
	reply_entry(req, ret, &e);
}

/* Locked. */
static void forget_one(struct afs *a, fuse_ino_t ino, uint64_t nlookup)
{
	int ret;

	if (ino == FUSE_ROOT_ID)
		return;
	ret = afs_check(a, arb_vfs_forget(a->fs, ino, nlookup));
	/* -ENOENT: the count is given back, but the inode went with its
	 * subvolume (deleted while the kernel still knew the inode) */
	if (ret < 0 && ret != -EROFS && ret != -ENOENT)
		afs_log(a, LOG_WARNING, "forget of inode %llu (%llu lookups) failed: %s",
		        (unsigned long long)ino, (unsigned long long)nlookup, strerror(-ret));
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	struct afs *a = afs_req(req);

	afs_lock(a);
	forget_one(a, ino, nlookup);
	pthread_mutex_unlock(&a->lock);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	struct afs *a = afs_req(req);

	afs_lock(a);
	for (size_t i = 0; i < count; i++)
		forget_one(a, forgets[i].ino, forgets[i].nlookup);
	pthread_mutex_unlock(&a->lock);
	fuse_reply_none(req);
}

/* ---- attributes ------------------------------------------------------------------- */

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct afs *a = afs_req(req);
	struct arb_stat ast = {0};
	int ret;

	afs_lock(a);
	ret = afs_space_gate(a, ino, fi);
	if (!ret)
		ret = arb_vfs_getattr(a->fs, afs_ino(a, ino), &ast);
	ret = afs_unlock(a, ret);
	reply_attr(req, ret, &ast);
}

static void setattr_times(const struct stat *attr, int to_set, struct arb_setattr *sa)
{
	if (to_set & FUSE_SET_ATTR_ATIME_NOW) {
		sa->valid |= ARB_SET_ATIME_NOW;
	} else if (to_set & FUSE_SET_ATTR_ATIME) {
		sa->valid |= ARB_SET_ATIME;
		sa->atime = attr->st_atim;
	}
	if (to_set & FUSE_SET_ATTR_MTIME_NOW) {
		sa->valid |= ARB_SET_MTIME_NOW;
	} else if (to_set & FUSE_SET_ATTR_MTIME) {
		sa->valid |= ARB_SET_MTIME;
		sa->mtime = attr->st_mtim;
	}
	if (to_set & FUSE_SET_ATTR_CTIME) {
		sa->valid |= ARB_SET_CTIME;
		sa->ctime = attr->st_ctim;
	}
}

static void setattr_args(const struct stat *attr, int to_set, struct arb_setattr *sa)
{
	memset(sa, 0, sizeof(*sa));
	if (to_set & FUSE_SET_ATTR_MODE) {
		sa->valid |= ARB_SET_MODE;
		sa->mode = attr->st_mode & 07777;
	}
	if (to_set & FUSE_SET_ATTR_UID) {
		sa->valid |= ARB_SET_UID;
		sa->uid = attr->st_uid;
	}
	if (to_set & FUSE_SET_ATTR_GID) {
		sa->valid |= ARB_SET_GID;
		sa->gid = attr->st_gid;
	}
	if (to_set & FUSE_SET_ATTR_SIZE) {
		sa->valid |= ARB_SET_SIZE;
		sa->size = (uint64_t)attr->st_size;
	}
	setattr_times(attr, to_set, sa);
}

/* The inode is the file: an ftruncate's fi adds nothing. */
static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                       struct fuse_file_info *fi)
{
	struct afs *a = afs_req(req);
	struct arb_setattr sa;
	struct arb_stat ast = {0};
	int ret;

	(void)fi;
	if ((to_set & FUSE_SET_ATTR_SIZE) && attr->st_size < 0) {
		reply_err(req, -EINVAL);
		return;
	}
	setattr_args(attr, to_set, &sa);
	afs_lock(a);
	ret = afs_unlock(a, arb_vfs_setattr(a->fs, afs_ino(a, ino), &sa, &ast));
	reply_attr(req, ret, &ast);
}

/* Targets are shorter than PATH_MAX (the core refuses longer ones). */
static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct afs *a = afs_req(req);
	char buf[PATH_MAX + 1];
	size_t len = 0;
	int ret;

	afs_lock(a);
	ret = arb_vfs_readlink(a->fs, afs_ino(a, ino), buf, PATH_MAX, &len);
	ret = afs_unlock(a, ret);
	if (!ret && len > PATH_MAX)
		ret = -ENAMETOOLONG;
	if (ret) {
		reply_err(req, ret);
		return;
	}
	buf[len] = '\0';
	fuse_reply_readlink(req, buf);
}

/* ---- creation ----------------------------------------------------------------------- */

static struct arb_cred req_cred(fuse_req_t req)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct arb_cred cred = {ctx->uid, ctx->gid};

	return cred;
}

/* What a new node is: mknod/create, mkdir or symlink. */
struct new_node {
	fuse_ino_t parent;
	const char *name;
	uint32_t mode;
	uint64_t rdev;
	const char *target; /* symlinks */
};

/* Create and count the entry; the locked part of every creation. */
static int make_node(fuse_req_t req, const struct new_node *n, struct fuse_entry_param *e)
{
	struct afs *a = afs_req(req);
	struct arb_cred cred = req_cred(req);
	arb_ino_t dir = afs_ino(a, n->parent);
	struct arb_stat ast;
	int ret = afs_name_check(n->name);

	if (ret)
		return ret;
	afs_lock(a);
	if (n->target)
		ret = arb_vfs_symlink(a->fs, dir, n->name, n->target, &cred, &ast);
	else if (S_ISDIR(n->mode))
		ret = arb_vfs_mkdir(a->fs, dir, n->name, n->mode, &cred, &ast);
	else
		ret = arb_vfs_mknod(a->fs, dir, n->name, n->mode, n->rdev, &cred, &ast);
	if (!ret)
		ret = afs_entry(a, &ast, e);
	return afs_unlock(a, ret);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	struct new_node n = {parent, name, mode, rdev, NULL};
	struct fuse_entry_param e;

	if (S_ISDIR(mode) || S_ISLNK(mode)) {
		reply_err(req, -EINVAL);
		return;
	}
	reply_entry(req, make_node(req, &n, &e), &e);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct new_node n = {parent, name, S_IFDIR | (mode & 07777), 0, NULL};
	struct fuse_entry_param e;

	reply_entry(req, make_node(req, &n, &e), &e);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	struct new_node n = {parent, name, S_IFLNK | 0777, 0, link};
	struct fuse_entry_param e;

	reply_entry(req, make_node(req, &n, &e), &e);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                      struct fuse_file_info *fi)
{
	struct new_node n = {parent, name, S_IFREG | (mode & 07777), 0, NULL};
	struct fuse_entry_param e;
	int ret = make_node(req, &n, &e);

	if (ret) {
		reply_err(req, ret);
		return;
	}
	afs_open_handle(afs_req(req), fi);
	afs_space_open(afs_req(req), fi);
	if (fuse_reply_create(req, &e, fi))
		afs_unref(afs_req(req), e.ino);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	struct afs *a = afs_req(req);
	struct fuse_entry_param e;
	struct arb_stat ast;
	int ret = afs_name_check(newname);

	if (!ret) {
		afs_lock(a);
		ret = arb_vfs_link(a->fs, afs_ino(a, ino), afs_ino(a, newparent), newname, &ast);
		if (!ret)
			ret = afs_entry(a, &ast, &e);
		ret = afs_unlock(a, ret);
	}
	reply_entry(req, ret, &e);
}

/* ---- removal and rename -------------------------------------------------------------- */

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct afs *a = afs_req(req);
	int ret = afs_name_check(name);

	if (!ret) {
		afs_lock(a);
		ret = afs_unlock(a, arb_vfs_unlink(a->fs, afs_ino(a, parent), name));
	}
	reply_err(req, ret);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct afs *a = afs_req(req);
	int ret = afs_name_check(name);

	if (!ret) {
		afs_lock(a);
		ret = afs_unlock(a, arb_vfs_rmdir(a->fs, afs_ino(a, parent), name));
	}
	reply_err(req, ret);
}

static int rename_flags(unsigned int flags, unsigned *ret_flags)
{
	*ret_flags = 0;
	if (flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE))
		return -EINVAL;
	if (flags & RENAME_NOREPLACE)
		*ret_flags |= ARB_RENAME_NOREPLACE;
	if (flags & RENAME_EXCHANGE)
		*ret_flags |= ARB_RENAME_EXCHANGE;
	return 0;
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                      const char *newname, unsigned int flags)
{
	struct afs *a = afs_req(req);
	unsigned aflags;
	int ret = rename_flags(flags, &aflags);

	if (!ret)
		ret = afs_name_check(name);
	if (!ret)
		ret = afs_name_check(newname);
	if (!ret) {
		afs_lock(a);
		ret = arb_vfs_rename(a->fs, afs_ino(a, parent), name, afs_ino(a, newparent),
		                     newname, aflags);
		ret = afs_unlock(a, ret);
	}
	reply_err(req, ret);
}

/* ---- the table ------------------------------------------------------------------------ */

const struct fuse_lowlevel_ops afs_ops = {
        .init = op_init,
        .destroy = op_destroy,
        .lookup = op_lookup,
        .forget = op_forget,
        .forget_multi = op_forget_multi,
        .getattr = op_getattr,
        .setattr = op_setattr,
        .readlink = op_readlink,
        .mknod = op_mknod,
        .mkdir = op_mkdir,
        .symlink = op_symlink,
        .create = op_create,
        .link = op_link,
        .unlink = op_unlink,
        .rmdir = op_rmdir,
        .rename = op_rename,
        .open = afs_op_open,
        .read = afs_op_read,
        .write = afs_op_write,
        /* No .flush: before it would send FLUSH, the kernel writes back the
         * file's dirty pages and times and reports their errors to close()
         * itself; there is nothing left to do.  The first FLUSH gets ENOSYS
         * and the kernel sends no more: one round trip less per close (one
         * of the eight requests a small file created used to cost). */
        .release = afs_op_release,
        .fsync = afs_op_fsync,
        .fallocate = afs_op_fallocate,
        .lseek = afs_op_lseek,
        .copy_file_range = afs_op_copy_file_range,
        .statfs = afs_op_statfs,
        .setxattr = afs_op_setxattr,
        .getxattr = afs_op_getxattr,
        .listxattr = afs_op_listxattr,
        .removexattr = afs_op_removexattr,
        .opendir = afs_op_opendir,
        .readdir = afs_op_readdir,
        .readdirplus = afs_op_readdirplus,
        .releasedir = afs_op_releasedir,
        .fsyncdir = afs_op_fsyncdir,
        .ioctl = afs_op_ioctl,
};
