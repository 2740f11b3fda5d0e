/* SPDX-License-Identifier: MIT */
/*
 * fsck_subvol.c - phase 3 of fsck: the links of one subvolume to the
 * subvolumes inside it.  Every directory entry of type ARB_DT_SUBVOL
 * names a live subvolume and agrees with a ROOT_REF (this tree, child)
 * and a ROOT_BACKREF (child, this tree) in the root tree; every ROOT_REF
 * of this tree is such an entry's; every ROOT_BACKREF of this tree has
 * its ROOT_REF.  A ROOT_REF or ROOT_BACKREF that is missing while its
 * twin and the entry agree is rewritten; an entry with neither goes, and
 * so do root references that name no entry.
 */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fsck_fs.h"

#define RREF_HDR ((uint32_t)sizeof(struct arb_root_ref))

/* ---- subvolume links ------------------------------------------------------------- */

struct rref {
	uint64_t other; /* child (ROOT_REF) or parent (ROOT_BACKREF) */
	uint64_t dirid, index;
	uint16_t nlen;
	bool ok, used;
	char name[ARB_NAME_MAX + 1];
};

static void rref_decode(uint64_t other, const uint8_t *data, uint32_t len, struct rref *r)
{
	struct arb_root_ref h;

	memset(r, 0, sizeof(*r));
	r->other = other;
	if (len < RREF_HDR)
		return;
	memcpy(&h, data, RREF_HDR);
	r->nlen = le16toh(h.name_len);
	if (len != RREF_HDR + r->nlen || !fsck_name_ok((const char *)data + RREF_HDR, r->nlen))
		return;
	r->dirid = le64toh(h.dirid);
	r->index = le64toh(h.index);
	memcpy(r->name, data + RREF_HDR, r->nlen);
	r->ok = true;
}

/* The root-tree items (objectid, type, *) decoded. */
static int read_rrefs(struct fsck_sv *c, uint64_t objectid, uint8_t type, struct rref **ret,
                      size_t *ret_n)
{
	struct arb_key start = {objectid, type, 0}, k;
	struct arb_iter *it;
	const void *data;
	uint32_t len;
	size_t cap = 0;
	int ret_it = arb_iter_open(&c->fs->root_tree, &start, ARB_ITER_FORWARD, &it);

	*ret = NULL;
	*ret_n = 0;
	if (ret_it)
		return ret_it;
	while ((ret_it = arb_iter_next(it, &k, &data, &len)) == 1 && k.objectid == objectid &&
	       k.type == type) {
		if (*ret_n == cap) {
			struct rref *p = realloc(*ret, (cap = cap ? 2 * cap : 4) * sizeof(*p));

			if (!p) {
				ret_it = -ENOMEM;
				break;
			}
			*ret = p;
		}
		rref_decode(k.offset, data, len, &(*ret)[(*ret_n)++]);
	}
	arb_iter_close(it);
	return ret_it < 0 ? ret_it : 0;
}

static bool rref_matches(const struct rref *r, const struct fsublink *s)
{
	return r && r->ok && r->dirid == s->dir && r->index == s->index && r->nlen == s->nlen &&
	       !memcmp(r->name, s->name, s->nlen);
}

static int queue_root(struct fsck_sv *c, enum fact_kind kind, uint64_t obj, uint8_t type,
                      uint64_t off, const struct fsublink *s)
{
	struct fact *a = fsck_act(c, kind);

	if (!a)
		return -ENOMEM;
	a->key = (struct arb_key){obj, type, off};
	if (s) {
		a->parent = s->dir;
		a->index = s->index;
		fsck_set_name(a, s->name, s->nlen);
	}
	return 0;
}

static bool tree_alive(struct fsck_sv *c, uint64_t id)
{
	struct arb_tree *t;

	return id >= ARB_FIRST_USER_TREE && arb_tree_get(c->fs, id, &t) == 0;
}

static int drop_sublink(struct fsck_sv *c, const struct fsublink *s)
{
	struct flink e = {s->dir, s->index, s->child, ARB_DT_SUBVOL, s->nlen, {0}};
	struct fdir *d = fsck_dir(c, s->dir);

	memcpy(e.name, s->name, s->nlen);
	if (d && d->subdirs)
		d->subdirs--; /* fsck_remove_entry counts only DT_DIR */
	return fsck_remove_entry(c, &e, false);
}

/* One subvolume link of this tree against its ROOT_REF and ROOT_BACKREF. */
static int check_sublink(struct fsck_sv *c, const struct fsublink *s, struct rref *refs,
                         size_t nrefs)
{
	struct rref *r = NULL, back;
	uint8_t buf[RREF_HDR + ARB_NAME_MAX + 1];
	struct arb_key bk = {s->child, ARB_ROOT_BACKREF_KEY, c->id};
	char nb[FSCK_NAMEBUF];
	uint32_t len;
	bool has_back;
	int err;

	fsck_name(s->name, s->nlen, nb, sizeof(nb));
	for (size_t i = 0; i < nrefs && !r; i++)
		if (refs[i].other == s->child && !refs[i].used)
			r = &refs[i];
	err = arb_lookup(&c->fs->root_tree, &bk, buf, sizeof(buf), &len);
	if (err && err != -ENOENT)
		return err;
	has_back = !err;
	if (has_back)
		rref_decode(c->id, buf, len < sizeof(buf) ? len : sizeof(buf), &back);
	if (!tree_alive(c, s->child)) {
		fsck_problem(c, s->dir, "entry %s names subvolume %llu, which does not exist", nb,
		             (unsigned long long)s->child);
		fsck_fixed(c, s->dir, "removed the entry %s and its root references", nb);
		if (r)
			r->used = true;
		err = r ? queue_root(c, FA_ROOT_DEL, c->id, ARB_ROOT_REF_KEY, s->child, NULL) : 0;
		if (!err && has_back)
			err = queue_root(c, FA_ROOT_DEL, s->child, ARB_ROOT_BACKREF_KEY, c->id,
			                 NULL);
		return err ? err : drop_sublink(c, s);
	}
	bool rm = rref_matches(r, s), bm = has_back && rref_matches(&back, s);

	if (rm && bm) {
		r->used = true;
		return 0;
	}
	if (rm || bm) {
		fsck_problem(c, s->dir, "subvolume link %s: the %s of subvolume %llu is %s", nb,
		             rm ? "ROOT_BACKREF" : "ROOT_REF", (unsigned long long)s->child,
		             (rm ? has_back : r != NULL) ? "wrong" : "missing");
		fsck_fixed(c, s->dir, "rewrote the %s from the link",
		           rm ? "ROOT_BACKREF" : "ROOT_REF");
		if (r)
			r->used = true;
		return rm ? queue_root(c, FA_ROOT_PUT, s->child, ARB_ROOT_BACKREF_KEY, c->id, s)
		          : queue_root(c, FA_ROOT_PUT, c->id, ARB_ROOT_REF_KEY, s->child, s);
	}
	fsck_problem(c, s->dir, "entry %s names subvolume %llu, but no ROOT_REF records the link",
	             nb, (unsigned long long)s->child);
	fsck_fixed(c, s->dir, "removed the entry %s", nb);
	return drop_sublink(c, s);
}

/* ROOT_REFs of this tree no link uses, and ROOT_BACKREFs to a parent
 * with no ROOT_REF. */
static int check_rrefs_unused(struct fsck_sv *c, const struct rref *refs, size_t nrefs)
{
	struct rref *backs;
	size_t nbacks;
	int err = 0;

	for (size_t i = 0; i < nrefs && !err; i++) {
		struct arb_key bk = {refs[i].other, ARB_ROOT_BACKREF_KEY, c->id};
		uint32_t len;

		if (refs[i].used)
			continue;
		fsck_problem(c, 0, "the ROOT_REF of subvolume %llu names no link of this subvolume",
		             (unsigned long long)refs[i].other);
		fsck_fixed(c, 0, "removed the ROOT_REF and ROOT_BACKREF of subvolume %llu",
		           (unsigned long long)refs[i].other);
		err = queue_root(c, FA_ROOT_DEL, c->id, ARB_ROOT_REF_KEY, refs[i].other, NULL);
		if (!err && arb_lookup(&c->fs->root_tree, &bk, NULL, 0, &len) == 0)
			err = queue_root(c, FA_ROOT_DEL, refs[i].other, ARB_ROOT_BACKREF_KEY, c->id,
			                 NULL);
	}
	if (err)
		return err;
	err = read_rrefs(c, c->id, ARB_ROOT_BACKREF_KEY, &backs, &nbacks);
	for (size_t i = 0; i < nbacks && !err; i++) {
		struct arb_key rk = {backs[i].other, ARB_ROOT_REF_KEY, c->id};
		uint32_t len;
		bool alive = tree_alive(c, backs[i].other);

		if (alive && arb_lookup(&c->fs->root_tree, &rk, NULL, 0, &len) == 0)
			continue; /* the parent's check compares the two */
		fsck_problem(c, 0, "the ROOT_BACKREF to subvolume %llu has no ROOT_REF%s",
		             (unsigned long long)backs[i].other,
		             alive ? "" : " (that subvolume does not exist)");
		fsck_fixed(c, 0, "removed the ROOT_BACKREF to subvolume %llu",
		           (unsigned long long)backs[i].other);
		err = queue_root(c, FA_ROOT_DEL, c->id, ARB_ROOT_BACKREF_KEY, backs[i].other, NULL);
		if (!err && !alive && arb_lookup(&c->fs->root_tree, &rk, NULL, 0, &len) == 0)
			err = queue_root(c, FA_ROOT_DEL, backs[i].other, ARB_ROOT_REF_KEY, c->id,
			                 NULL);
	}
	free(backs);
	return err;
}

int fsck_subvol_links(struct fsck_sv *c)
{
	struct rref *refs;
	size_t nrefs;
	int err = read_rrefs(c, c->id, ARB_ROOT_REF_KEY, &refs, &nrefs);

	for (size_t i = 0; i < c->nsublinks && !err; i++)
		err = check_sublink(c, &c->sublinks[i], refs, nrefs);
	if (!err)
		err = check_rrefs_unused(c, refs, nrefs);
	free(refs);
	return err;
}
