/* SPDX-License-Identifier: MIT */
/*
 * test_vfs_bigdir.c - one directory with 10^5 entries (times
 * ARBOR_TEST_SCALE): create them all, look each one up, list them all
 * (each exactly once, right inode and type), and list them while entries
 * are added and removed between the chunks of the listing (each entry
 * that was there before and stayed is seen exactly once, the others at
 * most once); then commit, reopen and do it all again.  Prints the time
 * of each phase.
 */
#include "testutil.h"

#include "arbor/vfs.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#define BASE_ENTRIES 100000
#define DIR_EVERY 1000 /* every 1000th entry is a directory */
#define CHUNK 1000     /* entries per readdir call while mutating */
#define ADD_PER_CHUNK 200
#define DEL_PER_CHUNK 300

static const struct arb_cred cred = {.uid = 0, .gid = 0};

enum { E_NONE, E_PRESENT, E_REMOVED };

struct big {
	struct tu_fs t;
	struct tu_rng rng;
	arb_ino_t root, dir;
	unsigned n, cap;      /* ids used so far, room */
	unsigned char *state; /* E_* */
	arb_ino_t *ino;
	unsigned *seen;
	unsigned char *was; /* present when the listing started */
	unsigned present, subdirs;
};

static void entry_name(unsigned id, char *buf)
{
	snprintf(buf, 32, "e%07u", id);
}

static unsigned entry_id(const char *name, size_t len)
{
	unsigned id = 0;

	TU_ASSERT(len == 8 && name[0] == 'e', "unexpected entry \"%.*s\"", (int)len, name);
	for (size_t i = 1; i < len; i++) {
		TU_ASSERT(name[i] >= '0' && name[i] <= '9');
		id = id * 10 + (unsigned)(name[i] - '0');
	}
	return id;
}

static bool is_dir_id(unsigned id)
{
	return id % DIR_EVERY == DIR_EVERY - 1;
}

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n, size);

	TU_ASSERT(p != NULL);
	return p;
}

static void big_setup(struct big *b, unsigned n)
{
	struct arb_stat st;

	memset(b, 0, sizeof(*b));
	tu_rng_init(&b->rng, 0xb16d1);
	b->cap = n + n / 2 + 16;
	b->state = xcalloc(b->cap, 1);
	b->was = xcalloc(b->cap, 1);
	b->ino = xcalloc(b->cap, sizeof(*b->ino));
	b->seen = xcalloc(b->cap, sizeof(*b->seen));
	/* about 1 KiB of metadata per entry, the running transaction's
	 * copies and the deferred frees on top */
	tu_fs_create(&b->t, (256ull << 20) + (uint64_t)n * 8192, 0);
	TU_RC(arb_vfs_init(b->t.fs, 0755, &cred));
	TU_RC(arb_vfs_root(b->t.fs, 0, &b->root));
	TU_RC(arb_vfs_mkdir(b->t.fs, b->root, "big", 0755, &cred, &st));
	b->dir = st.ino;
	tu_commit(b->t.fs);
}

static void big_free(struct big *b)
{
	free(b->state);
	free(b->was);
	free(b->ino);
	free(b->seen);
	tu_fs_destroy(&b->t);
}

static void add_entry(struct big *b)
{
	unsigned id = b->n++;
	char name[32];
	struct arb_stat st;

	TU_ASSERT(id < b->cap);
	entry_name(id, name);
	if (is_dir_id(id)) {
		TU_RC(arb_vfs_mkdir(b->t.fs, b->dir, name, 0700, &cred, &st));
		b->subdirs++;
	} else {
		TU_RC(arb_vfs_mknod(b->t.fs, b->dir, name, S_IFREG | 0600, 0, &cred, &st));
	}
	b->ino[id] = st.ino;
	b->state[id] = E_PRESENT;
	b->present++;
}

static void remove_entry(struct big *b, unsigned id)
{
	char name[32];

	entry_name(id, name);
	if (is_dir_id(id)) {
		TU_RC(arb_vfs_rmdir(b->t.fs, b->dir, name));
		b->subdirs--;
	} else {
		TU_RC(arb_vfs_unlink(b->t.fs, b->dir, name));
	}
	b->state[id] = E_REMOVED;
	b->present--;
}

/* A random present entry, or UINT_MAX. */
static unsigned random_present(struct big *b)
{
	for (int tries = 0; tries < 100; tries++) {
		unsigned id = (unsigned)tu_rng_below(&b->rng, b->n);

		if (b->state[id] == E_PRESENT)
			return id;
	}
	return UINT32_MAX;
}

/* ---- phases ---- */

static void create_all(struct big *b, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		tu_ctx_op(i);
		add_entry(b);
		if (i % 20000 == 19999)
			tu_commit(b->t.fs);
	}
	tu_ctx_op(UINT64_MAX);
}

static void lookup_all(struct big *b)
{
	char name[32];
	struct arb_stat st;

	for (unsigned id = 0; id < b->n; id++) {
		entry_name(id, name);
		if (b->state[id] != E_PRESENT) {
			TU_RC_EQ(arb_vfs_lookup(b->t.fs, b->dir, name, &st), -ENOENT);
			continue;
		}
		TU_RC(arb_vfs_lookup(b->t.fs, b->dir, name, &st));
		TU_EQ_U64(st.ino, b->ino[id]);
		TU_EQ_U64(st.mode, is_dir_id(id) ? S_IFDIR | 0700 : S_IFREG | 0600);
	}
	TU_RC(arb_vfs_getattr(b->t.fs, b->dir, &st));
	TU_EQ_U64(st.nlink, 2 + b->subdirs);
}

struct lister {
	struct big *b;
	uint64_t last_cookie;
	unsigned got, limit;
	const char *bad;
};

static int list_fn(void *ctx, const char *name, size_t name_len, arb_ino_t ino, unsigned dtype,
                   uint64_t cookie)
{
	struct lister *l = ctx;
	struct big *b = l->b;
	unsigned id = entry_id(name, name_len);

	if (id >= b->n || b->state[id] == E_NONE) {
		l->bad = "an entry that never existed";
		return 1;
	}
	if (ino != b->ino[id] || dtype != (is_dir_id(id) ? DT_DIR : DT_REG)) {
		l->bad = "wrong inode or type";
		return 1;
	}
	if (cookie <= l->last_cookie) {
		l->bad = "cookies do not increase";
		return 1;
	}
	b->seen[id]++;
	l->last_cookie = cookie;
	return ++l->got >= l->limit && l->limit;
}

/* One readdir call from pos, at most limit entries (0: all). */
static unsigned list_chunk(struct big *b, struct lister *l, unsigned limit)
{
	l->got = 0;
	l->limit = limit;
	TU_RC(arb_vfs_readdir(b->t.fs, b->dir, l->last_cookie, list_fn, l));
	TU_ASSERT(!l->bad, "readdir: %s", l->bad);
	return l->got;
}

static void list_start(struct big *b, struct lister *l)
{
	memset(l, 0, sizeof(*l));
	l->b = b;
	memset(b->seen, 0, b->cap * sizeof(*b->seen));
	for (unsigned id = 0; id < b->cap; id++)
		b->was[id] = id < b->n && b->state[id] == E_PRESENT;
}

static void list_all(struct big *b)
{
	struct lister l;

	list_start(b, &l);
	TU_EQ_U64(list_chunk(b, &l, 0), b->present);
	for (unsigned id = 0; id < b->n; id++)
		TU_ASSERT(b->seen[id] == (b->state[id] == E_PRESENT), "e%07u seen %u times", id,
		          b->seen[id]);
}

static void mutate(struct big *b)
{
	for (int i = 0; i < DEL_PER_CHUNK; i++) {
		unsigned id = random_present(b);

		if (id != UINT32_MAX)
			remove_entry(b, id);
	}
	for (int i = 0; i < ADD_PER_CHUNK && b->n < b->cap; i++)
		add_entry(b);
}

/* List in chunks; between chunks remove and add entries. */
static void list_mutating(struct big *b, unsigned max_added)
{
	struct lister l;
	unsigned stop_adding = b->n + max_added, chunks = 0;

	list_start(b, &l);
	while (list_chunk(b, &l, CHUNK) > 0) {
		chunks++;
		if (b->n < stop_adding)
			mutate(b);
	}
	for (unsigned id = 0; id < b->n; id++) {
		if (b->was[id] && b->state[id] == E_PRESENT)
			TU_ASSERT(b->seen[id] == 1, "e%07u (there all along) seen %u times", id,
			          b->seen[id]);
		else
			TU_ASSERT(b->seen[id] <= 1, "e%07u seen %u times", id, b->seen[id]);
	}
	TU_ASSERT(chunks > 1);
}

static double phase_end(const char *what, double t0)
{
	double t = tu_now_sec();

	print_message("#   %-40s %7.2f s\n", what, t - t0);
	return t;
}

static void big_round(struct big *b, const char *when, unsigned max_added)
{
	double t = tu_now_sec();
	char what[64];

	snprintf(what, sizeof(what), "lookups (%s)", when);
	tu_ctx_phase(what);
	lookup_all(b);
	t = phase_end(what, t);
	snprintf(what, sizeof(what), "full readdir (%s)", when);
	tu_ctx_phase(what);
	list_all(b);
	t = phase_end(what, t);
	snprintf(what, sizeof(what), "mutating readdir (%s)", when);
	tu_ctx_phase(what);
	list_mutating(b, max_added);
	t = phase_end(what, t);
	lookup_all(b);
	list_all(b);
	phase_end("lookups and readdir again", t);
}

static void test_bigdir(void **state)
{
	unsigned n = (unsigned)tu_scaled(BASE_ENTRIES);
	struct big *b = calloc(1, sizeof(*b));
	double t0 = tu_now_sec(), t;

	(void)state;
	TU_ASSERT(b != NULL);
	big_setup(b, n);
	print_message("# %u entries\n", n);
	tu_ctx_phase("create");
	create_all(b, n);
	t = phase_end("create", t0);
	big_round(b, "running transaction", n / 4);
	t = tu_now_sec();
	tu_ctx_phase("commit and reopen");
	tu_commit(b->t.fs);
	tu_fs_reopen(&b->t);
	t = phase_end("commit and reopen", t);
	big_round(b, "after reopen", n / 4);
	tu_ctx_phase("check");
	t = tu_now_sec();
	tu_commit(b->t.fs);
	tu_check_clean(b->t.fs);
	phase_end("commit and arb_check", t);
	phase_end("total", t0);
	big_free(b);
	free(b);
}

int main(void)
{
	struct tu_tests ts = {0};

	tu_tests_add(&ts, "bigdir", test_bigdir);
	return tu_tests_run(&ts, "vfs_bigdir");
}
