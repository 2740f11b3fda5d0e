/* SPDX-License-Identifier: MIT */
/*
 * test_fsck.c - arb_fsck, phases 1 and 2 and the choice of the commit,
 * on filesystems damaged on purpose (the namespace phase has its own
 * tests in test_fsck_fs.c):
 *
 *  - clean: no problem, and a check writes nothing;
 *  - a damaged superblock slot of an older commit: an error, fixed by
 *    rewriting every slot;
 *  - an interrupted commit (a newer slot that does not verify): not an
 *    error;
 *  - a damaged node of the newest commit (a leaf, the root of the root
 *    tree): the newest intact commit is used, each lost commit reported;
 *    preen (no_rollback) leaves that to -y;
 *  - space map counts wrong (a leaked extent, a count too high) and a
 *    tree's referenced totals wrong: fixed by the walk.
 *
 * Every repair is followed by a re-check that must be clean and by
 * arb_check; a check alone must not write a byte.
 */
#include "testutil.h"

#include "arbor/check.h"
#include "arbor/fsck.h"
#include "arbor/memdev.h"
#include "arbor/super.h"
#include "arbor/vfs.h"
#include "fs_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define DEV_SIZE (64ull << 20)
#define FILE_BYTES 40000u

static const struct arb_cred cred = {.uid = 0, .gid = 0};

/* ---- fixture: a filesystem with one file per commit ---- */

struct fx {
	struct tu_fs t;
	arb_ino_t root;
	unsigned files; /* f0 .. f<files-1>, file i written by commit i */
	uint64_t gen_of[16];
};

static void fill(uint8_t *buf, unsigned i)
{
	for (unsigned k = 0; k < FILE_BYTES; k++)
		buf[k] = (uint8_t)(i * 31 + k * 7);
}

static void add_file(struct fx *x)
{
	uint8_t *buf = malloc(FILE_BYTES);
	struct arb_stat st;
	struct arb_fs_info info;
	char name[16];
	size_t n;

	TU_ASSERT(buf != NULL);
	snprintf(name, sizeof(name), "f%u", x->files);
	fill(buf, x->files);
	TU_RC(arb_vfs_mknod(x->t.fs, x->root, name, S_IFREG | 0644, 0, &cred, &st));
	TU_RC(arb_vfs_write(x->t.fs, st.ino, 0, buf, FILE_BYTES, &n));
	tu_commit(x->t.fs);
	arb_fs_info(x->t.fs, &info);
	x->gen_of[x->files++] = info.generation;
	free(buf);
}

/* Enough names that the subvolume's tree has leaves below its root. */
static void pad_tree(struct fx *x)
{
	struct arb_stat dir, st;
	char name[32];

	TU_RC(arb_vfs_mkdir(x->t.fs, x->root, "pad", 0755, &cred, &dir));
	for (unsigned i = 0; i < 300; i++) {
		snprintf(name, sizeof(name), "entry-%u", i);
		TU_RC(arb_vfs_mknod(x->t.fs, dir.ino, name, S_IFREG | 0644, 0, &cred, &st));
	}
}

static void fx_setup(struct fx *x, unsigned files)
{
	memset(x, 0, sizeof(*x));
	tu_fs_create(&x->t, DEV_SIZE, 4096);
	TU_RC(arb_vfs_init(x->t.fs, 0755, &cred));
	TU_RC(arb_vfs_root(x->t.fs, 0, &x->root));
	pad_tree(x);
	tu_commit(x->t.fs);
	while (x->files < files)
		add_file(x);
	arb_close(x->t.fs);
	x->t.fs = NULL;
}

/* One more file, in a commit of its own, on the closed fixture. */
static void add_file_offline(struct fx *x)
{
	tu_fs_open(&x->t);
	add_file(x);
	arb_close(x->t.fs);
	x->t.fs = NULL;
}

static void fx_free(struct fx *x)
{
	tu_fs_destroy(&x->t);
}

/* ---- running fsck ---- */

static struct arb_fsck_report fsck_run(struct fx *x, bool repair, bool no_rollback)
{
	struct arb_fsck_opts o = {
	        .repair = repair, .no_rollback = no_rollback, .msg = tu_msg, .check_data = true};
	struct arb_fsck_report r;
	uint64_t writes = arb_memdev_write_count(x->t.dev);

	TU_RC(arb_fsck(x->t.dev, &o, &r));
	TU_ASSERT(r.fixed <= r.errors, "fixed %" PRIu64 " of %" PRIu64, r.fixed, r.errors);
	if (!repair)
		TU_ASSERT(arb_memdev_write_count(x->t.dev) == writes,
		          "a check wrote to the device");
	return r;
}

/* After a repair: a second run finds nothing, arb_check agrees, and
 * files f0 .. f<upto-1> read back; f<upto> and later are gone. */
static void expect_repaired(struct fx *x, unsigned upto)
{
	struct arb_fsck_report r = fsck_run(x, false, false);
	uint8_t *want = malloc(FILE_BYTES), *got = malloc(FILE_BYTES);

	TU_ASSERT(want && got);
	TU_ASSERT(r.errors == 0, "%" PRIu64 " problems after the repair", r.errors);
	tu_fs_open(&x->t);
	tu_check_clean(x->t.fs);
	for (unsigned i = 0; i < x->files; i++) {
		struct arb_stat st;
		char name[16];
		size_t n;

		snprintf(name, sizeof(name), "f%u", i);
		if (i >= upto) {
			TU_RC_EQ(arb_vfs_lookup(x->t.fs, x->root, name, &st), -ENOENT);
			continue;
		}
		TU_RC(arb_vfs_lookup(x->t.fs, x->root, name, &st));
		TU_RC(arb_vfs_read(x->t.fs, st.ino, 0, got, FILE_BYTES, &n));
		fill(want, i);
		TU_ASSERT(n == FILE_BYTES && !memcmp(want, got, FILE_BYTES), "%s differs", name);
	}
	arb_close(x->t.fs);
	x->t.fs = NULL;
	free(want);
	free(got);
}

/* ---- finding things to damage ---- */

static int find_slot(struct fx *x, uint64_t gen, int copy, struct arb_super_slot *ret)
{
	struct arb_super_slot slots[ARB_SUPER_COPIES * ARB_SUPER_SLOTS];
	int n = arb_super_read_all(x->t.dev, slots, (int)(sizeof(slots) / sizeof(slots[0])));

	for (int i = 0; i < n; i++)
		if (slots[i].copy == copy && slots[i].status == ARB_SLOT_VALID &&
		    le64toh(slots[i].sb.generation) == gen) {
			*ret = slots[i];
			return 0;
		}
	return -ENOENT;
}

static void flip_byte(struct fx *x, uint64_t offset)
{
	arb_memdev_data(x->t.dev)[offset] ^= 0x5a;
}

struct leaf_hunt {
	uint64_t gen, bytenr;
};

static int leaf_of_gen(void *ctx, const struct arb_node_view *v)
{
	struct leaf_hunt *h = ctx;

	if (v->level == 0 && v->depth > 0 && v->generation == h->gen && !h->bytenr)
		h->bytenr = v->bytenr;
	return 0;
}

/* A leaf (not the root) of the default subvolume written by commit gen. */
static uint64_t leaf_written_by(struct fx *x, uint64_t gen)
{
	struct leaf_hunt h = {gen, 0};
	uint64_t id;

	tu_fs_open(&x->t);
	TU_RC(arb_vfs_subvol_default(x->t.fs, &id));
	TU_RC(arb_tree_walk(tu_tree(x->t.fs, id), leaf_of_gen, &h));
	arb_close(x->t.fs);
	x->t.fs = NULL;
	TU_ASSERT(h.bytenr != 0, "no leaf of generation %" PRIu64, gen);
	return h.bytenr;
}

/* ---- cases ---- */

static void test_clean(void **state)
{
	struct fx x;
	struct arb_fsck_report r;

	(void)state;
	fx_setup(&x, 3);
	r = fsck_run(&x, false, false);
	TU_EQ_U64(r.errors, 0);
	TU_EQ_U64(r.slots_damaged, 0);
	TU_EQ_U64(r.generation, x.gen_of[2]);
	TU_ASSERT(r.trees >= 3 && r.nodes >= 3);
	r = fsck_run(&x, true, false);
	TU_EQ_U64(r.errors, 0);
	expect_repaired(&x, 3);
	fx_free(&x);
}

static void test_damaged_slot(void **state)
{
	struct arb_super_slot s;
	struct fx x;
	struct arb_fsck_report r;

	(void)state;
	fx_setup(&x, 4);
	/* an older commit's slot in copy 1 */
	TU_RC(find_slot(&x, x.gen_of[1], 1, &s));
	flip_byte(&x, s.offset + 300);
	r = fsck_run(&x, false, false);
	TU_EQ_U64(r.errors, 1);
	TU_EQ_U64(r.slots_damaged, 1);
	TU_EQ_U64(r.generation, x.gen_of[3]);
	r = fsck_run(&x, true, false);
	TU_EQ_U64(r.errors, 1);
	TU_EQ_U64(r.fixed, 1);
	expect_repaired(&x, 4);
	r = fsck_run(&x, false, false);
	TU_EQ_U64(r.slots_valid, (uint64_t)ARB_SUPER_SLOTS * 2); /* 64 MiB: two copies */
	fx_free(&x);
}

static void test_interrupted_commit(void **state)
{
	struct arb_super_slot s;
	struct fx x;
	struct arb_fsck_report r;
	struct arb_super torn;

	(void)state;
	fx_setup(&x, 4);
	/* the next commit's slot, half written: newer generation, bad checksum */
	TU_RC(find_slot(&x, x.gen_of[3], 0, &s));
	torn = s.sb;
	torn.generation = htole64(x.gen_of[3] + 1);
	uint64_t at = s.offset + ARB_SUPER_SLOT_SIZE * (uint64_t)((s.slot + 1) % ARB_SUPER_SLOTS) -
	              ARB_SUPER_SLOT_SIZE * (uint64_t)s.slot;

	memcpy(arb_memdev_data(x.t.dev) + at, &torn, 2048); /* the rest stays old */
	r = fsck_run(&x, false, false);
	TU_EQ_U64(r.errors, 0);
	TU_EQ_U64(r.slots_interrupted, 1);
	TU_EQ_U64(r.generation, x.gen_of[3]);
	fx_free(&x);
}

static void test_damaged_leaf(void **state)
{
	struct fx x;
	struct arb_fsck_report r;

	(void)state;
	fx_setup(&x, 4);
	flip_byte(&x, leaf_written_by(&x, x.gen_of[3]) + 200);
	r = fsck_run(&x, false, false);
	TU_EQ_U64(r.errors, 1);
	TU_EQ_U64(r.lost_commits, 1);
	TU_EQ_U64(r.generation, x.gen_of[2]);
	/* preen does not give up commits on its own */
	r = fsck_run(&x, true, true);
	TU_EQ_U64(r.errors, 1);
	TU_EQ_U64(r.fixed, 0);
	r = fsck_run(&x, true, false);
	TU_EQ_U64(r.errors, 1);
	TU_EQ_U64(r.fixed, 1);
	expect_repaired(&x, 3);
	fx_free(&x);
}

static void test_damaged_root(void **state)
{
	struct arb_super_slot s;
	struct fx x;
	struct arb_fsck_report r;

	(void)state;
	fx_setup(&x, 4);
	TU_RC(find_slot(&x, x.gen_of[3], 0, &s));
	flip_byte(&x, le64toh(s.sb.root_tree.bytenr) + 100);
	r = fsck_run(&x, false, false);
	TU_EQ_U64(r.errors, 1);
	TU_EQ_U64(r.lost_commits, 1);
	TU_EQ_U64(r.generation, x.gen_of[2]);
	r = fsck_run(&x, true, false);
	TU_EQ_U64(r.fixed, 1);
	expect_repaired(&x, 3);
	fx_free(&x);
}

static void test_counts(void **state)
{
	struct fx x;
	struct arb_fsck_report r;
	struct arb_fs_info before, after;
	uint64_t leaked, id;
	struct arb_tree *t;

	(void)state;
	fx_setup(&x, 2);
	tu_fs_open(&x.t);
	arb_fs_info(x.t.fs, &before);
	/* an extent nothing names, a count too high, a tree total off by one */
	TU_RC(arb_extent_alloc(x.t.fs, 3, &leaked));
	TU_RC(arb_extent_ref(x.t.fs, leaked, 1, +1));
	TU_RC(arb_vfs_subvol_default(x.t.fs, &id));
	t = tu_tree(x.t.fs, id);
	t->ref_nodes++;
	t->item_dirty = true;
	tu_commit(x.t.fs);
	arb_close(x.t.fs);
	x.t.fs = NULL;

	r = fsck_run(&x, false, false);
	TU_EQ_U64(r.errors, 2); /* the space map, the tree's totals */
	TU_ASSERT(r.count_errors >= 4, "%" PRIu64 " count errors", r.count_errors);
	r = fsck_run(&x, true, false);
	TU_EQ_U64(r.errors, 2);
	TU_EQ_U64(r.fixed, 2);
	expect_repaired(&x, 2);
	/* the leaked sectors come back once the ring has moved past them */
	tu_fs_open(&x.t);
	for (unsigned i = 0; i < 2 * ARB_DEFER_COMMITS; i++) {
		x.t.fs->force_commit = true;
		tu_commit(x.t.fs);
	}
	arb_fs_info(x.t.fs, &after);
	TU_ASSERT(after.used_sectors <= before.used_sectors + 2,
	          "used %" PRIu64 " sectors, %" PRIu64 " before the leak", after.used_sectors,
	          before.used_sectors);
	fx_free(&x);
}

/* fsck of another device than the fixture's. */
static struct arb_fsck_report fsck_dev(struct arb_dev *dev, bool repair)
{
	struct arb_fsck_opts o = {.repair = repair, .msg = NULL};
	struct arb_fsck_report r;

	TU_RC(arb_fsck(dev, &o, &r));
	return r;
}

/*
 * A repair is crash-safe: cut the power after every write of a repair (and
 * with the unflushed writes reordered), and the image either is as it was
 * (the same problems) or is repaired (none) - never something else.  The
 * damage: a leaked extent, a wrong tree total, a file whose inode item is
 * gone, and a damaged leaf in the newest commit (so the repair also goes
 * back one commit and rewrites every slot).
 */
static void test_repair_crash(void **state)
{
	struct fx x;
	struct arb_fsck_report before, r;
	uint64_t leaked, id, states = 0, untouched = 0, repaired = 0;
	struct arb_stat st;
	size_t events;

	(void)state;
	fx_setup(&x, 3);
	tu_fs_open(&x.t);
	TU_RC(arb_extent_alloc(x.t.fs, 2, &leaked));
	TU_RC(arb_vfs_subvol_default(x.t.fs, &id));
	TU_RC(arb_vfs_lookup(x.t.fs, x.root, "f1", &st));
	{
		struct arb_key k = {st.ino & ((1ull << ARB_SUBVOL_SHIFT) - 1), ARB_INODE_ITEM_KEY,
		                    0};

		TU_RC(arb_delete(tu_tree(x.t.fs, id), &k));
	}
	tu_commit(x.t.fs);
	arb_close(x.t.fs);
	x.t.fs = NULL;
	add_file_offline(&x);
	flip_byte(&x, leaf_written_by(&x, x.gen_of[x.files - 1]) + 200);

	before = fsck_run(&x, false, false);
	TU_ASSERT(before.errors >= 3, "%" PRIu64 " problems", before.errors);
	arb_memdev_record(x.t.dev);
	r = fsck_run(&x, true, false);
	TU_EQ_U64(r.fixed, r.errors);
	events = arb_memdev_events(x.t.dev);
	for (size_t cut = 0; cut <= events; cut++) {
		for (uint64_t seed = 0; seed < (cut % 3 ? 1u : 3u); seed++) {
			struct arb_dev *dev;

			tu_ctx_op(cut);
			TU_RC(arb_memdev_crash_image(x.t.dev, cut, seed, &dev));
			r = fsck_dev(dev, false);
			TU_ASSERT(r.errors == 0 || r.errors == before.errors,
			          "cut %zu: %" PRIu64 " problems (before the repair %" PRIu64 ")",
			          cut, r.errors, before.errors);
			untouched += r.errors != 0;
			repaired += r.errors == 0;
			states++;
			arb_dev_close(dev);
		}
	}
	TU_ASSERT(untouched > 0 && repaired > 0, "untouched %" PRIu64 ", repaired %" PRIu64,
	          untouched, repaired);
	print_message("# repair crash: %zu events, %" PRIu64 " crash states: %" PRIu64
	              " as before, %" PRIu64 " repaired\n",
	              events, states, untouched, repaired);
	fx_free(&x);
}

int main(void)
{
	struct tu_tests ts = {0};

	tu_tests_add(&ts, "clean", test_clean);
	tu_tests_add(&ts, "damaged slot", test_damaged_slot);
	tu_tests_add(&ts, "interrupted commit", test_interrupted_commit);
	tu_tests_add(&ts, "damaged leaf", test_damaged_leaf);
	tu_tests_add(&ts, "damaged root", test_damaged_root);
	tu_tests_add(&ts, "counts", test_counts);
	tu_tests_add(&ts, "repair crash", test_repair_crash);
	return tu_tests_run(&ts, "fsck");
}
