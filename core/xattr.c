/* SPDX-License-Identifier: MIT */
/*
 * xattr.c - extended attributes: one record (name, value) per attribute in
 * an item keyed by the hash of the name, chained on collisions.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vfs_internal.h"

static const char *const namespaces[] = {"user.", "trusted.", "security."};
static const char *const system_names[] = {"system.posix_acl_access", "system.posix_acl_default"};

static int check_xattr_name(const char *name, size_t *ret_len)
{
	size_t len = strnlen(name, ARB_XATTR_NAME_MAX + 1);

	if (len > ARB_XATTR_NAME_MAX)
		return -ERANGE;
	for (size_t i = 0; i < sizeof(namespaces) / sizeof(namespaces[0]); i++) {
		size_t p = strlen(namespaces[i]);

		if (len > p && !strncmp(name, namespaces[i], p)) {
			*ret_len = len;
			return 0;
		}
	}
	for (size_t i = 0; i < sizeof(system_names) / sizeof(system_names[0]); i++) {
		if (!strcmp(name, system_names[i])) {
			*ret_len = len;
			return 0;
		}
	}
	return -EOPNOTSUPP;
}

size_t arb_vfs_xattr_max(const struct arb_fs *fs)
{
	return arb_max_item_size(fs) - sizeof(struct arb_xattr) - ARB_XATTR_NAME_MAX;
}

static struct arb_key xattr_key(const struct vnode *v, const char *name, size_t nlen)
{
	return (struct arb_key){v->local, ARB_XATTR_ITEM_KEY,
	                        arb_name_hash(v->t->fs->hash_seed, name, nlen)};
}

/* The record of name: a copy of the whole item and the record's offset. */
static int xattr_find(const struct vnode *v, const char *name, size_t nlen, uint8_t **ret_buf,
                      long *ret_off)
{
	struct arb_key k = xattr_key(v, name, nlen);
	uint32_t len;
	int err = hitem_read(v->t, &k, ret_buf, &len);

	if (err)
		return err == -ENOENT ? -ENODATA : err;
	*ret_off = rec_find(REC_XATTR, *ret_buf, len, name, nlen, 0);
	if (*ret_off < 0) {
		free(*ret_buf);
		return *ret_off == -ENOENT ? -ENODATA : (int)*ret_off;
	}
	return 0;
}

static int xattr_target(struct arb_fs *fs, arb_ino_t ino, const char *name, struct vnode *v,
                        size_t *nlen)
{
	int err = check_xattr_name(name, nlen);

	return err ? err : vnode_get(fs, ino, v);
}

/* The inode an xattr change applies to, on a writable filesystem. */
static int xattr_change_target(struct arb_fs *fs, arb_ino_t ino, const char *name, struct vnode *v,
                               size_t *nlen)
{
	int err = arb_check_mutable(fs);

	if (!err)
		err = xattr_target(fs, ino, name, v, nlen);
	return err ? err : vfs_tree_writable(v->t);
}

int arb_vfs_getxattr(struct arb_fs *fs, arb_ino_t ino, const char *name, void *buf, size_t size,
                     size_t *ret_size)
{
	struct vnode v;
	struct arb_xattr h;
	uint8_t *item;
	long off;
	size_t nlen;
	int err = xattr_target(fs, ino, name, &v, &nlen);

	if (!err)
		err = xattr_find(&v, name, nlen, &item, &off);
	if (err)
		return err;
	memcpy(&h, item + off, sizeof(h));
	*ret_size = le16toh(h.value_len);
	if (size && size < *ret_size)
		err = -ERANGE;
	else if (size)
		memcpy(buf, item + off + sizeof(h) + nlen, *ret_size);
	free(item);
	return err;
}

static int xattr_store(struct vnode *v, const char *name, size_t nlen, const void *value,
                       size_t size)
{
	struct arb_key k = xattr_key(v, name, nlen);
	struct arb_xattr h = {htole16((uint16_t)nlen), htole16((uint16_t)size)};
	uint8_t *rec = malloc(sizeof(h) + nlen + size);
	int err;

	if (!rec)
		return -ENOMEM;
	memcpy(rec, &h, sizeof(h));
	memcpy(rec + sizeof(h), name, nlen);
	if (size)
		memcpy(rec + sizeof(h) + nlen, value, size);
	err = hitem_add(v->t, &k, rec, (uint32_t)(sizeof(h) + nlen + size));
	free(rec);
	return err;
}

int arb_vfs_setxattr(struct arb_fs *fs, arb_ino_t ino, const char *name, const void *value,
                     size_t size, int flags)
{
	struct vnode v;
	uint8_t *item;
	long off;
	size_t nlen;
	int err = xattr_change_target(fs, ino, name, &v, &nlen);

	if (err)
		return err;
	if (flags & ~(ARB_XATTR_CREATE | ARB_XATTR_REPLACE))
		return -EINVAL;
	if (size > arb_vfs_xattr_max(fs))
		return -E2BIG;
	err = xattr_find(&v, name, nlen, &item, &off);
	if (err && err != -ENODATA)
		return err;
	if (!err)
		free(item);
	if (!err && (flags & ARB_XATTR_CREATE))
		return -EEXIST;
	if (err == -ENODATA && (flags & ARB_XATTR_REPLACE))
		return -ENODATA;
	bool existed = !err;
	struct arb_key k = xattr_key(&v, name, nlen);

	err = existed ? hitem_remove(v.t, &k, REC_XATTR, name, nlen, 0) : 0;
	if (!err)
		err = xattr_store(&v, name, nlen, value, size);
	vnode_touch(&v, false);
	if (!err)
		err = vnode_put(&v);
	if (err == -E2BIG && !existed)
		return err; /* a full collision chain: nothing changed */
	return err ? arb_fail(fs, err, "setxattr failed part-way") : 0;
}

int arb_vfs_removexattr(struct arb_fs *fs, arb_ino_t ino, const char *name)
{
	struct vnode v;
	uint8_t *item;
	long off;
	size_t nlen;
	int err = xattr_change_target(fs, ino, name, &v, &nlen);

	if (!err)
		err = xattr_find(&v, name, nlen, &item, &off);
	if (err)
		return err;
	free(item);
	struct arb_key k = xattr_key(&v, name, nlen);

	err = hitem_remove(v.t, &k, REC_XATTR, name, nlen, 0);
	vnode_touch(&v, false);
	if (!err)
		err = vnode_put(&v);
	return err ? arb_fail(fs, err, "removexattr failed part-way") : 0;
}

/* Append the names of one item's records to the list. */
static int list_item(const uint8_t *data, uint32_t len, char *buf, size_t size, size_t *total)
{
	uint32_t off = 0;

	while (off + sizeof(struct arb_xattr) <= len) {
		struct arb_xattr h;

		memcpy(&h, data + off, sizeof(h));
		uint32_t nl = le16toh(h.name_len), vl = le16toh(h.value_len);

		if (off + sizeof(h) + nl + vl > len)
			return -EUCLEAN;
		if (size && *total + nl + 1 <= size) {
			memcpy(buf + *total, data + off + sizeof(h), nl);
			buf[*total + nl] = 0;
		}
		*total += nl + 1;
		off += (uint32_t)sizeof(h) + nl + vl;
	}
	return off == len ? 0 : -EUCLEAN;
}

int arb_vfs_listxattr(struct arb_fs *fs, arb_ino_t ino, char *buf, size_t size, size_t *ret_size)
{
	struct vnode v;
	struct arb_iter *it;
	struct arb_key k;
	const void *data;
	uint32_t len;
	int ret = vnode_get(fs, ino, &v);

	*ret_size = 0;
	if (ret)
		return ret;
	struct arb_key start = {v.local, ARB_XATTR_ITEM_KEY, 0};

	ret = arb_iter_open(v.t, &start, ARB_ITER_FORWARD, &it);
	if (ret)
		return ret;
	while ((ret = arb_iter_next(it, &k, &data, &len)) == 1) {
		if (k.objectid != v.local || k.type != ARB_XATTR_ITEM_KEY)
			break;
		ret = list_item(data, len, buf, size, ret_size);
		if (ret)
			break;
	}
	arb_iter_close(it);
	if (ret < 0)
		return ret;
	return size && *ret_size > size ? -ERANGE : 0;
}
