/* SPDX-License-Identifier: MIT */
/*
 * test_fsck_fs.c - phase 3 of fsck (arb_fsck_namespace, core/fsck_fs.c):
 * a small filesystem made through the vfs API checks clean; then, one
 * test per kind of damage, raw item edits damage it on purpose: the check
 * alone reports exactly the expected problems and changes nothing; the
 * repair (then a commit) leaves a filesystem that checks clean, that
 * arb_check finds sound, and whose undamaged files read back unchanged.
 * A randomized test does the same with random namespaces and damage.
 */
#include "testutil.h"

#include "arbor/fsck.h"
#include "arbor/vfs.h"
#include "vfs_internal.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#define MIB (1ull << 20)
#define DEV_SIZE (64 * MIB)
#define HASH_K 0x9E3779B97F4A7C15ull
#define DE_HDR ((uint32_t)sizeof(struct arb_dir_entry))
#define IR_HDR ((uint32_t)sizeof(struct arb_inode_ref))

static const struct arb_cred cred = {.uid = 1000, .gid = 100};

/* ---- messages ---- */

static struct {
	char *text; /* every line, '\n'-separated */
	size_t len, cap;
	unsigned errs;
} cap;

static void cap_msg(void *ctx, enum arb_msg_level level, const char *text)
{
	size_t n = strlen(text) + 3;

	tu_msg(ctx, level, text);
	if (cap.len + n + 1 > cap.cap) {
		cap.cap = (cap.len + n + 1) * 2;
		cap.text = realloc(cap.text, cap.cap);
		TU_ASSERT(cap.text != NULL);
	}
	cap.len += (size_t)sprintf(cap.text + cap.len, "%c %s\n",
	                           level == ARB_MSG_ERR    ? 'E'
	                           : level == ARB_MSG_INFO ? 'I'
	                                                   : 'W',
	                           text);
	cap.errs += level == ARB_MSG_ERR;
}

static void cap_reset(void)
{
	cap.len = 0;
	cap.errs = 0;
	if (cap.text)
		cap.text[0] = 0;
}

static bool cap_has(const char *s)
{
	return cap.text && strstr(cap.text, s);
}

/* ---- the fixture ---- */

struct fx {
	struct tu_fs t;
	uint64_t sv; /* the default subvolume */
	arb_ino_t root, a, b, d1, f, sub, g, l, p;
};

#define FS(x) ((x)->t.fs)

static void fx_open(struct fx *x)
{
	struct arb_open_opts oo = {.msg = cap_msg};

	TU_RC(arb_open(x->t.dev, &oo, &x->t.fs));
}

static void fx_reopen(struct fx *x)
{
	arb_close(x->t.fs);
	fx_open(x);
}

static arb_ino_t mk(struct fx *x, arb_ino_t dir, const char *name, uint32_t mode)
{
	struct arb_stat st;

	if (S_ISDIR(mode))
		TU_RC(arb_vfs_mkdir(FS(x), dir, name, mode & 07777, &cred, &st));
	else
		TU_RC(arb_vfs_mknod(FS(x), dir, name, mode, 0, &cred, &st));
	return st.ino;
}

static void fill(uint8_t *buf, size_t len, uint64_t tag)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(tu_mix64(tag * 1000003 + i / 8) >> (i % 8 * 8));
}

static void put_data(struct fx *x, arb_ino_t ino, size_t len, uint64_t tag)
{
	uint8_t *buf = malloc(len);
	size_t done;

	TU_ASSERT(buf != NULL);
	fill(buf, len, tag);
	TU_RC(arb_vfs_write(FS(x), ino, 0, buf, len, &done));
	free(buf);
}

static void expect_data(struct fx *x, arb_ino_t ino, size_t len, uint64_t tag)
{
	uint8_t *want = malloc(len), *got = malloc(len + 1);
	size_t n;

	TU_ASSERT(want && got);
	fill(want, len, tag);
	TU_RC(arb_vfs_read(FS(x), ino, 0, got, len + 1, &n));
	TU_EQ_U64(n, len);
	TU_ASSERT(!memcmp(want, got, len), "data of inode %llu changed", (unsigned long long)ino);
	free(want);
	free(got);
}

/*
 * /a (12000 bytes, an xattr), /b (inline, 100 bytes), /d1/f (5000 bytes),
 * /d1/hl (a second name of /a), /d1/sub/g (empty), /l -> a, /p (fifo).
 */
static void fx_setup(struct fx *x)
{
	struct arb_stat st;

	memset(x, 0, sizeof(*x));
	tu_fs_create(&x->t, DEV_SIZE, 4096);
	TU_RC(arb_vfs_init(FS(x), 0755, &cred));
	TU_RC(arb_vfs_root(FS(x), 0, &x->root));
	x->sv = arb_ino_subvol(x->root);
	x->a = mk(x, x->root, "a", S_IFREG | 0644);
	put_data(x, x->a, 12000, 1);
	TU_RC(arb_vfs_setxattr(FS(x), x->a, "user.k", "value", 5, 0));
	x->b = mk(x, x->root, "b", S_IFREG | 0644);
	put_data(x, x->b, 100, 2);
	x->d1 = mk(x, x->root, "d1", S_IFDIR | 0755);
	x->f = mk(x, x->d1, "f", S_IFREG | 0644);
	put_data(x, x->f, 5000, 3);
	TU_RC(arb_vfs_link(FS(x), x->a, x->d1, "hl", &st));
	x->sub = mk(x, x->d1, "sub", S_IFDIR | 0755);
	x->g = mk(x, x->sub, "g", S_IFREG | 0600);
	TU_RC(arb_vfs_symlink(FS(x), x->root, "l", "a", &cred, &st));
	x->l = st.ino;
	x->p = mk(x, x->root, "p", S_IFIFO | 0644);
	tu_commit(FS(x));
	fx_reopen(x);
}

static void fx_finish(struct fx *x)
{
	tu_fs_destroy(&x->t);
	cap_reset();
}

static struct arb_tree *svtree(struct fx *x)
{
	return tu_tree(FS(x), x->sv);
}

static uint64_t L(arb_ino_t ino)
{
	return arb_ino_local(ino);
}

/* ---- running fsck ---- */

static struct arb_fsck_report run(struct fx *x, bool repair)
{
	struct arb_fsck_opts o = {.repair = repair, .check_data = true};
	struct arb_fsck_report r;

	memset(&r, 0, sizeof(r));
	cap_reset();
	TU_RC(arb_fsck_namespace(FS(x), &o, &r));
	TU_EQ_U64(cap.errs, r.errors);
	return r;
}

/* A digest of every item of every live subvolume: check alone changes nothing. */
static uint64_t digest(struct fx *x)
{
	struct arb_tree *root;
	uint64_t h = 0;

	TU_RC(arb_tree_get(FS(x), ARB_ROOT_TREE_ID, &root));
	for (uint64_t id = ARB_FIRST_USER_TREE; id < ARB_FIRST_USER_TREE + 32; id++) {
		struct arb_tree *t;
		struct arb_iter *it;
		struct arb_key k, start = ARB_KEY_MIN;
		const void *data;
		uint32_t len;

		if (arb_tree_get(FS(x), id, &t))
			continue;
		TU_RC(arb_iter_open(t, &start, ARB_ITER_FORWARD, &it));
		while (arb_iter_next(it, &k, &data, &len) == 1) {
			h = tu_mix64(h ^ k.objectid ^ (k.offset << 8) ^ k.type ^ id);
			h = tu_mix64(h ^ arb_name_hash(0, data, len));
		}
		arb_iter_close(it);
	}
	return h;
}

/*
 * The check finds `errors` problems (each `want` line among them) and
 * changes nothing; the repair fixes them all; after a commit a second
 * check finds nothing and arb_check is clean.
 */
static void expect_repair(struct fx *x, uint64_t errors, const char *const *want)
{
	uint64_t before = digest(x);
	struct arb_fsck_report r = run(x, false);

	for (; want && *want; want++)
		TU_ASSERT(cap_has(*want), "no line '%s' in:\n%s", *want, cap.text);
	TU_ASSERT(r.errors == errors, "%llu errors, expected %llu:\n%s",
	          (unsigned long long)r.errors, (unsigned long long)errors, cap.text);
	TU_EQ_U64(r.fixed, 0);
	TU_EQ_U64(digest(x), before);
	r = run(x, true);
	TU_ASSERT(r.errors == errors && r.fixed == errors, "repair: %llu errors, %llu fixed:\n%s",
	          (unsigned long long)r.errors, (unsigned long long)r.fixed, cap.text);
	tu_commit(FS(x));
	fx_reopen(x);
	r = run(x, false);
	TU_ASSERT(r.errors == 0, "after the repair:\n%s", cap.text);
	tu_check_clean(FS(x));
}

static void expect_untouched(struct fx *x, bool a, bool b, bool f)
{
	if (a)
		expect_data(x, x->a, 12000, 1);
	if (b)
		expect_data(x, x->b, 100, 2);
	if (f)
		expect_data(x, x->f, 5000, 3);
}

/* ---- raw damage ---- */

static uint64_t seed_of(struct fx *x)
{
	struct arb_fs_info info;

	arb_fs_info(FS(x), &info);
	return info.hash_seed;
}

static struct arb_key ditem_key(struct fx *x, arb_ino_t dir, const char *name)
{
	return (struct arb_key){L(dir), ARB_DIR_ITEM_KEY,
	                        arb_name_hash(seed_of(x), name, strlen(name))};
}

static struct arb_key iref_key(struct fx *x, arb_ino_t child, arb_ino_t dir, const char *name)
{
	return (struct arb_key){L(child), ARB_INODE_REF_KEY,
	                        arb_name_hash(seed_of(x) + L(dir) * HASH_K, name, strlen(name))};
}

/* The index of dir/name (its only record in the hashed item). */
static uint64_t index_of(struct fx *x, arb_ino_t dir, const char *name)
{
	struct arb_key k = ditem_key(x, dir, name);
	struct arb_dir_entry de;
	uint8_t buf[512];
	uint32_t len;

	TU_RC(arb_lookup(svtree(x), &k, buf, sizeof(buf), &len));
	memcpy(&de, buf, DE_HDR);
	return le64toh(de.index);
}

static struct arb_key dindex_key(struct fx *x, arb_ino_t dir, const char *name)
{
	return (struct arb_key){L(dir), ARB_DIR_INDEX_KEY, index_of(x, dir, name)};
}

static void del(struct fx *x, struct arb_key k)
{
	TU_RC(arb_delete(svtree(x), &k));
}

static void raw_inode(struct fx *x, arb_ino_t ino, struct arb_inode_item *ii)
{
	struct arb_key k = {L(ino), ARB_INODE_ITEM_KEY, 0};
	uint32_t len;

	TU_RC(arb_lookup(svtree(x), &k, ii, sizeof(*ii), &len));
}

static void raw_inode_put(struct fx *x, arb_ino_t ino, const struct arb_inode_item *ii)
{
	struct arb_key k = {L(ino), ARB_INODE_ITEM_KEY, 0};

	TU_RC(arb_update(svtree(x), &k, ii, sizeof(*ii)));
}

static void set_nlink(struct fx *x, arb_ino_t ino, uint32_t nlink)
{
	struct arb_inode_item ii;

	raw_inode(x, ino, &ii);
	ii.nlink = htole32(nlink);
	raw_inode_put(x, ino, &ii);
}

static void add_size(struct fx *x, arb_ino_t ino, int64_t delta)
{
	struct arb_inode_item ii;

	raw_inode(x, ino, &ii);
	ii.size = htole64(le64toh(ii.size) + (uint64_t)delta);
	raw_inode_put(x, ino, &ii);
}

static void add_nlink(struct fx *x, arb_ino_t ino, int delta)
{
	struct arb_inode_item ii;

	raw_inode(x, ino, &ii);
	ii.nlink = htole32(le32toh(ii.nlink) + (uint32_t)delta);
	raw_inode_put(x, ino, &ii);
}

/* Remove dir/name entirely, with the child's back-reference, and make the
 * directory's figures agree (what an unlink would do, but the child's). */
static void cut_name(struct fx *x, arb_ino_t dir, const char *name, arb_ino_t child, bool isdir)
{
	del(x, dindex_key(x, dir, name));
	del(x, ditem_key(x, dir, name));
	del(x, iref_key(x, child, dir, name));
	add_size(x, dir, -(int64_t)strlen(name));
	if (isdir)
		add_nlink(x, dir, -1);
}

/* Add the three items of a name (no figures changed). */
static void raw_link(struct fx *x, arb_ino_t dir, const char *name, uint64_t child_local,
                     uint8_t type, uint64_t index, bool iref)
{
	uint8_t rec[DE_HDR + 256];
	size_t nlen = strlen(name);
	struct arb_dir_entry de = {htole64(child_local), htole64(index), type,
	                           htole16((uint16_t)nlen)};
	struct arb_key k = ditem_key(x, dir, name), ik = {L(dir), ARB_DIR_INDEX_KEY, index};

	memcpy(rec, &de, DE_HDR);
	memcpy(rec + DE_HDR, name, nlen);
	TU_RC(arb_insert(svtree(x), &k, rec, DE_HDR + (uint32_t)nlen));
	TU_RC(arb_insert(svtree(x), &ik, rec, DE_HDR + (uint32_t)nlen));
	if (iref) {
		struct arb_inode_ref ir = {htole64(L(dir)), htole64(index),
		                           htole16((uint16_t)nlen)};
		struct arb_key rk = {child_local, ARB_INODE_REF_KEY,
		                     arb_name_hash(seed_of(x) + L(dir) * HASH_K, name, nlen)};

		memcpy(rec, &ir, IR_HDR);
		memcpy(rec + IR_HDR, name, nlen);
		TU_RC(arb_insert(svtree(x), &rk, rec, IR_HDR + (uint32_t)nlen));
	}
}

static uint64_t next_index(struct fx *x, arb_ino_t dir)
{
	struct arb_inode_item ii;

	raw_inode(x, dir, &ii);
	return le64toh(ii.next_index);
}

static void bump_next_index(struct fx *x, arb_ino_t dir)
{
	struct arb_inode_item ii;

	raw_inode(x, dir, &ii);
	ii.next_index = htole64(le64toh(ii.next_index) + 1);
	raw_inode_put(x, dir, &ii);
}

#define WANT(...) ((const char *const[]){__VA_ARGS__, NULL})

/* ---- tests ---- */

static void test_clean(void **state)
{
	struct fx x;
	struct arb_fsck_report r;
	struct arb_stat st;

	(void)state;
	fx_setup(&x);
	r = run(&x, false);
	TU_ASSERT(r.errors == 0, "%s", cap.text);
	TU_EQ_U64(r.subvolumes, 1);
	TU_EQ_U64(r.inodes, 9);
	TU_EQ_U64(r.directories, 3);
	TU_EQ_U64(r.files, 4);
	TU_EQ_U64(r.symlinks, 1);
	TU_EQ_U64(r.other, 1);
	TU_EQ_U64(r.data_checked, 12288 + 8192);
	/* a snapshot and a subvolume inside: still clean, and repair changes nothing */
	TU_RC(arb_vfs_snapshot(FS(&x), x.sv, x.d1, "snap", ARB_SNAPSHOT_RDONLY, &st));
	TU_RC(arb_vfs_subvol_make(FS(&x), x.root, "sv", 0755, &cred, &st));
	tu_commit(FS(&x));
	uint64_t before = digest(&x);

	r = run(&x, true);
	TU_ASSERT(r.errors == 0 && r.fixed == 0, "%s", cap.text);
	TU_EQ_U64(r.subvolumes, 3);
	TU_EQ_U64(digest(&x), before);
	fx_finish(&x);
}

static void test_file_nlink(void **state)
{
	struct fx x;
	char line[128];

	(void)state;
	fx_setup(&x);
	set_nlink(&x, x.f, 5);
	snprintf(line, sizeof(line), "inode %llu: link count 5, but 1 name refers to it",
	         (unsigned long long)L(x.f));
	expect_repair(&x, 1, WANT(line));
	struct arb_stat st;

	TU_RC(arb_vfs_getattr(FS(&x), x.f, &st));
	TU_EQ_U64(st.nlink, 1);
	TU_RC(arb_vfs_getattr(FS(&x), x.a, &st));
	TU_EQ_U64(st.nlink, 2);
	expect_untouched(&x, true, true, true);
	fx_finish(&x);
}

static void test_dir_figures(void **state)
{
	struct fx x;
	struct arb_inode_item ii;
	struct arb_stat st;

	(void)state;
	fx_setup(&x);
	raw_inode(&x, x.d1, &ii);
	ii.nlink = htole32(7);
	ii.size = htole64(1);
	ii.next_index = htole64(1);
	raw_inode_put(&x, x.d1, &ii);
	expect_repair(&x, 3,
	              WANT("directory link count 7, but it has 1 subdirectories",
	                   "directory size 1, but its entries' names add up to 6",
	                   "next directory index 1, but index 4 is in use"));
	TU_RC(arb_vfs_getattr(FS(&x), x.d1, &st));
	TU_EQ_U64(st.nlink, 3);
	TU_EQ_U64(st.size, 6);
	/* a new entry takes a fresh index */
	mk(&x, x.d1, "new", S_IFREG | 0600);
	tu_commit(FS(&x));
	TU_EQ_U64(run(&x, false).errors, 0);
	expect_untouched(&x, true, true, true);
	fx_finish(&x);
}

static void test_nbytes_and_size(void **state)
{
	struct fx x;
	struct arb_inode_item ii;

	(void)state;
	fx_setup(&x);
	raw_inode(&x, x.f, &ii);
	ii.nbytes = htole64(3);
	raw_inode_put(&x, x.f, &ii);
	raw_inode(&x, x.b, &ii);
	ii.size = htole64(50);
	raw_inode_put(&x, x.b, &ii);
	raw_inode(&x, x.a, &ii);
	ii.size = htole64(4096);
	raw_inode_put(&x, x.a, &ii);
	expect_repair(&x, 3,
	              WANT("3 bytes of data counted, but its extents hold 8192",
	                   "size 50, but its inline data holds 100 bytes",
	                   "size 4096, but its data extends to 12288"));
	expect_data(&x, x.b, 100, 2);
	expect_data(&x, x.f, 5000, 3);
	fx_finish(&x);
}

static void test_dir_index_missing(void **state)
{
	struct fx x;

	(void)state;
	fx_setup(&x);
	del(&x, dindex_key(&x, x.root, "b"));
	expect_repair(&x, 1, WANT("entry 'b' (index 3) has no DIR_INDEX item"));
	TU_EQ_U64(index_of(&x, x.root, "b"), 3);
	expect_untouched(&x, true, true, true);
	fx_finish(&x);
}

static void test_dir_item_missing(void **state)
{
	struct fx x;
	struct arb_stat st;

	(void)state;
	fx_setup(&x);
	del(&x, ditem_key(&x, x.d1, "f"));
	expect_repair(&x, 1, WANT("entry 'f' (index 2) has no DIR_ITEM"));
	TU_RC(arb_vfs_lookup(FS(&x), x.d1, "f", &st));
	TU_EQ_U64(st.ino, x.f);
	expect_untouched(&x, true, true, true);
	fx_finish(&x);
}

static void test_dir_index_mismatch(void **state)
{
	struct fx x;
	struct arb_key k;
	uint8_t buf[64];
	uint32_t len;
	struct arb_dir_entry de;

	(void)state;
	fx_setup(&x);
	k = dindex_key(&x, x.root, "a");
	TU_RC(arb_lookup(svtree(&x), &k, buf, sizeof(buf), &len));
	memcpy(&de, buf, DE_HDR);
	de.ino = htole64(L(x.b));
	memcpy(buf, &de, DE_HDR);
	TU_RC(arb_update(svtree(&x), &k, buf, len));
	expect_repair(&x, 1, WANT("DIR_INDEX 2 does not match the entry 'a'"));
	expect_untouched(&x, true, true, true);
	fx_finish(&x);
}

static void test_dangling(void **state)
{
	struct fx x;
	char line[160];

	(void)state;
	fx_setup(&x);
	/* an entry naming an inode that was never made, with the figures the
	 * core would have kept */
	raw_link(&x, x.d1, "ghost", 9999, DT_REG, next_index(&x, x.d1), false);
	bump_next_index(&x, x.d1);
	add_size(&x, x.d1, 5);
	snprintf(line, sizeof(line),
	         "inode %llu: entry 'ghost' (index 5) names inode 9999, which does not exist",
	         (unsigned long long)L(x.d1));
	/* the removal leaves the size of the directory one name shorter */
	expect_repair(&x, 2, WANT(line, "directory size 11, but its entries' names add up to 6"));
	expect_untouched(&x, true, true, true);
	fx_finish(&x);
}

static void test_inode_item_gone(void **state)
{
	struct fx x;
	struct arb_key k;
	char line[160];

	(void)state;
	fx_setup(&x);
	/* the file's inode item is lost; its extent stays counted (phase 2
	 * counts it) until the repair removes it */
	k = (struct arb_key){L(x.f), ARB_INODE_ITEM_KEY, 0};
	del(&x, k);
	snprintf(line, sizeof(line), "inode %llu: 2 items, but no valid inode item",
	         (unsigned long long)L(x.f));
	expect_repair(&x, 4,
	              WANT(line, "entry 'f' (index 2) names inode",
	                   "directory size 6, but its entries' names add up to 5",
	                   "the subvolume counts 9 inodes, but holds 8"));
	expect_untouched(&x, true, true, false);
	fx_finish(&x);
}

static void test_backref_missing(void **state)
{
	struct fx x;

	(void)state;
	fx_setup(&x);
	del(&x, iref_key(&x, x.a, x.d1, "hl"));
	expect_repair(&x, 1, WANT("no back-reference to its name 'hl' (index 3)"));
	expect_untouched(&x, true, true, true);
	fx_finish(&x);
}

static void test_entry_missing(void **state)
{
	struct fx x;
	struct arb_stat st;

	(void)state;
	fx_setup(&x);
	/* both halves of the entry lost: the back-reference brings it back */
	del(&x, dindex_key(&x, x.d1, "f"));
	del(&x, ditem_key(&x, x.d1, "f"));
	expect_repair(&x, 1, WANT("back-reference to 'f' (index 2) in directory"));
	TU_RC(arb_vfs_lookup(FS(&x), x.d1, "f", &st));
	TU_EQ_U64(st.ino, x.f);
	expect_untouched(&x, true, true, true);
	fx_finish(&x);
}

static void test_lost_file(void **state)
{
	struct fx x;
	struct arb_stat st;
	char name[32];

	(void)state;
	fx_setup(&x);
	cut_name(&x, x.d1, "f", x.f, false);
	expect_repair(&x, 1, WANT("link count 1, but no name refers to it"));
	TU_RC(arb_vfs_lookup(FS(&x), x.root, "lost+found", &st));
	TU_EQ_U64(st.mode, S_IFDIR | 0700);
	TU_EQ_U64(st.nlink, 2);
	snprintf(name, sizeof(name), "#%llu", (unsigned long long)L(x.f));
	TU_RC(arb_vfs_lookup(FS(&x), st.ino, name, &st));
	TU_EQ_U64(st.ino, x.f);
	TU_RC(arb_vfs_getattr(FS(&x), x.root, &st));
	TU_EQ_U64(st.nlink, 4);
	expect_untouched(&x, true, true, true);
	fx_finish(&x);
}

static void test_lost_dir(void **state)
{
	struct fx x;
	struct arb_stat st, lf;
	char name[32];
	arb_ino_t parent;

	(void)state;
	fx_setup(&x);
	cut_name(&x, x.d1, "sub", x.sub, true);
	expect_repair(&x, 1, WANT("directory is not reachable: no entry names it"));
	TU_RC(arb_vfs_lookup(FS(&x), x.root, "lost+found", &lf));
	TU_EQ_U64(lf.nlink, 3);
	snprintf(name, sizeof(name), "#%llu", (unsigned long long)L(x.sub));
	TU_RC(arb_vfs_lookup(FS(&x), lf.ino, name, &st));
	TU_EQ_U64(st.ino, x.sub);
	TU_RC(arb_vfs_parent(FS(&x), x.sub, &parent));
	TU_EQ_U64(parent, lf.ino);
	TU_RC(arb_vfs_lookup(FS(&x), x.sub, "g", &st));
	/* the reattached directory works like any other */
	TU_RC(arb_vfs_rename(FS(&x), lf.ino, name, x.root, "back", 0));
	TU_RC(arb_vfs_rmdir(FS(&x), x.root, "lost+found"));
	tu_commit(FS(&x));
	TU_EQ_U64(run(&x, false).errors, 0);
	tu_check_clean(FS(&x));
	expect_untouched(&x, true, true, true);
	fx_finish(&x);
}

static void test_loop(void **state)
{
	struct fx x;
	char line[128];

	(void)state;
	fx_setup(&x);
	/* d1 moves below its own subdirectory sub: d1 -> sub -> d1 */
	cut_name(&x, x.root, "d1", x.d1, true);
	raw_link(&x, x.sub, "up", L(x.d1), DT_DIR, next_index(&x, x.sub), true);
	bump_next_index(&x, x.sub);
	add_size(&x, x.sub, 2);
	add_nlink(&x, x.sub, 1);
	snprintf(line, sizeof(line), "inode %llu: directory is in a loop",
	         (unsigned long long)L(x.d1));
	expect_repair(&x, 1, WANT(line));
	expect_untouched(&x, true, true, true);
	fx_finish(&x);
}

static void test_dir_hard_link(void **state)
{
	struct fx x;

	(void)state;
	fx_setup(&x);
	raw_link(&x, x.root, "alias", L(x.sub), DT_DIR, next_index(&x, x.root), true);
	bump_next_index(&x, x.root);
	expect_repair(&x, 1, WANT("directory has a second name 'alias'"));
	expect_untouched(&x, true, true, true);
	fx_finish(&x);
}

static void test_entry_type(void **state)
{
	struct fx x;
	struct arb_key keys[2];
	uint8_t buf[64];
	uint32_t len;

	(void)state;
	fx_setup(&x);
	keys[0] = ditem_key(&x, x.root, "p");
	keys[1] = dindex_key(&x, x.root, "p");
	for (int i = 0; i < 2; i++) {
		TU_RC(arb_lookup(svtree(&x), &keys[i], buf, sizeof(buf), &len));
		buf[offsetof(struct arb_dir_entry, type)] = DT_DIR;
		TU_RC(arb_update(svtree(&x), &keys[i], buf, len));
	}
	expect_repair(&x, 1, WANT("entry 'p' (index 6) gives file type 4, but inode"));
	fx_finish(&x);
}

static void test_bad_names(void **state)
{
	struct fx x;
	struct arb_key k, wrong;
	uint8_t buf[64];
	uint32_t len;

	(void)state;
	fx_setup(&x);
	/* a DIR_INDEX whose name holds a slash */
	k = dindex_key(&x, x.root, "b");
	TU_RC(arb_lookup(svtree(&x), &k, buf, sizeof(buf), &len));
	buf[DE_HDR] = '/';
	TU_RC(arb_update(svtree(&x), &k, buf, len));
	/* a hashed entry filed under another hash */
	k = ditem_key(&x, x.root, "l");
	TU_RC(arb_lookup(svtree(&x), &k, buf, sizeof(buf), &len));
	wrong = k;
	wrong.offset ^= 1;
	TU_RC(arb_delete(svtree(&x), &k));
	TU_RC(arb_insert(svtree(&x), &wrong, buf, len));
	expect_repair(&x, 4,
	              WANT("DIR_INDEX 3 is malformed", "entry 'b' (index 3) has no DIR_INDEX item",
	                   "entry 'l' is filed under the wrong hash",
	                   "entry 'l' (index 5) has no DIR_ITEM"));
	expect_untouched(&x, true, true, true);
	fx_finish(&x);
}

static void test_orphans(void **state)
{
	struct fx x;
	struct arb_key k;
	struct arb_fsck_report r;
	arb_ino_t open_ino;

	(void)state;
	fx_setup(&x);
	/* a file unlinked while open, when the filesystem went away */
	open_ino = mk(&x, x.root, "tmp", S_IFREG | 0600);
	put_data(&x, open_ino, 9000, 9);
	TU_RC(arb_vfs_open(FS(&x), open_ino));
	TU_RC(arb_vfs_unlink(FS(&x), x.root, "tmp"));
	tu_commit(FS(&x));
	fx_reopen(&x);
	r = run(&x, false);
	TU_ASSERT(r.errors == 0 && cap_has("was unlinked while in use"), "%s", cap.text);
	/* an orphan item for a named file, and one for no inode */
	k = (struct arb_key){ARB_ORPHAN_OBJ, ARB_ORPHAN_KEY, L(x.g)};
	TU_RC(arb_insert(svtree(&x), &k, NULL, 0));
	k.offset = 7777;
	TU_RC(arb_insert(svtree(&x), &k, NULL, 0));
	/* and a file whose last name is gone with link count 0, not listed */
	cut_name(&x, x.d1, "f", x.f, false);
	set_nlink(&x, x.f, 0);
	expect_repair(&x, 3,
	              WANT("inode 7777: is on the orphan list, but does not exist",
	                   "is on the orphan list, but has link count 1",
	                   "has no name and link count 0, but is not on the orphan list"));
	TU_RC_EQ(arb_vfs_getattr(FS(&x), x.f, &(struct arb_stat){0}), -ENOENT);
	TU_RC_EQ(arb_vfs_getattr(FS(&x), open_ino, &(struct arb_stat){0}), -ENOENT);
	expect_untouched(&x, true, true, false);
	fx_finish(&x);
}

static void test_unknown_and_info(void **state)
{
	struct fx x;
	struct arb_key k = {0, 77, 5};
	struct arb_subvol_info si;
	uint32_t len;

	(void)state;
	fx_setup(&x);
	k.objectid = L(x.a);
	TU_RC(arb_insert(svtree(&x), &k, "junk", 4));
	k = (struct arb_key){ARB_SUBVOL_INFO_OBJ, ARB_SUBVOL_INFO_KEY, 0};
	TU_RC(arb_lookup(svtree(&x), &k, &si, sizeof(si), &len));
	si.reserved[0] = htole64(3);
	si.next_ino = htole64(258);
	TU_RC(arb_update(svtree(&x), &k, &si, sizeof(si)));
	expect_repair(&x, 3,
	              WANT("item of unknown type 77 (offset 5)",
	                   "the subvolume counts 3 inodes, but holds 9",
	                   "the next inode number is 258, but inode 264 exists"));
	/* new inodes get fresh numbers */
	arb_ino_t n = mk(&x, x.root, "new", S_IFREG | 0600);

	TU_EQ_U64(L(n), 265);
	/* the info item lost altogether */
	del(&x, k);
	expect_repair(&x, 1, WANT("the subvolume information item is missing"));
	expect_untouched(&x, true, true, true);
	fx_finish(&x);
}

static void test_extents(void **state)
{
	struct fx x;
	struct arb_key k = {0, ARB_EXTENT_DATA_KEY, 0};
	uint8_t buf[4096];
	uint32_t len;
	struct arb_file_extent h;

	(void)state;
	fx_setup(&x);
	/* a copy of /a's extent one sector further (its sectors referenced
	 * once more, as phase 2 leaves them): it overlaps */
	k.objectid = L(x.a);
	TU_RC(arb_lookup(svtree(&x), &k, buf, sizeof(buf), &len));
	memcpy(&h, buf, sizeof(h));
	k.offset = 4096;
	TU_RC(arb_insert(svtree(&x), &k, buf, len));
	TU_RC(arb_extent_ref(FS(&x), le64toh(h.disk_bytenr), le64toh(h.num_bytes) / 4096, +1));
	/* an extent beyond the device in /f */
	h.disk_bytenr = htole64(DEV_SIZE * 2);
	h.num_bytes = htole64(4096);
	memcpy(buf, &h, sizeof(h));
	k = (struct arb_key){L(x.f), ARB_EXTENT_DATA_KEY, 1 << 20};
	TU_RC(arb_insert(svtree(&x), &k, buf, sizeof(h) + 4));
	/* an extent item of a directory */
	k.objectid = L(x.d1);
	TU_RC(arb_insert(svtree(&x), &k, buf, sizeof(h) + 4));
	expect_repair(&x, 3,
	              WANT("extent at offset 4096 overlaps the extent before it",
	                   "lies outside the device's allocatable space",
	                   "belongs to an inode that holds no data"));
	expect_untouched(&x, true, true, true);
	fx_finish(&x);
}

static void test_data_checksum(void **state)
{
	struct fx x;
	struct arb_key k;
	uint8_t buf[512], junk[4096];
	uint32_t len;
	struct arb_file_extent h;
	struct arb_fsck_report r;

	(void)state;
	fx_setup(&x);
	k = (struct arb_key){L(x.f), ARB_EXTENT_DATA_KEY, 0};
	TU_RC(arb_lookup(svtree(&x), &k, buf, sizeof(buf), &len));
	memcpy(&h, buf, sizeof(h));
	memset(junk, 0x5a, sizeof(junk));
	TU_RC(arb_dev_write(x.t.dev, junk, sizeof(junk), le64toh(h.disk_bytenr) + 4096));
	r = run(&x, false);
	TU_ASSERT(r.errors == 1 && cap_has("1 of its 2 sectors do not match their checksums"), "%s",
	          cap.text);
	r = run(&x, true); /* nothing to repair it with */
	TU_EQ_U64(r.errors, 1);
	TU_EQ_U64(r.fixed, 0);
	fx_finish(&x);
}

static void test_subvol_links(void **state)
{
	struct fx x;
	struct arb_stat st;
	struct arb_tree *root;
	uint64_t id;

	(void)state;
	fx_setup(&x);
	TU_RC(arb_vfs_subvol_make(FS(&x), x.d1, "sv", 0755, &cred, &st));
	id = arb_ino_subvol(st.ino);
	tu_commit(FS(&x));
	TU_RC(arb_tree_get(FS(&x), ARB_ROOT_TREE_ID, &root));
	/* the backref lost: rewritten from the link */
	struct arb_key bk = {id, ARB_ROOT_BACKREF_KEY, x.sv};

	TU_RC(arb_sys_delete(root, &bk));
	expect_repair(&x, 1, WANT("the ROOT_BACKREF of subvolume"));
	/* both root refs lost: the link goes (and with it a name and a subdirectory) */
	struct arb_key rk = {x.sv, ARB_ROOT_REF_KEY, id};

	TU_RC(arb_tree_get(FS(&x), ARB_ROOT_TREE_ID, &root));
	TU_RC(arb_sys_delete(root, &rk));
	TU_RC(arb_sys_delete(root, &bk));
	expect_repair(&x, 3,
	              WANT("but no ROOT_REF records the link", "directory size 8, but",
	                   "directory link count 4, but it has 1 subdirectories"));
	TU_RC_EQ(arb_vfs_lookup(FS(&x), x.d1, "sv", &st), -ENOENT);
	fx_finish(&x);
}

static void test_subvol_refs_unused(void **state)
{
	struct fx x;
	struct arb_stat st;

	(void)state;
	fx_setup(&x);
	TU_RC(arb_vfs_subvol_make(FS(&x), x.root, "sv", 0755, &cred, &st));
	tu_commit(FS(&x));
	/* the entry gone (figures kept right): the root refs name nothing */
	del(&x, dindex_key(&x, x.root, "sv"));
	del(&x, ditem_key(&x, x.root, "sv"));
	add_size(&x, x.root, -2);
	add_nlink(&x, x.root, -1);
	expect_repair(&x, 1, WANT("names no link of this subvolume"));
	fx_finish(&x);
}

static void test_readonly_snapshot(void **state)
{
	struct fx x;
	struct arb_stat st;
	struct arb_tree *t;
	uint64_t snap;
	struct arb_key k;

	(void)state;
	fx_setup(&x);
	TU_RC(arb_vfs_snapshot(FS(&x), x.sv, x.root, "snap", ARB_SNAPSHOT_RDONLY, &st));
	snap = arb_ino_subvol(st.ino);
	tu_commit(FS(&x));
	/* damage the snapshot: the B-tree refuses, so lift the flag for it */
	TU_RC(arb_tree_get(FS(&x), snap, &t));
	k = (struct arb_key){L(x.f), ARB_INODE_ITEM_KEY, 0};
	struct arb_inode_item ii;
	uint32_t len;

	TU_RC(arb_lookup(t, &k, &ii, sizeof(ii), &len));
	ii.nlink = htole32(9);
	TU_RC_EQ(arb_update(t, &k, &ii, sizeof(ii)), -EROFS);
	t->item.flags &= ~htole64(ARB_ROOT_RDONLY);
	TU_RC(arb_update(t, &k, &ii, sizeof(ii)));
	t->item.flags |= htole64(ARB_ROOT_RDONLY);
	expect_repair(&x, 1, WANT("link count 9, but 1 name refers to it"));
	TU_RC(arb_tree_get(FS(&x), snap, &t));
	TU_ASSERT(le64toh(t->item.flags) & ARB_ROOT_RDONLY);
	expect_untouched(&x, true, true, true);
	fx_finish(&x);
}

/* ---- randomized ---- */

struct rnd {
	struct fx x;
	struct tu_rng rng;
	arb_ino_t dirs[64];
	unsigned ndirs;
	arb_ino_t files[256];
	unsigned nfiles;
};

static int pick_name(struct rnd *z, char *name)
{
	return sprintf(name, "n%llu", (unsigned long long)tu_rng_below(&z->rng, 40));
}

static void random_op(struct rnd *z)
{
	struct fx *x = &z->x;
	arb_ino_t dir = z->dirs[tu_rng_below(&z->rng, z->ndirs)];
	char name[32], name2[32];
	struct arb_stat st;
	int err;

	pick_name(z, name);
	switch (tu_rng_below(&z->rng, 8)) {
	case 0:
	case 1:
		err = arb_vfs_mknod(FS(x), dir, name, S_IFREG | 0644, 0, &cred, &st);
		if (!err && z->nfiles < 256) {
			z->files[z->nfiles++] = st.ino;
			put_data(x, st.ino, tu_rng_below(&z->rng, 3) ? 300 : 9000, st.ino);
		}
		break;
	case 2:
		err = arb_vfs_mkdir(FS(x), dir, name, 0755, &cred, &st);
		if (!err && z->ndirs < 64)
			z->dirs[z->ndirs++] = st.ino;
		break;
	case 3:
		if (z->nfiles)
			arb_vfs_link(FS(x), z->files[tu_rng_below(&z->rng, z->nfiles)], dir, name,
			             &st);
		break;
	case 4:
		arb_vfs_unlink(FS(x), dir, name);
		break;
	case 5:
		pick_name(z, name2);
		arb_vfs_rename(FS(x), dir, name, z->dirs[tu_rng_below(&z->rng, z->ndirs)], name2,
		               0);
		break;
	case 6:
		if (tu_rng_below(&z->rng, 4) == 0)
			arb_vfs_snapshot(FS(x), x->sv, dir, name, 0, &st);
		break;
	case 7:
		arb_vfs_rmdir(FS(x), dir, name);
		break;
	}
	TU_ASSERT(arb_fs_failed_reason(FS(x)) == NULL);
}

/* A random item of the subvolume with one of the given types. */
static bool random_item(struct rnd *z, const uint8_t *types, int ntypes, struct arb_key *ret)
{
	struct arb_key start = ARB_KEY_MIN, k;
	struct arb_iter *it;
	uint64_t seen = 0;

	TU_RC(arb_iter_open(svtree(&z->x), &start, ARB_ITER_FORWARD, &it));
	while (arb_iter_next(it, &k, NULL, NULL) == 1) {
		bool want = false;

		for (int i = 0; i < ntypes; i++)
			want |= k.type == types[i];
		/* reservoir sampling; the root directory's own items stay */
		if (want && k.objectid > ARB_FIRST_INO && tu_rng_below(&z->rng, ++seen) == 0)
			*ret = k;
	}
	arb_iter_close(it);
	return seen > 0;
}

/* Remove the name a DIR_INDEX item gives, all three items of it. */
static void cut_raw_name(struct rnd *z, const struct arb_key *ik)
{
	struct fx *x = &z->x;
	uint8_t buf[DE_HDR + 256];
	struct arb_dir_entry de;
	char name[256];
	uint32_t len;
	size_t nlen;

	TU_RC(arb_lookup(svtree(x), ik, buf, sizeof(buf), &len));
	memcpy(&de, buf, DE_HDR);
	nlen = le16toh(de.name_len);
	memcpy(name, buf + DE_HDR, nlen);
	name[nlen] = 0;
	del(x, *ik);
	struct arb_key k = {ik->objectid, ARB_DIR_ITEM_KEY, arb_name_hash(seed_of(x), name, nlen)};

	TU_RC(hitem_remove(svtree(x), &k, REC_DIRENT, name, nlen, 0));
	if (de.type != ARB_DT_SUBVOL) {
		k = (struct arb_key){le64toh(de.ino), ARB_INODE_REF_KEY,
		                     arb_name_hash(seed_of(x) + ik->objectid * HASH_K, name, nlen)};
		TU_RC(hitem_remove(svtree(x), &k, REC_IREF, name, nlen, ik->objectid));
	}
}

static void random_damage(struct rnd *z)
{
	struct fx *x = &z->x;
	struct arb_key k;
	struct arb_inode_item ii;
	uint32_t len;
	static const uint8_t names[] = {ARB_DIR_ITEM_KEY, ARB_DIR_INDEX_KEY, ARB_INODE_REF_KEY};
	static const uint8_t inode[] = {ARB_INODE_ITEM_KEY};
	static const uint8_t ext[] = {ARB_EXTENT_DATA_KEY};

	switch (tu_rng_below(&z->rng, 7)) {
	case 6: /* a whole name lost: entry, index and back-reference */
		if (random_item(z, (const uint8_t[]){ARB_DIR_INDEX_KEY}, 1, &k))
			cut_raw_name(z, &k);
		break;
	case 0: /* a name item lost */
		if (random_item(z, names, 3, &k))
			del(x, k);
		break;
	case 1: /* a figure of an inode changed */
		if (!random_item(z, inode, 1, &k))
			break;
		TU_RC(arb_lookup(svtree(x), &k, &ii, sizeof(ii), &len));
		switch (tu_rng_below(&z->rng, 3)) {
		case 0:
			ii.nlink =
			        htole32(le32toh(ii.nlink) + 1 + (uint32_t)tu_rng_below(&z->rng, 3));
			break;
		case 1:
			ii.size = htole64(le64toh(ii.size) + 4096 * 10);
			break;
		default:
			ii.nbytes = htole64(le64toh(ii.nbytes) + 1);
			break;
		}
		TU_RC(arb_update(svtree(x), &k, &ii, sizeof(ii)));
		break;
	case 2: /* an inode item lost */
		if (random_item(z, inode, 1, &k))
			del(x, k);
		break;
	case 3: /* an extent lost, its sectors given back */
		if (random_item(z, ext, 1, &k)) {
			uint8_t buf[2048];
			uint64_t bytenr, nsec;

			TU_RC(arb_lookup(svtree(x), &k, buf, sizeof(buf), &len));
			if (arb_item_extent(&k, buf, len, &bytenr, &nsec))
				TU_RC(arb_extent_ref(FS(x), bytenr, nsec, -1));
			del(x, k);
		}
		break;
	case 4: /* an orphan item for a random inode */
		if (random_item(z, inode, 1, &k)) {
			struct arb_key ok = {ARB_ORPHAN_OBJ, ARB_ORPHAN_KEY, k.objectid};

			arb_put(svtree(x), &ok, NULL, 0);
		}
		break;
	default: /* junk */
		k = (struct arb_key){ARB_FIRST_INO + 1 + tu_rng_below(&z->rng, 50), 70, 1};
		arb_put(svtree(x), &k, "junk", 4);
		break;
	}
}

static void random_seed(uint64_t seed)
{
	struct rnd *z = calloc(1, sizeof(*z));
	struct fx *x = &z->x;
	struct arb_fsck_report r;

	TU_ASSERT(z != NULL);
	tu_ctx_seed(seed);
	tu_rng_init(&z->rng, seed);
	fx_setup(x);
	z->dirs[z->ndirs++] = x->root;
	z->dirs[z->ndirs++] = x->d1;
	z->dirs[z->ndirs++] = x->sub;
	for (uint64_t i = 0; i < tu_scaled(150); i++) {
		tu_ctx_op(i);
		random_op(z);
	}
	tu_commit(FS(x));
	r = run(x, false);
	TU_ASSERT(r.errors == 0, "before any damage:\n%s", cap.text);
	for (int round = 0; round < 3; round++) {
		unsigned n = 1 + (unsigned)tu_rng_below(&z->rng, 4);

		for (unsigned i = 0; i < n; i++)
			random_damage(z);
		uint64_t before = digest(x);

		r = run(x, false);
		TU_EQ_U64(digest(x), before);
		uint64_t found = r.errors;

		r = run(x, true);
		TU_ASSERT(r.errors == found, "repair found %llu, the check %llu:\n%s",
		          (unsigned long long)r.errors, (unsigned long long)found, cap.text);
		tu_commit(FS(x));
		fx_reopen(x);
		r = run(x, false);
		TU_ASSERT(r.errors == 0, "round %d, after the repair:\n%s", round, cap.text);
		tu_check_clean(FS(x));
		/* the filesystem stays usable */
		for (int i = 0; i < 20; i++)
			random_op(z);
		tu_commit(FS(x));
		r = run(x, false);
		TU_ASSERT(r.errors == 0, "round %d, after more changes:\n%s", round, cap.text);
	}
	fx_finish(x);
	free(z);
}

/* ---- speed ---- */

static void test_speed(void **state)
{
	struct fx x;
	struct arb_fsck_report r;
	uint64_t n = tu_scaled(20000);
	arb_ino_t dir = 0;
	char name[32];
	double t0;

	(void)state;
	memset(&x, 0, sizeof(x));
	tu_fs_create(&x.t, 512 * MIB, 0);
	TU_RC(arb_vfs_init(FS(&x), 0755, &cred));
	TU_RC(arb_vfs_root(FS(&x), 0, &x.root));
	for (uint64_t i = 0; i < n; i++) {
		struct arb_stat st;

		if (i % 1000 == 0) {
			sprintf(name, "d%llu", (unsigned long long)i);
			TU_RC(arb_vfs_mkdir(FS(&x), x.root, name, 0755, &cred, &st));
			dir = st.ino;
		}
		sprintf(name, "file%llu", (unsigned long long)i);
		TU_RC(arb_vfs_mknod(FS(&x), dir, name, S_IFREG | 0644, 0, &cred, &st));
	}
	tu_commit(FS(&x));
	fx_reopen(&x);
	t0 = tu_now_sec();
	r = run(&x, false);
	TU_EQ_U64(r.errors, 0);
	TU_EQ_U64(r.inodes, n + n / 1000 + 1 + (n % 1000 != 0));
	printf("# fsck phase 3: %llu inodes in %.3f s\n", (unsigned long long)r.inodes,
	       tu_now_sec() - t0);
	fx_finish(&x);
}

int main(void)
{
	struct tu_tests ts = {0};

	if (getenv("ARBOR_TEST_ONLY"))
		cmocka_set_test_filter(getenv("ARBOR_TEST_ONLY"));
	tu_tests_add(&ts, "clean", test_clean);
	tu_tests_add(&ts, "file_nlink", test_file_nlink);
	tu_tests_add(&ts, "dir_figures", test_dir_figures);
	tu_tests_add(&ts, "nbytes_and_size", test_nbytes_and_size);
	tu_tests_add(&ts, "dir_index_missing", test_dir_index_missing);
	tu_tests_add(&ts, "dir_item_missing", test_dir_item_missing);
	tu_tests_add(&ts, "dir_index_mismatch", test_dir_index_mismatch);
	tu_tests_add(&ts, "dangling", test_dangling);
	tu_tests_add(&ts, "inode_item_gone", test_inode_item_gone);
	tu_tests_add(&ts, "backref_missing", test_backref_missing);
	tu_tests_add(&ts, "entry_missing", test_entry_missing);
	tu_tests_add(&ts, "lost_file", test_lost_file);
	tu_tests_add(&ts, "lost_dir", test_lost_dir);
	tu_tests_add(&ts, "loop", test_loop);
	tu_tests_add(&ts, "dir_hard_link", test_dir_hard_link);
	tu_tests_add(&ts, "entry_type", test_entry_type);
	tu_tests_add(&ts, "bad_names", test_bad_names);
	tu_tests_add(&ts, "orphans", test_orphans);
	tu_tests_add(&ts, "unknown_and_info", test_unknown_and_info);
	tu_tests_add(&ts, "extents", test_extents);
	tu_tests_add(&ts, "data_checksum", test_data_checksum);
	tu_tests_add(&ts, "subvol_links", test_subvol_links);
	tu_tests_add(&ts, "subvol_refs_unused", test_subvol_refs_unused);
	tu_tests_add(&ts, "readonly_snapshot", test_readonly_snapshot);
	tu_tests_add_seeds(&ts, "random", random_seed, 1, 8);
	tu_tests_add(&ts, "speed", test_speed);
	return tu_tests_run(&ts, "fsck_fs") ? 1 : 0;
}
