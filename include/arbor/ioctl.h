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

/*
 * diff: what changed from subvolume a_id to b_id, as a listing of records
 * "K PATH\0" (K is A, C or D; PATH starts with '/', from the subvolume's
 * root), sorted by path, read a page at a time: offset is the byte of the
 * listing the page starts at, and the answer gives len bytes of it in buf
 * (a record may continue on the next page).  The daemon computes the
 * listing once and keeps it for the pages that follow while neither tree
 * changes; a_gen and b_gen name the versions of the trees it is of, the
 * same on every page of one listing: a reader that sees them change
 * starts again.  The caller must be root or own the root directories of
 * both subvolumes (the listing shows names).
 */
#define ARB_IOC_DIFF_BUF 4000
struct arb_ioc_diff_args {
	uint64_t a_id, b_id;               /* in */
	uint64_t offset;                   /* in: the first byte of the listing wanted */
	uint64_t total_bytes, total_lines; /* out: the whole listing */
	uint64_t nodes_read;               /* out: tree nodes read to compute it */
	uint64_t a_gen, b_gen;             /* out: the versions of the two trees */
	uint32_t len;                      /* out: bytes in buf */
	uint32_t flags;                    /* in: 0 */
	uint8_t reserved[24];
	char buf[ARB_IOC_DIFF_BUF];
};

/*
 * rollback: make the subvolume linked as NAME (in the directory the ioctl
 * is made on) hold what subvolume snap_id holds, atomically.  It gets a new
 * id; the old subvolume is kept as keep_name in the same directory, or,
 * with ARB_IOC_NO_KEEP (keep_name empty), deleted.  The caller needs write
 * and search permission on the directory and must be root or own the root
 * directories of both the subvolume and snap_id.
 */
struct arb_ioc_rollback_args {
	uint64_t snap_id; /* in */
	uint64_t id;      /* out: the subvolume's new id */
	uint64_t old_id;  /* out: its old id (now keep_name's, or deleted) */
	uint32_t flags;   /* in: ARB_IOC_NO_KEEP */
	uint8_t reserved[36];
	char name[ARB_IOC_NAME_MAX + 1];
	char keep_name[ARB_IOC_NAME_MAX + 1];
};
#define ARB_IOC_NO_KEEP 1u

/* usage: the space of subvolume id (anyone may ask) */
struct arb_ioc_usage_args {
	uint64_t id;               /* in */
	uint64_t referenced_bytes; /* out: all it names, shared or not */
	uint64_t exclusive_bytes;  /* out: what deleting it would free */
	uint64_t nodes_read;       /* out: by the exclusive walk */
	uint8_t reserved[32];
};

#define ARB_IOC_DIFF _IOWR(ARB_IOC_MAGIC, 8, struct arb_ioc_diff_args)
#define ARB_IOC_ROLLBACK _IOWR(ARB_IOC_MAGIC, 9, struct arb_ioc_rollback_args)
#define ARB_IOC_SUBVOL_USAGE _IOWR(ARB_IOC_MAGIC, 10, struct arb_ioc_usage_args)
/* wait until every deleted subvolume has been freed, then commit (the
 * cleaner thread frees them in the background) */
#define ARB_IOC_WAIT_CLEANED _IO(ARB_IOC_MAGIC, 11)

#endif
