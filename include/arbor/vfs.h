/* SPDX-License-Identifier: MIT */
/*
 * vfs.h - the filesystem layer: inodes, directories, files, symlinks,
 * special files and extended attributes on top of the engine, in the
 * spirit of FUSE's low-level API (every call names inodes by number).
 *
 * Inode numbers are global: ((subvolume tree id - 255) << 40) | local
 * number (arbor_format.h), unique across every subvolume.
 *
 * The layer does not check permissions: the front end does (the kernel
 * with default_permissions, or the tool).  It enforces the structure of the
 * filesystem: names, types, link counts, empty directories, sizes.  Changes
 * are part of the running transaction; arb_commit() makes them durable.
 * Every call returns 0 or a negative errno; errors found before anything
 * changed leave the filesystem usable.  A call that needs space that only
 * recently freed blocks can provide commits first (they wait out the
 * superblock ring), so statfs may count them as free.
 *
 * Single-threaded like the engine: callers serialise.
 */
#ifndef ARBOR_VFS_H
#define ARBOR_VFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "arbor/fs.h"
#include "arbor_format.h"

typedef uint64_t arb_ino_t;

struct arb_stat {
	arb_ino_t ino;
	uint32_t mode; /* S_IF* type and permission bits */
	uint32_t nlink;
	uint32_t uid, gid;
	uint64_t rdev;
	uint64_t size;
	uint64_t blocks; /* 512-byte units of data and inline data */
	struct timespec atime, mtime, ctime, btime;
	uint64_t generation; /* commit that created the inode */
};

/* Who creates an inode: owner, and group unless the parent is setgid. */
struct arb_cred {
	uint32_t uid, gid;
};

/* ---- setup ------------------------------------------------------------- */

/* On a freshly formatted filesystem: create the top-level subvolume with
 * its root directory (mode S_IFDIR | perm, owned by cred) and make it the
 * default.  -EEXIST if there is one already. */
int arb_vfs_init(struct arb_fs *fs, uint32_t perm, const struct arb_cred *cred);

/* A new, empty subvolume: a tree of its own with a root directory (mode
 * S_IFDIR | perm), not linked anywhere: reached through arb_vfs_root(fs,
 * id).  arb_vfs_subvol_make below also names it in a directory. */
int arb_vfs_subvol_create(struct arb_fs *fs, uint32_t perm, const struct arb_cred *cred,
                          uint64_t *ret_id);

/* ---- subvolumes and snapshots (subvol.c) ---------------------------------- */

/* A subvolume appears as a directory: dir/name is the root directory of
 * another tree.  rmdir and unlink of it fail (-EPERM, -EISDIR); rename
 * moves it to a free name in the same subvolume only (-EPERM otherwise). */
int arb_vfs_subvol_make(struct arb_fs *fs, arb_ino_t dir, const char *name, uint32_t perm,
                        const struct arb_cred *cred, struct arb_stat *st);

/* Snapshot subvolume src_id as dir/name in O(1): it shares every block
 * with the source until either changes.  Subvolumes linked inside the
 * source are not part of it.  ARB_SNAPSHOT_RDONLY: every change to the
 * snapshot fails with -EROFS. */
#define ARB_SNAPSHOT_RDONLY 1u
int arb_vfs_snapshot(struct arb_fs *fs, uint64_t src_id, arb_ino_t dir, const char *name,
                     unsigned flags, struct arb_stat *st);

/* Unlink and drop the subvolume linked as dir/name: -ENOTTY if that is not
 * a subvolume, -ENOTEMPTY if subvolumes are linked inside it, -EBUSY for
 * the default subvolume.  Its inodes are gone (-ENOENT) at once. */
int arb_vfs_subvol_delete(struct arb_fs *fs, arb_ino_t dir, const char *name);

struct arb_subvol {
	uint64_t id;
	uint64_t parent_id; /* subvolume holding its link; 0: not linked (top level) */
	uint64_t dirid;     /* local number of the directory holding the link */
	char name[ARB_NAME_MAX + 1];
	bool readonly;
	bool is_default;
	uint8_t uuid[16];
	uint8_t parent_uuid[16]; /* a snapshot: its source's uuid; zero otherwise */
	uint64_t source_id;      /* a snapshot: its source's id; 0 otherwise */
	uint64_t create_gen;
	struct timespec ctime;
	uint64_t generation; /* of the commit that last changed it */
};
int arb_vfs_subvol_get(struct arb_fs *fs, uint64_t id, struct arb_subvol *sv);
/* fn for every subvolume by id; a non-zero return stops (negative: error) */
typedef int (*arb_subvol_fn)(void *ctx, const struct arb_subvol *sv);
int arb_vfs_subvol_list(struct arb_fs *fs, arb_subvol_fn fn, void *ctx);
int arb_vfs_subvol_default(struct arb_fs *fs, uint64_t *ret_id);
int arb_vfs_subvol_set_default(struct arb_fs *fs, uint64_t id);

/* Make the subvolume linked as dir/name hold what snapshot snap_id holds,
 * atomically: a writable snapshot of snap_id takes the name (a new id), and
 * the old subvolume is kept as dir/keep_name, or deleted when keep_name is
 * NULL (-ENOTEMPTY then if subvolumes are linked inside it).  The default
 * subvolume follows the name. */
int arb_vfs_rollback(struct arb_fs *fs, arb_ino_t dir, const char *name, uint64_t snap_id,
                     const char *keep_name, uint64_t *ret_new_id);

/* Space of a subvolume: referenced (all it names, shared or not: kept up
 * to date, no walk) and exclusive (what deleting it would free: a walk of
 * its unshared part only). */
struct arb_subvol_usage {
	uint64_t referenced_bytes, exclusive_bytes;
	uint64_t nodes_read; /* by the exclusive walk */
};
int arb_vfs_subvol_usage(struct arb_fs *fs, uint64_t id, struct arb_subvol_usage *u);

/* What changed from subvolume a to subvolume b (say a snapshot and its
 * source), one call per path, sorted by path: 'A' the name exists only in
 * b, 'D' only in a, 'C' in both and what it names changed (content,
 * attributes, a directory's entries, or another inode under that name).
 * Reads only the parts of the two trees that are not shared: the cost
 * follows the size of the change.  Subvolumes linked inside are not
 * followed.  *ret_nodes_read (may be NULL): tree nodes read. */
typedef int (*arb_vfs_diff_fn)(void *ctx, char kind, const char *path);
int arb_vfs_diff(struct arb_fs *fs, uint64_t a_id, uint64_t b_id, arb_vfs_diff_fn fn, void *ctx,
                 uint64_t *ret_nodes_read);

/* Root directory of a subvolume (0: the default one). */
int arb_vfs_root(struct arb_fs *fs, uint64_t subvol_id, arb_ino_t *ret_ino);

/* Free every inode left on an orphan list (unlinked while open when the
 * filesystem went away).  Call once after arb_open of a writable fs. */
int arb_vfs_orphan_cleanup(struct arb_fs *fs, uint64_t *ret_freed);

/* ---- attributes ---------------------------------------------------------- */

int arb_vfs_getattr(struct arb_fs *fs, arb_ino_t ino, struct arb_stat *st);

#define ARB_SET_MODE (1u << 0)
#define ARB_SET_UID (1u << 1)
#define ARB_SET_GID (1u << 2)
#define ARB_SET_SIZE (1u << 3)
#define ARB_SET_ATIME (1u << 4)
#define ARB_SET_MTIME (1u << 5)
#define ARB_SET_ATIME_NOW (1u << 6)
#define ARB_SET_MTIME_NOW (1u << 7)
#define ARB_SET_CTIME (1u << 8)

struct arb_setattr {
	uint32_t valid; /* ARB_SET_* */
	uint32_t mode;  /* permission bits only; the type never changes */
	uint32_t uid, gid;
	uint64_t size;
	struct timespec atime, mtime, ctime;
};

/* ctime is updated by every change; a size change also sets mtime. */
int arb_vfs_setattr(struct arb_fs *fs, arb_ino_t ino, const struct arb_setattr *sa,
                    struct arb_stat *st);

/* ---- namespace ------------------------------------------------------------ */

/* Names: 1..ARB_NAME_MAX bytes, no '/', not "." or "..": -ENAMETOOLONG,
 * -EINVAL.  A parent that is not a directory: -ENOTDIR. */
int arb_vfs_lookup(struct arb_fs *fs, arb_ino_t dir, const char *name, struct arb_stat *st);

/* The directory holding dir (the root is its own parent). */
int arb_vfs_parent(struct arb_fs *fs, arb_ino_t dir, arb_ino_t *ret_parent);

/* mode carries the type: S_IFREG, S_IFIFO, S_IFSOCK, S_IFCHR, S_IFBLK. */
int arb_vfs_mknod(struct arb_fs *fs, arb_ino_t dir, const char *name, uint32_t mode, uint64_t rdev,
                  const struct arb_cred *cred, struct arb_stat *st);
int arb_vfs_mkdir(struct arb_fs *fs, arb_ino_t dir, const char *name, uint32_t mode,
                  const struct arb_cred *cred, struct arb_stat *st);
int arb_vfs_symlink(struct arb_fs *fs, arb_ino_t dir, const char *name, const char *target,
                    const struct arb_cred *cred, struct arb_stat *st);
/* Copies at most size bytes (no NUL added); *ret_len is the full length. */
int arb_vfs_readlink(struct arb_fs *fs, arb_ino_t ino, char *buf, size_t size, size_t *ret_len);

/* -EPERM for directories, -EMLINK past ARB_LINK_MAX, -EXDEV across
 * subvolumes. */
#define ARB_LINK_MAX 65000u
int arb_vfs_link(struct arb_fs *fs, arb_ino_t ino, arb_ino_t newdir, const char *newname,
                 struct arb_stat *st);
/* -EISDIR for a directory.  The last link of an open inode (see
 * arb_vfs_open) leaves it on the orphan list until released. */
int arb_vfs_unlink(struct arb_fs *fs, arb_ino_t dir, const char *name);
/* -ENOTDIR, -ENOTEMPTY. */
int arb_vfs_rmdir(struct arb_fs *fs, arb_ino_t dir, const char *name);

#define ARB_RENAME_NOREPLACE (1u << 0) /* RENAME_NOREPLACE */
#define ARB_RENAME_EXCHANGE (1u << 1)  /* RENAME_EXCHANGE */
/* POSIX rename, plus the two flags (-EINVAL for others or both). -EXDEV
 * across subvolumes, -EINVAL for moving a directory below itself. */
int arb_vfs_rename(struct arb_fs *fs, arb_ino_t olddir, const char *oldname, arb_ino_t newdir,
                   const char *newname, unsigned flags);

/* Directory entries in a stable order, after cookie pos (0: from the
 * start; "." and ".." are not listed).  fn gets each entry with the cookie
 * that resumes after it, and returns non-zero to stop.  Entries added or
 * removed during a listing are seen at most once; the others exactly once. */
typedef int (*arb_dirent_fn)(void *ctx, const char *name, size_t name_len, arb_ino_t ino,
                             unsigned dtype, uint64_t cookie);
int arb_vfs_readdir(struct arb_fs *fs, arb_ino_t dir, uint64_t pos, arb_dirent_fn fn, void *ctx);

/* ---- open files -------------------------------------------------------- */

/* Count an open handle (FUSE open/opendir, a tool's fd).  An inode whose
 * last name is removed while open stays readable and writable until its
 * last release, then is freed. */
int arb_vfs_open(struct arb_fs *fs, arb_ino_t ino);
int arb_vfs_release(struct arb_fs *fs, arb_ino_t ino);
/* n releases at once (FUSE forget: a front end may count every lookup it
 * answers as an open, so that an unlinked inode the kernel still knows
 * stays readable). */
int arb_vfs_forget(struct arb_fs *fs, arb_ino_t ino, uint64_t n);

/* ---- data ------------------------------------------------------------------ */

/* Short reads only at end of file.  Data is verified against its
 * checksums: -EIO (and a message) on a mismatch, never wrong bytes. */
int arb_vfs_read(struct arb_fs *fs, arb_ino_t ino, uint64_t off, void *buf, size_t len,
                 size_t *ret_read);
/* -EFBIG beyond ARB_MAX_FILE_SIZE, -EISDIR for directories. */
int arb_vfs_write(struct arb_fs *fs, arb_ino_t ino, uint64_t off, const void *buf, size_t len,
                  size_t *ret_written);

#define ARB_FALLOC_KEEP_SIZE 0x01  /* FALLOC_FL_KEEP_SIZE */
#define ARB_FALLOC_PUNCH_HOLE 0x02 /* FALLOC_FL_PUNCH_HOLE (with KEEP_SIZE) */
#define ARB_FALLOC_ZERO_RANGE 0x10 /* FALLOC_FL_ZERO_RANGE */
/* Preallocate (reads return zeros), punch a hole, or zero a range;
 * -EOPNOTSUPP for other modes. */
int arb_vfs_fallocate(struct arb_fs *fs, arb_ino_t ino, int mode, uint64_t off, uint64_t len);

/* copy_file_range: copy [soff, soff+len) of src to doff of dst (the length
 * is clamped at the end of src).  Sector-aligned parts share the source's
 * sectors (a copy-on-write copy: no data is written and no space used);
 * the unaligned edges are copied.  -EINVAL for overlapping ranges of one
 * file. */
int arb_vfs_copy_range(struct arb_fs *fs, arb_ino_t src, uint64_t soff, arb_ino_t dst,
                       uint64_t doff, uint64_t len, uint64_t *ret_copied);

/* SEEK_DATA / SEEK_HOLE: -ENXIO past the end. */
int arb_vfs_lseek(struct arb_fs *fs, arb_ino_t ino, uint64_t off, int whence, uint64_t *ret_off);

/* ---- extended attributes -------------------------------------------------- */

#define ARB_XATTR_NAME_MAX 255u
#define ARB_XATTR_CREATE 0x1  /* XATTR_CREATE */
#define ARB_XATTR_REPLACE 0x2 /* XATTR_REPLACE */
/* Namespaces user., trusted., security., system.posix_acl_access and
 * system.posix_acl_default; others -EOPNOTSUPP.  -E2BIG for values over
 * arb_vfs_xattr_max(). */
int arb_vfs_setxattr(struct arb_fs *fs, arb_ino_t ino, const char *name, const void *value,
                     size_t size, int flags);
/* size 0: only *ret_size.  -ERANGE if size is too small, -ENODATA. */
int arb_vfs_getxattr(struct arb_fs *fs, arb_ino_t ino, const char *name, void *buf, size_t size,
                     size_t *ret_size);
/* NUL-separated names, as listxattr(2). */
int arb_vfs_listxattr(struct arb_fs *fs, arb_ino_t ino, char *buf, size_t size, size_t *ret_size);
int arb_vfs_removexattr(struct arb_fs *fs, arb_ino_t ino, const char *name);
size_t arb_vfs_xattr_max(const struct arb_fs *fs);

/* ---- the whole filesystem ------------------------------------------------ */

struct arb_statfs {
	uint32_t bsize;  /* preferred I/O size */
	uint32_t frsize; /* unit of the block counts: the sector */
	uint64_t blocks; /* allocatable sectors */
	uint64_t bfree;  /* free, including the commit reserve */
	uint64_t bavail; /* what ordinary writes may still use */
	uint64_t files;  /* inodes: bounded by space */
	uint64_t ffree;
	uint32_t namemax; /* ARB_NAME_MAX */
};
int arb_vfs_statfs(struct arb_fs *fs, struct arb_statfs *st);

/* Make ino's data and attributes durable: nothing when it has not changed
 * since the last commit, an append to the fsync log when its only changes
 * are data writes, a commit otherwise. */
int arb_vfs_fsync(struct arb_fs *fs, arb_ino_t ino);

/* Subvolume of an inode (its tree id) and its local number. */
uint64_t arb_ino_subvol(arb_ino_t ino);
uint64_t arb_ino_local(arb_ino_t ino);
arb_ino_t arb_ino_make(uint64_t subvol_id, uint64_t local);

#endif
