/* SPDX-License-Identifier: MIT */
/*
 * worker.c - one thread for the few requests that must wait for the
 * kernel before they can be answered.
 *
 * arborfs serves requests on one thread: every core call holds afs.lock
 * anyway, and with several threads the kernel hands consecutive requests
 * of one process to different threads, so each request pays a wake-up on
 * another CPU (creating small files ran 2.3 times faster on one thread).
 * But some answers need the kernel first: after a subvolume change the
 * kernel must forget a name (it takes the directory's lock, which a lookup
 * may hold while it waits for us), and SEEK_DATA must first make the
 * kernel write back dirty pages (as WRITE requests to us).  Such a request
 * is handed to this thread, which does the waiting and replies, while the
 * session thread goes on serving what the kernel sends meanwhile.
 */
#include "arborfs.h"

#include <signal.h>
#include <stdlib.h>

static void *worker_main(void *arg)
{
	struct afs *a = arg;

	pthread_mutex_lock(&a->jobs_lock);
	for (;;) {
		struct afs_job *job = a->jobs;

		if (!job && a->jobs_stopping)
			break;
		if (!job) {
			pthread_cond_wait(&a->jobs_wake, &a->jobs_lock);
			continue;
		}
		a->jobs = job->next;
		if (!a->jobs)
			a->jobs_tail = NULL;
		pthread_mutex_unlock(&a->jobs_lock);
		job->fn(a, job, true); /* replies and frees the job */
		pthread_mutex_lock(&a->jobs_lock);
	}
	pthread_mutex_unlock(&a->jobs_lock);
	return NULL;
}

int afs_worker_start(struct afs *a)
{
	sigset_t block, old;
	int err;

	/* the signals libfuse handles must reach the session loop */
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	err = pthread_create(&a->worker, NULL, worker_main, a);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err)
		return -err;
	a->worker_running = true;
	return 0;
}

/* After the session loop: what is queued still gets done and answered. */
void afs_worker_stop(struct afs *a)
{
	if (!a->worker_running)
		return;
	pthread_mutex_lock(&a->jobs_lock);
	a->jobs_stopping = true;
	pthread_cond_signal(&a->jobs_wake);
	pthread_mutex_unlock(&a->jobs_lock);
	pthread_join(a->worker, NULL);
	a->worker_running = false;
}

void afs_defer(struct afs *a, struct afs_job *job)
{
	if (!a->worker_running) {
		/* no thread: waiting here for the kernel could wait for ever */
		job->fn(a, job, false);
		return;
	}
	job->next = NULL;
	pthread_mutex_lock(&a->jobs_lock);
	if (a->jobs_tail)
		a->jobs_tail->next = job;
	else
		a->jobs = job;
	a->jobs_tail = job;
	pthread_cond_signal(&a->jobs_wake);
	pthread_mutex_unlock(&a->jobs_lock);
}
