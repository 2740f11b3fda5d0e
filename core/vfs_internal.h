/* SPDX-License-Identifier: MIT */
/*
 * vfs_internal.h - shared pieces of the filesystem layer (inode.c, dir.c,
 * file.c, xattr.c).  Not installed.
 */
#ifndef ARBOR_VFS_INTERNAL_H
#define ARBOR_VFS_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "arbor/btree.h"
#include "arbor/vfs.h"
#include "fs_internal.h"

/* Host-endian working copy of an inode item. */
struct vnode {
	struct arb_tree *t;
	uint64_t local;
	arb_ino_t ino;
	uint64_t generation, size, nbytes;
	uint32_t nlink, uid, gid, mode;
	uint64_t rdev, flags, next_index, sequence;
	struct timespec atime, mtime, ctime, otime;
};

/* inode.c */
int vnode_get(struct arb_fs *fs, arb_ino_t ino, struct vnode *v);
int vnode_put(struct vnode *v);
int vnode_new(struct arb_fs *fs, struct arb_tree *t, uint32_t mode, uint64_t rdev,
              const struct arb_cred *cred, const struct vnode *parent, struct vnode *v);
/* Drop the last link: free now, or park on the orphan list while open. */
int vnode_unlinked(struct vnode *v);
void vnode_touch(struct vnode *v, bool mtime);
/* A read: atime, with relatime rules. */
void vnode_accessed(struct vnode *v);
void vnode_stat(const struct vnode *v, struct arb_stat *st);
struct timespec vfs_now(const struct arb_fs *fs);
int vfs_subvol_tree(struct arb_fs *fs, arb_ino_t ino, struct arb_tree **ret);
/* -EROFS for a read-only subvolume (a snapshot made with -r). */
int vfs_tree_writable(const struct arb_tree *t);
bool vnode_is_dir(const struct vnode *v);
/* Room for an operation of `sectors` before it changes anything, keeping
 * the reserve (half of it for operations that free space); commits (at
 * this boundary) when recently freed space must first be released. */
int vfs_reserve(struct arb_fs *fs, uint64_t sectors, bool freeing);
/* The same, with the worst case in node-sized free groups given apart:
 * `groups` of them must be free besides the tier (vfs_reserve counts
 * sectors / node size, right for metadata alone). */
int vfs_reserve_ex(struct arb_fs *fs, uint64_t sectors, uint64_t groups, bool freeing);

/* dir.c */
uint64_t arb_name_hash(uint64_t seed, const void *name, size_t len);
int vfs_check_name(const char *name, size_t *ret_len);
int dir_parent(struct arb_tree *t, uint64_t local, uint64_t *ret_parent);

/* Items holding a chain of named records (hash collisions): directory
 * entries, back-references, xattrs. */
enum rec_kind { REC_DIRENT, REC_IREF, REC_XATTR };
long rec_find(enum rec_kind kind, const uint8_t *data, uint32_t len, const char *name, size_t nlen,
              uint64_t parent);
/* The item's data in a malloc'ed buffer of arb_max_item_size bytes. */
int hitem_read(struct arb_tree *t, const struct arb_key *key, uint8_t **ret_buf, uint32_t *ret_len);
int hitem_add(struct arb_tree *t, const struct arb_key *key, const void *rec, uint32_t rlen);
int hitem_remove(struct arb_tree *t, const struct arb_key *key, enum rec_kind kind,
                 const char *name, size_t nlen, uint64_t parent);

/* file.c */
int file_truncate(struct vnode *v, uint64_t size);
/* Remove every extent of an inode (freeing it). */
int file_drop_all(struct vnode *v);
int file_write(struct vnode *v, uint64_t off, const void *buf, size_t len);
/* *changed tells whether anything was modified before an error; *was_inline
 * (may be NULL) whether the file held inline data. */
int file_write_ex(struct vnode *v, uint64_t off, const void *buf, size_t len, bool *changed,
                  bool *was_inline);
int file_read(struct vnode *v, uint64_t off, void *buf, size_t len, size_t *ret_read);
/* The fsync log: describe [start, end) (sector multiples) as pieces, each
 * an extent item clipped to the range or a hole (item NULL); -EAGAIN for
 * inline data, which is not logged. */
typedef int (*file_log_fn)(void *ctx, uint64_t off, uint64_t len, const void *item,
                           uint32_t item_len);
int file_log_range(struct vnode *v, uint64_t start, uint64_t end, file_log_fn fn, void *ctx);
/* Replay: make [off, off+len) hold the logged piece (or a hole); the
 * caller stores the inode item, which carries the logged size and nbytes. */
int file_log_apply(struct vnode *v, uint64_t off, uint64_t len, const void *item,
                   uint32_t item_len);
/* Do the data sectors of a logged piece hold what its checksums say? */
int file_log_verify(struct arb_fs *fs, uint64_t off, uint64_t len, const void *item,
                    uint32_t item_len);

/* Subvolume links (dir.c).  A directory to receive name: -EEXIST if taken;
 * read-only subvolumes refuse. */
int dir_for_new_name(struct arb_fs *fs, arb_ino_t dir, const char *name, size_t *nlen,
                     struct vnode *d);
/* The subvolume linked as dir/name (-ENOTTY: not a subvolume link). */
int dir_find_subvol(struct arb_fs *fs, arb_ino_t dir, const char *name, struct vnode *d,
                    size_t *nlen, uint64_t *ret_id, uint64_t *ret_index);
int dir_add_subvol(struct vnode *dir, const char *name, size_t nlen, uint64_t id,
                   uint64_t *ret_index);
int dir_remove_subvol(struct vnode *dir, const char *name, size_t nlen, uint64_t index);
/* subvol.c: where subvolume id is linked (-ENOENT: nowhere) */
int subvol_backref(struct arb_fs *fs, uint64_t id, uint64_t *ret_parent, uint64_t *ret_dirid,
                   char *name, size_t *ret_nlen);
/* Rename the link of a subvolume (within one parent subvolume). */
int subvol_move(struct arb_fs *fs, struct vnode *from, const char *name, size_t nlen,
                struct vnode *to, const char *newname, size_t newlen);

/* Delete every item whose objectid is local (an inode being freed). */
int vfs_delete_items(struct arb_tree *t, uint64_t local);

#endif
