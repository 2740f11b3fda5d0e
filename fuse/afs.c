/* SPDX-License-Identifier: MIT */
/*
 * afs.c - arborfs state shared by the operations: the big lock, the
 * failed state, messages (stderr in the foreground, syslog once
 * daemonized), the commit thread, node ids and entry replies.
 */
#include "arborfs.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "arbor_format.h"

/* ---- messages ---------------------------------------------------------------- */

static const char *prio_prefix(int prio)
{
	if (prio <= LOG_ERR)
		return "error: ";
	return prio == LOG_WARNING ? "warning: " : "";
}

/* "error: IMAGE: text" on stderr, "IMAGE: text" to syslog; INFO and DEBUG
 * only with -d. */
void afs_log(struct afs *a, int prio, const char *fmt, ...)
{
	char text[1024];
	va_list ap;

	if (prio >= LOG_INFO && !a->debug)
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (a->use_syslog)
		syslog(prio, "%s: %s", a->image, text);
	else
		fprintf(stderr, "%s%s: %s\n", prio_prefix(prio), a->image, text);
}

/* The core's message channel. */
void afs_core_msg(void *ctx, enum arb_msg_level level, const char *text)
{
	static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
	size_t len = strlen(text);

	while (len > 0 && text[len - 1] == '\n')
		len--;
	afs_log(ctx, prio[level <= ARB_MSG_DEBUG ? level : ARB_MSG_DEBUG], "%.*s", (int)len, text);
}

/* ---- the lock and the failed state ------------------------------------------- */

void afs_lock(struct afs *a)
{
	pthread_mutex_lock(&a->lock);
}

/* Locked.  The first error that leaves the filesystem failed is reported
 * once; the caller answers EROFS, like every later change. */
int afs_check(struct afs *a, int ret)
{
	const char *reason;

	if (ret >= 0 || a->failed)
		return ret;
	reason = arb_fs_failed_reason(a->fs);
	if (!reason)
		return ret;
	a->failed = true;
	afs_log(a, LOG_ERR, "the filesystem failed (%s): %s; it is read-only until remounted",
	        strerror(-ret), reason);
	return -EROFS;
}

int afs_unlock(struct afs *a, int ret)
{
	ret = afs_check(a, ret);
	pthread_mutex_unlock(&a->lock);
	return ret;
}

/* Locked.  Nothing to do when read-only; arb_commit skips an empty
 * transaction itself. */
int afs_commit_locked(struct afs *a)
{
	if (a->read_only)
		return 0;
	if (a->failed)
		return -EROFS;
	return afs_check(a, arb_commit(a->fs));
}

/* ---- the commit thread --------------------------------------------------------- */

static void *committer_main(void *arg)
{
	struct afs *a = arg;
	struct timespec until;

	afs_lock(a);
	while (!a->stopping) {
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += a->commit_secs;
		while (!a->stopping &&
		       pthread_cond_timedwait(&a->wake, &a->lock, &until) != ETIMEDOUT)
			;
		if (!a->stopping)
			afs_commit_locked(a);
	}
	pthread_mutex_unlock(&a->lock);
	return NULL;
}

/* Commit every commit_secs seconds.  The thread blocks the signals
 * libfuse handles, so that they reach the session loop. */
int afs_committer_start(struct afs *a)
{
	sigset_t block, old;
	int err;

	if (a->read_only || !a->commit_secs)
		return 0;
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	err = pthread_create(&a->committer, NULL, committer_main, a);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err)
		return -err;
	a->committer_running = true;
	return 0;
}

void afs_committer_stop(struct afs *a)
{
	if (!a->committer_running)
		return;
	afs_lock(a);
	a->stopping = true;
	pthread_cond_signal(&a->wake);
	pthread_mutex_unlock(&a->lock);
	pthread_join(a->committer, NULL);
	a->committer_running = false;
}

/* ---- node ids, names, attributes, entries -------------------------------------- */

void afs_open_handle(struct afs *a, struct fuse_file_info *fi)
{
	fi->fh = 0;
	if ((fi->flags & O_ACCMODE) != O_RDONLY) {
		fi->fh = AFS_FH_WRITER;
		atomic_fetch_add(&a->writers, 1);
	}
}

arb_ino_t afs_ino(const struct afs *a, fuse_ino_t ino)
{
	return ino == FUSE_ROOT_ID ? a->root : (arb_ino_t)ino;
}

fuse_ino_t afs_nodeid(const struct afs *a, arb_ino_t ino)
{
	return ino == a->root ? FUSE_ROOT_ID : (fuse_ino_t)ino;
}

/* The kernel does not bound names for FUSE. */
int afs_name_check(const char *name)
{
	return strnlen(name, ARB_NAME_MAX + 1) > ARB_NAME_MAX ? -ENAMETOOLONG : 0;
}

void afs_stat(const struct arb_stat *ast, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ast->ino;
	st->st_mode = ast->mode;
	st->st_nlink = ast->nlink;
	st->st_uid = ast->uid;
	st->st_gid = ast->gid;
	st->st_rdev = ast->rdev;
	st->st_size = (off_t)ast->size;
	st->st_blocks = (blkcnt_t)ast->blocks;
	st->st_blksize = AFS_BLKSIZE;
	st->st_atim = ast->atime;
	st->st_mtim = ast->mtime;
	st->st_ctim = ast->ctime;
}

int afs_entry(struct afs *a, const struct arb_stat *ast, struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = afs_nodeid(a, ast->ino);
	e->generation = ast->generation;
	afs_stat(ast, &e->attr);
	e->attr_timeout = AFS_TIMEOUT;
	e->entry_timeout = AFS_TIMEOUT;
	if (e->ino == FUSE_ROOT_ID)
		return 0; /* the kernel never forgets the root */
	return arb_vfs_open(a->fs, ast->ino);
}

void afs_unref(struct afs *a, fuse_ino_t nodeid)
{
	if (nodeid == FUSE_ROOT_ID)
		return;
	afs_lock(a);
	afs_unlock(a, arb_vfs_forget(a->fs, nodeid, 1));
}
