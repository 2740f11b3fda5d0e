/* SPDX-License-Identifier: MIT */
/*
 * inode.c - inodes of the filesystem layer: numbering, load and store,
 * attributes, creation and freeing, open counts and the orphan list, the
 * top-level subvolume, statfs.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "vfs_internal.h"

/* ---- numbers ----------------------------------------------------------- */

uint64_t arb_ino_subvol(arb_ino_t ino)
{
	return (ino >> ARB_SUBVOL_SHIFT) + ARB_FIRST_USER_TREE - 1;
}

uint64_t arb_ino_local(arb_ino_t ino)
{
	return ino & ((1ull << ARB_SUBVOL_SHIFT) - 1);
}

arb_ino_t arb_ino_make(uint64_t subvol_id, uint64_t local)
{
	return ((subvol_id - ARB_FIRST_USER_TREE + 1) << ARB_SUBVOL_SHIFT) | local;
}

int vfs_tree_writable(const struct arb_tree *t)
{
	return le64toh(t->item.flags) & ARB_ROOT_RDONLY ? -EROFS : 0;
}

int vfs_subvol_tree(struct arb_fs *fs, arb_ino_t ino, struct arb_tree **ret)
{
	uint64_t id = arb_ino_subvol(ino);

	if (ino >> ARB_SUBVOL_SHIFT == 0 || arb_ino_local(ino) < ARB_FIRST_INO)
		return -ENOENT;
	return arb_tree_get(fs, id, ret);
}

struct timespec vfs_now(const struct arb_fs *fs)
{
	struct timespec ts;

	if (fs->fixed_time) /* reproducible images (SOURCE_DATE_EPOCH) */
		return (struct timespec){(time_t)fs->fixed_time, 0};
	clock_gettime(CLOCK_REALTIME, &ts);
	return ts;
}

/* ---- load and store ---------------------------------------------------- */

static void ts_from_disk(const struct arb_timespec *d, struct timespec *t)
{
	t->tv_sec = (time_t)le64toh(d->sec);
	t->tv_nsec = (long)le32toh(d->nsec);
}

static void ts_to_disk(const struct timespec *t, struct arb_timespec *d)
{
	d->sec = htole64((uint64_t)t->tv_sec);
	d->nsec = htole32((uint32_t)t->tv_nsec);
}

static void vnode_from_disk(const struct arb_inode_item *d, struct vnode *v)
{
	v->generation = le64toh(d->generation);
	v->size = le64toh(d->size);
	v->nbytes = le64toh(d->nbytes);
	v->nlink = le32toh(d->nlink);
	v->uid = le32toh(d->uid);
	v->gid = le32toh(d->gid);
	v->mode = le32toh(d->mode);
	v->rdev = le64toh(d->rdev);
	v->flags = le64toh(d->flags);
	v->next_index = le64toh(d->next_index);
	v->sequence = le64toh(d->sequence);
	ts_from_disk(&d->atime, &v->atime);
	ts_from_disk(&d->mtime, &v->mtime);
	ts_from_disk(&d->ctime, &v->ctime);
	ts_from_disk(&d->otime, &v->otime);
}

static void vnode_to_disk(const struct vnode *v, struct arb_inode_item *d)
{
	memset(d, 0, sizeof(*d));
	d->generation = htole64(v->generation);
	d->size = htole64(v->size);
	d->nbytes = htole64(v->nbytes);
	d->nlink = htole32(v->nlink);
	d->uid = htole32(v->uid);
	d->gid = htole32(v->gid);
	d->mode = htole32(v->mode);
	d->rdev = htole64(v->rdev);
	d->flags = htole64(v->flags);
	d->next_index = htole64(v->next_index);
	d->sequence = htole64(v->sequence);
	ts_to_disk(&v->atime, &d->atime);
	ts_to_disk(&v->mtime, &d->mtime);
	ts_to_disk(&v->ctime, &d->ctime);
	ts_to_disk(&v->otime, &d->otime);
}

int vnode_get(struct arb_fs *fs, arb_ino_t ino, struct vnode *v)
{
	struct arb_inode_item d;
	uint32_t len;
	int err = vfs_subvol_tree(fs, ino, &v->t);

	if (err)
		return err == -ENOENT ? -ENOENT : err;
	v->local = arb_ino_local(ino);
	v->ino = ino;
	struct arb_key k = {v->local, ARB_INODE_ITEM_KEY, 0};

	err = arb_lookup(v->t, &k, &d, sizeof(d), &len);
	if (err)
		return err;
	if (len != sizeof(d)) {
		arb_msgf(fs, ARB_MSG_ERR, "inode %llu: item of %u bytes", (unsigned long long)ino,
		         len);
		return -EUCLEAN;
	}
	vnode_from_disk(&d, v);
	return 0;
}

/* Store the inode item without telling the fsync log (atime only). */
static int vnode_store(struct vnode *v)
{
	struct arb_inode_item d;
	struct arb_key k = {v->local, ARB_INODE_ITEM_KEY, 0};

	vnode_to_disk(v, &d);
	return arb_put(v->t, &k, &d, sizeof(d));
}

int vnode_put(struct vnode *v)
{
	arb_log_inode_changed(v->t->fs, v->ino);
	return vnode_store(v);
}

void vnode_touch(struct vnode *v, bool mtime)
{
	v->ctime = vfs_now(v->t->fs);
	if (mtime)
		v->mtime = v->ctime;
	v->sequence++;
}

static bool ts_before(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

/*
 * Reading updates atime the way Linux's relatime does: only when atime is
 * not newer than mtime or ctime, or is a day old.  Updating it on every
 * read would rewrite metadata (copy-on-write) on every read.  Best effort:
 * a read-only or full filesystem keeps the old atime.
 */
void vnode_accessed(struct vnode *v)
{
	struct arb_fs *fs = v->t->fs;
	struct timespec now = vfs_now(fs);

	if (arb_check_mutable(fs) || vfs_tree_writable(v->t) ||
	    arb_sm_free_sectors(&fs->sm) < 2 * fs->sm.reserve_sectors)
		return;
	if (!ts_before(&v->atime, &v->mtime) && !ts_before(&v->atime, &v->ctime) &&
	    v->atime.tv_sec + 24 * 3600 > now.tv_sec)
		return;
	v->atime = now;
	vnode_store(v);
}

bool vnode_is_dir(const struct vnode *v)
{
	return S_ISDIR(v->mode);
}

void vnode_stat(const struct vnode *v, struct arb_stat *st)
{
	memset(st, 0, sizeof(*st));
	st->ino = v->ino;
	st->mode = v->mode;
	st->nlink = v->nlink;
	st->uid = v->uid;
	st->gid = v->gid;
	st->rdev = v->rdev;
	st->size = v->size;
	st->blocks = (v->nbytes + 511) / 512;
	st->atime = v->atime;
	st->mtime = v->mtime;
	st->ctime = v->ctime;
	st->btime = v->otime;
	st->generation = v->generation;
}

/* ---- subvolume info: inode numbers ---------------------------------------- */

static int subvol_info(struct arb_tree *t, struct arb_subvol_info *si)
{
	struct arb_key k = {ARB_SUBVOL_INFO_OBJ, ARB_SUBVOL_INFO_KEY, 0};
	uint32_t len;
	int err = arb_lookup(t, &k, si, sizeof(*si), &len);

	return !err && len != sizeof(*si) ? -EUCLEAN : err;
}

static int subvol_info_put(struct arb_tree *t, const struct arb_subvol_info *si)
{
	struct arb_key k = {ARB_SUBVOL_INFO_OBJ, ARB_SUBVOL_INFO_KEY, 0};

	return arb_put(t, &k, si, sizeof(*si));
}

/* reserved[0] of the info item counts the subvolume's inodes */
static int count_inodes(struct arb_tree *t, int delta)
{
	struct arb_subvol_info si;
	int err = subvol_info(t, &si);

	if (err)
		return err;
	si.reserved[0] = htole64(le64toh(si.reserved[0]) + (uint64_t)(int64_t)delta);
	return subvol_info_put(t, &si);
}

int vnode_new(struct arb_fs *fs, struct arb_tree *t, uint32_t mode, uint64_t rdev,
              const struct arb_cred *cred, const struct vnode *parent, struct vnode *v)
{
	struct arb_subvol_info si;
	int err = subvol_info(t, &si);

	if (err)
		return err;
	memset(v, 0, sizeof(*v));
	v->t = t;
	v->local = le64toh(si.next_ino);
	if (v->local >= (1ull << ARB_SUBVOL_SHIFT))
		return -ENOSPC;
	si.next_ino = htole64(v->local + 1);
	si.reserved[0] = htole64(le64toh(si.reserved[0]) + 1);
	err = subvol_info_put(t, &si);
	if (err)
		return err;
	v->ino = arb_ino_make(arb_tree_id(t), v->local);
	v->generation = arb_generation_running(fs);
	v->mode = mode;
	v->rdev = rdev;
	v->uid = cred->uid;
	v->gid = cred->gid;
	v->nlink = S_ISDIR(mode) ? 2 : 1;
	v->next_index = 2; /* 0 and 1 are "." and ".." for readdir */
	if (parent && (parent->mode & S_ISGID)) {
		/* BSD group semantics below a setgid directory */
		v->gid = parent->gid;
		if (S_ISDIR(mode))
			v->mode |= S_ISGID;
	}
	v->atime = v->mtime = v->ctime = v->otime = vfs_now(fs);
	return vnode_put(v);
}

/* ---- freeing, open counts, orphans ------------------------------------------ */

struct open_slot {
	arb_ino_t ino;
	uint32_t count;
};

struct vfs_state {
	struct open_slot *tab;
	size_t cap, used;
};

void arb_vfs_free_state(struct arb_fs *fs)
{
	if (fs->vfs)
		free(fs->vfs->tab);
	free(fs->vfs);
	fs->vfs = NULL;
}

/* Open counts: an open-addressing hash (inode 0 marks a free slot), since
 * a FUSE daemon counts every inode the kernel knows. */
static size_t open_home(arb_ino_t ino, size_t cap)
{
	return (size_t)((ino * 0x9E3779B97F4A7C15ull) >> 20) & (cap - 1);
}

static int open_grow(struct vfs_state *s)
{
	size_t cap = s->cap ? 2 * s->cap : 64;
	struct open_slot *tab = calloc(cap, sizeof(*tab));

	if (!tab)
		return -ENOMEM;
	for (size_t i = 0; i < s->cap; i++) {
		if (!s->tab[i].ino)
			continue;
		size_t j = open_home(s->tab[i].ino, cap);

		while (tab[j].ino)
			j = (j + 1) & (cap - 1);
		tab[j] = s->tab[i];
	}
	free(s->tab);
	s->tab = tab;
	s->cap = cap;
	return 0;
}

static struct open_slot *open_find(struct arb_fs *fs, arb_ino_t ino, bool create)
{
	struct vfs_state *s = fs->vfs;

	if (!s && (!create || !(s = fs->vfs = calloc(1, sizeof(*s)))))
		return NULL;
	if (create && (s->used + 1) * 10 > s->cap * 7 && open_grow(s))
		return NULL;
	for (size_t i = s->cap ? open_home(ino, s->cap) : 0; s->cap; i = (i + 1) & (s->cap - 1)) {
		if (s->tab[i].ino == ino)
			return &s->tab[i];
		if (!s->tab[i].ino) {
			if (!create)
				return NULL;
			s->used++;
			s->tab[i] = (struct open_slot){ino, 0};
			return &s->tab[i];
		}
	}
	return NULL;
}

/* Remove a slot, shifting back the entries that probed past it. */
static void open_forget(struct arb_fs *fs, struct open_slot *o)
{
	struct vfs_state *s = fs->vfs;
	size_t hole = (size_t)(o - s->tab);

	s->tab[hole].ino = 0;
	s->used--;
	for (size_t i = (hole + 1) & (s->cap - 1); s->tab[i].ino; i = (i + 1) & (s->cap - 1)) {
		size_t home = open_home(s->tab[i].ino, s->cap);

		/* move it if the hole lies on its probe path (cyclically) */
		if ((i > hole && (home <= hole || home > i)) ||
		    (i < hole && home <= hole && home > i)) {
			s->tab[hole] = s->tab[i];
			s->tab[i].ino = 0;
			hole = i;
		}
	}
}

static int orphan_key_op(struct vnode *v, bool add)
{
	struct arb_key k = {ARB_ORPHAN_OBJ, ARB_ORPHAN_KEY, v->local};

	return add ? arb_put(v->t, &k, NULL, 0) : arb_delete(v->t, &k);
}

/* Free an inode with no name and no opener: data, xattrs, the item. */
static int vnode_free(struct vnode *v)
{
	int err = file_drop_all(v);

	if (!err)
		err = vfs_delete_items(v->t, v->local);
	if (!err)
		err = count_inodes(v->t, -1);
	return err;
}

int vnode_unlinked(struct vnode *v)
{
	struct open_slot *o = open_find(v->t->fs, v->ino, false);

	if (o && o->count)
		return orphan_key_op(v, true);
	return vnode_free(v);
}

int arb_vfs_open(struct arb_fs *fs, arb_ino_t ino)
{
	struct vnode v;
	int err = vnode_get(fs, ino, &v);
	struct open_slot *o;

	if (err)
		return err;
	o = open_find(fs, ino, true);
	if (!o)
		return -ENOMEM;
	o->count++;
	return 0;
}

int arb_vfs_release(struct arb_fs *fs, arb_ino_t ino)
{
	return arb_vfs_forget(fs, ino, 1);
}

int arb_vfs_forget(struct arb_fs *fs, arb_ino_t ino, uint64_t n)
{
	struct open_slot *o = open_find(fs, ino, false);
	struct vnode v;
	int err;

	if (!o || o->count < n)
		return -EBADF;
	o->count -= (uint32_t)n;
	if (o->count)
		return 0;
	open_forget(fs, o);
	err = vnode_get(fs, ino, &v);
	if (err || v.nlink)
		return err;
	if (arb_check_mutable(fs))
		return 0; /* read-only: the orphan is freed by a later writable open */
	err = orphan_key_op(&v, false);
	return err ? err : vnode_free(&v);
}

/* Orphans of one subvolume: collect first, the frees change the tree. */
static int cleanup_tree(struct arb_fs *fs, struct arb_tree *t, uint64_t *freed)
{
	struct arb_key start = {ARB_ORPHAN_OBJ, ARB_ORPHAN_KEY, 0}, k;
	uint64_t *inos = NULL;
	size_t n = 0, cap = 0;
	struct arb_iter *it;
	int ret;

	/* a read-only snapshot keeps the orphans it was taken with until it
	 * is deleted */
	if (vfs_tree_writable(t))
		return 0;
	ret = arb_iter_open(t, &start, ARB_ITER_FORWARD, &it);
	if (ret)
		return ret;
	while ((ret = arb_iter_next(it, &k, NULL, NULL)) == 1 && k.objectid == ARB_ORPHAN_OBJ) {
		if (n == cap) {
			uint64_t *p = realloc(inos, (cap = cap ? 2 * cap : 16) * sizeof(*p));

			if (!p) {
				ret = -ENOMEM;
				break;
			}
			inos = p;
		}
		inos[n++] = k.offset;
	}
	arb_iter_close(it);
	for (size_t i = 0; i < n && ret >= 0; i++) {
		struct vnode v;
		struct arb_key ok = {ARB_ORPHAN_OBJ, ARB_ORPHAN_KEY, inos[i]};

		ret = arb_delete(t, &ok);
		if (!ret && vnode_get(fs, arb_ino_make(arb_tree_id(t), inos[i]), &v) == 0 &&
		    v.nlink == 0) {
			ret = vnode_free(&v);
			(*freed)++;
		}
	}
	free(inos);
	return ret < 0 ? ret : 0;
}

int arb_vfs_orphan_cleanup(struct arb_fs *fs, uint64_t *ret_freed)
{
	struct arb_tree *root;
	struct arb_key start = {ARB_FIRST_USER_TREE, ARB_ROOT_ITEM_KEY, 0}, k;
	uint64_t ids[64];
	size_t n;
	int ret = arb_tree_get(fs, ARB_ROOT_TREE_ID, &root);

	*ret_freed = 0;
	if (ret)
		return ret;
	/* in batches: the cleanup of a tree invalidates root-tree iterators */
	for (;;) {
		struct arb_iter *it;

		ret = arb_iter_open(root, &start, ARB_ITER_FORWARD, &it);
		if (ret)
			return ret;
		n = 0;
		while (n < 64 && (ret = arb_iter_next(it, &k, NULL, NULL)) == 1)
			if (k.type == ARB_ROOT_ITEM_KEY)
				ids[n++] = k.objectid;
		arb_iter_close(it);
		if (ret < 0)
			return ret;
		for (size_t i = 0; i < n; i++) {
			struct arb_tree *t;

			ret = arb_tree_get(fs, ids[i], &t);
			if (!ret)
				ret = cleanup_tree(fs, t, ret_freed);
			else if (ret == -ENOENT) /* deleted, being freed */
				ret = 0;
			if (ret)
				return ret;
		}
		if (n < 64)
			return 0;
		start.objectid = ids[n - 1] + 1;
	}
}

/* ---- attributes ------------------------------------------------------------ */

int arb_vfs_getattr(struct arb_fs *fs, arb_ino_t ino, struct arb_stat *st)
{
	struct vnode v;
	int err = vnode_get(fs, ino, &v);

	if (!err)
		vnode_stat(&v, st);
	return err;
}

static void apply_times(struct vnode *v, const struct arb_setattr *sa)
{
	struct timespec now = vfs_now(v->t->fs);

	if (sa->valid & ARB_SET_ATIME_NOW)
		v->atime = now;
	else if (sa->valid & ARB_SET_ATIME)
		v->atime = sa->atime;
	if (sa->valid & ARB_SET_MTIME_NOW)
		v->mtime = now;
	else if (sa->valid & ARB_SET_MTIME)
		v->mtime = sa->mtime;
}

/* Which attribute changes may use the deletes' tier of the reserve:
 *  - a truncate that does not grow the file, a way to make room (even to
 *    the same size: ftruncate back to where a refused write left it);
 *  - times alone: with the writeback cache the kernel sends a write's
 *    mtime and ctime later, before fsync; failing them for want of space
 *    would fail the fsync of data already stored. */
static bool setattr_may_dig(const struct arb_setattr *sa, uint64_t size)
{
	const uint32_t times = ARB_SET_ATIME | ARB_SET_MTIME | ARB_SET_ATIME_NOW |
	                       ARB_SET_MTIME_NOW | ARB_SET_CTIME;

	if (sa->valid & ARB_SET_SIZE)
		return sa->size <= size &&
		       !(sa->valid & (ARB_SET_MODE | ARB_SET_UID | ARB_SET_GID));
	return sa->valid && !(sa->valid & ~times);
}

int arb_vfs_setattr(struct arb_fs *fs, arb_ino_t ino, const struct arb_setattr *sa,
                    struct arb_stat *st)
{
	struct vnode v;
	int err = arb_check_mutable(fs);

	if (!err)
		err = vnode_get(fs, ino, &v);
	if (!err)
		err = vfs_tree_writable(v.t);
	if (err)
		return err;
	if ((sa->valid & ARB_SET_SIZE) && !S_ISREG(v.mode))
		return vnode_is_dir(&v) ? -EISDIR : -EINVAL;
	if ((sa->valid & ARB_SET_SIZE) && sa->size > ARB_MAX_FILE_SIZE)
		return -EFBIG;
	err = vfs_reserve(fs, 64ull * fs->node_sectors, setattr_may_dig(sa, v.size));
	if (err)
		return err;
	if (sa->valid & ARB_SET_SIZE) {
		err = file_truncate(&v, sa->size);
		if (err)
			return err;
		vnode_touch(&v, true);
	}
	if (sa->valid & ARB_SET_MODE)
		v.mode = (v.mode & S_IFMT) | (sa->mode & 07777);
	if (sa->valid & ARB_SET_UID)
		v.uid = sa->uid;
	if (sa->valid & ARB_SET_GID)
		v.gid = sa->gid;
	apply_times(&v, sa);
	v.ctime = (sa->valid & ARB_SET_CTIME) ? sa->ctime : vfs_now(fs);
	v.sequence++;
	/* new timestamps alone (the writeback cache sends them before an
	 * fsync) are something the fsync log carries */
	if (sa->valid & (ARB_SET_SIZE | ARB_SET_MODE | ARB_SET_UID | ARB_SET_GID)) {
		err = vnode_put(&v);
	} else {
		err = vnode_store(&v);
		arb_log_inode_touched(fs, ino);
	}
	if (!err && st)
		vnode_stat(&v, st);
	return err;
}

/* ---- the top-level subvolume ------------------------------------------------- */

static int set_default_subvol(struct arb_fs *fs, uint64_t id)
{
	struct arb_key k = {ARB_DEFAULT_SUBVOL_OBJ, ARB_DEFAULT_SUBVOL_KEY, 0};
	uint64_t v = htole64(id);

	return arb_sys_put(&fs->root_tree, &k, &v, sizeof(v));
}

int arb_vfs_subvol_create(struct arb_fs *fs, uint32_t perm, const struct arb_cred *cred,
                          uint64_t *ret_id)
{
	struct arb_subvol_info si = {.next_ino = htole64(ARB_FIRST_INO)};
	struct arb_tree *t;
	struct vnode root;
	int err = arb_check_mutable(fs);

	if (!err)
		err = arb_tree_create(fs, ret_id);
	if (err)
		return err;
	err = arb_tree_get(fs, *ret_id, &t);
	if (!err)
		err = subvol_info_put(t, &si);
	if (!err)
		err = vnode_new(fs, t, S_IFDIR | (perm & 07777), 0, cred, NULL, &root);
	return err ? arb_fail(fs, err, "creating a subvolume failed part-way") : 0;
}

int arb_vfs_init(struct arb_fs *fs, uint32_t perm, const struct arb_cred *cred)
{
	arb_ino_t ino;
	uint64_t id;
	int err = arb_check_mutable(fs);

	if (err)
		return err;
	if (arb_vfs_root(fs, 0, &ino) == 0)
		return -EEXIST;
	err = arb_vfs_subvol_create(fs, perm, cred, &id);
	if (!err)
		err = set_default_subvol(fs, id);
	return err;
}

int arb_vfs_root(struct arb_fs *fs, uint64_t subvol_id, arb_ino_t *ret_ino)
{
	struct arb_key k = {ARB_DEFAULT_SUBVOL_OBJ, ARB_DEFAULT_SUBVOL_KEY, 0};
	struct arb_tree *t;
	uint64_t v;
	uint32_t len;
	int err = 0;

	if (!subvol_id) {
		err = arb_lookup(&fs->root_tree, &k, &v, sizeof(v), &len);
		if (err)
			return err;
		subvol_id = le64toh(v);
	}
	if (subvol_id < ARB_FIRST_USER_TREE)
		return -ENOENT;
	err = arb_tree_get(fs, subvol_id, &t);
	if (err)
		return err;
	*ret_ino = arb_ino_make(subvol_id, ARB_FIRST_INO);
	struct vnode r;

	return vnode_get(fs, *ret_ino, &r);
}

/* ---- space ------------------------------------------------------------------ */

/* Free space in node-sized groups, the only kind a node can use. */
static uint64_t group_sectors(const struct arb_spacemap *sm)
{
	return sm->free_groups * sm->node_sectors;
}

int vfs_reserve_ex(struct arb_fs *fs, uint64_t sectors, uint64_t groups, bool freeing)
{
	const struct arb_spacemap *sm = &fs->sm;
	uint64_t tier = freeing ? sm->reserve_sectors / 2 : sm->reserve_sectors;
	uint64_t need = sectors + tier, need_groups = groups * sm->node_sectors + tier;

	for (unsigned i = 0; i <= ARB_DEFER_COMMITS + 1; i++) {
		uint64_t free_now = arb_sm_free_sectors(sm);
		uint64_t waiting = sm->quarantined + sm->pending_sectors + sm->defer_item_sectors;

		/* the reserve must stay in whole groups as well: free space
		 * broken into holes smaller than a node (data freed sector by
		 * sector) holds data but no node, and a commit needs nodes */
		if (free_now >= need && group_sectors(sm) >= need_groups)
			return 0;
		if (free_now + waiting < need || !waiting)
			return -ENOSPC;
		/* Only space freed by recent commits stands in the way: it
		 * waits out the superblock ring.  Between two operations the
		 * running transaction is whole, so committing is safe. */
		int err = arb_commit(fs);

		if (err)
			return err;
	}
	return -ENOSPC;
}

int vfs_reserve(struct arb_fs *fs, uint64_t sectors, bool freeing)
{
	uint64_t ns = fs->sm.node_sectors;

	return vfs_reserve_ex(fs, sectors, (sectors + ns - 1) / ns, freeing);
}

/* ---- statfs ------------------------------------------------------------------ */

int arb_vfs_statfs(struct arb_fs *fs, struct arb_statfs *st)
{
	struct arb_fs_info info;
	uint64_t reserve = fs->sm.reserve_sectors, inodes = 0;
	struct arb_tree *t;
	arb_ino_t root;
	struct arb_subvol_info si;

	arb_fs_info(fs, &info);
	memset(st, 0, sizeof(*st));
	st->bsize = 128 * 1024; /* large requests suit the log-structured allocator */
	st->frsize = fs->sectorsize;
	st->blocks = info.total_sectors;
	/* quarantined sectors are free within a few commits */
	st->bfree = info.total_sectors - (info.used_sectors - info.deferred_sectors);
	/* free sectors in holes smaller than a node take data but no node:
	 * Avail does not promise them (quarantined sectors count as free, as
	 * in bfree: they are within a few commits) */
	const struct arb_spacemap *sm = &fs->sm;
	uint64_t zero = arb_sm_free_sectors(sm) + sm->quarantined;
	uint64_t whole = sm->zero_groups * sm->node_sectors;
	uint64_t holes = zero > whole ? zero - whole : 0;

	st->bavail = st->bfree > reserve + holes ? st->bfree - reserve - holes : 0;
	if (arb_vfs_root(fs, 0, &root) == 0 && vfs_subvol_tree(fs, root, &t) == 0 &&
	    subvol_info(t, &si) == 0)
		inodes = le64toh(si.reserved[0]);
	/* an empty file costs an inode item and a name: count one per sector */
	st->ffree = st->bavail;
	st->files = inodes + st->ffree;
	st->namemax = ARB_NAME_MAX;
	return 0;
}
