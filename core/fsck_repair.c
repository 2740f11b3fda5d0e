/* SPDX-License-Identifier: MIT */
/*
 * fsck_repair.c - phase 3 of fsck: applying the repairs the checks of
 * fsck_fs.c and fsck_links.c queued, as ordinary B-tree edits of the
 * running transaction (the caller commits), and the driver that checks
 * every live subvolume.
 *
 * A removed extent item gives its sectors back (phase 2 counted them)
 * unless it lies outside the allocatable space, where phase 2 counted
 * nothing.  Deletions tolerate an item already gone: a freed inode takes
 * all of its items with it, whatever else was queued for them.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fsck_fs.h"

#define HASH_K 0x9E3779B97F4A7C15ull
#define DE_HDR ((uint32_t)sizeof(struct arb_dir_entry))
#define IR_HDR ((uint32_t)sizeof(struct arb_inode_ref))
#define RREF_HDR ((uint32_t)sizeof(struct arb_root_ref))
#define LOST_FOUND "lost+found"

static int gone_ok(int err)
{
	return err == -ENOENT ? 0 : err;
}

static struct arb_key dir_item_key(const struct fsck_sv *c, uint64_t dir, const char *name,
                                   size_t nlen)
{
	return (struct arb_key){dir, ARB_DIR_ITEM_KEY, arb_name_hash(c->fs->hash_seed, name, nlen)};
}

static struct arb_key iref_key(const struct fsck_sv *c, uint64_t child, uint64_t dir,
                               const char *name, size_t nlen)
{
	return (struct arb_key){child, ARB_INODE_REF_KEY,
	                        arb_name_hash(c->fs->hash_seed + dir * HASH_K, name, nlen)};
}

/* ---- items ------------------------------------------------------------------------- */

static int del_item(struct fsck_sv *c, const struct arb_key *k)
{
	uint64_t bytenr, nsec;
	uint8_t *buf;
	uint32_t len;
	int err = hitem_read(c->t, k, &buf, &len);

	if (err)
		return gone_ok(err);
	if (arb_item_extent(k, buf, len, &bytenr, &nsec) &&
	    arb_sm_valid_range(&c->fs->sm, bytenr, nsec))
		err = arb_data_ref(c->fs, bytenr, nsec, -1);
	free(buf);
	return err ? err : arb_delete(c->t, k);
}

/* Every item of an inode, and its orphan item. */
static int free_inode(struct fsck_sv *c, uint64_t ino)
{
	struct arb_key start = {ino, 0, 0}, k, ok = {ARB_ORPHAN_OBJ, ARB_ORPHAN_KEY, ino};
	struct arb_key *keys = NULL;
	size_t n = 0, cap = 0;
	struct arb_iter *it;
	int ret = arb_iter_open(c->t, &start, ARB_ITER_FORWARD, &it);

	if (ret)
		return ret;
	while ((ret = arb_iter_next(it, &k, NULL, NULL)) == 1 && k.objectid == ino) {
		if (n == cap) {
			struct arb_key *p = realloc(keys, (cap = cap ? 2 * cap : 16) * sizeof(*p));

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
		ret = del_item(c, &keys[i]);
	free(keys);
	if (ret >= 0)
		ret = gone_ok(arb_delete(c->t, &ok));
	return ret < 0 ? ret : 0;
}

static int read_inode(struct fsck_sv *c, uint64_t ino, struct arb_inode_item *ii)
{
	struct arb_key k = {ino, ARB_INODE_ITEM_KEY, 0};
	uint32_t len;
	int err = arb_lookup(c->t, &k, ii, sizeof(*ii), &len);

	return !err && len != sizeof(*ii) ? -ENOENT : err;
}

static int write_inode(struct fsck_sv *c, uint64_t ino, const struct arb_inode_item *ii)
{
	struct arb_key k = {ino, ARB_INODE_ITEM_KEY, 0};

	return arb_put(c->t, &k, ii, sizeof(*ii));
}

static int set_inode(struct fsck_sv *c, const struct fact *a)
{
	struct arb_inode_item ii;
	int err = read_inode(c, a->ino, &ii);

	if (err)
		return gone_ok(err); /* freed or removed meanwhile */
	if (a->fields & FS_NLINK)
		ii.nlink = htole32((uint32_t)a->nlink);
	if (a->fields & FS_SIZE)
		ii.size = htole64(a->size);
	if (a->fields & FS_NBYTES)
		ii.nbytes = htole64(a->nbytes);
	if (a->fields & FS_NEXT_INDEX)
		ii.next_index = htole64(a->next_index);
	return write_inode(c, a->ino, &ii);
}

/* ---- names ---------------------------------------------------------------------------- */

static uint32_t make_dirent(uint8_t *out, uint64_t child, uint64_t index, uint8_t type,
                            const char *name, size_t nlen)
{
	struct arb_dir_entry de = {htole64(child), htole64(index), type, htole16((uint16_t)nlen)};

	memcpy(out, &de, DE_HDR);
	memcpy(out + DE_HDR, name, nlen);
	return (uint32_t)(DE_HDR + nlen);
}

/* The hashed record of dir/name becomes rec (replacing one of that name). */
static int put_dir_item(struct fsck_sv *c, uint64_t dir, const char *name, size_t nlen,
                        const uint8_t *rec, uint32_t rl)
{
	struct arb_key k = dir_item_key(c, dir, name, nlen);
	int err = gone_ok(hitem_remove(c->t, &k, REC_DIRENT, name, nlen, 0));

	return err ? err : hitem_add(c->t, &k, rec, rl);
}

static int add_entry(struct fsck_sv *c, const struct fact *a)
{
	uint8_t rec[DE_HDR + ARB_NAME_MAX];
	uint32_t rl = make_dirent(rec, a->child, a->index, a->type, a->name, a->nlen);
	struct arb_key ik = {a->ino, ARB_DIR_INDEX_KEY, a->index};
	int err = 0;

	if (a->fields & FE_ITEM)
		err = put_dir_item(c, a->ino, a->name, a->nlen, rec, rl);
	if (!err && (a->fields & FE_INDEX))
		err = arb_put(c->t, &ik, rec, rl);
	return err;
}

static int del_entry(struct fsck_sv *c, uint64_t dir, uint64_t index, const char *name, size_t nlen)
{
	struct arb_key k = dir_item_key(c, dir, name, nlen);
	struct arb_key ik = {dir, ARB_DIR_INDEX_KEY, index};
	int err = gone_ok(hitem_remove(c->t, &k, REC_DIRENT, name, nlen, 0));

	return err ? err : gone_ok(arb_delete(c->t, &ik));
}

static int add_iref(struct fsck_sv *c, uint64_t child, uint64_t dir, uint64_t index,
                    const char *name, size_t nlen)
{
	uint8_t rec[IR_HDR + ARB_NAME_MAX];
	struct arb_inode_ref ir = {htole64(dir), htole64(index), htole16((uint16_t)nlen)};
	struct arb_key k = iref_key(c, child, dir, name, nlen);

	memcpy(rec, &ir, IR_HDR);
	memcpy(rec + IR_HDR, name, nlen);
	return hitem_add(c->t, &k, rec, (uint32_t)(IR_HDR + nlen));
}

static int del_iref(struct fsck_sv *c, uint64_t child, uint64_t dir, const char *name, size_t nlen)
{
	struct arb_key k = iref_key(c, child, dir, name, nlen);

	return gone_ok(hitem_remove(c->t, &k, REC_IREF, name, nlen, dir));
}

/* Patch the type byte of the entry's record in an item. */
static int patch_type(struct fsck_sv *c, const struct arb_key *k, const struct fact *a, bool hashed)
{
	uint8_t *buf;
	uint32_t len;
	long off = 0;
	int err = hitem_read(c->t, k, &buf, &len);

	if (err)
		return gone_ok(err);
	if (hashed)
		off = rec_find(REC_DIRENT, buf, len, a->name, a->nlen, 0);
	if (off >= 0 && (uint32_t)off + DE_HDR <= len) {
		buf[off + offsetof(struct arb_dir_entry, type)] = a->type;
		err = arb_update(c->t, k, buf, len);
	}
	free(buf);
	return err;
}

static int set_type(struct fsck_sv *c, const struct fact *a)
{
	struct arb_key k = dir_item_key(c, a->ino, a->name, a->nlen);
	struct arb_key ik = {a->ino, ARB_DIR_INDEX_KEY, a->index};
	int err = patch_type(c, &k, a, true);

	return err ? err : patch_type(c, &ik, a, false);
}

/* ---- lost+found --------------------------------------------------------------------- */

static void ts_now(const struct arb_fs *fs, struct arb_timespec *t)
{
	struct timespec now = vfs_now(fs);

	t->sec = htole64((uint64_t)now.tv_sec);
	t->nsec = htole32((uint32_t)now.tv_nsec);
}

/* Name child in dir as dir.c's link_entry does: the next index, the
 * directory's size and (for a directory) its link count grow. */
static int link_into(struct fsck_sv *c, uint64_t dir, uint64_t child, uint8_t type,
                     const char *name, size_t nlen)
{
	uint8_t rec[DE_HDR + ARB_NAME_MAX];
	struct arb_inode_item d;
	struct arb_key ik;
	uint64_t index;
	uint32_t rl;
	int err = read_inode(c, dir, &d);

	if (err)
		return err;
	index = le64toh(d.next_index);
	d.next_index = htole64(index + 1);
	d.size = htole64(le64toh(d.size) + nlen);
	if (type == DT_DIR)
		d.nlink = htole32(le32toh(d.nlink) + 1);
	ts_now(c->fs, &d.mtime);
	d.ctime = d.mtime;
	rl = make_dirent(rec, child, index, type, name, nlen);
	ik = (struct arb_key){dir, ARB_DIR_INDEX_KEY, index};
	err = put_dir_item(c, dir, name, nlen, rec, rl);
	if (!err)
		err = arb_put(c->t, &ik, rec, rl);
	if (!err)
		err = add_iref(c, child, dir, index, name, nlen);
	return err ? err : write_inode(c, dir, &d);
}

/* The reverse, for a directory cut out of a loop. */
static int unlink_from(struct fsck_sv *c, uint64_t dir, uint64_t child)
{
	struct arb_key start = {child, ARB_INODE_REF_KEY, 0}, k;
	struct arb_inode_ref ir = {0};
	char name[ARB_NAME_MAX + 1];
	struct arb_inode_item d;
	struct arb_iter *it;
	const void *data;
	uint32_t len;
	size_t nlen = 0;
	int ret = arb_iter_open(c->t, &start, ARB_ITER_FORWARD, &it);

	if (ret)
		return ret;
	/* the directory's one back-reference names its place in dir */
	ret = arb_iter_next(it, &k, &data, &len);
	if (ret == 1 && k.objectid == child && k.type == ARB_INODE_REF_KEY && len >= IR_HDR) {
		memcpy(&ir, data, IR_HDR);
		nlen = le16toh(ir.name_len);
		if (nlen > len - IR_HDR || nlen > ARB_NAME_MAX || le64toh(ir.parent) != dir)
			nlen = 0;
		memcpy(name, (const char *)data + IR_HDR, nlen);
	}
	arb_iter_close(it);
	if (ret < 0 || !nlen)
		return ret < 0 ? ret : 0;
	ret = del_entry(c, dir, le64toh(ir.index), name, nlen);
	if (!ret)
		ret = del_iref(c, child, dir, name, nlen);
	if (!ret)
		ret = read_inode(c, dir, &d);
	if (ret)
		return gone_ok(ret);
	d.size = htole64(le64toh(d.size) >= nlen ? le64toh(d.size) - nlen : 0);
	d.nlink = htole32(le32toh(d.nlink) > 2 ? le32toh(d.nlink) - 1 : 2);
	return write_inode(c, dir, &d);
}

static uint64_t next_free_ino(const struct fsck_sv *c)
{
	uint64_t next = c->have_info ? le64toh(c->info.next_ino) : 0;

	return next > c->max_ino ? next : c->max_ino + 1;
}

static int make_lost_found(struct fsck_sv *c)
{
	struct arb_inode_item ii = {0};
	uint64_t ino = next_free_ino(c);
	int err;

	if (c->lost_found)
		return 0;
	ii.generation = htole64(arb_generation_running(c->fs));
	ii.nlink = htole32(2);
	ii.mode = htole32(S_IFDIR | 0700);
	ii.next_index = htole64(2);
	ts_now(c->fs, &ii.atime);
	ii.mtime = ii.ctime = ii.otime = ii.atime;
	err = write_inode(c, ino, &ii);
	if (!err)
		err = link_into(c, ARB_FIRST_INO, ino, DT_DIR, LOST_FOUND, strlen(LOST_FOUND));
	if (err)
		return err;
	c->lost_found = ino;
	c->lost_found_made = true;
	c->max_ino = ino > c->max_ino ? ino : c->max_ino;
	fsck_info(c, 0, "created /" LOST_FOUND " (inode %llu)", (unsigned long long)ino);
	return 0;
}

static int reattach(struct fsck_sv *c, const struct fact *a)
{
	char name[32];
	int len = snprintf(name, sizeof(name), "#%llu", (unsigned long long)a->ino);
	int err = make_lost_found(c);

	if (!err && a->parent)
		err = unlink_from(c, a->parent, a->ino);
	if (!err)
		err = link_into(c, c->lost_found, a->ino, a->type, name, (size_t)len);
	if (!err && a->type != DT_DIR) {
		struct arb_inode_item ii;

		err = read_inode(c, a->ino, &ii);
		ii.nlink = htole32(1);
		if (!err)
			err = write_inode(c, a->ino, &ii);
	}
	return err;
}

/* ---- the subvolume's own figures and the root tree ------------------------------------ */

static int write_info(struct fsck_sv *c)
{
	struct arb_key k = {ARB_SUBVOL_INFO_OBJ, ARB_SUBVOL_INFO_KEY, 0};
	struct arb_subvol_info si = c->have_info ? c->info : (struct arb_subvol_info){0};
	uint64_t count = c->inode_items - c->removed_inodes - c->freed_inodes + c->lost_found_made;

	si.next_ino = htole64(next_free_ino(c));
	si.reserved[0] = htole64(count);
	if (c->have_info && !memcmp(&si, &c->info, sizeof(si)))
		return 0;
	return arb_put(c->t, &k, &si, sizeof(si));
}

static int root_put(struct fsck_sv *c, const struct fact *a)
{
	uint8_t rec[RREF_HDR + ARB_NAME_MAX];
	struct arb_root_ref r = {htole64(a->parent), htole64(a->index), htole16(a->nlen)};

	memcpy(rec, &r, RREF_HDR);
	memcpy(rec + RREF_HDR, a->name, a->nlen);
	return arb_sys_put(&c->fs->root_tree, &a->key, rec, RREF_HDR + a->nlen);
}

static int apply_one(struct fsck_sv *c, const struct fact *a)
{
	switch (a->kind) {
	case FA_DEL_ITEM:
		return del_item(c, &a->key);
	case FA_DEL_REC:
		return gone_ok(hitem_remove(c->t, &a->key, a->rec, a->name, a->nlen, a->parent));
	case FA_DEL_ENTRY:
		return del_entry(c, a->ino, a->index, a->name, a->nlen);
	case FA_DEL_IREF:
		return del_iref(c, a->child, a->ino, a->name, a->nlen);
	case FA_ADD_ENTRY:
		return add_entry(c, a);
	case FA_ADD_IREF:
		return add_iref(c, a->child, a->ino, a->index, a->name, a->nlen);
	case FA_SET_TYPE:
		return set_type(c, a);
	case FA_FREE_INODE:
		return free_inode(c, a->ino);
	case FA_ORPHAN_ADD: {
		struct arb_key k = {ARB_ORPHAN_OBJ, ARB_ORPHAN_KEY, a->ino};

		return arb_put(c->t, &k, NULL, 0);
	}
	case FA_SET_INODE:
		return set_inode(c, a);
	case FA_REATTACH:
		return reattach(c, a);
	case FA_SUBVOL_INFO:
		return write_info(c);
	case FA_ROOT_DEL:
		return gone_ok(arb_sys_delete(&c->fs->root_tree, &a->key));
	case FA_ROOT_PUT:
		return root_put(c, a);
	}
	return -EINVAL;
}

int fsck_apply(struct fsck_sv *c)
{
	uint64_t rdonly = le64toh(c->t->item.flags) & ARB_ROOT_RDONLY;
	int err = 0;

	/* a damaged read-only snapshot is repaired too: the B-tree's guard
	 * against changes is lifted for the repair alone */
	c->t->item.flags = htole64(le64toh(c->t->item.flags) & ~ARB_ROOT_RDONLY);
	for (const struct fact *a = c->acts; a && !err; a = a->next)
		err = apply_one(c, a);
	for (const struct fact *a = c->late; a && !err; a = a->next)
		err = apply_one(c, a);
	c->t->item.flags = htole64(le64toh(c->t->item.flags) | rdonly);
	if (err)
		arb_msgf(c->fs, ARB_MSG_ERR, "subvolume %llu: a repair failed (error %d)",
		         (unsigned long long)c->id, err);
	return err;
}

/* ---- the driver ------------------------------------------------------------------------- */

static void free_sv(struct fsck_sv *c)
{
	for (struct fact *a = c->acts, *n; a; a = n) {
		n = a->next;
		free(a);
	}
	for (struct fact *a = c->late, *n; a; a = n) {
		n = a->next;
		free(a);
	}
	fhash_free(&c->inos);
	fhash_free(&c->dirs);
	free(c->orphans);
	free(c->sublinks);
	free(c->links);
	free(c);
}

/* The most inode numbers a tree can hold, by its size (every inode has an
 * inode item), from the first: the part of the inode table kept flat.
 * Past 2^25 numbers (or with a damaged count) the rest goes to the hash. */
static uint64_t dense_inos(const struct arb_tree *t)
{
	uint64_t most = t->ref_nodes * (t->fs->nodesize /
	                                (sizeof(struct arb_inode_item) + sizeof(struct arb_item)));
	uint64_t cap = 1ull << 25;

	return ARB_FIRST_INO + (most < cap ? most : cap);
}

static int check_subvol(struct arb_fs *fs, const struct arb_fsck_opts *o, struct arb_fsck_report *r,
                        uint64_t id)
{
	struct fsck_sv *c = calloc(1, sizeof(*c));
	int err;

	if (!c)
		return -ENOMEM;
	c->fs = fs;
	c->o = o;
	c->r = r;
	c->id = id;
	c->repair = o->repair;
	c->inos.esz = sizeof(struct fino);
	c->dirs.esz = sizeof(struct fdir);
	c->acts_tail = &c->acts;
	c->late_tail = &c->late;
	err = arb_tree_get(fs, id, &c->t);
	if (!err) {
		fhash_dense(&c->inos, dense_inos(c->t));
		err = fsck_walk(c);
	}
	if (!err)
		err = fsck_links(c);
	if (!err && c->repair)
		err = fsck_apply(c);
	r->data_bytes += c->data_bytes;
	free_sv(c);
	return err;
}

/* The live user trees, by id (collected first: repairs change the root tree). */
static int list_subvols(struct arb_fs *fs, uint64_t **ret, size_t *ret_n)
{
	struct arb_key start = {ARB_FIRST_USER_TREE, ARB_ROOT_ITEM_KEY, 0}, k;
	struct arb_iter *it;
	size_t cap = 0;
	int ret_it = arb_iter_open(&fs->root_tree, &start, ARB_ITER_FORWARD, &it);

	*ret = NULL;
	*ret_n = 0;
	if (ret_it)
		return ret_it;
	while ((ret_it = arb_iter_next(it, &k, NULL, NULL)) == 1) {
		struct arb_tree *t;

		if (k.type != ARB_ROOT_ITEM_KEY || arb_tree_get(fs, k.objectid, &t))
			continue; /* dropping: nobody reads it any more */
		if (*ret_n == cap) {
			uint64_t *p = realloc(*ret, (cap = cap ? 2 * cap : 16) * sizeof(*p));

			if (!p) {
				ret_it = -ENOMEM;
				break;
			}
			*ret = p;
		}
		(*ret)[(*ret_n)++] = k.objectid;
	}
	arb_iter_close(it);
	return ret_it < 0 ? ret_it : 0;
}

int arb_fsck_namespace(struct arb_fs *fs, const struct arb_fsck_opts *o, struct arb_fsck_report *r)
{
	uint64_t *ids;
	size_t n;
	int err = o->repair ? arb_check_mutable(fs) : 0;

	if (!err)
		err = list_subvols(fs, &ids, &n);
	if (err)
		return err;
	for (size_t i = 0; i < n && !err; i++) {
		if (o->progress)
			o->progress(o->progress_ctx, 3, i, n);
		err = check_subvol(fs, o, r, ids[i]);
		r->subvolumes++;
	}
	if (!err && o->progress)
		o->progress(o->progress_ctx, 3, n, n);
	free(ids);
	return err;
}
