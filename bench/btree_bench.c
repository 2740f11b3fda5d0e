/* SPDX-License-Identifier: MIT */
/*
 * btree_bench.c - the Arbor B+tree against LMDB on a real file.
 *
 * Both engines get the same N random 16-byte keys with 100-byte values, in
 * the same random orders, with a durable commit every 1,000 operations
 * (Arbor: arb_commit with real flushes on a sparse image file; LMDB: default
 * flags, i.e. mdb_txn_commit with fdatasync).  Phases:
 *   insert  all keys, random order;
 *   lookup  all keys, another random order, after closing and reopening;
 *   delete  all keys, a third random order.
 * Each round runs every engine once (interleaved, so a busy host hurts both
 * alike); the table shows the median of each figure over the rounds and the
 * ratio Arbor/LMDB, plus the space the file holds on disk after the inserts
 * and the bytes each mutating phase passed to write calls (/proc/self/io
 * wchar: the write amplification).  An Arbor key is (objectid = first 8 bytes big-endian,
 * type 1, offset = last 8 bytes big-endian), so both engines sort alike.
 *
 *   btree_bench [--ops N] [--rounds R] [--engine arbor|lmdb|both]
 *               [--dir DIR] [--nodesize BYTES] [--cache-mb MB] [--seed S]
 *               [--image-gib G]
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <lmdb.h>

#include "arbor/btree.h"
#include "arbor/fs.h"
#include "arbor/io.h"

#define KEY_LEN 16
#define VAL_LEN 100
#define TXN_OPS 1000
#define MAX_ROUNDS 99

enum phase { PH_INSERT, PH_LOOKUP, PH_DELETE, PH_SPACE, PH_WINSERT, PH_WDELETE, NPHASES };
enum engine { ENG_ARBOR, ENG_LMDB, NENGINES };

static const char *const phase_names[NPHASES] = {
        "insert (random), ops/s",   "lookup (random), ops/s", "delete (random), ops/s",
        "MiB on disk after insert", "MiB written by insert",  "MiB written by delete"};
static const char *const engine_names[NENGINES] = {"arbor", "lmdb"};

struct opts {
	size_t ops;
	int rounds;
	bool engine[NENGINES];
	const char *dir;
	uint32_t nodesize;
	size_t cache_mb;
	uint64_t seed;
	uint64_t image_gib;
};

struct workset {
	size_t n;
	uint8_t (*keys)[KEY_LEN];
	uint32_t *order[3]; /* insert, lookup, delete */
};

/* ---- helpers --------------------------------------------------------------- */

/* Files of the running round, removed at exit even when a phase fails. */
static char g_files[3][PATH_MAX + 8];

static void remove_files(void)
{
	for (int i = 0; i < 3; i++)
		if (g_files[i][0])
			unlink(g_files[i]);
}

static void own_file(int slot, const char *path)
{
	snprintf(g_files[slot], sizeof(g_files[slot]), "%s", path);
}

static void die(const char *what, int err)
{
	fprintf(stderr, "btree_bench: %s: %s\n", what, strerror(err < 0 ? -err : err));
	exit(1);
}

static void die_at(const char *what, size_t op, int err)
{
	fprintf(stderr, "btree_bench: %s, operation %zu of the phase: %s\n", what, op,
	        strerror(err < 0 ? -err : err));
	exit(1);
}

static double now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t splitmix(uint64_t *s)
{
	uint64_t x = (*s += 0x9e3779b97f4a7c15ull);

	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static uint64_t load_be64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static void arbor_key(const uint8_t *k, struct arb_key *ak)
{
	ak->objectid = load_be64(k);
	ak->type = 1;
	ak->offset = load_be64(k + 8);
}

/* The value of a key: 100 bytes derived from it. */
static void value_of(const uint8_t *k, uint8_t *v)
{
	uint64_t s = load_be64(k) ^ (load_be64(k + 8) * 31);

	for (int i = 0; i < VAL_LEN; i += 8) {
		uint64_t r = splitmix(&s);

		memcpy(v + i, &r, VAL_LEN - i < 8 ? (size_t)(VAL_LEN - i) : 8);
	}
}

static void shuffle(uint32_t *v, size_t n, uint64_t *rng)
{
	for (size_t i = 0; i < n; i++)
		v[i] = (uint32_t)i;
	for (size_t i = n; i > 1; i--) {
		size_t j = splitmix(rng) % i;
		uint32_t t = v[i - 1];

		v[i - 1] = v[j];
		v[j] = t;
	}
}

static void workset_init(struct workset *ws, size_t n, uint64_t seed)
{
	uint64_t rng = seed;

	ws->n = n;
	ws->keys = malloc(n * KEY_LEN);
	if (!ws->keys)
		die("keys", ENOMEM);
	for (size_t i = 0; i < n; i++) {
		uint64_t a = splitmix(&rng), b = splitmix(&rng);

		memcpy(ws->keys[i], &a, 8);
		memcpy(ws->keys[i] + 8, &b, 8);
	}
	for (int p = 0; p < 3; p++) {
		ws->order[p] = malloc(n * sizeof(uint32_t));
		if (!ws->order[p])
			die("orders", ENOMEM);
		shuffle(ws->order[p], n, &rng);
	}
}

static void workset_free(struct workset *ws)
{
	free(ws->keys);
	for (int p = 0; p < 3; p++)
		free(ws->order[p]);
}

/* Bytes this process has passed to write calls so far (/proc/self/io wchar). */
static double mib_written(void)
{
	FILE *f = fopen("/proc/self/io", "r");
	unsigned long long v = 0;
	char line[128];

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "wchar: %llu", &v) == 1)
			break;
	if (f)
		fclose(f);
	return (double)v / (1024.0 * 1024.0);
}

static double mib_on_disk(const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0)
		die(path, errno);
	return (double)st.st_blocks * 512.0 / (1024.0 * 1024.0);
}

static void check_value(const uint8_t *k, const void *got, size_t len)
{
	uint8_t want[VAL_LEN];

	value_of(k, want);
	if (len != VAL_LEN || memcmp(got, want, VAL_LEN) != 0) {
		fprintf(stderr, "btree_bench: wrong value read back\n");
		exit(1);
	}
}

/* ---- Arbor ------------------------------------------------------------------- */

struct arbor {
	char path[PATH_MAX];
	struct arb_dev *dev;
	struct arb_fs *fs;
	struct arb_tree *tree;
	uint64_t tree_id;
	const struct opts *o;
};

static void arbor_open(struct arbor *a)
{
	struct arb_open_opts oo;
	int ret;

	memset(&oo, 0, sizeof(oo));
	oo.cache_bytes = a->o->cache_mb << 20;
	ret = arb_dev_open_file(a->path, ARB_DEV_EXCL, &a->dev);
	if (ret < 0)
		die("arb_dev_open_file", ret);
	ret = arb_open(a->dev, &oo, &a->fs);
	if (ret < 0)
		die("arb_open", ret);
}

static void arbor_close(struct arbor *a)
{
	arb_close(a->fs);
	arb_dev_close(a->dev);
	a->fs = NULL;
	a->dev = NULL;
}

static void arbor_get_tree(struct arbor *a)
{
	int ret = arb_tree_get(a->fs, a->tree_id, &a->tree);

	if (ret < 0)
		die("arb_tree_get", ret);
}

static void arbor_setup(struct arbor *a, const struct opts *o, int round)
{
	struct arb_format_opts fo;
	int fd, ret;

	a->o = o;
	snprintf(a->path, sizeof(a->path), "%s/arbor-bench-%d-%d.img", o->dir, (int)getpid(),
	         round);
	fd = open(a->path, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0644);
	if (fd < 0)
		die(a->path, errno);
	own_file(0, a->path);
	if (ftruncate(fd, (off_t)(o->image_gib << 30)) < 0)
		die("ftruncate", errno);
	close(fd);
	ret = arb_dev_open_file(a->path, ARB_DEV_EXCL, &a->dev);
	if (ret < 0)
		die("arb_dev_open_file", ret);
	memset(&fo, 0, sizeof(fo));
	fo.nodesize = o->nodesize;
	ret = arb_format(a->dev, &fo);
	if (ret < 0)
		die("arb_format", ret);
	arb_dev_close(a->dev);
	arbor_open(a);
	ret = arb_tree_create(a->fs, &a->tree_id);
	if (ret < 0 || (ret = arb_commit(a->fs)) < 0)
		die("arb_tree_create", ret);
	arbor_get_tree(a);
}

static void arbor_commit(struct arbor *a)
{
	int ret = arb_commit(a->fs);

	if (ret < 0)
		die("arb_commit", ret);
}

static void arbor_insert(struct arbor *a, const struct workset *ws)
{
	uint8_t val[VAL_LEN];

	for (size_t i = 0; i < ws->n; i++) {
		const uint8_t *k = ws->keys[ws->order[0][i]];
		struct arb_key ak;
		int ret;

		arbor_key(k, &ak);
		value_of(k, val);
		ret = arb_insert(a->tree, &ak, val, VAL_LEN);
		if (ret < 0)
			die_at("arb_insert", i, ret);
		if ((i + 1) % TXN_OPS == 0)
			arbor_commit(a);
	}
	arbor_commit(a);
}

static void arbor_lookup(struct arbor *a, const struct workset *ws)
{
	uint8_t val[VAL_LEN + 16];

	for (size_t i = 0; i < ws->n; i++) {
		const uint8_t *k = ws->keys[ws->order[1][i]];
		struct arb_key ak;
		uint32_t len = 0;
		int ret;

		arbor_key(k, &ak);
		ret = arb_lookup(a->tree, &ak, val, sizeof(val), &len);
		if (ret < 0)
			die("arb_lookup", ret);
		check_value(k, val, len);
	}
}

static void arbor_delete(struct arbor *a, const struct workset *ws)
{
	for (size_t i = 0; i < ws->n; i++) {
		struct arb_key ak;
		int ret;

		arbor_key(ws->keys[ws->order[2][i]], &ak);
		ret = arb_delete(a->tree, &ak);
		if (ret < 0)
			die_at("arb_delete", i, ret);
		if ((i + 1) % TXN_OPS == 0)
			arbor_commit(a);
	}
	arbor_commit(a);
}

static void run_arbor(const struct opts *o, const struct workset *ws, int round,
                      double res[NPHASES])
{
	struct arbor a = {0};
	double t, w;

	arbor_setup(&a, o, round);
	w = mib_written();
	t = now_sec();
	arbor_insert(&a, ws);
	res[PH_INSERT] = (double)ws->n / (now_sec() - t);
	res[PH_WINSERT] = mib_written() - w;
	arbor_close(&a);
	res[PH_SPACE] = mib_on_disk(a.path);
	arbor_open(&a);
	arbor_get_tree(&a);
	t = now_sec();
	arbor_lookup(&a, ws);
	res[PH_LOOKUP] = (double)ws->n / (now_sec() - t);
	w = mib_written();
	t = now_sec();
	arbor_delete(&a, ws);
	res[PH_DELETE] = (double)ws->n / (now_sec() - t);
	res[PH_WDELETE] = mib_written() - w;
	arbor_close(&a);
	unlink(a.path);
}

/* ---- LMDB ----------------------------------------------------------------------- */

struct lmdb {
	char path[PATH_MAX], lock[PATH_MAX + 8];
	MDB_env *env;
	MDB_dbi dbi;
	size_t mapsize;
};

static void lmdb_check(const char *what, int rc)
{
	if (rc != MDB_SUCCESS) {
		fprintf(stderr, "btree_bench: %s: %s\n", what, mdb_strerror(rc));
		exit(1);
	}
}

static void lmdb_open(struct lmdb *l)
{
	MDB_txn *txn;

	lmdb_check("mdb_env_create", mdb_env_create(&l->env));
	lmdb_check("mdb_env_set_mapsize", mdb_env_set_mapsize(l->env, l->mapsize));
	lmdb_check("mdb_env_open", mdb_env_open(l->env, l->path, MDB_NOSUBDIR, 0644));
	lmdb_check("mdb_txn_begin", mdb_txn_begin(l->env, NULL, 0, &txn));
	lmdb_check("mdb_dbi_open", mdb_dbi_open(txn, NULL, 0, &l->dbi));
	lmdb_check("mdb_txn_commit", mdb_txn_commit(txn));
}

static void lmdb_close(struct lmdb *l)
{
	mdb_env_close(l->env);
	l->env = NULL;
}

static MDB_txn *lmdb_begin(struct lmdb *l, unsigned flags)
{
	MDB_txn *txn;

	lmdb_check("mdb_txn_begin", mdb_txn_begin(l->env, NULL, flags, &txn));
	return txn;
}

static void lmdb_insert(struct lmdb *l, const struct workset *ws)
{
	MDB_txn *txn = lmdb_begin(l, 0);
	uint8_t val[VAL_LEN];

	for (size_t i = 0; i < ws->n; i++) {
		uint8_t *k = ws->keys[ws->order[0][i]];
		MDB_val mk = {KEY_LEN, k}, mv = {VAL_LEN, val};

		value_of(k, val);
		lmdb_check("mdb_put", mdb_put(txn, l->dbi, &mk, &mv, MDB_NOOVERWRITE));
		if ((i + 1) % TXN_OPS == 0) {
			lmdb_check("mdb_txn_commit", mdb_txn_commit(txn));
			txn = lmdb_begin(l, 0);
		}
	}
	lmdb_check("mdb_txn_commit", mdb_txn_commit(txn));
}

static void lmdb_lookup(struct lmdb *l, const struct workset *ws)
{
	MDB_txn *txn = lmdb_begin(l, MDB_RDONLY);

	for (size_t i = 0; i < ws->n; i++) {
		uint8_t *k = ws->keys[ws->order[1][i]];
		MDB_val mk = {KEY_LEN, k}, mv;

		lmdb_check("mdb_get", mdb_get(txn, l->dbi, &mk, &mv));
		check_value(k, mv.mv_data, mv.mv_size);
		if ((i + 1) % TXN_OPS == 0) {
			mdb_txn_reset(txn);
			lmdb_check("mdb_txn_renew", mdb_txn_renew(txn));
		}
	}
	mdb_txn_abort(txn);
}

static void lmdb_delete(struct lmdb *l, const struct workset *ws)
{
	MDB_txn *txn = lmdb_begin(l, 0);

	for (size_t i = 0; i < ws->n; i++) {
		MDB_val mk = {KEY_LEN, ws->keys[ws->order[2][i]]};

		lmdb_check("mdb_del", mdb_del(txn, l->dbi, &mk, NULL));
		if ((i + 1) % TXN_OPS == 0) {
			lmdb_check("mdb_txn_commit", mdb_txn_commit(txn));
			txn = lmdb_begin(l, 0);
		}
	}
	lmdb_check("mdb_txn_commit", mdb_txn_commit(txn));
}

static void run_lmdb(const struct opts *o, const struct workset *ws, int round, double res[NPHASES])
{
	struct lmdb l = {0};
	double t, w;

	snprintf(l.path, sizeof(l.path), "%s/lmdb-bench-%d-%d.mdb", o->dir, (int)getpid(), round);
	snprintf(l.lock, sizeof(l.lock), "%s-lock", l.path);
	l.mapsize = ws->n * 2048 < (256u << 20) ? (256u << 20) : ws->n * 2048;
	own_file(1, l.path);
	own_file(2, l.lock);
	lmdb_open(&l);
	w = mib_written();
	t = now_sec();
	lmdb_insert(&l, ws);
	res[PH_INSERT] = (double)ws->n / (now_sec() - t);
	res[PH_WINSERT] = mib_written() - w;
	lmdb_close(&l);
	res[PH_SPACE] = mib_on_disk(l.path);
	lmdb_open(&l);
	t = now_sec();
	lmdb_lookup(&l, ws);
	res[PH_LOOKUP] = (double)ws->n / (now_sec() - t);
	w = mib_written();
	t = now_sec();
	lmdb_delete(&l, ws);
	res[PH_DELETE] = (double)ws->n / (now_sec() - t);
	res[PH_WDELETE] = mib_written() - w;
	lmdb_close(&l);
	unlink(l.path);
	unlink(l.lock);
}

/* ---- options and report ------------------------------------------------------------ */

static void usage(int code)
{
	fprintf(code ? stderr : stdout,
	        "usage: btree_bench [--ops N] [--rounds R] [--engine arbor|lmdb|both]\n"
	        "                   [--dir DIR] [--nodesize BYTES] [--cache-mb MB] [--seed S]\n"
	        "                   [--image-gib G]\n"
	        "  random insert, lookup (after reopen) and delete of N 16-byte keys with\n"
	        "  100-byte values, a durable commit every %d operations, Arbor vs LMDB.\n"
	        "  Defaults: --ops 1000000 --rounds 3 --engine both --dir /var/tmp\n"
	        "  --image-gib 4 (Arbor's sparse image file)\n",
	        TXN_OPS);
	exit(code);
}

static void parse_engine(struct opts *o, const char *s)
{
	bool both = strcmp(s, "both") == 0;

	o->engine[ENG_ARBOR] = both || strcmp(s, "arbor") == 0;
	o->engine[ENG_LMDB] = both || strcmp(s, "lmdb") == 0;
	if (!o->engine[ENG_ARBOR] && !o->engine[ENG_LMDB])
		usage(2);
}

static unsigned long long parse_num(const char *s)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || *end)
		usage(2);
	return v;
}

static void parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
	        {"ops", required_argument, NULL, 'n'},
	        {"rounds", required_argument, NULL, 'r'},
	        {"engine", required_argument, NULL, 'e'},
	        {"dir", required_argument, NULL, 'd'},
	        {"nodesize", required_argument, NULL, 'b'},
	        {"cache-mb", required_argument, NULL, 'c'},
	        {"seed", required_argument, NULL, 's'},
	        {"image-gib", required_argument, NULL, 'g'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	int c;

	*o = (struct opts){1000000, 3, {true, true}, "/var/tmp", 0, 0, 42, 4};
	while ((c = getopt_long(argc, argv, "n:r:e:d:b:c:s:g:h", lo, NULL)) != -1) {
		switch (c) {
		case 'n':
			o->ops = parse_num(optarg);
			break;
		case 'r':
			o->rounds = (int)parse_num(optarg);
			break;
		case 'e':
			parse_engine(o, optarg);
			break;
		case 'd':
			o->dir = optarg;
			break;
		case 'b':
			o->nodesize = (uint32_t)parse_num(optarg);
			break;
		case 'c':
			o->cache_mb = parse_num(optarg);
			break;
		case 's':
			o->seed = parse_num(optarg);
			break;
		case 'g':
			o->image_gib = parse_num(optarg);
			break;
		case 'h':
			usage(0);
			break;
		default:
			usage(2);
		}
	}
	if (optind != argc || o->ops == 0 || o->ops > UINT32_MAX || o->rounds < 1 ||
	    o->rounds > MAX_ROUNDS || o->image_gib == 0 || o->image_gib > (1u << 20))
		usage(2);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void print_round(int r, int e, const double *res)
{
	printf("# round %d %-5s: insert %.0f/s, lookup %.0f/s, delete %.0f/s, %.1f MiB on disk, "
	       "%.1f + %.1f MiB written\n",
	       r + 1, engine_names[e], res[PH_INSERT], res[PH_LOOKUP], res[PH_DELETE],
	       res[PH_SPACE], res[PH_WINSERT], res[PH_WDELETE]);
	fflush(stdout);
}

static void print_table(const struct opts *o, double res[NENGINES][NPHASES][MAX_ROUNDS])
{
	printf("\n%zu keys (16 B) x 100 B values, durable commit every %d ops, dir %s, "
	       "median of %d round%s\n",
	       o->ops, TXN_OPS, o->dir, o->rounds, o->rounds > 1 ? "s" : "");
	printf("%-26s %14s %14s %11s\n", "figure", "arbor", "lmdb", "arbor/lmdb");
	for (int p = 0; p < NPHASES; p++) {
		double m[NENGINES] = {0};

		for (int e = 0; e < NENGINES; e++)
			if (o->engine[e])
				m[e] = median(res[e][p], o->rounds);
		printf("%-26s", phase_names[p]);
		for (int e = 0; e < NENGINES; e++) {
			if (!o->engine[e])
				printf(" %14s", "-");
			else if (p >= PH_SPACE)
				printf(" %14.1f", m[e]);
			else
				printf(" %14.0f", m[e]);
		}
		if (o->engine[ENG_ARBOR] && o->engine[ENG_LMDB] && m[ENG_LMDB] > 0)
			printf(" %11.2f\n", m[ENG_ARBOR] / m[ENG_LMDB]);
		else
			printf(" %11s\n", "-");
	}
}

int main(int argc, char **argv)
{
	static double res[NENGINES][NPHASES][MAX_ROUNDS];
	struct workset ws;
	struct opts o;

	parse_opts(argc, argv, &o);
	atexit(remove_files);
	workset_init(&ws, o.ops, o.seed);
	for (int r = 0; r < o.rounds; r++) {
		for (int i = 0; i < NENGINES; i++) {
			int e = (i + r) % NENGINES; /* alternate who goes first */
			double one[NPHASES];

			if (!o.engine[e])
				continue;
			if (e == ENG_ARBOR)
				run_arbor(&o, &ws, r, one);
			else
				run_lmdb(&o, &ws, r, one);
			for (int p = 0; p < NPHASES; p++)
				res[e][p][r] = one[p];
			print_round(r, e, one);
		}
	}
	print_table(&o, res);
	workset_free(&ws);
	return 0;
}
