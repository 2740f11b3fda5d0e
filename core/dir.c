/* SPDX-License-Identifier: MIT */
/*
 * dir.c - names: hashed directory entries with a per-directory index for
 * readdir, back-references from inodes to their names, and the namespace
 * operations (create, link, unlink, rmdir, rename, readdir).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "node.h"
#include "vfs_internal.h"

#define HASH_K 0x9E3779B97F4A7C15ull

static uint64_t mix64(uint64_t x)
{
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

uint64_t arb_name_hash(uint64_t seed, const void *name, size_t len)
{
	const uint8_t *p = name;
	uint64_t h = seed ^ (len * HASH_K);

	for (size_t i = 0; i < len; i += 8) {
		uint64_t w = 0;
		size_t n = len - i < 8 ? len - i : 8;

		memcpy(&w, p + i, n);
		h = mix64(h ^ le64toh(w));
	}
	return mix64(h);
}

int vfs_check_name(const char *name, size_t *ret_len)
{
	size_t len = strnlen(name, ARB_NAME_MAX + 1);

	if (len > ARB_NAME_MAX)
		return -ENAMETOOLONG;
	if (len == 0 || memchr(name, '/', len) || !strcmp(name, ".") || !strcmp(name, ".."))
		return -EINVAL;
	*ret_len = len;
	return 0;
}

/* ---- hashed multi-record items -------------------------------------------- */

/* Records of DIR_ITEM, INODE_REF and XATTR_ITEM items: a fixed header
 * holding the name length, the name, and (xattrs) the value. */
static uint32_t rec_hdr(enum rec_kind kind)
{
	return kind == REC_DIRENT ? sizeof(struct arb_dir_entry)
	       : kind == REC_IREF ? sizeof(struct arb_inode_ref)
	                          : sizeof(struct arb_xattr);
}

static uint32_t rec_name_len(enum rec_kind kind, const uint8_t *r)
{
	uint16_t v;
	size_t off = kind == REC_DIRENT ? offsetof(struct arb_dir_entry, name_len)
	             : kind == REC_IREF ? offsetof(struct arb_inode_ref, name_len)
	                                : offsetof(struct arb_xattr, name_len);

	memcpy(&v, r + off, 2);
	return le16toh(v);
}

static uint32_t rec_len(enum rec_kind kind, const uint8_t *r)
{
	uint32_t n = rec_hdr(kind) + rec_name_len(kind, r);

	if (kind == REC_XATTR) {
		uint16_t v;

		memcpy(&v, r + offsetof(struct arb_xattr, value_len), 2);
		n += le16toh(v);
	}
	return n;
}

/* Offset of the record named name (and, for back-references, from parent),
 * -ENOENT, or -EUCLEAN for a malformed item. */
long rec_find(enum rec_kind kind, const uint8_t *data, uint32_t len, const char *name, size_t nlen,
              uint64_t parent)
{
	uint32_t off = 0;

	while (off < len) {
		const uint8_t *r = data + off;
		uint32_t rl;

		if (len - off < rec_hdr(kind) || (rl = rec_len(kind, r)) > len - off)
			return -EUCLEAN;
		if (rec_name_len(kind, r) == nlen && !memcmp(r + rec_hdr(kind), name, nlen)) {
			uint64_t p;

			memcpy(&p, r, 8);
			if (kind != REC_IREF || le64toh(p) == parent)
				return off;
		}
		off += rl;
	}
	return -ENOENT;
}

int hitem_read(struct arb_tree *t, const struct arb_key *key, uint8_t **ret_buf, uint32_t *ret_len)
{
	uint32_t max = arb_max_item_size(t->fs);
	uint8_t *buf = malloc(max);
	int err;

	if (!buf)
		return -ENOMEM;
	err = arb_lookup(t, key, buf, max, ret_len);
	if (err) {
		free(buf);
		return err;
	}
	*ret_buf = buf;
	return 0;
}

/* Append a record to the item at key (creating it). -E2BIG if the chain
 * would outgrow an item: only on pathological hash collisions. */
int hitem_add(struct arb_tree *t, const struct arb_key *key, const void *rec, uint32_t rlen)
{
	uint8_t *buf;
	uint32_t len;
	int err = hitem_read(t, key, &buf, &len);

	if (err == -ENOENT)
		return arb_insert(t, key, rec, rlen);
	if (err)
		return err;
	if (len + rlen > arb_max_item_size(t->fs)) {
		free(buf);
		return -E2BIG;
	}
	memcpy(buf + len, rec, rlen);
	err = arb_update(t, key, buf, len + rlen);
	free(buf);
	return err;
}

int hitem_remove(struct arb_tree *t, const struct arb_key *key, enum rec_kind kind,
                 const char *name, size_t nlen, uint64_t parent)
{
	uint8_t *buf;
	uint32_t len;
	int err = hitem_read(t, key, &buf, &len);
	long off;

	if (err)
		return err;
	off = rec_find(kind, buf, len, name, nlen, parent);
	if (off < 0) {
		free(buf);
		return (int)off;
	}
	uint32_t rl = rec_len(kind, buf + off);

	memmove(buf + off, buf + off + rl, len - (uint32_t)off - rl);
	len -= rl;
	err = len ? arb_update(t, key, buf, len) : arb_delete(t, key);
	free(buf);
	return err;
}

/* ---- entries ------------------------------------------------------------- */

struct dirent_rec {
	uint64_t ino; /* local */
	uint64_t index;
	uint8_t type;
};

/* The inode an entry names: in the directory's tree, or the root
 * directory of another subvolume. */
static arb_ino_t dirent_target(const struct vnode *dir, const struct dirent_rec *ent)
{
	if (ent->type == ARB_DT_SUBVOL)
		return arb_ino_make(ent->ino, ARB_FIRST_INO);
	return arb_ino_make(arb_tree_id(dir->t), ent->ino);
}

static struct arb_key dir_item_key(const struct vnode *dir, const char *name, size_t nlen)
{
	return (struct arb_key){dir->local, ARB_DIR_ITEM_KEY,
	                        arb_name_hash(dir->t->fs->hash_seed, name, nlen)};
}

static struct arb_key iref_key(struct arb_fs *fs, uint64_t child, uint64_t parent, const char *name,
                               size_t nlen)
{
	return (struct arb_key){child, ARB_INODE_REF_KEY,
	                        arb_name_hash(fs->hash_seed + parent * HASH_K, name, nlen)};
}

static int dirent_find(const struct vnode *dir, const char *name, size_t nlen,
                       struct dirent_rec *ent)
{
	struct arb_key k = dir_item_key(dir, name, nlen);
	struct arb_dir_entry de;
	uint8_t *buf;
	uint32_t len;
	int err = hitem_read(dir->t, &k, &buf, &len);
	long off;

	if (err)
		return err;
	off = rec_find(REC_DIRENT, buf, len, name, nlen, 0);
	if (off >= 0) {
		memcpy(&de, buf + off, sizeof(de));
		ent->ino = le64toh(de.ino);
		ent->index = le64toh(de.index);
		ent->type = de.type;
	}
	free(buf);
	return off < 0 ? (int)off : 0;
}

static uint8_t dtype_of(uint32_t mode)
{
	return (uint8_t)((mode & S_IFMT) >> 12);
}

/* A record: header + name, in a caller-provided buffer. */
static uint32_t make_dirent(uint8_t *out, const struct vnode *child, uint64_t index,
                            const char *name, size_t nlen)
{
	struct arb_dir_entry de = {htole64(child->local), htole64(index), dtype_of(child->mode),
	                           htole16((uint16_t)nlen)};

	memcpy(out, &de, sizeof(de));
	memcpy(out + sizeof(de), name, nlen);
	return (uint32_t)(sizeof(de) + nlen);
}

/* Name child in dir: hashed entry, index entry, back-reference. */
static int link_entry(struct vnode *dir, const char *name, size_t nlen, struct vnode *child)
{
	uint8_t rec[sizeof(struct arb_dir_entry) + ARB_NAME_MAX];
	uint64_t index = dir->next_index++;
	uint32_t rl = make_dirent(rec, child, index, name, nlen);
	struct arb_key k = dir_item_key(dir, name, nlen);
	int err = hitem_add(dir->t, &k, rec, rl);

	if (!err) {
		struct arb_key ik = {dir->local, ARB_DIR_INDEX_KEY, index};

		err = arb_insert(dir->t, &ik, rec, rl);
	}
	if (!err) {
		struct arb_inode_ref ir = {htole64(dir->local), htole64(index),
		                           htole16((uint16_t)nlen)};
		struct arb_key rk = iref_key(dir->t->fs, child->local, dir->local, name, nlen);

		memcpy(rec, &ir, sizeof(ir));
		memcpy(rec + sizeof(ir), name, nlen);
		err = hitem_add(dir->t, &rk, rec, (uint32_t)(sizeof(ir) + nlen));
	}
	dir->size += nlen;
	vnode_touch(dir, true);
	return err;
}

static int unlink_entry(struct vnode *dir, const char *name, size_t nlen,
                        const struct dirent_rec *ent)
{
	struct arb_key k = dir_item_key(dir, name, nlen);
	struct arb_key ik = {dir->local, ARB_DIR_INDEX_KEY, ent->index};
	struct arb_key rk = iref_key(dir->t->fs, ent->ino, dir->local, name, nlen);
	int err = hitem_remove(dir->t, &k, REC_DIRENT, name, nlen, 0);

	if (!err)
		err = arb_delete(dir->t, &ik);
	if (!err)
		err = hitem_remove(dir->t, &rk, REC_IREF, name, nlen, dir->local);
	dir->size -= dir->size >= nlen ? nlen : dir->size;
	vnode_touch(dir, true);
	return err;
}

/* Once an operation has started changing trees, a failure may leave it
 * half done in memory: stop accepting changes so none of it is committed. */
static int changed_fail(struct arb_fs *fs, int err, const char *op)
{
	if (!err)
		return 0;
	return arb_fail(fs, err, "%s failed part-way", op);
}

/* Worst case of a namespace operation: a few items in a few leaves each. */
static int reserve_names(struct arb_fs *fs, bool freeing)
{
	return vfs_reserve(fs, 64ull * fs->node_sectors, freeing);
}

/* Load a directory to look a name up in. */
static int dir_get_ro(struct arb_fs *fs, arb_ino_t dir, const char *name, size_t *nlen,
                      struct vnode *v)
{
	int err = vnode_get(fs, dir, v);

	if (err)
		return err;
	if (!vnode_is_dir(v))
		return -ENOTDIR;
	return vfs_check_name(name, nlen);
}

/* Load a directory that is to receive or lose a name. */
static int dir_get(struct arb_fs *fs, arb_ino_t dir, const char *name, size_t *nlen,
                   struct vnode *v)
{
	int err = dir_get_ro(fs, dir, name, nlen, v);

	return err ? err : vfs_tree_writable(v->t);
}

/* Load a directory that is to receive the new name `name`: -EEXIST when
 * it is taken. */
static int dir_get_free_name(struct arb_fs *fs, arb_ino_t dir, const char *name, size_t *nlen,
                             struct vnode *d)
{
	struct dirent_rec ent;
	int err = dir_get(fs, dir, name, nlen, d);

	if (err)
		return err;
	err = dirent_find(d, name, *nlen, &ent);
	return err == -ENOENT ? 0 : err ? err : -EEXIST;
}

/* ---- subvolume links (the root refs are subvol.c's) --------------------------- */

int dir_for_new_name(struct arb_fs *fs, arb_ino_t dir, const char *name, size_t *nlen,
                     struct vnode *d)
{
	return dir_get_free_name(fs, dir, name, nlen, d);
}

int dir_find_subvol(struct arb_fs *fs, arb_ino_t dir, const char *name, struct vnode *d,
                    size_t *nlen, uint64_t *ret_id, uint64_t *ret_index)
{
	struct dirent_rec ent;
	int err = dir_get(fs, dir, name, nlen, d);

	if (!err)
		err = dirent_find(d, name, *nlen, &ent);
	if (err)
		return err;
	if (ent.type != ARB_DT_SUBVOL)
		return -ENOTTY; /* not a subvolume */
	*ret_id = ent.ino;
	*ret_index = ent.index;
	return 0;
}

int dir_add_subvol(struct vnode *dir, const char *name, size_t nlen, uint64_t id,
                   uint64_t *ret_index)
{
	uint8_t rec[sizeof(struct arb_dir_entry) + ARB_NAME_MAX];
	uint64_t index = dir->next_index++;
	struct arb_dir_entry de = {htole64(id), htole64(index), ARB_DT_SUBVOL,
	                           htole16((uint16_t)nlen)};
	struct arb_key k = dir_item_key(dir, name, nlen),
	               ik = {dir->local, ARB_DIR_INDEX_KEY, index};
	int err;

	memcpy(rec, &de, sizeof(de));
	memcpy(rec + sizeof(de), name, nlen);
	err = hitem_add(dir->t, &k, rec, (uint32_t)(sizeof(de) + nlen));
	if (!err)
		err = arb_insert(dir->t, &ik, rec, (uint32_t)(sizeof(de) + nlen));
	dir->size += nlen;
	dir->nlink++; /* a subdirectory, for find(1) and friends */
	vnode_touch(dir, true);
	*ret_index = index;
	return err;
}

int dir_remove_subvol(struct vnode *dir, const char *name, size_t nlen, uint64_t index)
{
	struct arb_key k = dir_item_key(dir, name, nlen),
	               ik = {dir->local, ARB_DIR_INDEX_KEY, index};
	int err = hitem_remove(dir->t, &k, REC_DIRENT, name, nlen, 0);

	if (!err)
		err = arb_delete(dir->t, &ik);
	dir->size -= dir->size >= nlen ? nlen : dir->size;
	dir->nlink -= dir->nlink > 2;
	vnode_touch(dir, true);
	return err;
}

/* ---- lookups ---------------------------------------------------------------- */

int arb_vfs_lookup(struct arb_fs *fs, arb_ino_t dir, const char *name, struct arb_stat *st)
{
	struct vnode d;
	struct dirent_rec ent = {0};
	size_t nlen;
	int err = dir_get_ro(fs, dir, name, &nlen, &d);

	if (!err)
		err = dirent_find(&d, name, nlen, &ent);
	if (!err)
		err = arb_vfs_getattr(fs, dirent_target(&d, &ent), st);
	return err;
}

int arb_vfs_readdir(struct arb_fs *fs, arb_ino_t dir, uint64_t pos, arb_dirent_fn fn, void *ctx)
{
	struct vnode d;
	struct arb_iter *it;
	struct arb_key k;
	const void *data;
	uint32_t len;
	int ret = vnode_get(fs, dir, &d);

	if (ret)
		return ret;
	if (!vnode_is_dir(&d))
		return -ENOTDIR;
	struct arb_key start = {d.local, ARB_DIR_INDEX_KEY, pos + 1};

	ret = arb_iter_open(d.t, &start, ARB_ITER_FORWARD, &it);
	if (ret)
		return ret;
	while ((ret = arb_iter_next(it, &k, &data, &len)) == 1) {
		struct arb_dir_entry de;

		if (k.objectid != d.local || k.type != ARB_DIR_INDEX_KEY)
			break;
		memcpy(&de, data, len < sizeof(de) ? len : sizeof(de));
		if (len < sizeof(de) || len != sizeof(de) + le16toh(de.name_len)) {
			ret = -EUCLEAN;
			break;
		}
		struct dirent_rec ent = {le64toh(de.ino), k.offset, de.type};

		if (fn(ctx, (const char *)data + sizeof(de), le16toh(de.name_len),
		       dirent_target(&d, &ent),
		       de.type == ARB_DT_SUBVOL ? dtype_of(S_IFDIR) : de.type, k.offset))
			break;
	}
	arb_iter_close(it);
	if (ret >= 0)
		vnode_accessed(&d);
	return ret < 0 ? ret : 0;
}

static int dir_is_empty(const struct vnode *d)
{
	struct arb_key start = {d->local, ARB_DIR_INDEX_KEY, 0}, k;
	struct arb_iter *it;
	int ret = arb_iter_open(d->t, &start, ARB_ITER_FORWARD, &it);

	if (ret)
		return ret;
	ret = arb_iter_next(it, &k, NULL, NULL);
	arb_iter_close(it);
	if (ret < 0)
		return ret;
	return !(ret == 1 && k.objectid == d->local && k.type == ARB_DIR_INDEX_KEY);
}

/* ---- creation ------------------------------------------------------------------- */

static int create_node(struct arb_fs *fs, arb_ino_t dir, const char *name, uint32_t mode,
                       uint64_t rdev, const struct arb_cred *cred, const char *target,
                       struct arb_stat *st)
{
	struct vnode d, c;
	size_t nlen;
	int err = arb_check_mutable(fs);

	if (!err)
		err = dir_get_free_name(fs, dir, name, &nlen, &d);
	if (err)
		return err;
	if (S_ISDIR(mode) && d.nlink >= ARB_LINK_MAX)
		return -EMLINK;
	err = reserve_names(fs, false);
	if (err)
		return err;
	err = vnode_new(fs, d.t, mode, rdev, cred, &d, &c);
	if (!err && target)
		err = file_write(&c, 0, target, strlen(target));
	if (!err)
		err = link_entry(&d, name, nlen, &c);
	if (!err && S_ISDIR(mode))
		d.nlink++;
	if (!err)
		err = vnode_put(&c);
	if (!err)
		err = vnode_put(&d);
	if (!err && st)
		vnode_stat(&c, st);
	return changed_fail(fs, err, "create");
}

int arb_vfs_mknod(struct arb_fs *fs, arb_ino_t dir, const char *name, uint32_t mode, uint64_t rdev,
                  const struct arb_cred *cred, struct arb_stat *st)
{
	switch (mode & S_IFMT) {
	case S_IFREG:
	case S_IFIFO:
	case S_IFSOCK:
		rdev = 0;
		break;
	case S_IFCHR:
	case S_IFBLK:
		break;
	default:
		return -EINVAL;
	}
	return create_node(fs, dir, name, mode & (S_IFMT | 07777), rdev, cred, NULL, st);
}

int arb_vfs_mkdir(struct arb_fs *fs, arb_ino_t dir, const char *name, uint32_t mode,
                  const struct arb_cred *cred, struct arb_stat *st)
{
	return create_node(fs, dir, name, S_IFDIR | (mode & 07777), 0, cred, NULL, st);
}

int arb_vfs_symlink(struct arb_fs *fs, arb_ino_t dir, const char *name, const char *target,
                    const struct arb_cred *cred, struct arb_stat *st)
{
	size_t tlen = strnlen(target, 4096);

	if (tlen == 0)
		return -ENOENT;
	if (tlen >= 4096)
		return -ENAMETOOLONG;
	return create_node(fs, dir, name, S_IFLNK | 0777, 0, cred, target, st);
}

int arb_vfs_readlink(struct arb_fs *fs, arb_ino_t ino, char *buf, size_t size, size_t *ret_len)
{
	struct vnode v;
	int err = vnode_get(fs, ino, &v);

	if (err)
		return err;
	if (!S_ISLNK(v.mode))
		return -EINVAL;
	*ret_len = v.size;
	return file_read(&v, 0, buf, size < v.size ? size : v.size, &size);
}

int arb_vfs_link(struct arb_fs *fs, arb_ino_t ino, arb_ino_t newdir, const char *newname,
                 struct arb_stat *st)
{
	struct vnode c, d;
	size_t nlen;
	int err = arb_check_mutable(fs);

	if (!err)
		err = vnode_get(fs, ino, &c);
	if (err)
		return err;
	if (vnode_is_dir(&c))
		return -EPERM;
	if (arb_ino_subvol(ino) != arb_ino_subvol(newdir))
		return -EXDEV;
	if (c.nlink >= ARB_LINK_MAX)
		return -EMLINK;
	err = dir_get_free_name(fs, newdir, newname, &nlen, &d);
	if (err)
		return err;
	err = reserve_names(fs, false);
	if (err)
		return err;
	err = link_entry(&d, newname, nlen, &c);
	c.nlink++;
	vnode_touch(&c, false);
	if (!err)
		err = vnode_put(&d);
	if (!err)
		err = vnode_put(&c);
	if (!err && st)
		vnode_stat(&c, st);
	return changed_fail(fs, err, "link");
}

/* ---- removal ------------------------------------------------------------------- */

static int remove_name(struct arb_fs *fs, arb_ino_t dir, const char *name, bool want_dir)
{
	struct vnode d, c;
	struct dirent_rec ent = {0};
	size_t nlen;
	int err = arb_check_mutable(fs);

	if (!err)
		err = dir_get(fs, dir, name, &nlen, &d);
	if (!err)
		err = dirent_find(&d, name, nlen, &ent);
	if (!err && ent.type == ARB_DT_SUBVOL)
		err = want_dir ? -EPERM : -EISDIR; /* arb_vfs_subvol_delete removes it */
	if (!err)
		err = vnode_get(fs, dirent_target(&d, &ent), &c);
	if (err)
		return err;
	if (want_dir && !vnode_is_dir(&c))
		return -ENOTDIR;
	if (!want_dir && vnode_is_dir(&c))
		return -EISDIR;
	if (want_dir && (err = dir_is_empty(&c)) <= 0)
		return err ? err : -ENOTEMPTY;
	err = reserve_names(fs, true);
	if (err)
		return err;
	err = unlink_entry(&d, name, nlen, &ent);
	if (want_dir) {
		c.nlink = 0;
		d.nlink--;
	} else {
		c.nlink--;
	}
	vnode_touch(&c, false);
	if (!err)
		err = vnode_put(&d);
	if (!err)
		err = vnode_put(&c);
	if (!err && c.nlink == 0)
		err = vnode_unlinked(&c);
	return changed_fail(fs, err, want_dir ? "rmdir" : "unlink");
}

int arb_vfs_unlink(struct arb_fs *fs, arb_ino_t dir, const char *name)
{
	return remove_name(fs, dir, name, false);
}

int arb_vfs_rmdir(struct arb_fs *fs, arb_ino_t dir, const char *name)
{
	return remove_name(fs, dir, name, true);
}

int vfs_delete_items(struct arb_tree *t, uint64_t local)
{
	struct arb_key start = {local, 0, 0}, k;
	struct arb_key *keys = NULL;
	size_t n = 0, cap = 0;
	struct arb_iter *it;
	int ret = arb_iter_open(t, &start, ARB_ITER_FORWARD, &it);

	if (ret)
		return ret;
	while ((ret = arb_iter_next(it, &k, NULL, NULL)) == 1 && k.objectid == local) {
		if (n == cap) {
			struct arb_key *p = realloc(keys, (cap = cap ? 2 * cap : 32) * sizeof(*p));

			if (!p) {
				ret = -ENOMEM;
				break;
			}
			keys = p;
		}
		keys[n++] = k;
	}
	arb_iter_close(it);
	for (size_t i = 0; i < n && ret >= 0; i++)
		ret = arb_delete(t, &keys[i]);
	free(keys);
	return ret < 0 ? ret : 0;
}

/* ---- rename ---------------------------------------------------------------------- */

/* The parent of a directory (directories have exactly one name). */
int dir_parent(struct arb_tree *t, uint64_t local, uint64_t *ret_parent)
{
	struct arb_key start = {local, ARB_INODE_REF_KEY, 0}, k;
	struct arb_iter *it;
	const void *data;
	uint32_t len;
	int ret = arb_iter_open(t, &start, ARB_ITER_FORWARD, &it);

	if (ret)
		return ret;
	ret = arb_iter_next(it, &k, &data, &len);
	if (ret == 1 && k.objectid == local && k.type == ARB_INODE_REF_KEY && len >= 8) {
		uint64_t p;

		memcpy(&p, data, 8);
		*ret_parent = le64toh(p);
		ret = 0;
	} else if (ret >= 0) {
		ret = -EUCLEAN;
	}
	arb_iter_close(it);
	return ret;
}

/* Is dir `anc` the directory `local` or one of its ancestors? */
static int is_ancestor(struct arb_tree *t, uint64_t anc, uint64_t local)
{
	for (int depth = 0; depth < 100000; depth++) {
		if (local == anc)
			return 1;
		if (local == ARB_FIRST_INO)
			return 0;
		int err = dir_parent(t, local, &local);

		if (err)
			return err;
	}
	return -ELOOP;
}

struct rename_side {
	struct vnode dir;
	const char *name;
	size_t nlen;
	struct dirent_rec ent;
	struct vnode node;
	bool exists;
};

static int rename_side_get(struct arb_fs *fs, arb_ino_t dir, const char *name,
                           struct rename_side *s)
{
	int err = dir_get(fs, dir, name, &s->nlen, &s->dir);

	s->name = name;
	if (!err)
		err = dirent_find(&s->dir, name, s->nlen, &s->ent);
	s->exists = err == 0;
	if (err == -ENOENT)
		return 0;
	if (!err)
		err = vnode_get(fs, dirent_target(&s->dir, &s->ent), &s->node);
	return err;
}

/* Checks that need no change; 1 means "nothing to do". */
static int rename_check(struct rename_side *a, struct rename_side *b, unsigned flags)
{
	if (!a->exists)
		return -ENOENT;
	if ((flags & ARB_RENAME_EXCHANGE) && !b->exists)
		return -ENOENT;
	if ((flags & ARB_RENAME_NOREPLACE) && b->exists)
		return -EEXIST;
	if (b->exists && a->ent.ino == b->ent.ino)
		return 1; /* same inode: POSIX says do nothing */
	if (b->exists && !(flags & ARB_RENAME_EXCHANGE)) {
		if (vnode_is_dir(&a->node) && !vnode_is_dir(&b->node))
			return -ENOTDIR;
		if (!vnode_is_dir(&a->node) && vnode_is_dir(&b->node))
			return -EISDIR;
		if (vnode_is_dir(&b->node)) {
			int e = dir_is_empty(&b->node);

			if (e <= 0)
				return e ? e : -ENOTEMPTY;
		}
	}
	/* a directory may not move below itself */
	if (vnode_is_dir(&a->node)) {
		int anc = is_ancestor(a->dir.t, a->node.local, b->dir.local);

		if (anc)
			return anc < 0 ? anc : -EINVAL;
	}
	if ((flags & ARB_RENAME_EXCHANGE) && vnode_is_dir(&b->node)) {
		int anc = is_ancestor(a->dir.t, b->node.local, a->dir.local);

		if (anc)
			return anc < 0 ? anc : -EINVAL;
	}
	return 0;
}

/* Move the nlink of a directory's ".." from one parent to another. */
static void move_dotdot(struct vnode *from, struct vnode *to, const struct vnode *child)
{
	if (vnode_is_dir(child) && from->local != to->local) {
		from->nlink--;
		to->nlink++;
	}
}

static int rename_apply(struct rename_side *a, struct rename_side *b, unsigned flags)
{
	bool same_dir = a->dir.local == b->dir.local;
	struct vnode *bdir = same_dir ? &a->dir : &b->dir;
	int err = unlink_entry(&a->dir, a->name, a->nlen, &a->ent);

	if (!err && b->exists)
		err = unlink_entry(bdir, b->name, b->nlen, &b->ent);
	if (!err)
		err = link_entry(bdir, b->name, b->nlen, &a->node);
	if (!err)
		move_dotdot(&a->dir, bdir, &a->node);
	if (!err && (flags & ARB_RENAME_EXCHANGE)) {
		err = link_entry(&a->dir, a->name, a->nlen, &b->node);
		move_dotdot(bdir, &a->dir, &b->node);
	} else if (!err && b->exists) {
		/* the replaced inode loses this name */
		if (vnode_is_dir(&b->node)) {
			b->node.nlink = 0;
			bdir->nlink--;
		} else {
			b->node.nlink--;
		}
	}
	vnode_touch(&a->node, false);
	if (b->exists)
		vnode_touch(&b->node, false);
	if (!err)
		err = vnode_put(&a->dir);
	if (!err && !same_dir)
		err = vnode_put(&b->dir);
	if (!err)
		err = vnode_put(&a->node);
	if (!err && b->exists)
		err = vnode_put(&b->node);
	if (!err && b->exists && b->node.nlink == 0)
		err = vnode_unlinked(&b->node);
	return err;
}

int arb_vfs_parent(struct arb_fs *fs, arb_ino_t dir, arb_ino_t *ret_parent)
{
	struct vnode d;
	uint64_t parent;
	int err = vnode_get(fs, dir, &d);

	if (err)
		return err;
	if (!vnode_is_dir(&d))
		return -ENOTDIR;
	if (d.local == ARB_FIRST_INO) {
		uint64_t pid, dirid;

		/* a linked subvolume's parent is the directory holding the
		 * link; the top level is its own parent */
		err = subvol_backref(fs, arb_tree_id(d.t), &pid, &dirid, NULL, NULL);
		*ret_parent = err ? dir : arb_ino_make(pid, dirid);
		return err == -ENOENT ? 0 : err;
	}
	err = dir_parent(d.t, d.local, &parent);
	if (!err)
		*ret_parent = arb_ino_make(arb_tree_id(d.t), parent);
	return err;
}

int arb_vfs_rename(struct arb_fs *fs, arb_ino_t olddir, const char *oldname, arb_ino_t newdir,
                   const char *newname, unsigned flags)
{
	struct rename_side a, b;
	int err = arb_check_mutable(fs);

	if (err)
		return err;
	if ((flags & ~(ARB_RENAME_NOREPLACE | ARB_RENAME_EXCHANGE)) ||
	    (flags & ARB_RENAME_NOREPLACE && flags & ARB_RENAME_EXCHANGE))
		return -EINVAL;
	if (arb_ino_subvol(olddir) != arb_ino_subvol(newdir))
		return -EXDEV;
	err = rename_side_get(fs, olddir, oldname, &a);
	if (!err)
		err = rename_side_get(fs, newdir, newname, &b);
	if (!err && ((a.exists && a.ent.type == ARB_DT_SUBVOL) ||
	             (b.exists && b.ent.type == ARB_DT_SUBVOL))) {
		/* a subvolume link moves to a free name only */
		if (b.exists || (flags & ARB_RENAME_EXCHANGE))
			return -EPERM;
		err = reserve_names(fs, false);
		return err ? err : subvol_move(fs, &a.dir, a.name, a.nlen, &b.dir, b.name, b.nlen);
	}
	if (!err)
		err = rename_check(&a, &b, flags);
	if (err)
		return err == 1 ? 0 : err;
	/* a rename over a name drops what that name held: at full it must
	 * go through like an unlink (a save by write-and-rename frees space) */
	err = reserve_names(fs, b.exists && !(flags & ARB_RENAME_EXCHANGE));
	if (err)
		return err;
	return changed_fail(fs, rename_apply(&a, &b, flags), "rename");
}
