/* SPDX-License-Identifier: MIT */
/*
 * subvol.c - subvolumes in the namespace: new subvolumes and snapshots
 * linked into a directory, their deletion, listing, the default one.
 *
 * A subvolume is a tree of its own (arbor_format.h).  Its name is a
 * directory entry of type ARB_DT_SUBVOL in some directory of another
 * subvolume, mirrored by a ROOT_REF / ROOT_BACKREF pair in the root tree,
 * so that both "what is linked below this subvolume" and "where is this
 * subvolume linked" are one search each.  A snapshot is an O(1) clone of
 * the source tree (one more reference on its root node) plus that link.
 * Subvolumes linked below the source are not part of a snapshot (the
 * snapshot's copies of their links are removed: one edit per nested
 * subvolume, never per file), as in btrfs.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "vfs_internal.h"

#define RREF_HDR ((uint32_t)sizeof(struct arb_root_ref))

/* ---- root refs ------------------------------------------------------------------- */

static int rref_write(struct arb_fs *fs, uint64_t parent, uint64_t child, uint64_t dirid,
                      uint64_t index, const char *name, size_t nlen)
{
	uint8_t rec[sizeof(struct arb_root_ref) + ARB_NAME_MAX];
	struct arb_root_ref r = {htole64(dirid), htole64(index), htole16((uint16_t)nlen)};
	struct arb_key ref = {parent, ARB_ROOT_REF_KEY, child};
	struct arb_key back = {child, ARB_ROOT_BACKREF_KEY, parent};
	int err;

	memcpy(rec, &r, RREF_HDR);
	memcpy(rec + RREF_HDR, name, nlen);
	err = arb_sys_put(&fs->root_tree, &ref, rec, (uint32_t)(RREF_HDR + nlen));
	if (!err)
		err = arb_sys_put(&fs->root_tree, &back, rec, (uint32_t)(RREF_HDR + nlen));
	return err;
}

static int rref_delete(struct arb_fs *fs, uint64_t parent, uint64_t child)
{
	struct arb_key ref = {parent, ARB_ROOT_REF_KEY, child};
	struct arb_key back = {child, ARB_ROOT_BACKREF_KEY, parent};
	int err = arb_sys_delete(&fs->root_tree, &ref);

	return err ? err : arb_sys_delete(&fs->root_tree, &back);
}

/* The first root-tree item (objectid, type, *): 1 with its key and a copy
 * of its data (at most cap bytes), 0 if none. */
static int first_item(struct arb_fs *fs, uint64_t objectid, uint8_t type, uint64_t from,
                      struct arb_key *ret_key, void *buf, uint32_t cap, uint32_t *ret_len)
{
	struct arb_key start = {objectid, type, from};
	struct arb_iter *it;
	const void *data;
	uint32_t len;
	int ret = arb_iter_open(&fs->root_tree, &start, ARB_ITER_FORWARD, &it);

	if (ret)
		return ret;
	ret = arb_iter_next(it, ret_key, &data, &len);
	if (ret == 1 && (ret_key->objectid != objectid || ret_key->type != type))
		ret = 0;
	if (ret == 1 && buf) {
		memcpy(buf, data, len < cap ? len : cap);
		*ret_len = len;
	}
	arb_iter_close(it);
	return ret;
}

int subvol_backref(struct arb_fs *fs, uint64_t id, uint64_t *ret_parent, uint64_t *ret_dirid,
                   char *name, size_t *ret_nlen)
{
	uint8_t rec[sizeof(struct arb_root_ref) + ARB_NAME_MAX];
	struct arb_root_ref r;
	struct arb_key k;
	uint32_t len = 0;
	int ret = first_item(fs, id, ARB_ROOT_BACKREF_KEY, 0, &k, rec, sizeof(rec), &len);

	if (ret <= 0)
		return ret ? ret : -ENOENT;
	memcpy(&r, rec, RREF_HDR);
	if (len < RREF_HDR || len != RREF_HDR + le16toh(r.name_len) ||
	    le16toh(r.name_len) > ARB_NAME_MAX)
		return -EUCLEAN;
	*ret_parent = k.offset;
	*ret_dirid = le64toh(r.dirid);
	if (name) {
		memcpy(name, rec + RREF_HDR, le16toh(r.name_len));
		name[le16toh(r.name_len)] = 0;
	}
	if (ret_nlen)
		*ret_nlen = le16toh(r.name_len);
	return 0;
}

/* ---- the default subvolume ---------------------------------------------------------- */

int arb_vfs_subvol_default(struct arb_fs *fs, uint64_t *ret_id)
{
	struct arb_key k = {ARB_DEFAULT_SUBVOL_OBJ, ARB_DEFAULT_SUBVOL_KEY, 0};
	uint64_t v;
	uint32_t len;
	int err = arb_lookup(&fs->root_tree, &k, &v, sizeof(v), &len);

	if (!err)
		*ret_id = le64toh(v);
	return err;
}

int arb_vfs_subvol_set_default(struct arb_fs *fs, uint64_t id)
{
	struct arb_key k = {ARB_DEFAULT_SUBVOL_OBJ, ARB_DEFAULT_SUBVOL_KEY, 0};
	uint64_t v = htole64(id);
	arb_ino_t root;
	int err = arb_check_mutable(fs);

	/* a subvolume: a tree with a root directory (not any user tree, such
	 * as one made by arb_tree_create, which nothing could mount) */
	if (!err)
		err = id ? arb_vfs_root(fs, id, &root) : -ENOENT;
	if (!err)
		err = arb_sys_put(&fs->root_tree, &k, &v, sizeof(v));
	return err;
}

/* ---- information ---------------------------------------------------------------- */

int arb_vfs_subvol_get(struct arb_fs *fs, uint64_t id, struct arb_subvol *sv)
{
	struct arb_tree *t;
	uint64_t def = 0;
	int err = id >= ARB_FIRST_USER_TREE ? arb_tree_get(fs, id, &t) : -ENOENT;

	if (err)
		return err;
	memset(sv, 0, sizeof(*sv));
	sv->id = id;
	err = subvol_backref(fs, id, &sv->parent_id, &sv->dirid, sv->name, NULL);
	if (err && err != -ENOENT)
		return err;
	sv->readonly = (le64toh(t->item.flags) & ARB_ROOT_RDONLY) != 0;
	memcpy(sv->uuid, t->item.uuid, 16);
	memcpy(sv->parent_uuid, t->item.parent_uuid, 16);
	sv->source_id = le64toh(t->item.parent_id);
	sv->create_gen = le64toh(t->item.create_gen);
	sv->ctime.tv_sec = (time_t)le64toh(t->item.ctime_sec);
	sv->ctime.tv_nsec = (long)le32toh(t->item.ctime_nsec);
	sv->generation = t->root.generation;
	if (arb_vfs_subvol_default(fs, &def) == 0)
		sv->is_default = def == id;
	return 0;
}

int arb_vfs_subvol_list(struct arb_fs *fs, arb_subvol_fn fn, void *ctx)
{
	uint64_t next = ARB_FIRST_USER_TREE;

	for (;;) {
		struct arb_key start = {next, ARB_ROOT_ITEM_KEY, 0}, k = {0};
		struct arb_iter *it;
		struct arb_subvol sv;
		int ret = arb_iter_open(&fs->root_tree, &start, ARB_ITER_FORWARD, &it);

		if (ret)
			return ret;
		/* the next root item at or after `next` */
		while ((ret = arb_iter_next(it, &k, NULL, NULL)) == 1 &&
		       k.type != ARB_ROOT_ITEM_KEY)
			;
		arb_iter_close(it);
		if (ret <= 0)
			return ret;
		ret = arb_vfs_subvol_get(fs, k.objectid, &sv);
		if (ret == -ENOENT) /* deleted, being freed */
			ret = 0;
		else if (!ret)
			ret = fn(ctx, &sv);
		if (ret)
			return ret < 0 ? ret : 0;
		next = k.objectid + 1;
	}
}

/* ---- creation --------------------------------------------------------------------- */

/* Name subvolume id as d/name. */
static int link_subvol(struct arb_fs *fs, struct vnode *d, const char *name, size_t nlen,
                       uint64_t id)
{
	uint64_t index;
	int err = dir_add_subvol(d, name, nlen, id, &index);

	if (!err)
		err = rref_write(fs, arb_tree_id(d->t), id, d->local, index, name, nlen);
	if (!err)
		err = vnode_put(d);
	return err;
}

static int subvol_stat(struct arb_fs *fs, uint64_t id, struct arb_stat *st)
{
	return st ? arb_vfs_getattr(fs, arb_ino_make(id, ARB_FIRST_INO), st) : 0;
}

/* The directory that is to receive a new subvolume link, with room for
 * the operation; nothing changed yet. */
static int prepare_link(struct arb_fs *fs, arb_ino_t dir, const char *name, size_t *nlen,
                        struct vnode *d)
{
	int err = dir_for_new_name(fs, dir, name, nlen, d);

	if (!err && d->nlink >= ARB_LINK_MAX)
		err = -EMLINK;
	return err ? err : vfs_reserve(fs, 128ull * fs->node_sectors, false);
}

int arb_vfs_subvol_make(struct arb_fs *fs, arb_ino_t dir, const char *name, uint32_t perm,
                        const struct arb_cred *cred, struct arb_stat *st)
{
	struct vnode d;
	size_t nlen;
	uint64_t id;
	int err = arb_check_mutable(fs);

	if (!err)
		err = prepare_link(fs, dir, name, &nlen, &d);
	if (err)
		return err;
	err = arb_vfs_subvol_create(fs, perm, cred, &id);
	if (!err)
		err = link_subvol(fs, &d, name, nlen, id);
	if (err)
		return arb_fail(fs, err, "creating subvolume '%s' failed part-way", name);
	return subvol_stat(fs, id, st);
}

/* The snapshot's copies of the links to subvolumes nested in the source
 * lead nowhere of their own: remove them. */
static int drop_nested_links(struct arb_fs *fs, uint64_t src, struct arb_tree *snap)
{
	uint8_t rec[sizeof(struct arb_root_ref) + ARB_NAME_MAX + 1];
	uint64_t from = 0;
	struct arb_key k;
	uint32_t len;
	int ret;

	while ((ret = first_item(fs, src, ARB_ROOT_REF_KEY, from, &k, rec, sizeof(rec) - 1,
	                         &len)) == 1) {
		struct arb_root_ref r;
		struct vnode d;

		memcpy(&r, rec, RREF_HDR);
		if (len < RREF_HDR || len != RREF_HDR + le16toh(r.name_len))
			return -EUCLEAN;
		ret = vnode_get(fs, arb_ino_make(arb_tree_id(snap), le64toh(r.dirid)), &d);
		if (!ret)
			ret = dir_remove_subvol(&d, (const char *)rec + RREF_HDR,
			                        le16toh(r.name_len), le64toh(r.index));
		if (!ret)
			ret = vnode_put(&d);
		if (ret)
			return ret;
		from = k.offset + 1;
	}
	return ret;
}

/* An O(1) copy of subvolume src, without the links of its nested ones. */
static int clone_subvol(struct arb_fs *fs, uint64_t src, uint64_t *ret_id, struct arb_tree **ret)
{
	int err = arb_tree_clone(fs, src, ret_id);

	if (!err)
		err = arb_tree_get(fs, *ret_id, ret);
	return err ? err : drop_nested_links(fs, src, *ret);
}

int arb_vfs_snapshot(struct arb_fs *fs, uint64_t src_id, arb_ino_t dir, const char *name,
                     unsigned flags, struct arb_stat *st)
{
	struct arb_tree *src, *snap;
	struct vnode d;
	size_t nlen;
	uint64_t id;
	int err = arb_check_mutable(fs);

	if (!err && (flags & ~ARB_SNAPSHOT_RDONLY))
		err = -EINVAL;
	if (!err)
		err = src_id >= ARB_FIRST_USER_TREE ? arb_tree_get(fs, src_id, &src) : -ENOENT;
	if (!err)
		err = prepare_link(fs, dir, name, &nlen, &d);
	if (err)
		return err;
	/* clone first: the link below is not part of the snapshot */
	err = clone_subvol(fs, src_id, &id, &snap);
	if (!err && (flags & ARB_SNAPSHOT_RDONLY)) {
		snap->item.flags = htole64(le64toh(snap->item.flags) | ARB_ROOT_RDONLY);
		snap->item_dirty = true;
	}
	if (!err)
		err = vnode_get(fs, dir, &d); /* the clone may have shared it */
	if (!err)
		err = link_subvol(fs, &d, name, nlen, id);
	if (err)
		return arb_fail(fs, err, "snapshot '%s' failed part-way", name);
	/* The snapshot's inodes are the source's, untracked by the fsync log,
	 * and its tree is not durable before the next commit: a logged fsync
	 * of one of them could not be replayed (no such tree after a crash).
	 * Until that commit, every fsync commits. */
	fs->log.all_commit = true;
	return subvol_stat(fs, id, st);
}

/* ---- deletion and renaming --------------------------------------------------------- */

int arb_vfs_subvol_delete(struct arb_fs *fs, arb_ino_t dir, const char *name)
{
	uint8_t rec[sizeof(struct arb_root_ref) + ARB_NAME_MAX];
	struct vnode d;
	struct arb_key k;
	size_t nlen;
	uint64_t id, index, def = 0;
	uint32_t len;
	int err = arb_check_mutable(fs);

	if (!err)
		err = dir_find_subvol(fs, dir, name, &d, &nlen, &id, &index);
	if (err)
		return err;
	err = first_item(fs, id, ARB_ROOT_REF_KEY, 0, &k, rec, sizeof(rec), &len);
	if (err)
		return err < 0 ? err : -ENOTEMPTY; /* subvolumes are linked inside it */
	if (arb_vfs_subvol_default(fs, &def) == 0 && def == id)
		return -EBUSY;
	err = vfs_reserve(fs, 64ull * fs->node_sectors, true);
	if (err)
		return err;
	err = dir_remove_subvol(&d, name, nlen, index);
	if (!err)
		err = rref_delete(fs, arb_tree_id(d.t), id);
	if (!err)
		err = vnode_put(&d);
	if (!err)
		err = arb_tree_drop(fs, id);
	return err ? arb_fail(fs, err, "deleting subvolume '%s' failed part-way", name) : 0;
}

int subvol_move(struct arb_fs *fs, struct vnode *from, const char *name, size_t nlen,
                struct vnode *to, const char *newname, size_t newlen)
{
	bool same = from->local == to->local;
	struct vnode *dst = same ? from : to;
	uint64_t id, index, newindex;
	size_t n;
	struct vnode tmp;
	int err = dir_find_subvol(fs, arb_ino_make(arb_tree_id(from->t), from->local), name, &tmp,
	                          &n, &id, &index);

	if (err)
		return err;
	err = dir_remove_subvol(from, name, nlen, index);
	if (!err)
		err = dir_add_subvol(dst, newname, newlen, id, &newindex);
	if (!err)
		err = rref_write(fs, arb_tree_id(dst->t), id, dst->local, newindex, newname,
		                 newlen);
	if (!err)
		err = vnode_put(from);
	if (!err && !same)
		err = vnode_put(to);
	return err ? arb_fail(fs, err, "renaming subvolume '%s' failed part-way", name) : 0;
}

/* ---- rollback and space ------------------------------------------------------------ */

/*
 * The subvolume linked as dir/name takes the content of snapshot snap_id:
 * a writable snapshot of it is linked under that name in the same
 * transaction, and the old subvolume is linked as dir/keep_name (or, with
 * keep_name NULL, deleted).  The path stays; the subvolume's id and inode
 * numbers change, so nothing still open in the old one can reach the new
 * content by mistake.  The default subvolume follows the name.
 */
int arb_vfs_rollback(struct arb_fs *fs, arb_ino_t dir, const char *name, uint64_t snap_id,
                     const char *keep_name, uint64_t *ret_new_id)
{
	struct arb_tree *snap, *t;
	struct vnode d, tmp;
	struct arb_key k;
	uint8_t rec[sizeof(struct arb_root_ref) + ARB_NAME_MAX];
	size_t nlen, klen = 0;
	uint64_t old = 0, index = 0, id = 0, def = 0;
	uint32_t len;
	int err = arb_check_mutable(fs);

	if (!err)
		err = dir_find_subvol(fs, dir, name, &d, &nlen, &old, &index);
	if (!err)
		err = snap_id >= ARB_FIRST_USER_TREE ? arb_tree_get(fs, snap_id, &snap) : -ENOENT;
	if (!err && snap_id == old)
		err = -EINVAL;
	if (!err && keep_name)
		err = dir_for_new_name(fs, dir, keep_name, &klen, &tmp);
	if (!err && !keep_name) {
		/* deleting the old one: the rules of arb_vfs_subvol_delete */
		err = first_item(fs, old, ARB_ROOT_REF_KEY, 0, &k, rec, sizeof(rec), &len);
		if (err > 0)
			err = -ENOTEMPTY;
	}
	if (!err)
		err = vfs_reserve(fs, 256ull * fs->node_sectors, false);
	if (err)
		return err;
	err = clone_subvol(fs, snap_id, &id, &t);
	if (!err)
		err = vnode_get(fs, dir, &d);
	if (!err)
		err = dir_remove_subvol(&d, name, nlen, index);
	if (!err)
		err = rref_delete(fs, arb_tree_id(d.t), old);
	if (!err)
		err = link_subvol(fs, &d, name, nlen, id);
	if (!err && keep_name)
		err = vnode_get(fs, dir, &d);
	if (!err && keep_name)
		err = link_subvol(fs, &d, keep_name, klen, old);
	if (!err && arb_vfs_subvol_default(fs, &def) == 0 && def == old)
		err = arb_vfs_subvol_set_default(fs, id);
	if (!err && !keep_name)
		err = arb_tree_drop(fs, old);
	if (err)
		return arb_fail(fs, err, "rollback of '%s' failed part-way", name);
	fs->log.all_commit = true; /* as after a snapshot: a tree new in this commit */
	if (ret_new_id)
		*ret_new_id = id;
	return 0;
}

int arb_vfs_subvol_usage(struct arb_fs *fs, uint64_t id, struct arb_subvol_usage *u)
{
	struct arb_tree_usage tu;
	struct arb_tree *t;
	int err = id >= ARB_FIRST_USER_TREE ? arb_tree_get(fs, id, &t) : -ENOENT;

	if (!err)
		err = arb_tree_usage(t, &tu);
	if (err)
		return err;
	u->referenced_bytes = tu.ref_nodes * fs->nodesize + tu.ref_data_sectors * fs->sectorsize;
	u->exclusive_bytes = tu.excl_nodes * fs->nodesize + tu.excl_data_sectors * fs->sectorsize;
	u->nodes_read = tu.nodes_read;
	return 0;
}
