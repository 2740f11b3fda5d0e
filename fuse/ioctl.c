/* SPDX-License-Identifier: MIT */
/*
 * ioctl.c - arborfs side of the online channel (arbor/ioctl.h): create,
 * snapshot, delete, roll back and list subvolumes, their space and their
 * differences, set the default one, commit.
 *
 * The kernel passes these ioctls through without looking at them, so the
 * daemon checks the caller's credentials (the FUSE request's uid, gid and
 * supplementary groups) the way the kernel checks mode bits for a
 * directory operation with default_permissions (no POSIX ACLs: this mount
 * does not ask the kernel for them either):
 *
 *   create    write and search permission on the directory
 *   snapshot  the same, and the caller owns the source subvolume's root
 *             directory (btrfs: inode_owner_or_capable on the source)
 *   delete    the same, and the caller owns the subvolume's root
 *             directory (simpler than btrfs' user_subvol_rm_allowed)
 *   set-default  root only
 *   rollback  write and search permission on the directory, and the caller
 *             owns the root directories of the subvolume and of the
 *             snapshot it takes (delete plus snapshot)
 *   diff      the caller owns the root directories of both subvolumes
 *             (the listing reveals names)
 *   info, next, usage, sync  anyone
 *
 * "Root" is uid 0 (the daemon cannot see the caller's capabilities).
 * Denied permission is EACCES, denied ownership EPERM.  A read-only mount
 * refuses every change with EROFS.  SET_DEFAULT reads the subvolume from
 * args.id; unused fields, flags and reserved bytes must be zero (EINVAL),
 * so that they can be given a meaning later.
 *
 * A diff listing is computed once and kept for the pages that follow
 * (see arbor/ioctl.h): keyed by the two ids and the generations of their
 * root nodes, which name their content only when neither was changed in
 * the running transaction, so a diff of a tree changed since the last
 * commit commits first.  It is dropped when its last page is read or
 * another listing replaces it.
 *
 * Changes are committed before the reply (a snapshot is durable when the
 * command returns, as in btrfs), and the kernel's cached name is
 * invalidated before the reply too, so that the caller's next lookup sees
 * the new subvolume or misses the deleted one.
 */
#include "arborfs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <syslog.h>

#include "arbor/ioctl.h"
#include "arbor_format.h"

#define GROUPS_INLINE 32

/* Who makes the request; supplementary groups are read when needed. */
struct caller {
	fuse_req_t req;
	uid_t uid;
	gid_t gid;
	bool have_groups;
	int ngroups;
	gid_t *groups;
	gid_t inline_groups[GROUPS_INLINE];
};

static void caller_init(struct caller *c, fuse_req_t req)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);

	memset(c, 0, sizeof(*c));
	c->req = req;
	c->uid = ctx->uid;
	c->gid = ctx->gid;
	c->groups = c->inline_groups;
}

static void caller_free(struct caller *c)
{
	if (c->groups != c->inline_groups)
		free(c->groups);
}

/* fuse_req_getgroups reads /proc: when that fails (the caller is gone, or
 * in another pid namespace) only the primary group counts, which can only
 * deny more. */
static void load_groups(struct caller *c)
{
	int n = fuse_req_getgroups(c->req, GROUPS_INLINE, c->inline_groups);

	c->have_groups = true;
	if (n > GROUPS_INLINE) {
		gid_t *g = malloc((size_t)n * sizeof(*g));

		if (g && fuse_req_getgroups(c->req, n, g) == n) {
			c->groups = g;
		} else {
			free(g);
			n = GROUPS_INLINE; /* the first ones, at least */
		}
	}
	c->ngroups = n > 0 ? n : 0;
}

static bool in_group(struct caller *c, gid_t gid)
{
	if (c->gid == gid)
		return true;
	if (!c->have_groups)
		load_groups(c);
	for (int i = 0; i < c->ngroups; i++)
		if (c->groups[i] == gid)
			return true;
	return false;
}

static bool is_root(const struct caller *c)
{
	return c->uid == 0;
}

/* Write and search permission on a directory, as generic_permission():
 * the owner's bits for the owner, else the group's for a member, else the
 * others'. */
static int may_change_dir(struct caller *c, const struct arb_stat *dir)
{
	unsigned bits = dir->mode;

	if (!S_ISDIR(dir->mode))
		return -ENOTDIR;
	if (is_root(c))
		return 0;
	if (c->uid == dir->uid)
		bits >>= 6;
	else if (in_group(c, dir->gid))
		bits >>= 3;
	return (bits & 3) == 3 ? 0 : -EACCES;
}

static int must_own(const struct caller *c, const struct arb_stat *st)
{
	return is_root(c) || c->uid == st->uid ? 0 : -EPERM;
}

/* ---- replies and notifications ---------------------------------------------------- */

static void reply(fuse_req_t req, int ret, const void *out, size_t size)
{
	if (ret)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_ioctl(req, 0, out, size);
}

/* Drop the kernel's dentry of parent/name (and the parent's cached
 * attributes).  The kernel takes the parent's inode lock for this, which a
 * lookup in that directory may hold while it waits for the session thread:
 * so only the worker thread does it (can_wait); otherwise the kernel
 * forgets the name when it times out (AFS_TIMEOUT). */
static void forget_name(struct afs *a, fuse_ino_t parent, const char *name, bool can_wait)
{
	int ret;

	if (!a->se || !can_wait)
		return;
	/* the parent's attributes (link count, size, times) are stale
	 * whether the kernel knows the name or not */
	ret = fuse_lowlevel_notify_inval_inode(a->se, parent, -1, 0);
	if (!ret || ret == -ENOENT)
		ret = fuse_lowlevel_notify_inval_entry(a->se, parent, name, strlen(name));
	if (ret && ret != -ENOENT && ret != -ENOSYS)
		afs_log(a, LOG_WARNING, "cannot invalidate the kernel's entry '%s': %s", name,
		        strerror(-ret));
}

/* The answer to a change of names: the kernel forgets them, then the
 * caller gets the reply (so that it sees the change at once). */
struct names_job {
	struct afs_job job;
	fuse_req_t req;
	fuse_ino_t parent;
	char names[2][ARB_IOC_NAME_MAX + 1];
	size_t size; /* of the reply */
	union {
		struct arb_ioc_subvol_args subvol;
		struct arb_ioc_rollback_args rollback;
	} out;
};

static void names_job_run(struct afs *a, struct afs_job *job, bool can_wait)
{
	struct names_job *j = (struct names_job *)job;

	for (int i = 0; i < 2; i++)
		if (j->names[i][0])
			forget_name(a, j->parent, j->names[i], can_wait);
	reply(j->req, 0, &j->out, j->size);
	free(j);
}

/* Reply out (size bytes) once the kernel has forgotten name and name2. */
static void reply_after_forget(fuse_req_t req, fuse_ino_t parent, const char *name,
                               const char *name2, const void *out, size_t size)
{
	struct afs *a = afs_req(req);
	struct names_job *j = calloc(1, sizeof(*j));

	if (!j) { /* the names time out in the kernel */
		reply(req, 0, out, size);
		return;
	}
	j->job.fn = names_job_run;
	j->req = req;
	j->parent = parent;
	snprintf(j->names[0], sizeof(j->names[0]), "%s", name);
	snprintf(j->names[1], sizeof(j->names[1]), "%s", name2 ? name2 : "");
	memcpy(&j->out, out, size);
	j->size = size;
	afs_defer(a, &j->job);
}

/* ---- arguments ------------------------------------------------------------------------ */

static bool all_zero(const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

/* NUL-terminated within the field, at most ARB_NAME_MAX bytes; the core
 * checks the rest ('/', ".", "..", empty). */
static int check_name(const struct arb_ioc_subvol_args *args)
{
	if (strnlen(args->name, sizeof(args->name)) == sizeof(args->name))
		return -ENAMETOOLONG;
	return afs_name_check(args->name);
}

static int check_args(const struct arb_ioc_subvol_args *args, uint32_t flags_allowed)
{
	if ((args->flags & ~flags_allowed) || !all_zero(args->reserved, sizeof(args->reserved)))
		return -EINVAL;
	return check_name(args);
}

/* ---- create, snapshot, delete --------------------------------------------------------- */

/* Locked: may the caller add or remove a name in the directory the ioctl
 * is made on? */
static int dir_for_change(struct afs *a, struct caller *c, fuse_ino_t ino)
{
	struct arb_stat dir;
	int ret = arb_vfs_getattr(a->fs, afs_ino(a, ino), &dir);

	return ret ? ret : may_change_dir(c, &dir);
}

/* Locked: commit a change that succeeded; a deletion (or a rollback)
 * leaves the cleaner thread a tree to free. */
static int commit_change(struct afs *a, int ret)
{
	if (ret)
		return ret;
	afs_cleaner_kick(a);
	return afs_commit_locked(a);
}

static int do_create(struct afs *a, struct caller *c, fuse_ino_t ino,
                     struct arb_ioc_subvol_args *args)
{
	struct arb_cred cred = {c->uid, c->gid};
	struct arb_stat st = {0};
	int ret;

	if (args->src_id || args->id)
		return -EINVAL;
	ret = dir_for_change(a, c, ino);
	if (!ret)
		ret = arb_vfs_subvol_make(a->fs, afs_ino(a, ino), args->name, args->mode & 07777,
		                          &cred, &st);
	if (!ret)
		args->id = arb_ino_subvol(st.ino);
	return commit_change(a, ret);
}

static int do_snapshot(struct afs *a, struct caller *c, fuse_ino_t ino,
                       struct arb_ioc_subvol_args *args)
{
	unsigned flags = args->flags & ARB_IOC_RDONLY ? ARB_SNAPSHOT_RDONLY : 0;
	struct arb_stat src, st = {0};
	arb_ino_t src_root;
	int ret;

	if (args->id || args->mode)
		return -EINVAL;
	if (args->src_id < ARB_FIRST_USER_TREE)
		return -ENOENT; /* 0 is not "the default" here */
	ret = arb_vfs_root(a->fs, args->src_id, &src_root);
	if (!ret)
		ret = arb_vfs_getattr(a->fs, src_root, &src);
	if (!ret)
		ret = dir_for_change(a, c, ino);
	if (!ret)
		ret = must_own(c, &src);
	if (!ret)
		ret = arb_vfs_snapshot(a->fs, args->src_id, afs_ino(a, ino), args->name, flags,
		                       &st);
	if (!ret)
		args->id = arb_ino_subvol(st.ino);
	return commit_change(a, ret);
}

/* The subvolume linked as dir/name: its root's attributes and id. */
static int find_link(struct afs *a, fuse_ino_t ino, const char *name, struct arb_stat *root,
                     uint64_t *ret_id)
{
	arb_ino_t dir = afs_ino(a, ino);
	int ret = arb_vfs_lookup(a->fs, dir, name, root);

	if (ret)
		return ret;
	if (arb_ino_local(root->ino) != ARB_FIRST_INO ||
	    arb_ino_subvol(root->ino) == arb_ino_subvol(dir))
		return -ENOTTY; /* as arb_vfs_subvol_delete: not a subvolume */
	*ret_id = arb_ino_subvol(root->ino);
	return 0;
}

static int do_delete(struct afs *a, struct caller *c, fuse_ino_t ino,
                     struct arb_ioc_subvol_args *args)
{
	struct arb_stat root;
	uint64_t id = 0;
	int ret;

	if (args->src_id || args->id || args->mode)
		return -EINVAL;
	ret = dir_for_change(a, c, ino);
	if (!ret)
		ret = find_link(a, ino, args->name, &root, &id);
	if (!ret)
		ret = must_own(c, &root);
	/* never reachable through a name in this mount today, but the
	 * kernel's root must never lose its inodes */
	if (!ret && id == arb_ino_subvol(a->root))
		ret = -EBUSY;
	if (!ret)
		ret = arb_vfs_subvol_delete(a->fs, afs_ino(a, ino), args->name);
	return commit_change(a, ret);
}

typedef int (*change_fn)(struct afs *a, struct caller *c, fuse_ino_t ino,
                         struct arb_ioc_subvol_args *args);

/* create, snapshot and delete: check, change and commit under the lock,
 * then let the kernel forget the name, then reply (with the new id for
 * create and snapshot). */
static void ioc_change(fuse_req_t req, fuse_ino_t ino, unsigned int cmd, const void *in_buf,
                       change_fn fn, uint32_t flags_allowed)
{
	struct afs *a = afs_req(req);
	struct arb_ioc_subvol_args args;
	struct caller c;
	int ret;

	memcpy(&args, in_buf, sizeof(args));
	ret = check_args(&args, flags_allowed);
	if (!ret && a->read_only)
		ret = -EROFS;
	if (ret) {
		reply(req, ret, NULL, 0);
		return;
	}
	caller_init(&c, req);
	afs_lock(a);
	ret = afs_unlock(a, fn(a, &c, ino, &args));
	caller_free(&c);
	if (ret)
		reply(req, ret, NULL, 0);
	else
		reply_after_forget(req, ino, args.name, NULL, &args,
		                   _IOC_DIR(cmd) & _IOC_READ ? sizeof(args) : 0);
}

/* ---- set-default and sync -------------------------------------------------------------- */

static void ioc_set_default(fuse_req_t req, const void *in_buf)
{
	struct afs *a = afs_req(req);
	struct arb_ioc_subvol_args args;
	int ret = 0;

	memcpy(&args, in_buf, sizeof(args));
	if (args.src_id || args.flags || args.mode || args.name[0] ||
	    !all_zero(args.reserved, sizeof(args.reserved)))
		ret = -EINVAL;
	else if (a->read_only)
		ret = -EROFS;
	else if (fuse_req_ctx(req)->uid != 0)
		ret = -EPERM;
	if (!ret) {
		afs_lock(a);
		ret = arb_vfs_subvol_set_default(a->fs, args.id);
		ret = afs_unlock(a, commit_change(a, ret));
	}
	reply(req, ret, NULL, 0);
}

static void ioc_sync(fuse_req_t req)
{
	struct afs *a = afs_req(req);
	int ret;

	afs_lock(a);
	ret = afs_unlock(a, afs_commit_locked(a));
	reply(req, ret, NULL, 0);
}

struct wait_job {
	struct afs_job job;
	fuse_req_t req;
};

static void wait_job_run(struct afs *a, struct afs_job *job, bool can_wait)
{
	struct wait_job *j = (struct wait_job *)job;
	int ret;

	(void)can_wait; /* this waits for the cleaner, not for the kernel */
	afs_lock(a);
	ret = afs_unlock(a, a->read_only ? 0 : afs_cleaner_wait(a));
	reply(j->req, ret, NULL, 0);
	free(j);
}

/* Nothing to check: anyone may wait for what was deleted to be freed.  The
 * worker thread waits, so that the session thread goes on serving. */
static void ioc_wait_cleaned(fuse_req_t req)
{
	struct wait_job *j = calloc(1, sizeof(*j));

	if (!j) {
		reply(req, -ENOMEM, NULL, 0);
		return;
	}
	j->job.fn = wait_job_run;
	j->req = req;
	afs_defer(afs_req(req), &j->job);
}

/* ---- info and list ---------------------------------------------------------------------- */

static void fill_info(const struct afs *a, const struct arb_subvol *sv,
                      struct arb_ioc_subvol_info *info)
{
	memset(info, 0, sizeof(*info));
	info->id = sv->id;
	info->parent_id = sv->parent_id;
	info->dirid = sv->dirid;
	info->source_id = sv->source_id;
	info->create_gen = sv->create_gen;
	info->generation = sv->generation;
	info->ctime_sec = (uint64_t)sv->ctime.tv_sec;
	info->ctime_nsec = (uint32_t)sv->ctime.tv_nsec;
	info->flags = (sv->readonly ? ARB_IOC_RDONLY : 0) | (sv->is_default ? ARB_IOC_DEFAULT : 0) |
	              (sv->id == arb_ino_subvol(a->root) ? ARB_IOC_MOUNTED : 0);
	memcpy(info->uuid, sv->uuid, sizeof(info->uuid));
	memcpy(info->parent_uuid, sv->parent_uuid, sizeof(info->parent_uuid));
	_Static_assert(sizeof(info->name) == sizeof(sv->name), "name sizes");
	memcpy(info->name, sv->name, sizeof(info->name));
}

/* The first subvolume with an id >= from. */
struct next_ctx {
	uint64_t from;
	struct arb_subvol sv;
	bool found;
};

static int next_fn(void *ctx, const struct arb_subvol *sv)
{
	struct next_ctx *n = ctx;

	if (sv->id < n->from)
		return 0;
	n->sv = *sv;
	n->found = true;
	return 1;
}

static int find_next(struct afs *a, uint64_t from, struct arb_subvol *sv)
{
	struct next_ctx n = {.from = from};
	int ret = arb_vfs_subvol_list(a->fs, next_fn, &n);

	if (!ret && !n.found)
		ret = -ENOENT;
	if (!ret)
		*sv = n.sv;
	return ret;
}

static void ioc_info(fuse_req_t req, const void *in_buf, bool next)
{
	struct afs *a = afs_req(req);
	struct arb_ioc_subvol_info info;
	struct arb_subvol sv;
	int ret;

	memcpy(&info, in_buf, sizeof(info));
	afs_lock(a);
	if (next)
		ret = find_next(a, info.id, &sv);
	else
		ret = arb_vfs_subvol_get(a->fs, info.id, &sv);
	if (!ret)
		fill_info(a, &sv, &info);
	ret = afs_unlock(a, ret);
	reply(req, ret, &info, sizeof(info));
}

/* ---- rollback -------------------------------------------------------------------------------- */

/* Locked: the caller owns the root directory of subvolume id (or is root). */
static int must_own_subvol(struct afs *a, const struct caller *c, uint64_t id)
{
	struct arb_stat st;
	arb_ino_t root;
	int ret = id >= ARB_FIRST_USER_TREE ? arb_vfs_root(a->fs, id, &root) : -ENOENT;

	if (!ret)
		ret = arb_vfs_getattr(a->fs, root, &st);
	return ret ? ret : must_own(c, &st);
}

static int check_rollback(const struct arb_ioc_rollback_args *args)
{
	bool keep = !(args->flags & ARB_IOC_NO_KEEP);
	size_t klen = strnlen(args->keep_name, sizeof(args->keep_name));

	if ((args->flags & ~ARB_IOC_NO_KEEP) || args->id || args->old_id ||
	    !all_zero(args->reserved, sizeof(args->reserved)) || keep != (klen > 0))
		return -EINVAL;
	if (strnlen(args->name, sizeof(args->name)) == sizeof(args->name) ||
	    klen == sizeof(args->keep_name))
		return -ENAMETOOLONG;
	if (keep && afs_name_check(args->keep_name))
		return afs_name_check(args->keep_name);
	return afs_name_check(args->name);
}

/* Locked: check the caller, roll back, commit. */
static int do_rollback(struct afs *a, struct caller *c, fuse_ino_t ino,
                       struct arb_ioc_rollback_args *args)
{
	struct arb_stat root;
	bool keep = !(args->flags & ARB_IOC_NO_KEEP);
	int ret = dir_for_change(a, c, ino);

	if (!ret)
		ret = find_link(a, ino, args->name, &root, &args->old_id);
	if (!ret)
		ret = must_own(c, &root);
	if (!ret)
		ret = must_own_subvol(a, c, args->snap_id);
	/* the kernel's root must keep its inodes and its id */
	if (!ret && args->old_id == arb_ino_subvol(a->root))
		ret = -EBUSY;
	if (!ret)
		ret = arb_vfs_rollback(a->fs, afs_ino(a, ino), args->name, args->snap_id,
		                       keep ? args->keep_name : NULL, &args->id);
	return commit_change(a, ret);
}

static void ioc_rollback(fuse_req_t req, fuse_ino_t ino, const void *in_buf)
{
	struct afs *a = afs_req(req);
	struct arb_ioc_rollback_args args;
	struct caller c;
	int ret;

	memcpy(&args, in_buf, sizeof(args));
	ret = check_rollback(&args);
	if (!ret && a->read_only)
		ret = -EROFS;
	if (ret) {
		reply(req, ret, NULL, 0);
		return;
	}
	caller_init(&c, req);
	afs_lock(a);
	ret = afs_unlock(a, do_rollback(a, &c, ino, &args));
	caller_free(&c);
	if (ret)
		reply(req, ret, NULL, 0);
	else
		reply_after_forget(req, ino, args.name, args.keep_name, &args, sizeof(args));
}

/* ---- diff ------------------------------------------------------------------------------------ */

/* The last listing, under afs.lock (one filesystem per daemon). */
static struct {
	bool valid;
	uint64_t a_id, b_id, a_gen, b_gen;
	uint64_t lines, nodes_read;
	char *buf;
	size_t len, cap;
} listing;

static void listing_drop(void)
{
	free(listing.buf);
	memset(&listing, 0, sizeof(listing));
}

static int listing_add(void *ctx, char kind, const char *path)
{
	size_t n = strlen(path) + 3; /* "K " path NUL */

	(void)ctx;
	if (listing.len + n > listing.cap) {
		size_t cap = listing.cap ? listing.cap : 65536;
		char *b;

		while (cap < listing.len + n)
			cap *= 2;
		b = realloc(listing.buf, cap);
		if (!b)
			return -ENOMEM;
		listing.buf = b;
		listing.cap = cap;
	}
	listing.buf[listing.len] = kind;
	listing.buf[listing.len + 1] = ' ';
	memcpy(listing.buf + listing.len + 2, path, n - 2);
	listing.len += n;
	listing.lines++;
	return 0;
}

/* Locked: the generations of the two trees' root nodes; dirty when
 * either changed in the running transaction (where the next change would
 * not give it another generation). */
static int read_gens(struct afs *a, uint64_t a_id, uint64_t b_id, uint64_t gen[2], bool *dirty)
{
	const uint64_t ids[2] = {a_id, b_id};
	struct arb_fs_info info;
	struct arb_subvol sv;

	arb_fs_info(a->fs, &info);
	*dirty = false;
	for (int i = 0; i < 2; i++) {
		int ret = arb_vfs_subvol_get(a->fs, ids[i], &sv);

		if (ret)
			return ret;
		gen[i] = sv.generation;
		*dirty |= sv.generation > info.generation;
	}
	return 0;
}

/* Locked: generations that name the two trees' content, committing first
 * when needed. */
static int diff_gens(struct afs *a, uint64_t a_id, uint64_t b_id, uint64_t gen[2])
{
	bool dirty;
	int ret = read_gens(a, a_id, b_id, gen, &dirty);

	if (ret || !dirty || a->read_only)
		return ret;
	ret = afs_commit_locked(a);
	return ret ? ret : read_gens(a, a_id, b_id, gen, &dirty);
}

/* Locked: the listing of a_id -> b_id, computed unless the one kept is
 * of the same trees. */
static int listing_get(struct afs *a, uint64_t a_id, uint64_t b_id)
{
	uint64_t gen[2];
	int ret = diff_gens(a, a_id, b_id, gen);

	if (ret)
		return ret;
	if (listing.valid && listing.a_id == a_id && listing.b_id == b_id &&
	    listing.a_gen == gen[0] && listing.b_gen == gen[1])
		return 0;
	listing_drop();
	ret = arb_vfs_diff(a->fs, a_id, b_id, listing_add, NULL, &listing.nodes_read);
	if (ret) {
		listing_drop();
		return ret;
	}
	listing.valid = true;
	listing.a_id = a_id;
	listing.b_id = b_id;
	listing.a_gen = gen[0];
	listing.b_gen = gen[1];
	return 0;
}

/* Locked: one page of the listing into args. */
static int do_diff(struct afs *a, struct caller *c, struct arb_ioc_diff_args *args)
{
	size_t n;
	int ret = must_own_subvol(a, c, args->a_id);

	if (!ret)
		ret = must_own_subvol(a, c, args->b_id);
	if (!ret)
		ret = listing_get(a, args->a_id, args->b_id);
	if (ret)
		return ret;
	/* past the end: a reader of another version, told by the generations */
	n = args->offset < listing.len ? listing.len - (size_t)args->offset : 0;
	n = n < sizeof(args->buf) ? n : sizeof(args->buf);
	if (n)
		memcpy(args->buf, listing.buf + args->offset, n);
	args->len = (uint32_t)n;
	args->total_bytes = listing.len;
	args->total_lines = listing.lines;
	args->nodes_read = listing.nodes_read;
	args->a_gen = listing.a_gen;
	args->b_gen = listing.b_gen;
	if (args->offset + n >= listing.len)
		listing_drop(); /* the last page: nobody needs it kept */
	return 0;
}

static void ioc_diff(fuse_req_t req, const void *in_buf)
{
	struct afs *a = afs_req(req);
	struct arb_ioc_diff_args args;
	struct caller c;
	int ret = 0;

	memcpy(&args, in_buf, sizeof(args));
	if (args.flags || args.total_bytes || args.total_lines || args.nodes_read || args.a_gen ||
	    args.b_gen || args.len || !all_zero(args.reserved, sizeof(args.reserved)))
		ret = -EINVAL;
	if (!ret) {
		caller_init(&c, req);
		afs_lock(a);
		ret = afs_unlock(a, do_diff(a, &c, &args));
		caller_free(&c);
	}
	reply(req, ret, &args, sizeof(args));
}

/* ---- usage ----------------------------------------------------------------------------------- */

static void ioc_usage(fuse_req_t req, const void *in_buf)
{
	struct afs *a = afs_req(req);
	struct arb_ioc_usage_args args;
	struct arb_subvol_usage u = {0};
	int ret = 0;

	memcpy(&args, in_buf, sizeof(args));
	if (args.referenced_bytes || args.exclusive_bytes || args.nodes_read ||
	    !all_zero(args.reserved, sizeof(args.reserved)))
		ret = -EINVAL;
	if (!ret) {
		afs_lock(a);
		ret = afs_unlock(a, arb_vfs_subvol_usage(a->fs, args.id, &u));
	}
	if (!ret) {
		args.referenced_bytes = u.referenced_bytes;
		args.exclusive_bytes = u.exclusive_bytes;
		args.nodes_read = u.nodes_read;
	}
	reply(req, ret, &args, sizeof(args));
}

/* ---- dispatch ------------------------------------------------------------------------------ */

/* Only our own commands, on a directory, from a native caller, with the
 * argument size the command encodes (the kernel copies exactly that for
 * restricted ioctls; anything else is not one of ours). */
static int check_cmd(unsigned int cmd, unsigned flags, size_t in_bufsz, size_t out_bufsz)
{
	size_t size = _IOC_SIZE(cmd);

	switch (cmd) {
	case ARB_IOC_SUBVOL_CREATE:
	case ARB_IOC_SNAPSHOT:
	case ARB_IOC_SUBVOL_DELETE:
	case ARB_IOC_SUBVOL_INFO:
	case ARB_IOC_SUBVOL_NEXT:
	case ARB_IOC_SET_DEFAULT:
	case ARB_IOC_SYNC:
	case ARB_IOC_DIFF:
	case ARB_IOC_ROLLBACK:
	case ARB_IOC_SUBVOL_USAGE:
	case ARB_IOC_WAIT_CLEANED:
		break;
	default:
		return -ENOTTY;
	}
	if ((flags & FUSE_IOCTL_COMPAT) || !(flags & FUSE_IOCTL_DIR))
		return -ENOTTY;
	if (in_bufsz != (_IOC_DIR(cmd) & _IOC_WRITE ? size : 0))
		return -EINVAL;
	if (out_bufsz < (_IOC_DIR(cmd) & _IOC_READ ? size : 0))
		return -EINVAL;
	return 0;
}

void afs_op_ioctl(fuse_req_t req, fuse_ino_t ino, unsigned int cmd, void *arg,
                  struct fuse_file_info *fi, unsigned flags, const void *in_buf, size_t in_bufsz,
                  size_t out_bufsz)
{
	int ret = check_cmd(cmd, flags, in_bufsz, out_bufsz);

	(void)arg;
	(void)fi;
	if (ret) {
		reply(req, ret, NULL, 0);
		return;
	}
	switch (cmd) {
	case ARB_IOC_SUBVOL_CREATE:
		ioc_change(req, ino, cmd, in_buf, do_create, 0);
		break;
	case ARB_IOC_SNAPSHOT:
		ioc_change(req, ino, cmd, in_buf, do_snapshot, ARB_IOC_RDONLY);
		break;
	case ARB_IOC_SUBVOL_DELETE:
		ioc_change(req, ino, cmd, in_buf, do_delete, 0);
		break;
	case ARB_IOC_SUBVOL_INFO:
	case ARB_IOC_SUBVOL_NEXT:
		ioc_info(req, in_buf, cmd == ARB_IOC_SUBVOL_NEXT);
		break;
	case ARB_IOC_SET_DEFAULT:
		ioc_set_default(req, in_buf);
		break;
	case ARB_IOC_ROLLBACK:
		ioc_rollback(req, ino, in_buf);
		break;
	case ARB_IOC_DIFF:
		ioc_diff(req, in_buf);
		break;
	case ARB_IOC_SUBVOL_USAGE:
		ioc_usage(req, in_buf);
		break;
	case ARB_IOC_WAIT_CLEANED:
		ioc_wait_cleaned(req);
		break;
	default:
		ioc_sync(req);
		break;
	}
}
