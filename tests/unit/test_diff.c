/* SPDX-License-Identifier: MIT */
/*
 * test_diff.c - arb_vfs_diff (and arb_tree_diff under it) against a
 * brute-force comparison.
 *
 * Each seed builds a random tree in a subvolume, snapshots it, applies
 * random changes (creates, writes, truncates, unlinks, renames over and
 * across directories, hard links, mkdir/rmdir, chmod, xattrs), snapshots
 * again, changes more, and compares arb_vfs_diff between every pair of
 * (snapshot 1, snapshot 2, live) in both directions with the answer of a
 * full walk of both trees: a path only in the second is A, only in the
 * first D, in both with another inode or any other attribute, content,
 * symlink target or xattr C.  Commits and reopens happen at random.
 *
 * A second case checks that the cost follows the change: one file changed
 * in a subvolume of 20,000 files reads a handful of nodes.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "arbor/crc32c.h"
#include "arbor/vfs.h"
#include "testutil.h"

#define DEV_SIZE (512ull << 20)
#define NR_SEEDS 12

static const struct arb_cred cred = {.uid = 1000, .gid = 100};

/* ---- brute force: every path of a subvolume with a fingerprint ---- */

struct pentry {
	char *path;
	uint64_t ino;
	uint32_t fp; /* stat fields, content, symlink target, xattrs */
};

struct plist {
	struct pentry *v;
	size_t n, cap;
};

static uint32_t fp_add(uint32_t h, const void *p, size_t n)
{
	return arb_crc32c(h, p, n);
}

static uint32_t fingerprint(struct arb_fs *fs, arb_ino_t ino)
{
	struct arb_stat st;
	static uint8_t buf[1 << 16];
	char names[4096];
	size_t got, nlen = 0;
	uint32_t h;

	TU_RC(arb_vfs_getattr(fs, ino, &st));
	st.ino = 0; /* differs between subvolumes for the same file */
	h = fp_add(0, &st, sizeof(st));
	if (S_ISREG(st.mode))
		for (uint64_t off = 0; off < st.size; off += got) {
			TU_RC(arb_vfs_read(fs, ino, off, buf, sizeof(buf), &got));
			TU_ASSERT(got > 0);
			h = fp_add(h, buf, got);
		}
	if (S_ISLNK(st.mode)) {
		TU_RC(arb_vfs_readlink(fs, ino, (char *)buf, sizeof(buf), &got));
		h = fp_add(h, buf, got);
	}
	TU_RC(arb_vfs_listxattr(fs, ino, names, sizeof(names), &nlen));
	for (size_t off = 0; off < nlen; off += strlen(names + off) + 1) {
		TU_RC(arb_vfs_getxattr(fs, ino, names + off, buf, sizeof(buf), &got));
		h = fp_add(fp_add(h, names + off, strlen(names + off)), buf, got);
	}
	return h;
}

/* Names are collected first: reading a file updates its atime, which
 * would end a readdir in progress (-ESTALE). */
struct walk_ctx {
	char **names;
	arb_ino_t *inos;
	unsigned *types;
	size_t n;
};

static void plist_add(struct plist *l, const char *path, uint64_t ino, uint32_t fp)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 64;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
		TU_ASSERT(l->v != NULL);
	}
	l->v[l->n++] = (struct pentry){strdup(path), ino, fp};
}

static int walk_cb(void *ctx, const char *name, size_t len, arb_ino_t ino, unsigned dtype,
                   uint64_t cookie)
{
	struct walk_ctx *w = ctx;

	(void)cookie;
	w->names = realloc(w->names, (w->n + 1) * sizeof(char *));
	w->inos = realloc(w->inos, (w->n + 1) * sizeof(arb_ino_t));
	w->types = realloc(w->types, (w->n + 1) * sizeof(unsigned));
	w->names[w->n] = strndup(name, len);
	w->inos[w->n] = ino;
	w->types[w->n++] = dtype;
	return 0;
}

static void walk(struct arb_fs *fs, arb_ino_t dir, const char *prefix, struct plist *l)
{
	struct walk_ctx w = {0};
	char path[4096];

	TU_RC(arb_vfs_readdir(fs, dir, 0, walk_cb, &w));
	for (size_t i = 0; i < w.n; i++) {
		snprintf(path, sizeof(path), "%s/%s", prefix, w.names[i]);
		plist_add(l, path, w.inos[i], fingerprint(fs, w.inos[i]));
		if (w.types[i] == (S_IFDIR >> 12))
			walk(fs, w.inos[i], path, l);
		free(w.names[i]);
	}
	free(w.names);
	free(w.inos);
	free(w.types);
}

static int cmp_pentry(const void *a, const void *b)
{
	return strcmp(((const struct pentry *)a)->path, ((const struct pentry *)b)->path);
}

static void plist_free(struct plist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].path);
	free(l->v);
}

/* "K path\n" lines of the expected diff from subvolume a to b. */
static char *brute_diff(struct arb_fs *fs, uint64_t a, uint64_t b)
{
	struct plist la = {0}, lb = {0};
	size_t i = 0, j = 0, len = 0, cap = 4096;
	char *out = malloc(cap);

	walk(fs, arb_ino_make(a, ARB_FIRST_INO), "", &la);
	walk(fs, arb_ino_make(b, ARB_FIRST_INO), "", &lb);
	qsort(la.v, la.n, sizeof(*la.v), cmp_pentry);
	qsort(lb.v, lb.n, sizeof(*lb.v), cmp_pentry);
	out[0] = 0;
	while (i < la.n || j < lb.n) {
		int c = i == la.n ? 1 : j == lb.n ? -1 : strcmp(la.v[i].path, lb.v[j].path);
		char kind = 0;
		const char *p = c <= 0 ? la.v[i].path : lb.v[j].path;

		if (c < 0)
			kind = 'D';
		else if (c > 0)
			kind = 'A';
		/* the same local number and fingerprint: the same inode, unchanged */
		else if (arb_ino_local(la.v[i].ino) != arb_ino_local(lb.v[j].ino) ||
		         la.v[i].fp != lb.v[j].fp)
			kind = 'C';
		if (kind) {
			while (len + strlen(p) + 4 > cap)
				out = realloc(out, cap *= 2);
			len += (size_t)sprintf(out + len, "%c %s\n", kind, p);
		}
		i += c <= 0;
		j += c >= 0;
	}
	plist_free(&la);
	plist_free(&lb);
	return out;
}

struct out {
	char *s;
	size_t len, cap;
};

static int diff_cb(void *ctx, char kind, const char *path)
{
	struct out *o = ctx;

	while (o->len + strlen(path) + 4 > o->cap) {
		o->cap = o->cap ? 2 * o->cap : 4096;
		o->s = realloc(o->s, o->cap);
	}
	o->len += (size_t)sprintf(o->s + o->len, "%c %s\n", kind, path);
	return 0;
}

static char *real_diff(struct arb_fs *fs, uint64_t a, uint64_t b, uint64_t *nodes)
{
	struct out o = {calloc(1, 1), 0, 1};

	TU_RC(arb_vfs_diff(fs, a, b, diff_cb, &o, nodes));
	return o.s;
}

static void expect_same_diff(struct arb_fs *fs, uint64_t a, uint64_t b)
{
	/* reading updates atime (relatime) in writable subvolumes: a first
	 * walk lets that happen, so that both answers see the same state */
	free(brute_diff(fs, a, b));
	char *want = brute_diff(fs, a, b), *got = real_diff(fs, a, b, NULL);

	if (strcmp(want, got))
		TU_FAIL("diff %" PRIu64 " -> %" PRIu64
		        " differs\n--- brute force:\n%s--- arb_vfs_diff:\n%s",
		        a, b, want, got);
	free(want);
	free(got);
}

/* ---- random trees ---- */

struct rt {
	struct tu_fs t;
	struct tu_rng rng;
	uint64_t sub; /* the live subvolume */
};

/* A random existing directory of the subvolume (walking down at random). */
static arb_ino_t rand_dir(struct rt *r)
{
	arb_ino_t d = arb_ino_make(r->sub, ARB_FIRST_INO);

	for (int depth = 0; depth < 4 && tu_rng_pct(&r->rng, 60); depth++) {
		char name[16];
		struct arb_stat st;

		snprintf(name, sizeof(name), "d%u", (unsigned)tu_rng_below(&r->rng, 4));
		if (arb_vfs_lookup(r->t.fs, d, name, &st) || !S_ISDIR(st.mode))
			break;
		d = st.ino;
	}
	return d;
}

static void rand_name(struct rt *r, char *name, bool dir)
{
	if (dir)
		sprintf(name, "d%u", (unsigned)tu_rng_below(&r->rng, 4));
	else
		sprintf(name, "f%u", (unsigned)tu_rng_below(&r->rng, 12));
}

static void write_random(struct rt *r, arb_ino_t ino, uint64_t off, size_t len)
{
	static uint8_t buf[40000];
	size_t w;

	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)tu_rng_next(&r->rng);
	TU_RC(arb_vfs_write(r->t.fs, ino, off, buf, len, &w));
}

/* One random change; errors such as EEXIST or ENOTEMPTY are part of the
 * game (nothing changes then). */
static void random_op(struct rt *r)
{
	struct arb_fs *fs = r->t.fs;
	arb_ino_t d = rand_dir(r), d2 = rand_dir(r);
	char name[16], name2[16];
	struct arb_stat st;
	int op = (int)tu_rng_below(&r->rng, 100);

	rand_name(r, name, op >= 80 && op < 90);
	if (op < 25) { /* create or overwrite */
		if (arb_vfs_lookup(fs, d, name, &st) == -ENOENT)
			TU_RC(arb_vfs_mknod(fs, d, name, S_IFREG | 0644, 0, &cred, &st));
		else if (!S_ISREG(st.mode))
			return;
		write_random(r, st.ino, tu_rng_below(&r->rng, 30000),
		             (size_t)tu_rng_range(&r->rng, 1, 9000));
	} else if (op < 35) {
		if (arb_vfs_lookup(fs, d, name, &st) == 0 && S_ISREG(st.mode)) {
			struct arb_setattr sa = {.valid = ARB_SET_SIZE,
			                         .size = tu_rng_below(&r->rng, 20000)};

			TU_RC(arb_vfs_setattr(fs, st.ino, &sa, NULL));
		}
	} else if (op < 50) {
		int e = arb_vfs_unlink(fs, d, name);

		TU_ASSERT(e == 0 || e == -ENOENT || e == -EISDIR, "unlink: %d", e);
	} else if (op < 65) {
		rand_name(r, name2, false);
		int e = arb_vfs_rename(fs, d, name, d2, name2, 0);

		TU_ASSERT(e == 0 || e == -ENOENT || e == -EISDIR || e == -ENOTDIR, "rename: %d", e);
	} else if (op < 72) {
		rand_name(r, name2, false);
		if (arb_vfs_lookup(fs, d, name, &st) == 0 && S_ISREG(st.mode)) {
			int e = arb_vfs_link(fs, st.ino, d2, name2, NULL);

			TU_ASSERT(e == 0 || e == -EEXIST, "link: %d", e);
		}
	} else if (op < 80) {
		if (arb_vfs_lookup(fs, d, name, &st) == 0) {
			struct arb_setattr sa = {.valid = ARB_SET_MODE,
			                         .mode = (uint32_t)tu_rng_below(&r->rng, 01000)};

			TU_RC(arb_vfs_setattr(fs, st.ino, &sa, NULL));
		}
	} else if (op < 85) {
		int e = arb_vfs_mkdir(fs, d, name, 0755, &cred, NULL);

		TU_ASSERT(e == 0 || e == -EEXIST, "mkdir: %d", e);
	} else if (op < 90) {
		int e = arb_vfs_rmdir(fs, d, name);

		TU_ASSERT(e == 0 || e == -ENOENT || e == -ENOTEMPTY || e == -ENOTDIR, "rmdir: %d",
		          e);
	} else if (op < 95) {
		if (arb_vfs_lookup(fs, d, name, &st) == 0)
			TU_RC(arb_vfs_setxattr(fs, st.ino, "user.k", name2, 3, 0));
	} else {
		int e = arb_vfs_symlink(fs, d, name, "some/target", &cred, NULL);

		TU_ASSERT(e == 0 || e == -EEXIST, "symlink: %d", e);
	}
}

static void maybe_cycle(struct rt *r)
{
	if (tu_rng_pct(&r->rng, 20))
		tu_commit(r->t.fs);
	if (tu_rng_pct(&r->rng, 10)) {
		tu_commit(r->t.fs);
		tu_fs_reopen(&r->t);
	}
}

static void diff_seed(uint64_t seed)
{
	struct rt r = {0};
	arb_ino_t top;
	struct arb_stat st;
	uint64_t s1, s2;
	unsigned nops = (unsigned)tu_scaled(150);

	tu_rng_init(&r.rng, seed);
	tu_fs_create(&r.t, DEV_SIZE, 0);
	TU_RC(arb_vfs_init(r.t.fs, 0755, &cred));
	TU_RC(arb_vfs_root(r.t.fs, 0, &top));
	TU_RC(arb_vfs_subvol_make(r.t.fs, top, "live", 0755, &cred, &st));
	r.sub = arb_ino_subvol(st.ino);
	for (unsigned i = 0; i < 3 * nops; i++) {
		tu_ctx_op(i);
		random_op(&r);
	}
	maybe_cycle(&r);
	TU_RC(arb_vfs_snapshot(r.t.fs, r.sub, top, "s1", ARB_SNAPSHOT_RDONLY, &st));
	s1 = arb_ino_subvol(st.ino);
	expect_same_diff(r.t.fs, s1, r.sub); /* nothing yet */
	for (unsigned i = 0; i < nops; i++) {
		tu_ctx_op(3 * nops + i);
		random_op(&r);
		if (i % 25 == 0) {
			maybe_cycle(&r);
			expect_same_diff(r.t.fs, s1, r.sub);
		}
	}
	TU_RC(arb_vfs_snapshot(r.t.fs, r.sub, top, "s2", 0, &st));
	s2 = arb_ino_subvol(st.ino);
	for (unsigned i = 0; i < nops; i++)
		random_op(&r);
	maybe_cycle(&r);
	uint64_t ids[3] = {s1, s2, r.sub};

	for (int a = 0; a < 3; a++)
		for (int b = 0; b < 3; b++)
			expect_same_diff(r.t.fs, ids[a], ids[b]);
	tu_check_clean(r.t.fs);
	tu_fs_destroy(&r.t);
}

/* One changed file in a big subvolume: the diff reads a few nodes. */
static void test_cost_follows_change(void **state)
{
	struct tu_fs t = {0};
	arb_ino_t top;
	struct arb_stat st, f;
	uint64_t sub, snap, nodes = 0, nodes_all = 0;
	char name[32];

	(void)state;
	tu_fs_create(&t, DEV_SIZE, 0);
	TU_RC(arb_vfs_init(t.fs, 0755, &cred));
	TU_RC(arb_vfs_root(t.fs, 0, &top));
	TU_RC(arb_vfs_subvol_make(t.fs, top, "big", 0755, &cred, &st));
	sub = arb_ino_subvol(st.ino);
	for (int i = 0; i < 20000; i++) {
		snprintf(name, sizeof(name), "file-%05d", i);
		TU_RC(arb_vfs_mknod(t.fs, st.ino, name, S_IFREG | 0644, 0, &cred, &f));
	}
	tu_commit(t.fs);
	TU_RC(arb_vfs_snapshot(t.fs, sub, top, "snap", ARB_SNAPSHOT_RDONLY, NULL));
	TU_RC(arb_vfs_lookup(t.fs, top, "snap", &f));
	snap = arb_ino_subvol(f.ino);
	tu_commit(t.fs);
	TU_RC(arb_vfs_lookup(t.fs, st.ino, "file-12345", &f));
	TU_RC(arb_vfs_setxattr(t.fs, f.ino, "user.x", "1", 1, 0));
	char *got = real_diff(t.fs, snap, sub, &nodes);

	TU_ASSERT(!strcmp(got, "C /file-12345\n"), "got:\n%s", got);
	free(got);
	/* against an empty subvolume everything differs: the whole tree is read */
	TU_RC(arb_vfs_subvol_make(t.fs, top, "empty", 0755, &cred, &f));
	got = real_diff(t.fs, arb_ino_subvol(f.ino), sub, &nodes_all);
	free(got);
	print_message("# one change: %" PRIu64 " nodes read; whole tree: %" PRIu64 "\n", nodes,
	              nodes_all);
	TU_ASSERT(nodes <= 16, "one change read %" PRIu64 " nodes", nodes);
	TU_ASSERT(nodes_all > 20 * nodes);
	tu_check_clean(t.fs);
	tu_fs_destroy(&t);
}

static int count_node(void *ctx, const struct arb_node_view *v)
{
	(void)v;
	++*(uint64_t *)ctx;
	return 0;
}

static struct arb_tree_usage usage_of(struct arb_fs *fs, uint64_t id)
{
	struct arb_tree_usage u;
	uint64_t walked = 0;

	TU_RC(arb_tree_usage(tu_tree(fs, id), &u));
	TU_RC(arb_tree_walk(tu_tree(fs, id), count_node, &walked));
	TU_EQ_U64(u.ref_nodes, walked);
	return u;
}

/* Referenced counts follow every edit; exclusive is what only one side
 * holds, found by reading the unshared part only. */
static void test_usage(void **state)
{
	static uint8_t buf[1 << 20];
	struct tu_fs t = {0};
	arb_ino_t top;
	struct arb_stat sub, f;
	struct arb_tree_usage u, s;
	uint64_t id, snap;
	size_t w;

	(void)state;
	memset(buf, 0x5a, sizeof(buf));
	tu_fs_create(&t, DEV_SIZE, 0);
	TU_RC(arb_vfs_init(t.fs, 0755, &cred));
	TU_RC(arb_vfs_root(t.fs, 0, &top));
	TU_RC(arb_vfs_subvol_make(t.fs, top, "s", 0755, &cred, &sub));
	id = arb_ino_subvol(sub.ino);
	TU_RC(arb_vfs_mknod(t.fs, sub.ino, "big", S_IFREG | 0644, 0, &cred, &f));
	for (int i = 0; i < 8; i++)
		TU_RC(arb_vfs_write(t.fs, f.ino, (uint64_t)i << 20, buf, sizeof(buf), &w));
	tu_commit(t.fs);
	u = usage_of(t.fs, id);
	TU_EQ_U64(u.ref_data_sectors, 8 * 256);
	TU_EQ_U64(u.excl_data_sectors, 8 * 256);
	TU_EQ_U64(u.excl_nodes, u.ref_nodes);
	TU_RC(arb_vfs_snapshot(t.fs, id, top, "snap", 0, NULL));
	TU_RC(arb_vfs_lookup(t.fs, top, "snap", &f));
	snap = arb_ino_subvol(f.ino);
	tu_commit(t.fs);
	u = usage_of(t.fs, id);
	s = usage_of(t.fs, snap);
	TU_EQ_U64(u.ref_data_sectors, 8 * 256);
	TU_EQ_U64(s.ref_data_sectors, 8 * 256);
	TU_EQ_U64(u.excl_nodes + u.excl_data_sectors, 0);
	TU_ASSERT(u.nodes_read <= 1, "a fresh snapshot's source read %" PRIu64, u.nodes_read);
	/* overwrite 1 MiB of the source: that much becomes exclusive on each side */
	TU_RC(arb_vfs_lookup(t.fs, sub.ino, "big", &f));
	TU_RC(arb_vfs_write(t.fs, f.ino, 3 << 20, buf, sizeof(buf), &w));
	tu_commit(t.fs);
	u = usage_of(t.fs, id);
	s = usage_of(t.fs, snap);
	TU_EQ_U64(u.excl_data_sectors, 256);
	TU_EQ_U64(s.excl_data_sectors, 256);
	TU_ASSERT(u.excl_nodes >= 1 && u.excl_nodes <= u.ref_nodes);
	tu_check_clean(t.fs);
	tu_fs_destroy(&t);
}

static uint64_t subvol_at(struct arb_fs *fs, arb_ino_t dir, const char *name)
{
	struct arb_stat st;

	TU_RC(arb_vfs_lookup(fs, dir, name, &st));
	TU_EQ_U64(arb_ino_local(st.ino), ARB_FIRST_INO);
	return arb_ino_subvol(st.ino);
}

static bool diff_empty(struct arb_fs *fs, uint64_t a, uint64_t b)
{
	char *d = real_diff(fs, a, b, NULL);
	bool empty = !d[0];

	free(d);
	return empty;
}

/* Rollback: the name takes the snapshot's content (a new id), the old
 * content stays under another name or goes; the default follows. */
static void test_rollback(void **state)
{
	struct tu_rng rng;
	struct rt r = {0};
	arb_ino_t top;
	struct arb_stat st;
	uint64_t s1, before, now, kept, def;

	(void)state;
	tu_rng_init(&rng, 42);
	r.rng = rng;
	tu_fs_create(&r.t, DEV_SIZE, 0);
	TU_RC(arb_vfs_init(r.t.fs, 0755, &cred));
	TU_RC(arb_vfs_root(r.t.fs, 0, &top));
	TU_RC(arb_vfs_subvol_make(r.t.fs, top, "live", 0755, &cred, &st));
	r.sub = arb_ino_subvol(st.ino);
	for (int i = 0; i < 200; i++)
		random_op(&r);
	TU_RC(arb_vfs_snapshot(r.t.fs, r.sub, top, "s1", ARB_SNAPSHOT_RDONLY, &st));
	s1 = arb_ino_subvol(st.ino);
	tu_commit(r.t.fs);
	for (int i = 0; i < 200; i++)
		random_op(&r);
	TU_RC(arb_vfs_snapshot(r.t.fs, r.sub, top, "ref", ARB_SNAPSHOT_RDONLY, NULL));
	before = r.sub;
	TU_RC(arb_vfs_subvol_set_default(r.t.fs, before));
	/* refusals change nothing */
	TU_RC_EQ(arb_vfs_rollback(r.t.fs, top, "nope", s1, NULL, NULL), -ENOENT);
	TU_RC_EQ(arb_vfs_rollback(r.t.fs, top, "live", before, NULL, NULL), -EINVAL);
	TU_RC_EQ(arb_vfs_rollback(r.t.fs, top, "live", s1, "s1", NULL), -EEXIST);
	TU_RC_EQ(arb_vfs_rollback(r.t.fs, top, "live", 9999, NULL, NULL), -ENOENT);
	TU_RC(arb_vfs_rollback(r.t.fs, top, "live", s1, "live.old", &now));
	TU_ASSERT(now != before);
	TU_EQ_U64(subvol_at(r.t.fs, top, "live"), now);
	kept = subvol_at(r.t.fs, top, "live.old");
	TU_EQ_U64(kept, before);
	TU_RC(arb_vfs_subvol_default(r.t.fs, &def));
	TU_EQ_U64(def, now);
	TU_ASSERT(diff_empty(r.t.fs, s1, now), "the rolled-back subvolume is the snapshot");
	TU_ASSERT(diff_empty(r.t.fs, subvol_at(r.t.fs, top, "ref"), kept),
	          "the old content is kept");
	/* writable, and apart from the snapshot */
	r.sub = now;
	for (int i = 0; i < 50; i++)
		random_op(&r);
	tu_commit(r.t.fs);
	tu_fs_reopen(&r.t);
	TU_EQ_U64(subvol_at(r.t.fs, top, "live"), now);
	/* again, dropping the old content: used space comes back */
	TU_RC(arb_vfs_subvol_delete(r.t.fs, top, "live.old"));
	TU_RC(arb_vfs_subvol_delete(r.t.fs, top, "ref"));
	TU_RC(arb_vfs_rollback(r.t.fs, top, "live", s1, NULL, &now));
	TU_ASSERT(diff_empty(r.t.fs, s1, now));
	tu_commit(r.t.fs);
	tu_check_clean(r.t.fs);
	tu_fs_destroy(&r.t);
}

int main(void)
{
	struct tu_tests ts = {0};

	tu_tests_add(&ts, "cost_follows_change", test_cost_follows_change);
	tu_tests_add(&ts, "usage", test_usage);
	tu_tests_add(&ts, "rollback", test_rollback);
	tu_tests_add_seeds(&ts, "diff", diff_seed, 7000, NR_SEEDS);
	return tu_tests_run(&ts, "diff");
}
