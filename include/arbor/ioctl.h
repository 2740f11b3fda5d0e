/* SPDX-License-Identifier: MIT */
/*
 * ioctl.h - the online channel between the arbor tool and a mounted
 * arborfs: ioctls on an open directory of the mount, carried by FUSE to
 * the daemon, which checks the caller's credentials (the FUSE request's
 * uid/gid/groups) before it acts.
 *
 * FUSE passes only "restricted" ioctls: the argument is a fixed-size
 * structure whose size the command number encodes, copied in and (for
 * _IOWR) copied back out.  Every structure here is 4 KiB or less.
 *
 * The directory the ioctl is made on is the place: for create, snapshot and
 * delete it is the directory that holds (or will hold) NAME.  Subvolumes
 * are named by id; the id of the subvolume a file is in is
 * arb_ioc_subvol_of(st_ino), so the tool needs only stat(2) to find it.
 */
#ifndef ARBOR_IOCTL_H
#define ARBOR_IOCTL_H

#include <linux/ioctl.h>
#include <stdint.h>

#define ARB_IOC_MAGIC 0xAB
#define ARB_IOC_NAME_MAX 255

/* Subvolume id of an Arbor inode number (see arbor_format.h). */
static inline uint64_t arb_ioc_subvol_of(uint64_t st_ino)
{
	return (st_ino >> 40) + 255;
}

/* create, snapshot, delete */
struct arb_ioc_subvol_args {
	uint64_t src_id; /* snapshot: the subvolume to snapshot */
	uint64_t id;     /* out: the new subvolume's id */
	uint32_t flags;  /* snapshot: ARB_IOC_RDONLY */
	uint32_t mode;   /* create: permission bits of its root directory */
	uint8_t reserved[40];
	char name[ARB_IOC_NAME_MAX + 1]; /* NUL-terminated */
};
#define ARB_IOC_RDONLY 1u

/* One subvolume (info, list). */
struct arb_ioc_subvol_info {
	uint64_t id;        /* in: the subvolume; list: the first id >= this */
	uint64_t parent_id; /* out: where it is linked, 0: nowhere (top level) */
	uint64_t dirid;     /* out: inode (local number) of the directory holding it */
	uint64_t source_id; /* out: a snapshot's source, else 0 */
	uint64_t create_gen, generation;
	uint64_t ctime_sec;
	uint32_t ctime_nsec;
	uint32_t flags; /* out: ARB_IOC_RDONLY, ARB_IOC_DEFAULT, ARB_IOC_MOUNTED */
	uint8_t uuid[16], parent_uuid[16];
	uint8_t reserved[32];
	char name[ARB_IOC_NAME_MAX + 1];
};
#define ARB_IOC_DEFAULT 2u /* the default subvolume */
#define ARB_IOC_MOUNTED 4u /* the subvolume this mount shows at its root */

#define ARB_IOC_SUBVOL_CREATE _IOWR(ARB_IOC_MAGIC, 1, struct arb_ioc_subvol_args)
#define ARB_IOC_SNAPSHOT _IOWR(ARB_IOC_MAGIC, 2, struct arb_ioc_subvol_args)
#define ARB_IOC_SUBVOL_DELETE _IOW(ARB_IOC_MAGIC, 3, struct arb_ioc_subvol_args)
/* info: exactly id (-ENOENT); list: the first subvolume with id >= id
 * (-ENOENT when there is none) */
#define ARB_IOC_SUBVOL_INFO _IOWR(ARB_IOC_MAGIC, 4, struct arb_ioc_subvol_info)
#define ARB_IOC_SUBVOL_NEXT _IOWR(ARB_IOC_MAGIC, 5, struct arb_ioc_subvol_info)
#define ARB_IOC_SET_DEFAULT _IOW(ARB_IOC_MAGIC, 6, struct arb_ioc_subvol_args)
/* commit now (like syncfs) */
#define ARB_IOC_SYNC _IO(ARB_IOC_MAGIC, 7)

#endif
