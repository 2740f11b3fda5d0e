/* SPDX-License-Identifier: MIT */
/*
 * arborfs.h - the FUSE daemon: shared state of the low-level operations.
 *
 * FUSE node ids: the root of the mounted subvolume is FUSE_ROOT_ID (1);
 * every other node id is the global Arbor inode number, which is at least
 * 1 << 40 and never collides with it.  st_ino is always the Arbor number.
 *
 * Lookup counts: every entry the kernel receives (lookup, mknod, mkdir,
 * symlink, link, create, readdirplus) counts one arb_vfs_open() on the
 * inode, and forget gives them back with arb_vfs_forget(), so an inode
 * that is unlinked while the kernel still knows it stays readable.
 *
 * The core is single-threaded: every call into it holds afs.lock.
 */
#ifndef ARBORFS_H
#define ARBORFS_H

#define FUSE_USE_VERSION FUSE_MAKE_VERSION(3, 14)

#include <errno.h>
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "arbor/fs.h"
#include "arbor/msg.h"
#include "arbor/vfs.h"

#define AFS_PROG "arborfs"

/* Seconds the kernel may cache names and attributes. */
#define AFS_TIMEOUT 1.0
#define AFS_MAX_WRITE (1u << 20)
#define AFS_MAX_READAHEAD (1u << 20)
#define AFS_BLKSIZE 4096
#define AFS_DEFAULT_COMMIT 5u
/* Microseconds the session thread polls for the next request before it
 * sleeps (main.c) */
#define AFS_SPIN_US 100u

/* inodes remembered at once as having failed write-back (space.c) */
#define AFS_MAX_POISONED 16u

/* A request answered by the worker thread (worker.c).  fn replies and
 * frees the job; can_wait false: it must not wait for the kernel. */
struct afs;
struct afs_job {
	void (*fn)(struct afs *a, struct afs_job *job, bool can_wait);
	struct afs_job *next;
};

struct afs {
	pthread_mutex_t lock; /* around every core call */
	struct arb_fs *fs;
	struct arb_dev *dev;
	const char *image;
	const char *record; /* -o record=LOG: log every device write (recdev.h) */
	arb_ino_t root;     /* the inode behind FUSE_ROOT_ID */
	bool read_only;
	bool failed;     /* the failed state has been reported */
	bool use_syslog; /* daemonized: messages go to syslog */
	bool debug;
	unsigned commit_secs; /* 0: commit only on fsync and unmount */
	double spin_us;       /* the session thread polls this long before it sleeps */

	/* for notifications to the kernel (ioctl.c, file.c) */
	struct fuse_session *se;
	atomic_uint writers; /* file handles open for writing */

	/* near a full filesystem (space.c) */
	uint64_t headroom; /* below this much free space O_WRONLY opens go direct */
	fuse_ino_t poisoned[AFS_MAX_POISONED]; /* write-back failed: ENOSPC */
	unsigned npoisoned;
	uint64_t poison_avail; /* free bytes at the last refused write-back */

	/* the worker thread (worker.c) */
	pthread_mutex_t jobs_lock;
	pthread_cond_t jobs_wake;
	struct afs_job *jobs, *jobs_tail;
	bool jobs_stopping;
	pthread_t worker;
	bool worker_running;

	/* the commit thread */
	pthread_cond_t wake;
	pthread_t committer;
	bool committer_running;
	bool stopping; /* both threads end */

	/* the cleaner thread (cleaner.c) */
	pthread_cond_t clean_wake; /* work for it, or stopping */
	pthread_cond_t cleaned;    /* it has nothing left to do */
	pthread_t cleaner;
	bool cleaner_running;
};

extern const struct fuse_lowlevel_ops afs_ops;

static inline struct afs *afs_req(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* ---- afs.c: state, messages, commits ------------------------------------- */

void afs_log(struct afs *a, int prio, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void afs_core_msg(void *ctx, enum arb_msg_level level, const char *text);

void afs_lock(struct afs *a);
/* After a core call: report the failed state once (as EROFS), unlock. */
int afs_unlock(struct afs *a, int ret);
int afs_check(struct afs *a, int ret);
int afs_commit_locked(struct afs *a);

int afs_committer_start(struct afs *a);
void afs_committer_stop(struct afs *a);

/* ---- worker.c: requests that wait for the kernel ------------------------- */

int afs_worker_start(struct afs *a);
void afs_worker_stop(struct afs *a);
/* Unlocked: hand job to the worker thread (or run it, unable to wait). */
void afs_defer(struct afs *a, struct afs_job *job);

/* ---- space.c: ENOSPC at write(2) near a full filesystem ------------------ */

/* After the mount: the headroom from the kernel's dirty limit for it. */
void afs_space_init(struct afs *a, const char *mountpoint);
/* Unlocked: at open, O_WRONLY bypasses the page cache if space is tight. */
void afs_space_open(struct afs *a, struct fuse_file_info *fi);
/* Unlocked: a WRITE failed with err (marks the inode on write-back ENOSPC). */
void afs_space_write_failed(struct afs *a, fuse_ino_t ino, int err,
                            const struct fuse_file_info *fi);
/* Locked: WRITE through fi; -ENOSPC for more write-back of a marked inode. */
int afs_space_write_gate(struct afs *a, fuse_ino_t ino, const struct fuse_file_info *fi);
/* Locked: GETATTR through fi; -ENOSPC stops a writer whose write-back failed. */
int afs_space_gate(struct afs *a, fuse_ino_t ino, const struct fuse_file_info *fi);

/* ---- cleaner.c: freeing deleted subvolumes in the background ------------- */

int afs_cleaner_start(struct afs *a);
void afs_cleaner_stop(struct afs *a);
/* Locked: deleted subvolumes are waiting to be freed. */
void afs_cleaner_kick(struct afs *a);
/* Locked: wait until every deleted subvolume is freed, then commit. */
int afs_cleaner_wait(struct afs *a);

arb_ino_t afs_ino(const struct afs *a, fuse_ino_t ino);
fuse_ino_t afs_nodeid(const struct afs *a, arb_ino_t ino);
int afs_name_check(const char *name);

/* fi->fh of an open file: AFS_FH_WRITER if it may write (counted in
 * afs.writers until release) */
#define AFS_FH_WRITER 1u
void afs_open_handle(struct afs *a, struct fuse_file_info *fi);

void afs_stat(const struct arb_stat *ast, struct stat *st);
/* Locked: fill an entry and count the lookup its reply makes. */
int afs_entry(struct afs *a, const struct arb_stat *ast, struct fuse_entry_param *e);
/* Give back one counted lookup (a reply the kernel did not take). */
void afs_unref(struct afs *a, fuse_ino_t nodeid);

/* ---- the operations, by file ----------------------------------------------- */

/* file.c */
void afs_op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void afs_op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi);
void afs_op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                  struct fuse_file_info *fi);
void afs_op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void afs_op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi);
void afs_op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi);
void afs_op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
                      struct fuse_file_info *fi);
void afs_op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, struct fuse_file_info *fi);
void afs_op_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
                            struct fuse_file_info *fi_in, fuse_ino_t ino_out, off_t off_out,
                            struct fuse_file_info *fi_out, size_t len, int flags);
void afs_op_statfs(fuse_req_t req, fuse_ino_t ino);

/* xattr.c */
void afs_op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
                     size_t size, int flags);
void afs_op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size);
void afs_op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);
void afs_op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name);

/* readdir.c */
void afs_op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void afs_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi);
void afs_op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                        struct fuse_file_info *fi);
void afs_op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);

/* ioctl.c: the online channel of arbor/ioctl.h */
void afs_op_ioctl(fuse_req_t req, fuse_ino_t ino, unsigned int cmd, void *arg,
                  struct fuse_file_info *fi, unsigned flags, const void *in_buf, size_t in_bufsz,
                  size_t out_bufsz);

#endif
