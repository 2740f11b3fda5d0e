/* SPDX-License-Identifier: MIT */
/*
 * drop.c - deleting a tree at once and freeing it in the background.
 *
 * arb_tree_drop only marks the root item ARB_ROOT_DROPPING: the tree is
 * gone for every reader in the same transaction, whatever its size.  The
 * blocks come back through arb_fs_drop_step, which walks down from the
 * root a bounded number of nodes at a time (btree.c, arb_tree_drop_some)
 * and keeps its cursor in the root item, so the work of each step becomes
 * durable with the commit that follows it and a crash loses at most the
 * steps since the last commit.  Whoever owns the filesystem decides when
 * steps run: the FUSE daemon between requests, the offline tools at once.
 */
#include <errno.h>
#include <string.h>

#include "fs_internal.h"

static int count_dropping(struct arb_fs *fs, uint64_t *ret_first)
{
	struct arb_key start = {ARB_FIRST_USER_TREE, ARB_ROOT_ITEM_KEY, 0}, k;
	struct arb_iter *it;
	const void *data;
	uint32_t len;
	uint64_t count = 0;
	int ret = arb_iter_open(&fs->root_tree, &start, ARB_ITER_FORWARD, &it);

	if (ret)
		return ret;
	*ret_first = 0;
	while ((ret = arb_iter_next(it, &k, &data, &len)) == 1) {
		struct arb_root_item item;

		if (k.type != ARB_ROOT_ITEM_KEY || len != sizeof(item))
			continue;
		memcpy(&item, data, sizeof(item));
		if (!(le64toh(item.flags) & ARB_ROOT_DROPPING))
			continue;
		if (!count++)
			*ret_first = k.objectid;
	}
	arb_iter_close(it);
	if (ret < 0)
		return ret;
	fs->drop_pending = count;
	fs->drop_counted = true;
	return 0;
}

int arb_fs_dropping(struct arb_fs *fs, uint64_t *ret_trees)
{
	uint64_t first;
	int err = fs->drop_counted ? 0 : count_dropping(fs, &first);

	*ret_trees = err ? 0 : fs->drop_pending;
	return err;
}

int arb_tree_drop(struct arb_fs *fs, uint64_t id)
{
	struct arb_tree *t;
	uint64_t pending;
	int err = arb_check_mutable(fs);

	if (!err)
		err = id >= ARB_FIRST_USER_TREE ? arb_tree_get(fs, id, &t) : -EINVAL;
	if (!err)
		err = arb_fs_dropping(fs, &pending);
	if (err)
		return err;
	t->item.flags = htole64(le64toh(t->item.flags) | ARB_ROOT_DROPPING);
	memset(&t->item.drop_key, 0, sizeof(t->item.drop_key));
	t->modseq++;
	/* now, not at commit: the dropper finds its work in the root tree */
	err = arb_tree_put_item(fs, t);
	if (err)
		return arb_fail(fs, err, "deleting tree %llu failed", (unsigned long long)id);
	fs->drop_pending++;
	return 0;
}

/* One bounded step on tree t; its root item goes with its last block. */
static int drop_tree_step(struct arb_fs *fs, struct arb_tree *t, uint64_t *budget)
{
	struct arb_key cursor;
	int r;

	arb_key_from_disk(&t->item.drop_key, &cursor);
	r = arb_tree_drop_some(t, &cursor, budget);
	if (r < 0)
		return arb_fail(fs, r, "freeing deleted tree %llu failed",
		                (unsigned long long)t->id);
	arb_key_to_disk(&cursor, &t->item.drop_key);
	t->item_dirty = true;
	if (r == 0) /* only a spent budget stops the walk */
		return *budget ? arb_fail(fs, -EUCLEAN, "dropper of tree %llu stuck",
		                          (unsigned long long)t->id)
		               : 0;
	struct arb_key key = {t->id, ARB_ROOT_ITEM_KEY, 0};
	int err = arb_sys_delete(&fs->root_tree, &key);

	if (err)
		return arb_fail(fs, err, "removing deleted tree %llu failed",
		                (unsigned long long)t->id);
	arb_tree_forget(fs, t);
	fs->drop_pending--;
	return 0;
}

int arb_fs_drop_step(struct arb_fs *fs, uint64_t max_nodes, uint64_t *ret_left)
{
	uint64_t budget = max_nodes ? max_nodes : 1;
	int err = arb_check_mutable(fs);

	*ret_left = 0;
	while (!err && budget) {
		uint64_t id = 0;
		struct arb_tree *t;

		err = count_dropping(fs, &id);
		if (err || !id)
			break;
		err = arb_tree_get_any(fs, id, &t);
		if (!err)
			err = drop_tree_step(fs, t, &budget);
	}
	if (!err)
		*ret_left = fs->drop_pending;
	return err;
}

int arb_fs_drop_all(struct arb_fs *fs)
{
	uint64_t left;
	int err;

	do
		err = arb_fs_drop_step(fs, 4096, &left);
	while (!err && left);
	return err;
}
