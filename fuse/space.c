/* SPDX-License-Identifier: MIT */
/*
 * space.c - arborfs near a full filesystem: write(2) that fails with
 * ENOSPC instead of data dropped in write-back.
 *
 * With the writeback cache a write(2) only copies into the kernel's page
 * cache; the daemon sees the data later, as WRITE requests of the kernel's
 * write-back, and an ENOSPC there can no longer reach the writer: the
 * kernel drops the pages and reports the error at the next fsync or close.
 * Two measures keep that from losing data silently:
 *
 *  - While the free space (df's Avail) is below a headroom, files opened
 *    O_WRONLY bypass the page cache (FOPEN_DIRECT_IO): each write(2) is a
 *    WRITE request, the core refuses it whole, and write(2) returns ENOSPC
 *    (or a short count) with the file as it was.  The headroom is twice
 *    the most the kernel lets this mount hold dirty or under write-back
 *    (its bdi's strict limit, /sys/class/bdi/MAJ:MIN/max_bytes), plus
 *    16 MiB: a file opened before the filesystem got that full cannot have
 *    more than that in flight.  O_RDWR opens stay cached, because a shared
 *    writable mmap of a direct-I/O file fails with ENODEV (libfuse 3.14
 *    cannot ask for FUSE_DIRECT_IO_ALLOW_MMAP), which would break SQLite's
 *    shared memory file on a nearly full disk.
 *
 *  - When a write-back WRITE fails for lack of space, the inode is marked
 *    and the worker thread drops its pages and attributes from the kernel's
 *    caches (so reads show what is stored).  The kernel asks for the
 *    attributes (GETATTR with the file handle) before each cached write(2);
 *    for a marked inode and a handle open for writing it gets ENOSPC, so the
 *    writer stops at its next write(2) instead of writing on for ever.
 *    Later write-back of a marked inode is refused too, so that a page that
 *    fits does not land past a refused one and leave a hole.  The marks go
 *    once space is freed.
 */
#include "arborfs.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#define MIB ((uint64_t)1024 * 1024)
/* what the kernel may hold dirty when the bdi's limit cannot be read: 1% of
 * the dirty limit of a machine with 64 GiB, about */
#define DEFAULT_DIRTY_BOUND (128 * MIB)

/* ---- the headroom -------------------------------------------------------------- */

/* mountinfo escapes blanks and backslashes in paths as \ooo. */
static void unescape_octal(char *s)
{
	char *out = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*out++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 | (s[3] - '0'));
			s += 3;
		} else {
			*out++ = *s;
		}
	}
	*out = '\0';
}

/* The MAJ:MIN of the last filesystem mounted on mountpoint (ours, just
 * mounted); read from mountinfo because a stat() of our own mount point
 * would wait for the session loop that is not running yet. */
static int mount_devno(const char *mountpoint, char *devno, size_t size)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[4096];
	int found = -ENOENT;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		char dev[32], path[sizeof(line)];

		/* ID PARENT MAJ:MIN ROOT MOUNTPOINT ... */
		if (sscanf(line, "%*s %*s %31s %*s %4095s", dev, path) != 2)
			continue;
		unescape_octal(path);
		if (strcmp(path, mountpoint) == 0) {
			snprintf(devno, size, "%s", dev);
			found = 0;
		}
	}
	fclose(f);
	return found;
}

static int read_u64(const char *path, uint64_t *ret)
{
	FILE *f = fopen(path, "re");
	int ok;

	if (!f)
		return -errno;
	ok = fscanf(f, "%" SCNu64, ret) == 1;
	fclose(f);
	return ok ? 0 : -EINVAL;
}

void afs_space_init(struct afs *a, const char *mountpoint)
{
	char devno[32], path[96];
	uint64_t bound = DEFAULT_DIRTY_BOUND;

	if (mount_devno(mountpoint, devno, sizeof(devno)) == 0) {
		snprintf(path, sizeof(path), "/sys/class/bdi/%s/max_bytes", devno);
		if (read_u64(path, &bound) < 0 || bound == 0)
			bound = DEFAULT_DIRTY_BOUND;
	}
	a->headroom = 2 * bound + 16 * MIB;
	afs_log(a, LOG_INFO, "writes bypass the page cache below %" PRIu64 " MiB free",
	        a->headroom / MIB);
}

/* ---- the state --------------------------------------------------------------------- */

/* Locked: bytes that ordinary writes can still use (df's Avail). */
static uint64_t space_avail(struct afs *a)
{
	struct arb_statfs st;

	if (a->read_only || arb_vfs_statfs(a->fs, &st) < 0)
		return UINT64_MAX;
	return st.bavail * st.frsize;
}

static bool space_tight(struct afs *a)
{
	return space_avail(a) < a->headroom;
}

static int poisoned_slot(const struct afs *a, fuse_ino_t ino)
{
	for (unsigned i = 0; i < a->npoisoned; i++)
		if (a->poisoned[i] == ino)
			return (int)i;
	return -1;
}

/* Locked: the write-back of ino failed and no space was freed since.  The
 * marks go once more than a large write was freed: every writer may try
 * again (and is stopped again if it overruns). */
static bool still_poisoned(struct afs *a, fuse_ino_t ino)
{
	if (poisoned_slot(a, ino) < 0)
		return false;
	if (space_avail(a) <= a->poison_avail + AFS_MAX_WRITE)
		return true;
	a->npoisoned = 0;
	return false;
}

/* Unlocked: an O_WRONLY open bypasses the page cache while space is tight. */
void afs_space_open(struct afs *a, struct fuse_file_info *fi)
{
	if ((fi->flags & O_ACCMODE) != O_WRONLY)
		return;
	afs_lock(a);
	fi->direct_io = space_tight(a);
	afs_unlock(a, 0);
}

/* The worker drops the kernel's pages and attributes of a marked inode. */
struct drop_job {
	struct afs_job job;
	fuse_ino_t ino;
};

static void drop_job_run(struct afs *a, struct afs_job *job, bool can_wait)
{
	struct drop_job *j = (struct drop_job *)job;

	if (can_wait && a->se)
		fuse_lowlevel_notify_inval_inode(a->se, j->ino, 0, 0);
	free(j);
}

/* Unlocked, after a WRITE failed with err. */
void afs_space_write_failed(struct afs *a, fuse_ino_t ino, int err, const struct fuse_file_info *fi)
{
	struct drop_job *j;
	bool fresh;

	if (err != -ENOSPC || !fi || !fi->writepage)
		return; /* a direct write: its write(2) got the error */
	afs_lock(a);
	fresh = poisoned_slot(a, ino) < 0;
	if (fresh) {
		/* the oldest mark gives way: its writer has long been told */
		if (a->npoisoned == AFS_MAX_POISONED)
			memmove(a->poisoned, a->poisoned + 1,
			        (AFS_MAX_POISONED - 1) * sizeof(a->poisoned[0]));
		else
			a->npoisoned++;
		a->poisoned[a->npoisoned - 1] = ino;
	}
	a->poison_avail = space_avail(a);
	afs_unlock(a, 0);
	if (fresh && (j = calloc(1, sizeof(*j)))) {
		*j = (struct drop_job){{drop_job_run, NULL}, ino};
		afs_defer(a, &j->job);
	}
}

/* Locked: a WRITE through fi.  -ENOSPC for the write-back of a marked
 * inode: once a page of it was refused, a later page that fits must not
 * land past it and leave a hole. */
int afs_space_write_gate(struct afs *a, fuse_ino_t ino, const struct fuse_file_info *fi)
{
	return fi && fi->writepage && still_poisoned(a, ino) ? -ENOSPC : 0;
}

/* Locked: GETATTR through the handle fi.  -ENOSPC for a writable handle
 * of a marked inode: the kernel asks before a cached write(2). */
int afs_space_gate(struct afs *a, fuse_ino_t ino, const struct fuse_file_info *fi)
{
	return fi && (fi->fh & AFS_FH_WRITER) && still_poisoned(a, ino) ? -ENOSPC : 0;
}
