/* SPDX-License-Identifier: MIT */
/*
 * inuse.h - is a device or an image file mounted or used as swap
 * (mkfs.arbor, fsck.arbor).
 */
#ifndef ARBOR_CLI_INUSE_H
#define ARBOR_CLI_INUSE_H

#include <limits.h>
#include <stdbool.h>

struct inuse {
	bool swap;                 /* used as swap (else mounted on mountpoint) */
	char mountpoint[PATH_MAX]; /* where it is mounted */
	char via[NAME_MAX + 1];    /* "loop0" when through a loop device, else "" */
};

/* 1 when path is in use (*u says how), 0 when not, -1 when
 * /proc/self/mounts cannot be read (errno set). */
int inuse_find(const char *path, struct inuse *u);

#endif
