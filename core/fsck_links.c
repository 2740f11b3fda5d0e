/* SPDX-License-Identifier: MIT */
/*
 * fsck_links.c - phase 3 of fsck, between inodes: every name of an inode
 * is a directory entry (DIR_ITEM + DIR_INDEX) and a back-reference
 * (INODE_REF) that agree; link counts are what dir.c keeps (a file: its
 * names; a directory: 2 + its subdirectories and subvolume links); a
 * directory's size is the sum of its entries' name lengths; a directory
 * has one name and lies below the root; an inode without a name is on the
 * orphan list exactly when its link count is 0; subvolume links agree
 * with the ROOT_REF / ROOT_BACKREF pairs of the root tree.  Then the
 * repairs fsck_fs.c and this file queued are applied, in order.
 *
 * What a check reports is what the repair then does: derived figures
 * (link counts, sizes, the inode count) are compared with the state the
 * repair leaves, and set to it.  Reattaching under /lost+found comes
 * last and adjusts the directories it touches the way dir.c would.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "arbor/crc32c.h"
#include "fsck_fs.h"

#define HASH_K 0x9E3779B97F4A7C15ull
#define DE_HDR ((uint32_t)sizeof(struct arb_dir_entry))
#define IR_HDR ((uint32_t)sizeof(struct arb_inode_ref))
#define RREF_HDR ((uint32_t)sizeof(struct arb_root_ref))
#define LOST_FOUND "lost+found"

/* ---- sorted lists of inode numbers ----------------------------------------------- */

struct inolist {
	uint64_t *v;
	size_t n, cap;
};

static int inolist_add(struct inolist *l, uint64_t ino)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 64;
		uint64_t *p = realloc(l->v, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		l->v = p;
		l->cap = cap;
	}
	l->v[l->n++] = ino;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The inodes of the table for which keep() holds, in increasing order
 * (messages come in a stable order). */
static int sorted_inos(struct fsck_sv *c, bool (*keep)(struct fsck_sv *, struct fino *),
                       struct inolist *l)
{
	for (size_t i = 0; i < fhash_slots(&c->inos); i++) {
		struct fino *f = fhash_at(&c->inos, i);

		if (f && keep(c, f) && inolist_add(l, f->ino))
			return -ENOMEM;
	}
	if (l->n)
		qsort(l->v, l->n, sizeof(*l->v), cmp_u64);
	return 0;
}

static const char *kind_of(uint8_t dtype)
{
	switch (dtype) {
	case DT_DIR:
		return "directory";
	case DT_REG:
		return "regular file";
	case DT_LNK:
		return "symbolic link";
	case DT_CHR:
		return "character device";
	case DT_BLK:
		return "block device";
	case DT_FIFO:
		return "fifo";
	case DT_SOCK:
		return "socket";
	}
	return "nothing";
}

static bool is_dir(const struct fino *f)
{
	return (f->flags & FI_ITEM) && f->dtype == DT_DIR;
}

/* ---- names of the inodes whose sums disagree ------------------------------------- */

static bool suspect(struct fsck_sv *c, struct fino *f)
{
	(void)c;
	if (!(f->flags & FI_ITEM))
		return f->nents > 0;
	if (f->fp || f->nents != f->nrefs || (f->enttypes & ~(1u << f->dtype)))
		return true;
	if (f->ino == ARB_FIRST_INO)
		return f->nents != 0;
	return f->dtype == DT_DIR && f->nents > 1;
}

/* A back-reference record of the inode looked at. */
struct fref {
	uint64_t dir, index;
	uint16_t nlen;
	bool used;
	char name[ARB_NAME_MAX + 1];
};

struct freflist {
	struct fref *v;
	size_t n, cap;
};

static int add_ref(struct freflist *l, uint64_t dir, uint64_t index, const char *name,
                   uint16_t nlen)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 4;
		struct fref *p = realloc(l->v, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		l->v = p;
		l->cap = cap;
	}
	struct fref *r = &l->v[l->n++];

	*r = (struct fref){dir, index, nlen, false, {0}};
	memcpy(r->name, name, nlen);
	return 0;
}

/* The valid records of one INODE_REF item (what the walk counted). */
static int parse_refs(struct fsck_sv *c, const struct arb_key *k, const uint8_t *data, uint32_t len,
                      struct freflist *l)
{
	uint32_t off = 0;

	while (off < len) {
		struct arb_inode_ref ir;
		const char *name = (const char *)data + off + IR_HDR;
		uint16_t nlen;

		if (len - off < IR_HDR)
			return 0;
		memcpy(&ir, data + off, IR_HDR);
		nlen = le16toh(ir.name_len);
		if (nlen > len - off - IR_HDR)
			return 0; /* malformed: removed, never counted */
		off += IR_HDR + nlen;
		if (!fsck_name_ok(name, nlen) ||
		    arb_name_hash(c->fs->hash_seed + le64toh(ir.parent) * HASH_K, name, nlen) !=
		            k->offset)
			continue;
		if (add_ref(l, le64toh(ir.parent), le64toh(ir.index), name, nlen))
			return -ENOMEM;
	}
	return 0;
}

static int read_refs(struct fsck_sv *c, uint64_t ino, struct freflist *l)
{
	struct arb_key start = {ino, ARB_INODE_REF_KEY, 0}, k;
	struct arb_iter *it;
	const void *data;
	uint32_t len;
	int ret = arb_iter_open(c->t, &start, ARB_ITER_FORWARD, &it);

	if (ret)
		return ret;
	while ((ret = arb_iter_next(it, &k, &data, &len)) == 1 && k.objectid == ino &&
	       k.type == ARB_INODE_REF_KEY) {
		ret = parse_refs(c, &k, data, len, l);
		if (ret)
			break;
	}
	arb_iter_close(it);
	return ret < 0 ? ret : 0;
}

static int queue_entry_op(struct fsck_sv *c, enum fact_kind kind, uint64_t dir, uint64_t index,
                          uint64_t child, uint8_t type, const char *name, uint16_t nlen)
{
	struct fact *a = fsck_act(c, kind);

	if (!a)
		return -ENOMEM;
	a->ino = dir;
	a->index = index;
	a->child = child;
	a->type = type;
	a->parent = dir;
	a->fields = FE_ITEM | FE_INDEX;
	fsck_set_name(a, name, nlen);
	return 0;
}

/* Remove an entry (and the back-reference that matched it). */
int fsck_remove_entry(struct fsck_sv *c, const struct flink *e, bool has_ref)
{
	struct fdir *d = fsck_dir(c, e->dir);
	int err = queue_entry_op(c, FA_DEL_ENTRY, e->dir, e->index, e->child, e->type, e->name,
	                         e->nlen);

	if (!err && has_ref)
		err = queue_entry_op(c, FA_DEL_IREF, e->dir, e->index, e->child, e->type, e->name,
		                     e->nlen);
	if (d) {
		d->names_len -= d->names_len >= e->nlen ? e->nlen : d->names_len;
		d->subdirs -= e->type == DT_DIR && d->subdirs;
	}
	return err;
}

static int keep_entry(struct fsck_sv *c, struct fino *f, const struct flink *e, bool has_ref)
{
	char nb[FSCK_NAMEBUF];
	int err = 0;

	fsck_name(e->name, e->nlen, nb, sizeof(nb));
	if (f->dtype == DT_DIR)
		f->parent = e->dir;
	if (!has_ref) {
		fsck_problem(c, f->ino,
		             "no back-reference to its name %s (index %llu) in directory %llu", nb,
		             (unsigned long long)e->index, (unsigned long long)e->dir);
		err = queue_entry_op(c, FA_ADD_IREF, e->dir, e->index, f->ino, f->dtype, e->name,
		                     e->nlen);
		fsck_fixed(c, f->ino, "added the back-reference to %s", nb);
	}
	if (!err && e->type != f->dtype) {
		struct fdir *d = fsck_dir(c, e->dir);

		fsck_problem(c, e->dir,
		             "entry %s (index %llu) gives file type %u, but inode %llu is a %s", nb,
		             (unsigned long long)e->index, e->type, (unsigned long long)f->ino,
		             kind_of(f->dtype));
		err = queue_entry_op(c, FA_SET_TYPE, e->dir, e->index, f->ino, f->dtype, e->name,
		                     e->nlen);
		if (d)
			d->subdirs += (f->dtype == DT_DIR) - (e->type == DT_DIR);
		fsck_fixed(c, e->dir, "set the file type of %s to %u", nb, f->dtype);
	}
	return err;
}

/* An entry naming an inode that has other names it may not have. */
static int decide_entry(struct fsck_sv *c, struct fino *f, const struct flink *e, bool has_ref,
                        uint32_t *kept)
{
	char nb[FSCK_NAMEBUF];

	fsck_name(e->name, e->nlen, nb, sizeof(nb));
	if (f->ino == ARB_FIRST_INO) {
		fsck_problem(c, e->dir, "entry %s (index %llu) names the root directory", nb,
		             (unsigned long long)e->index);
	} else if (f->dtype == DT_DIR && *kept) {
		fsck_problem(c, f->ino,
		             "directory has a second name %s (index %llu) in directory %llu", nb,
		             (unsigned long long)e->index, (unsigned long long)e->dir);
	} else {
		(*kept)++;
		return keep_entry(c, f, e, has_ref);
	}
	fsck_fixed(c, e->dir, "removed the entry %s", nb);
	return fsck_remove_entry(c, e, has_ref);
}

/* May dir receive the entry a back-reference describes (name and index free)? */
static int dir_can_take(struct fsck_sv *c, const struct fref *r)
{
	struct fino *d = fsck_ino(c, r->dir, false);
	struct arb_key ik = {r->dir, ARB_DIR_INDEX_KEY, r->index};
	struct arb_key hk = {r->dir, ARB_DIR_ITEM_KEY,
	                     arb_name_hash(c->fs->hash_seed, r->name, r->nlen)};
	uint8_t *buf;
	uint32_t len;
	int err;

	if (!d || !is_dir(d) || !fsck_dir(c, r->dir))
		return 0;
	err = arb_lookup(c->t, &ik, NULL, 0, &len);
	if (err != -ENOENT)
		return err ? err : 0;
	err = hitem_read(c->t, &hk, &buf, &len);
	if (err)
		return err == -ENOENT ? 1 : err;
	long off = rec_find(REC_DIRENT, buf, len, r->name, r->nlen, 0);

	free(buf);
	return off == -ENOENT ? 1 : 0;
}

/* A back-reference without its entry: recreate the entry where it fits. */
static int decide_ref(struct fsck_sv *c, struct fino *f, const struct fref *r, uint32_t *kept)
{
	char nb[FSCK_NAMEBUF];
	int can = 0, err;

	fsck_name(r->name, r->nlen, nb, sizeof(nb));
	fsck_problem(c, f->ino,
	             "back-reference to %s (index %llu) in directory %llu has no directory entry",
	             nb, (unsigned long long)r->index, (unsigned long long)r->dir);
	if (f->ino != ARB_FIRST_INO && !(f->dtype == DT_DIR && *kept))
		can = dir_can_take(c, r);
	if (can < 0)
		return can;
	if (!can) {
		fsck_fixed(c, f->ino, "removed the back-reference to %s", nb);
		return queue_entry_op(c, FA_DEL_IREF, r->dir, r->index, f->ino, f->dtype, r->name,
		                      r->nlen);
	}
	struct fdir *d = fsck_dir(c, r->dir);

	(*kept)++;
	if (f->dtype == DT_DIR)
		f->parent = r->dir;
	d->names_len += r->nlen;
	d->subdirs += f->dtype == DT_DIR;
	d->max_index = r->index + 1 > d->max_index ? r->index + 1 : d->max_index;
	err = queue_entry_op(c, FA_ADD_ENTRY, r->dir, r->index, f->ino, f->dtype, r->name, r->nlen);
	fsck_fixed(c, f->ino, "recreated the entry %s in directory %llu", nb,
	           (unsigned long long)r->dir);
	return err;
}

static bool same_name(const struct flink *e, const struct fref *r)
{
	return e->dir == r->dir && e->index == r->index && e->nlen == r->nlen &&
	       !memcmp(e->name, r->name, e->nlen);
}

/* Entries naming an inode that does not exist go. */
static int dangling(struct fsck_sv *c, const struct flink *e, size_t ne)
{
	char nb[FSCK_NAMEBUF];
	int err = 0;

	for (size_t i = 0; i < ne && !err; i++) {
		fsck_name(e[i].name, e[i].nlen, nb, sizeof(nb));
		fsck_problem(c, e[i].dir,
		             "entry %s (index %llu) names inode %llu, which does not exist", nb,
		             (unsigned long long)e[i].index, (unsigned long long)e[i].child);
		fsck_fixed(c, e[i].dir, "removed the entry %s", nb);
		err = fsck_remove_entry(c, &e[i], false);
	}
	return err;
}

/* Pair the entries naming f with its back-references and decide, name by
 * name, what stays: pairs first, then entries alone, then back-references
 * alone. */
static int resolve(struct fsck_sv *c, struct fino *f, const struct flink *e, size_t ne)
{
	struct freflist refs = {0};
	uint32_t kept = 0;
	size_t done_first = 0; /* 1 + the entry decided first, 0: none */
	bool *paired;
	int err;

	if (!(f->flags & FI_ITEM)) {
		f->nents = 0;
		return dangling(c, e, ne);
	}
	paired = calloc(ne ? ne : 1, sizeof(*paired));
	err = paired ? read_refs(c, f->ino, &refs) : -ENOMEM;
	for (size_t i = 0; i < ne && !err; i++)
		for (size_t j = 0; j < refs.n && !paired[i]; j++)
			if (!refs.v[j].used && same_name(&e[i], &refs.v[j]))
				paired[i] = refs.v[j].used = true;
	/* a directory keeps the name its ".." follows (dir_parent: the first
	 * back-reference), if that one is whole */
	for (size_t i = 0; i < ne && !err && f->dtype == DT_DIR && !done_first; i++)
		if (paired[i] && e[i].dir == refs.v[0].dir) {
			err = decide_entry(c, f, &e[i], true, &kept);
			done_first = i + 1;
		}
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < ne && !err; i++)
			if (paired[i] == (pass == 0) && i + 1 != done_first)
				err = decide_entry(c, f, &e[i], paired[i], &kept);
	for (size_t j = 0; j < refs.n && !err; j++)
		if (!refs.v[j].used)
			err = decide_ref(c, f, &refs.v[j], &kept);
	f->nents = kept;
	free(paired);
	free(refs.v);
	return err;
}

static int by_child(const void *a, const void *b)
{
	const struct flink *x = a, *y = b;

	if (x->child != y->child)
		return x->child < y->child ? -1 : 1;
	if (x->dir != y->dir)
		return x->dir < y->dir ? -1 : 1;
	return x->index < y->index ? -1 : x->index > y->index;
}

static int resolve_names(struct fsck_sv *c)
{
	struct inolist l = {0};
	size_t j = 0;
	int err = sorted_inos(c, suspect, &l);

	if (err || !l.n)
		goto out;
	for (size_t i = 0; i < l.n; i++)
		fsck_ino(c, l.v[i], false)->flags |= FI_PROBLEM;
	/* the entries naming them: a second walk, gathering only those */
	c->quiet = true;
	err = fsck_walk(c);
	c->quiet = false;
	if (err)
		goto out;
	if (c->nlinks)
		qsort(c->links, c->nlinks, sizeof(*c->links), by_child);
	for (size_t i = 0; i < l.n && !err; i++) {
		size_t k;

		while (j < c->nlinks && c->links[j].child < l.v[i])
			j++;
		for (k = j; k < c->nlinks && c->links[k].child == l.v[i]; k++)
			;
		/* no entry names it at all: c->links may be NULL */
		err = resolve(c, fsck_ino(c, l.v[i], false), c->links ? &c->links[j] : NULL, k - j);
		j = k;
	}
out:
	free(l.v);
	return err;
}

/* ---- reachability ------------------------------------------------------------------ */

/* Where reattached inodes go: the root's lost+found, made when needed.
 * false: they cannot be reattached (no root directory, or the name is
 * taken by something else). */
static int find_lost_found(struct fsck_sv *c, bool *ok)
{
	struct fino *root = fsck_ino(c, ARB_FIRST_INO, false);
	struct arb_key k = {ARB_FIRST_INO, ARB_DIR_ITEM_KEY,
	                    arb_name_hash(c->fs->hash_seed, LOST_FOUND, strlen(LOST_FOUND))};
	struct arb_dir_entry de = {0};
	uint8_t *buf;
	uint32_t len;
	long off;
	int err;

	*ok = false;
	if (!root || !is_dir(root)) {
		fsck_problem(c, ARB_FIRST_INO,
		             "the root directory is missing or is not a directory");
		return 0;
	}
	err = hitem_read(c->t, &k, &buf, &len);
	if (err)
		return err == -ENOENT ? (*ok = true, 0) : err;
	off = rec_find(REC_DIRENT, buf, len, LOST_FOUND, strlen(LOST_FOUND), 0);
	if (off >= 0)
		memcpy(&de, buf + off, DE_HDR);
	free(buf);
	if (off == -ENOENT || off == -EUCLEAN) {
		*ok = true;
		return 0;
	}
	struct fino *l = fsck_ino(c, le64toh(de.ino), false);

	*ok = de.type == DT_DIR && l && is_dir(l);
	if (*ok)
		c->lost_found = le64toh(de.ino);
	return 0;
}

static void detach(struct fino *f, bool cycle)
{
	f->flags |= FI_DETACH | FI_REACH | (cycle ? FI_CYCLE : 0);
}

/* Follow a directory's parents up to the root; a chain that ends at a
 * directory with no name, or loops, is cut there. */
static int follow(struct fsck_sv *c, uint64_t ino, struct inolist *path)
{
	uint64_t x = ino;

	path->n = 0;
	for (;;) {
		struct fino *f = fsck_ino(c, x, false);

		if (!f || x == ARB_FIRST_INO || (f->flags & FI_REACH))
			break;
		if (f->flags & FI_VISIT) {
			/* a loop: cut it at its smallest member */
			uint64_t min = x, y = fsck_ino(c, x, false)->parent;

			while (y != x) {
				min = y < min ? y : min;
				y = fsck_ino(c, y, false)->parent;
			}
			detach(fsck_ino(c, min, false), true);
			break;
		}
		if (!f->nents) {
			detach(f, false);
			break;
		}
		f->flags |= FI_VISIT;
		if (inolist_add(path, x))
			return -ENOMEM;
		x = f->parent;
	}
	for (size_t i = 0; i < path->n; i++) {
		struct fino *f = fsck_ino(c, path->v[i], false);

		f->flags = (uint8_t)((f->flags & ~FI_VISIT) | FI_REACH);
	}
	return 0;
}

/* An empty directory without a name or links is an orphan, not lost. */
static bool orphan_dir(struct fsck_sv *c, const struct fino *f)
{
	const struct fdir *d = fsck_dir(c, f->ino);

	return !f->nents && !f->nlink && (!d || (!d->names_len && !d->subdirs));
}

static bool detached(struct fsck_sv *c, struct fino *f)
{
	(void)c;
	return f->flags & FI_DETACH;
}

static int queue_reattach(struct fsck_sv *c, struct fino *f, bool ok)
{
	struct fact *a;

	f->nents = 1;
	if (!ok)
		return 0;
	a = fsck_act(c, FA_REATTACH);
	if (!a)
		return -ENOMEM;
	a->ino = f->ino;
	a->type = f->dtype;
	a->parent = (f->flags & FI_CYCLE) ? f->parent : 0;
	fsck_fixed(c, f->ino, "reattached as /" LOST_FOUND "/#%llu", (unsigned long long)f->ino);
	c->r->lost_and_found += c->repair;
	return 0;
}

static int reach(struct fsck_sv *c, bool ok)
{
	struct inolist path = {0}, l = {0};
	int err = 0;

	for (size_t i = 0; i < fhash_slots(&c->inos) && !err; i++) {
		struct fino *f = fhash_at(&c->inos, i);

		if (f && is_dir(f) && !(f->flags & FI_REACH) && !orphan_dir(c, f))
			err = follow(c, f->ino, &path);
	}
	free(path.v);
	if (!err)
		err = sorted_inos(c, detached, &l);
	for (size_t i = 0; i < l.n && !err; i++) {
		struct fino *f = fsck_ino(c, l.v[i], false);

		if (f->flags & FI_CYCLE)
			fsck_problem(
			        c, f->ino,
			        "directory is in a loop of directories the root does not reach "
			        "(named in directory %llu)",
			        (unsigned long long)f->parent);
		else
			fsck_problem(c, f->ino, "directory is not reachable: no entry names it");
		err = queue_reattach(c, f, ok);
	}
	free(l.v);
	return err;
}

/* ---- link counts and the orphan list ------------------------------------------------ */

static int check_orphan_list(struct fsck_sv *c)
{
	int err = 0;

	for (size_t i = 0; i < c->norphans && !err; i++) {
		struct fino *f = fsck_ino(c, c->orphans[i], false);
		struct arb_key k = {ARB_ORPHAN_OBJ, ARB_ORPHAN_KEY, c->orphans[i]};
		struct fact *a;

		if (f && (f->flags & FI_ITEM)) {
			f->flags |= FI_ORPHAN;
			continue;
		}
		fsck_problem(c, c->orphans[i], "is on the orphan list, but does not exist");
		a = fsck_act(c, FA_DEL_ITEM);
		if (!a)
			return -ENOMEM;
		a->key = k;
		fsck_fixed(c, c->orphans[i], "removed it from the orphan list");
	}
	return err;
}

static bool needs_count_look(struct fsck_sv *c, struct fino *f)
{
	if (!(f->flags & FI_ITEM) || f->ino == ARB_FIRST_INO)
		return false;
	if (f->dtype == DT_DIR)
		return orphan_dir(c, f) || (f->flags & FI_ORPHAN);
	return !f->nents || f->nlink != f->nents || (f->flags & FI_ORPHAN);
}

/* An inode without names and links: freed (or, in a read-only snapshot,
 * left on the orphan list as the core leaves it). */
static int unnamed(struct fsck_sv *c, struct fino *f)
{
	bool writable = vfs_tree_writable(c->t) == 0;
	struct fact *a;

	if (f->flags & FI_ORPHAN) {
		if (!writable)
			return 0;
		fsck_info(c, f->ino, "was unlinked while in use (on the orphan list)%s",
		          c->repair ? ": freed" : "");
	} else {
		fsck_problem(c, f->ino,
		             "has no name and link count 0, but is not on the orphan list");
		fsck_fixed(c, f->ino, writable ? "freed the inode" : "put it on the orphan list");
	}
	a = fsck_act(c, writable ? FA_FREE_INODE : FA_ORPHAN_ADD);
	if (!a)
		return -ENOMEM;
	a->ino = f->ino;
	if (writable) {
		f->flags |= FI_FREE;
		c->freed_inodes += c->repair;
	}
	return 0;
}

static int off_orphan_list(struct fsck_sv *c, struct fino *f)
{
	struct fact *a;

	fsck_problem(c, f->ino, "is on the orphan list, but has link count %u", f->nlink);
	a = fsck_act(c, FA_DEL_ITEM);
	if (!a)
		return -ENOMEM;
	a->key = (struct arb_key){ARB_ORPHAN_OBJ, ARB_ORPHAN_KEY, f->ino};
	fsck_fixed(c, f->ino, "removed it from the orphan list");
	return 0;
}

static int set_nlink(struct fsck_sv *c, struct fino *f, uint32_t nlink)
{
	struct fact *a = fsck_act(c, FA_SET_INODE);

	if (!a)
		return -ENOMEM;
	a->ino = f->ino;
	a->fields = FS_NLINK;
	a->nlink = nlink;
	fsck_fixed(c, f->ino, "set the link count to %u", nlink);
	return 0;
}

static int check_counts(struct fsck_sv *c, bool ok)
{
	struct inolist l = {0};
	int err = check_orphan_list(c);

	if (!err)
		err = sorted_inos(c, needs_count_look, &l);
	for (size_t i = 0; i < l.n && !err; i++) {
		struct fino *f = fsck_ino(c, l.v[i], false);

		if (!f->nents && !f->nlink && (f->dtype != DT_DIR || orphan_dir(c, f))) {
			err = unnamed(c, f);
			continue;
		}
		if (f->flags & FI_ORPHAN)
			err = off_orphan_list(c, f);
		if (err || f->dtype == DT_DIR)
			continue;
		if (!f->nents) {
			fsck_problem(c, f->ino, "link count %u, but no name refers to it",
			             f->nlink);
			err = queue_reattach(c, f, ok);
		} else if (f->nlink != f->nents) {
			fsck_problem(c, f->ino, "link count %u, but %u %s to it", f->nlink,
			             f->nents, f->nents == 1 ? "name refers" : "names refer");
			err = set_nlink(c, f, f->nents);
		}
	}
	free(l.v);
	return err;
}

/* ---- directories' own figures --------------------------------------------------------- */

static bool dir_wrong(struct fsck_sv *c, struct fino *f)
{
	const struct fdir *d;

	if (!is_dir(f) || (f->flags & FI_FREE) || !(d = fsck_dir(c, f->ino)))
		return false;
	return f->nlink != 2 + d->subdirs || d->size != d->names_len ||
	       d->next_index < d->max_index || d->next_index < 2;
}

static int check_dirs(struct fsck_sv *c)
{
	struct inolist l = {0};
	int err = sorted_inos(c, dir_wrong, &l);

	for (size_t i = 0; i < l.n && !err; i++) {
		struct fino *f = fsck_ino(c, l.v[i], false);
		const struct fdir *d = fsck_dir(c, f->ino);
		uint64_t next = d->max_index > 2 ? d->max_index : 2;
		struct fact *a = fsck_act(c, FA_SET_INODE);

		if (!a) {
			err = -ENOMEM;
			break;
		}
		a->ino = f->ino;
		if (f->nlink != 2 + d->subdirs) {
			fsck_problem(c, f->ino,
			             "directory link count %u, but it has %u subdirectories",
			             f->nlink, d->subdirs);
			a->fields |= FS_NLINK;
			a->nlink = 2 + d->subdirs;
			fsck_fixed(c, f->ino, "set the link count to %u", 2 + d->subdirs);
		}
		if (d->size != d->names_len) {
			fsck_problem(c, f->ino,
			             "directory size %llu, but its entries' names add up to %llu",
			             (unsigned long long)d->size, (unsigned long long)d->names_len);
			a->fields |= FS_SIZE;
			a->size = d->names_len;
			fsck_fixed(c, f->ino, "set the size to %llu",
			           (unsigned long long)d->names_len);
		}
		if (d->next_index < next) {
			fsck_problem(
			        c, f->ino, "next directory index %llu, but index %llu is in use",
			        (unsigned long long)d->next_index, (unsigned long long)(next - 1));
			a->fields |= FS_NEXT_INDEX;
			a->next_index = next;
			fsck_fixed(c, f->ino, "set the next directory index to %llu",
			           (unsigned long long)next);
		}
	}
	free(l.v);
	return err;
}

static int check_info(struct fsck_sv *c)
{
	uint64_t count = le64toh(c->info.reserved[0]), next = le64toh(c->info.next_ino);

	if (!c->have_info) {
		fsck_problem(c, 0, "the subvolume information item is missing or damaged");
		fsck_fixed(c, 0, "rewrote the subvolume information item");
	} else {
		if (count != c->inode_items) {
			fsck_problem(c, 0, "the subvolume counts %llu inodes, but holds %llu",
			             (unsigned long long)count, (unsigned long long)c->inode_items);
			fsck_fixed(c, 0, "set the inode count to %llu",
			           (unsigned long long)c->inode_items);
		}
		if (next <= c->max_ino) {
			fsck_problem(c, 0, "the next inode number is %llu, but inode %llu exists",
			             (unsigned long long)next, (unsigned long long)c->max_ino);
			fsck_fixed(c, 0, "set the next inode number to %llu",
			           (unsigned long long)(c->max_ino + 1));
		}
	}
	/* the final figures are computed when the repairs are done */
	return fsck_act(c, FA_SUBVOL_INFO) ? 0 : -ENOMEM;
}

int fsck_links(struct fsck_sv *c)
{
	bool ok = false;
	int err = resolve_names(c);

	if (!err)
		err = fsck_subvol_links(c);
	if (!err)
		err = find_lost_found(c, &ok);
	if (!err)
		err = reach(c, ok);
	if (!err)
		err = check_counts(c, ok);
	if (!err)
		err = check_dirs(c);
	if (!err)
		err = check_info(c);
	return err;
}
