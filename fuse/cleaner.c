/* SPDX-License-Identifier: MIT */
/*
 * cleaner.c - the thread that frees deleted subvolumes in the background.
 *
 * Deleting a subvolume only marks its tree (core/drop.c); this thread
 * gives its blocks back in small steps, each under the filesystem lock, and
 * lets requests in between, so that a big deletion costs the user neither
 * a long call nor a frozen mount.  The commit thread makes the steps
 * durable as it commits everything else; `df` counts freed space at once.
 * Trees left being freed by an earlier mount are picked up at start.
 */
#include "arborfs.h"

#include <signal.h>
#include <time.h>

/* Nodes per step: a few milliseconds with the lock held, even when every
 * node is read from the disk. */
#define AFS_DROP_STEP 64
/* Between steps, without the lock: waiting requests go first. */
#define AFS_DROP_PAUSE_NS 200000L

/* Locked.  One step; false when there is nothing (more) to do. */
static bool clean_step(struct afs *a)
{
	uint64_t left = 0;
	int err = a->failed ? -EROFS : arb_fs_dropping(a->fs, &left);

	if (!err && left)
		err = afs_check(a, arb_fs_drop_step(a->fs, AFS_DROP_STEP, &left));
	return !err && left;
}

static void *cleaner_main(void *arg)
{
	struct afs *a = arg;
	const struct timespec pause = {0, AFS_DROP_PAUSE_NS};

	afs_lock(a);
	while (!a->stopping) {
		if (clean_step(a)) {
			pthread_mutex_unlock(&a->lock);
			nanosleep(&pause, NULL);
			afs_lock(a);
			continue;
		}
		pthread_cond_broadcast(&a->cleaned);
		pthread_cond_wait(&a->clean_wake, &a->lock);
	}
	pthread_cond_broadcast(&a->cleaned);
	pthread_mutex_unlock(&a->lock);
	return NULL;
}

int afs_cleaner_start(struct afs *a)
{
	sigset_t block, old;
	int err;

	if (a->read_only)
		return 0;
	/* the signals libfuse handles must reach the session loop */
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	err = pthread_create(&a->cleaner, NULL, cleaner_main, a);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err)
		return -err;
	a->cleaner_running = true;
	return 0;
}

void afs_cleaner_stop(struct afs *a)
{
	if (!a->cleaner_running)
		return;
	afs_lock(a);
	a->stopping = true;
	pthread_cond_signal(&a->clean_wake);
	pthread_mutex_unlock(&a->lock);
	pthread_join(a->cleaner, NULL);
	a->cleaner_running = false;
}

void afs_cleaner_kick(struct afs *a)
{
	pthread_cond_signal(&a->clean_wake);
}

int afs_cleaner_wait(struct afs *a)
{
	uint64_t left = 0;
	int err = 0;

	if (!a->cleaner_running) /* no thread (-o ro has nothing to free) */
		err = afs_check(a, arb_fs_drop_all(a->fs));
	afs_cleaner_kick(a);
	while (!err && !a->stopping && !a->failed && (err = arb_fs_dropping(a->fs, &left)) == 0 &&
	       left)
		pthread_cond_wait(&a->cleaned, &a->lock);
	if (!err && a->failed)
		err = -EROFS;
	if (!err && left)
		err = -EINTR; /* unmounting: the next mount finishes the work */
	return err ? err : afs_commit_locked(a);
}
