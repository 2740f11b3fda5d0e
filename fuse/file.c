/* SPDX-License-Identifier: MIT */
/*
 * file.c - arborfs file operations: open, read, write, fsync, fallocate,
 * SEEK_DATA/SEEK_HOLE, and statfs.
 *
 * I/O is stateless (the inode names the file; fi->fh only says whether the
 * file was opened for writing, see afs_op_lseek).  With the
 * writeback cache the kernel merges writes, handles O_APPEND and keeps
 * mtime/ctime itself (sending them with setattr); fsync reaches the daemon
 * after the kernel has written its dirty pages, and commits.
 */
#include "arborfs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/statvfs.h>
#include <unistd.h>

#ifdef __linux__
#include <linux/falloc.h>
#endif

static void reply_err(fuse_req_t req, int ret)
{
	fuse_reply_err(req, -ret);
}

/* ---- open and close ---------------------------------------------------------- */

/* O_TRUNC arrives here (FUSE_CAP_ATOMIC_O_TRUNC), even with O_RDONLY as
 * Linux allows; the kernel checked that the file may be written. */
static int open_truncate(struct afs *a, fuse_ino_t ino)
{
	struct arb_setattr sa = {.valid = ARB_SET_SIZE, .size = 0};

	afs_lock(a);
	return afs_unlock(a, arb_vfs_setattr(a->fs, afs_ino(a, ino), &sa, NULL));
}

/* A file of a read-only subvolume (a snapshot made with -r) is not opened
 * for writing: with the writeback cache a write(2) would succeed and its
 * data fail later, at close or fsync, as an I/O error. */
static int open_for_write(struct afs *a, fuse_ino_t ino)
{
	struct arb_subvol sv;
	int ret;

	afs_lock(a);
	ret = arb_vfs_subvol_get(a->fs, arb_ino_subvol(afs_ino(a, ino)), &sv);
	ret = afs_unlock(a, ret);
	return ret ? ret : sv.readonly ? -EROFS : 0;
}

void afs_op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct afs *a = afs_req(req);
	int ret = 0;

	if ((fi->flags & O_ACCMODE) != O_RDONLY)
		ret = open_for_write(a, ino);
	if (!ret && (fi->flags & O_TRUNC))
		ret = open_truncate(a, ino);
	if (ret) {
		reply_err(req, ret);
		return;
	}
	afs_open_handle(a, fi);
	afs_space_open(a, fi);
	fuse_reply_open(req, fi);
}

void afs_op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct afs *a = afs_req(req);

	(void)ino;
	if (fi->fh & AFS_FH_WRITER)
		atomic_fetch_sub(&a->writers, 1);
	fuse_reply_err(req, 0);
}

/* fsync and fsyncdir: the whole running transaction becomes durable. */
void afs_op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct afs *a = afs_req(req);
	int ret;

	(void)datasync;
	(void)fi;
	afs_lock(a);
	if (a->read_only)
		ret = 0;
	else if (a->failed)
		ret = -EROFS;
	else
		ret = afs_check(a, arb_vfs_fsync(a->fs, afs_ino(a, ino)));
	ret = afs_unlock(a, ret);
	reply_err(req, ret);
}

/* fsyncdir: directory changes are never in the log */
void afs_op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct afs *a = afs_req(req);

	(void)ino;
	(void)datasync;
	(void)fi;
	afs_lock(a);
	reply_err(req, afs_unlock(a, afs_commit_locked(a)));
}

/* ---- data ------------------------------------------------------------------------ */

void afs_op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct afs *a = afs_req(req);
	char *buf = malloc(size ? size : 1);
	size_t got = 0;
	int ret;

	(void)fi;
	if (!buf) {
		reply_err(req, -ENOMEM);
		return;
	}
	afs_lock(a);
	ret = arb_vfs_read(a->fs, afs_ino(a, ino), (uint64_t)off, buf, size, &got);
	ret = afs_unlock(a, ret);
	if (ret)
		reply_err(req, ret);
	else
		fuse_reply_buf(req, buf, got);
	free(buf);
}

void afs_op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                  struct fuse_file_info *fi)
{
	struct afs *a = afs_req(req);
	size_t done = 0;
	int ret;

	afs_lock(a);
	ret = afs_space_write_gate(a, ino, fi);
	if (!ret)
		ret = arb_vfs_write(a->fs, afs_ino(a, ino), (uint64_t)off, buf, size, &done);
	ret = afs_unlock(a, ret);
	if (ret)
		reply_err(req, ret);
	else
		fuse_reply_write(req, done);
	afs_space_write_failed(a, ino, ret, fi);
}

/* An instant copy: aligned parts share the source's extents (the kernel
 * has written back both files' dirty pages before asking). */
void afs_op_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
                            struct fuse_file_info *fi_in, fuse_ino_t ino_out, off_t off_out,
                            struct fuse_file_info *fi_out, size_t len, int flags)
{
	struct afs *a = afs_req(req);
	uint64_t copied = 0;
	int ret;

	(void)fi_in;
	(void)fi_out;
	if (flags) {
		reply_err(req, -EINVAL);
		return;
	}
	afs_lock(a);
	ret = arb_vfs_copy_range(a->fs, afs_ino(a, ino_in), (uint64_t)off_in, afs_ino(a, ino_out),
	                         (uint64_t)off_out, len, &copied);
	ret = afs_unlock(a, ret);
	if (ret)
		reply_err(req, ret);
	else
		fuse_reply_write(req, (size_t)copied);
}

/* FALLOC_FL_* to ARB_FALLOC_*; anything else is not supported. */
static int falloc_mode(int mode, int *ret_mode)
{
	int known = FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE;

	*ret_mode = 0;
	if (mode & ~known)
		return -EOPNOTSUPP;
	if (mode & FALLOC_FL_KEEP_SIZE)
		*ret_mode |= ARB_FALLOC_KEEP_SIZE;
	if (mode & FALLOC_FL_PUNCH_HOLE)
		*ret_mode |= ARB_FALLOC_PUNCH_HOLE;
	if (mode & FALLOC_FL_ZERO_RANGE)
		*ret_mode |= ARB_FALLOC_ZERO_RANGE;
	return 0;
}

void afs_op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
                      struct fuse_file_info *fi)
{
	struct afs *a = afs_req(req);
	int amode;
	int ret = falloc_mode(mode, &amode);

	(void)fi;
	if (!ret && (off < 0 || len <= 0))
		ret = -EINVAL;
	if (!ret) {
		afs_lock(a);
		ret = arb_vfs_fallocate(a->fs, afs_ino(a, ino), amode, (uint64_t)off,
		                        (uint64_t)len);
		ret = afs_unlock(a, ret);
	}
	reply_err(req, ret);
}

static void answer_lseek(struct afs *a, fuse_req_t req, fuse_ino_t ino, off_t off, int whence)
{
	uint64_t pos = 0;
	int ret;

	afs_lock(a);
	ret = arb_vfs_lseek(a->fs, afs_ino(a, ino), (uint64_t)off, whence, &pos);
	ret = afs_unlock(a, ret);
	if (ret)
		reply_err(req, ret);
	else
		fuse_reply_lseek(req, (off_t)pos);
}

/*
 * The kernel does not write back its dirty pages before it asks for
 * SEEK_DATA/SEEK_HOLE, so the data of a write(2) still in its writeback
 * cache would look like a hole.  While any file is open for writing, the
 * worker thread first invalidates the inode's pages, which makes the
 * kernel write the dirty ones back (as WRITE requests the session thread
 * serves meanwhile), and only then reads the map.
 */
struct seek_job {
	struct afs_job job;
	fuse_req_t req;
	fuse_ino_t ino;
	off_t off;
	int whence;
};

static void seek_job_run(struct afs *a, struct afs_job *job, bool can_wait)
{
	struct seek_job *j = (struct seek_job *)job;

	if (can_wait && a->se)
		fuse_lowlevel_notify_inval_inode(a->se, j->ino, 0, 0);
	answer_lseek(a, j->req, j->ino, j->off, j->whence);
	free(j);
}

/* Only SEEK_DATA and SEEK_HOLE come here; the kernel does the others. */
void afs_op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, struct fuse_file_info *fi)
{
	struct afs *a = afs_req(req);
	struct seek_job *j;

	(void)fi;
	if (whence != SEEK_DATA && whence != SEEK_HOLE) {
		reply_err(req, -EINVAL);
		return;
	}
	if (off < 0) {
		reply_err(req, -ENXIO);
		return;
	}
	if (atomic_load(&a->writers) == 0 || !(j = calloc(1, sizeof(*j)))) {
		answer_lseek(a, req, ino, off, whence);
		return;
	}
	*j = (struct seek_job){{seek_job_run, NULL}, req, ino, off, whence};
	afs_defer(a, &j->job);
}

/* ---- the whole filesystem ---------------------------------------------------------- */

void afs_op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct afs *a = afs_req(req);
	struct arb_statfs ast;
	struct statvfs st = {0};
	int ret;

	(void)ino;
	afs_lock(a);
	ret = afs_unlock(a, arb_vfs_statfs(a->fs, &ast));
	if (ret) {
		reply_err(req, ret);
		return;
	}
	st.f_bsize = ast.bsize;
	st.f_frsize = ast.frsize;
	st.f_blocks = ast.blocks;
	st.f_bfree = ast.bfree;
	st.f_bavail = ast.bavail;
	st.f_files = ast.files;
	st.f_ffree = ast.ffree;
	st.f_favail = ast.ffree;
	st.f_namemax = ast.namemax;
	fuse_reply_statfs(req, &st);
}
