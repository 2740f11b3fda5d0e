/* SPDX-License-Identifier: MIT */
/*
 * xattr.c - arborfs extended attributes.  Size 0 asks for the size only,
 * as getxattr(2) and listxattr(2); the core answers ERANGE when the
 * caller's buffer is too small.
 */
#include "arborfs.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/xattr.h>

static void reply_err(fuse_req_t req, int ret)
{
	fuse_reply_err(req, -ret);
}

void afs_op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
                     size_t size, int flags)
{
	struct afs *a = afs_req(req);
	int aflags = 0;
	int ret;

	if (flags & ~(XATTR_CREATE | XATTR_REPLACE)) {
		reply_err(req, -EINVAL);
		return;
	}
	if (flags & XATTR_CREATE)
		aflags |= ARB_XATTR_CREATE;
	if (flags & XATTR_REPLACE)
		aflags |= ARB_XATTR_REPLACE;
	afs_lock(a);
	ret = arb_vfs_setxattr(a->fs, afs_ino(a, ino), name, value, size, aflags);
	reply_err(req, afs_unlock(a, ret));
}

/* The reply of getxattr and listxattr: a size, or the bytes. */
static void reply_xattr(fuse_req_t req, int ret, const char *buf, size_t size, size_t len)
{
	if (ret)
		reply_err(req, ret);
	else if (!size)
		fuse_reply_xattr(req, len);
	else
		fuse_reply_buf(req, buf, len);
}

void afs_op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct afs *a = afs_req(req);
	char *buf = size ? malloc(size) : NULL;
	size_t len = 0;
	int ret = size && !buf ? -ENOMEM : 0;

	if (!ret) {
		afs_lock(a);
		ret = arb_vfs_getxattr(a->fs, afs_ino(a, ino), name, buf, size, &len);
		ret = afs_unlock(a, ret);
	}
	reply_xattr(req, ret, buf, size, len);
	free(buf);
}

void afs_op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct afs *a = afs_req(req);
	char *buf = size ? malloc(size) : NULL;
	size_t len = 0;
	int ret = size && !buf ? -ENOMEM : 0;

	if (!ret) {
		afs_lock(a);
		ret = arb_vfs_listxattr(a->fs, afs_ino(a, ino), buf, size, &len);
		ret = afs_unlock(a, ret);
	}
	reply_xattr(req, ret, buf, size, len);
	free(buf);
}

void afs_op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct afs *a = afs_req(req);
	int ret;

	afs_lock(a);
	ret = arb_vfs_removexattr(a->fs, afs_ino(a, ino), name);
	reply_err(req, afs_unlock(a, ret));
}
