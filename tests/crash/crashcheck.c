/* SPDX-License-Identifier: MIT */
/*
 * crashcheck - replay a recorded arborfs run (arborfs -o record=LOG) into
 * crash states and check each against the workload's ORACLE (oracle.h).
 *
 *   crashcheck [options] BASE LOG ORACLE
 *
 * The states: a power cut after every Nth event (--prefix-step), and per
 * flush epoch K cuts at its end flush with the epoch's writes landed as a
 * random subset in a random order (--subsets).  Each state must pass, in
 * process: fsck in check-only mode (clean); a mount as arborfs does it
 * (read-write open, which replays the fsync log, the root of the default
 * subvolume, orphan cleanup); every promise of the oracle.  --tools-every
 * also puts every Nth state through the real fsck.arbor -n and arborfs.
 *
 * States are built as memdev crash views (arb_memdev_crash_view), which
 * share the cached prefix image instead of copying the device, and are
 * walked in prefix order so that the cache only moves forward.  -j forks
 * workers, each taking every Jth state.
 *
 * Exit: 0 all passed, 1 some state failed, 2 usage or I/O error.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "arbor/fs.h"
#include "arbor/fsck.h"
#include "arbor/memdev.h"
#include "crashcheck.h"

#define EXIT_FAILED 1
#define EXIT_USAGE 2
#define MOUNT_CACHE_BYTES (16u << 20)
#define MAX_JOBS 64

struct options {
	const char *name;
	size_t prefix_step;
	size_t subsets;
	size_t max_states; /* 0: no limit */
	uint64_t seed;
	size_t tools_every;
	const char *keep_failed;
	bool verbose;
	unsigned jobs;
	const char *base, *log, *oracle;
};

/* What the workers report back (shared memory). */
struct tally {
	uint64_t done, failed;
	int io_error;
};

struct checker {
	struct options o;
	struct oracle oracle;
	struct arb_replay_info info;
	struct arb_dev *rec; /* the replayed run */
	struct run run;
	struct real_tools tools;
	struct state *states;
	size_t nstates;
};

/* ---- options ------------------------------------------------------------------------- */

static void usage(FILE *out)
{
	fprintf(out,
	        "usage: crashcheck [options] BASE LOG ORACLE\n"
	        "  --name NAME        label for messages (default: basename of ORACLE)\n"
	        "  --prefix-step N    a state after every Nth event (default 1; 0: none)\n"
	        "  --subsets K        K random subset/reorder states per flush epoch (default "
	        "4)\n"
	        "  --max-states M     at most M states, spread evenly (default: no limit)\n"
	        "  --seed S           base seed of the subset states (default 1)\n"
	        "  --tools-every N    every Nth state also through the real fsck.arbor -n and\n"
	        "                     arborfs (default 0: never)\n"
	        "  --keep-failed DIR  write the image of each failing state to DIR\n"
	        "  -j N               N worker processes (default: the online CPUs)\n"
	        "  -v                 one line per state\n");
}

static size_t arg_num(const char *opt, const char *s)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || !*s || *end || *s == '-') {
		fprintf(stderr, "crashcheck: invalid %s '%s'\n", opt, s);
		exit(EXIT_USAGE);
	}
	return (size_t)v;
}

static unsigned default_jobs(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : n > MAX_JOBS ? MAX_JOBS : (unsigned)n;
}

/* One option of getopt_long into o. */
static void set_option(struct options *o, int c)
{
	switch (c) {
	case 'n':
		o->name = optarg;
		break;
	case 'p':
		o->prefix_step = arg_num("--prefix-step", optarg);
		break;
	case 'k':
		o->subsets = arg_num("--subsets", optarg);
		break;
	case 'm':
		o->max_states = arg_num("--max-states", optarg);
		break;
	case 's':
		o->seed = arg_num("--seed", optarg);
		break;
	case 't':
		o->tools_every = arg_num("--tools-every", optarg);
		break;
	case 'K':
		o->keep_failed = optarg;
		break;
	case 'j':
		o->jobs = (unsigned)arg_num("-j", optarg);
		o->jobs = o->jobs < 1 ? 1 : o->jobs > MAX_JOBS ? MAX_JOBS : o->jobs;
		break;
	case 'v':
		o->verbose = true;
		break;
	case 'h':
		usage(stdout);
		exit(0);
	default:
		usage(stderr);
		exit(EXIT_USAGE);
	}
}

static void parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
	        {"name", required_argument, NULL, 'n'},
	        {"prefix-step", required_argument, NULL, 'p'},
	        {"subsets", required_argument, NULL, 'k'},
	        {"max-states", required_argument, NULL, 'm'},
	        {"seed", required_argument, NULL, 's'},
	        {"tools-every", required_argument, NULL, 't'},
	        {"keep-failed", required_argument, NULL, 'K'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	int c;

	*o = (struct options){.prefix_step = 1, .subsets = 4, .seed = 1, .jobs = default_jobs()};
	while ((c = getopt_long(argc, argv, "vj:", longopts, NULL)) != -1)
		set_option(o, c);
	if (argc - optind != 3) {
		usage(stderr);
		exit(EXIT_USAGE);
	}
	o->base = argv[optind];
	o->log = argv[optind + 1];
	o->oracle = argv[optind + 2];
	if (!o->name) {
		const char *slash = strrchr(o->oracle, '/');

		o->name = slash ? slash + 1 : o->oracle;
	}
}

/* ---- positions ------------------------------------------------------------------------ */

bool state_covers(const struct run *r, const struct state *st, uint64_t pos)
{
	size_t lo = 0, hi = r->nflush;

	/* lo: the flushes ending at or before pos */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (r->info->event_end[r->flush_ev[mid]] <= pos)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* no flush before the record: it waited for nothing */
	return lo == 0 || r->flush_ev[lo - 1] < st->held;
}

/* Events [0, result) all land whatever the cache does: up to the last
 * flush before cut. */
static size_t stable_prefix(const struct checker *c, size_t cut)
{
	while (cut > 0 && !arb_memdev_event_is_flush(c->rec, cut - 1))
		cut--;
	return cut;
}

static struct state make_state(const struct checker *c, size_t cut, uint64_t seed)
{
	struct state st = {.cut = cut, .seed = seed, .reordered = seed != 0};

	st.held = seed ? stable_prefix(c, cut) : cut;
	st.pos = cut ? c->info.event_end[cut - 1] : ARB_RECLOG_HDR_SIZE;
	return st;
}

/* ---- the plan -------------------------------------------------------------------------- */

static void add_state(struct checker *c, size_t *cap, struct state st)
{
	if (c->nstates == *cap) {
		*cap = *cap ? 2 * *cap : 256;
		c->states = realloc(c->states, *cap * sizeof(*c->states));
		if (!c->states) {
			fprintf(stderr, "crashcheck: out of memory\n");
			exit(EXIT_USAGE);
		}
	}
	c->states[c->nstates++] = st;
}

static uint64_t mix_seed(uint64_t base, size_t cut, size_t k)
{
	uint64_t z = base * 0x9E3779B97F4A7C15ull + (uint64_t)cut * 0x100000001B3ull + k + 1;

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	z ^= z >> 31;
	return z ? z : 1; /* 0 would mean "no reordering" */
}

/* K seeded cuts at the end of an epoch that has writes. */
static void add_subsets(struct checker *c, size_t *cap, size_t cut)
{
	if (stable_prefix(c, cut) == cut)
		return; /* nothing unflushed */
	for (size_t k = 0; k < c->o.subsets; k++)
		add_state(c, cap, make_state(c, cut, mix_seed(c->o.seed, cut, k)));
}

/* Where the crash view's cache must be: states sorted by it only move it
 * forward. */
static size_t prefix_of(const struct state *st)
{
	return st->seed ? st->held : st->cut;
}

static int cmp_state(const void *a, const void *b)
{
	const struct state *x = a, *y = b;

	if (prefix_of(x) != prefix_of(y))
		return prefix_of(x) < prefix_of(y) ? -1 : 1;
	if (x->cut != y->cut)
		return x->cut < y->cut ? -1 : 1;
	return x->seed < y->seed ? -1 : x->seed > y->seed;
}

/* --max-states: keep M spread evenly over the run. */
static void thin_out(struct checker *c)
{
	size_t m = c->o.max_states;

	if (!m || c->nstates <= m)
		return;
	for (size_t i = 0; i < m; i++)
		c->states[i] = c->states[(size_t)((double)i * (double)c->nstates / (double)m)];
	c->nstates = m;
}

static void plan_states(struct checker *c)
{
	size_t n = c->info.nevents, cap = 0;

	if (c->o.prefix_step) {
		for (size_t cut = c->o.prefix_step; cut <= n; cut += c->o.prefix_step)
			add_state(c, &cap, make_state(c, cut, 0));
		if (n % c->o.prefix_step)
			add_state(c, &cap, make_state(c, n, 0));
	}
	if (c->o.subsets) {
		for (size_t i = 0; i < c->run.nflush; i++)
			add_subsets(c, &cap, c->run.flush_ev[i]);
		add_subsets(c, &cap, n); /* writes after the last flush */
	}
	if (c->nstates)
		qsort(c->states, c->nstates, sizeof(*c->states), cmp_state);
	thin_out(c);
}

/* ---- one state ------------------------------------------------------------------------- */

/* The core's messages while checking a state: the first error is kept. */
struct msgs {
	char first[512];
	unsigned errors;
};

static void collect_msg(void *ctx, enum arb_msg_level level, const char *text)
{
	struct msgs *m = ctx;

	if (level > ARB_MSG_WARN)
		return;
	if (level == ARB_MSG_ERR && m->errors++ == 0)
		snprintf(m->first, sizeof(m->first), "%s", text);
	else if (!m->first[0])
		snprintf(m->first, sizeof(m->first), "%s", text);
}

static void check_fsck(struct arb_dev *img, struct verdict *v)
{
	struct msgs m = {{0}, 0};
	struct arb_fsck_opts fo = {.msg = collect_msg, .msg_ctx = &m};
	struct arb_fsck_report rep;
	int err = arb_fsck(img, &fo, &rep);

	/* an fsync log not replayed yet is not a problem: fsck opens the commit
	 * as a mount would and replays it in memory */
	if (err)
		verdict_fail(v, "fsck cannot check the image: %s%s%s", strerror(-err),
		             m.first[0] ? ": " : "", m.first);
	else if (rep.errors)
		verdict_fail(v, "fsck -n finds %" PRIu64 " problems: %s", rep.errors, m.first);
}

/* Mount as arborfs does, then every promise of the oracle. */
static void check_mounted(const struct checker *c, const struct state *st, struct arb_dev *img,
                          struct verdict *v)
{
	struct msgs m = {{0}, 0};
	struct arb_open_opts oo = {
	        .cache_bytes = MOUNT_CACHE_BYTES, .msg = collect_msg, .msg_ctx = &m};
	struct vfs_reader vr;
	struct arb_fs *fs;
	arb_ino_t root;
	uint64_t freed;
	int err = arb_open(img, &oo, &fs);

	if (err) {
		verdict_fail(v, "the image does not mount: %s%s%s", strerror(-err),
		             m.first[0] ? ": " : "", m.first);
		return;
	}
	err = arb_vfs_root(fs, 0, &root);
	if (err)
		verdict_fail(v, "no root directory of the default subvolume: %s", strerror(-err));
	else if ((err = arb_vfs_orphan_cleanup(fs, &freed)))
		verdict_fail(v, "orphan cleanup at mount: %s", strerror(-err));
	if (!err) {
		vfs_reader_init(&vr, fs, root);
		verify_namespace(&c->run, st, &vr.rd, v);
		verify_sqlite(&c->run, st, fs, root, v);
		verify_git(&c->run, st, fs, root, v);
	}
	arb_close(fs);
}

static void keep_image(const struct checker *c, const struct state *st)
{
	struct arb_dev *img;
	char path[4096];
	int err = arb_memdev_crash_view(c->rec, st->cut, st->seed, &img);

	snprintf(path, sizeof(path), "%s/%s-cut%zu-seed%" PRIu64 ".img", c->o.keep_failed,
	         c->o.name, st->cut, st->seed);
	/* the first failure makes the directory (workers race: EEXIST is fine) */
	if (!err && mkdir(c->o.keep_failed, 0755) < 0 && errno != EEXIST)
		err = -errno;
	if (!err) {
		err = image_write(img, path);
		arb_dev_close(img);
	}
	if (err)
		fprintf(stderr, "crashcheck: %s: %s\n", path, strerror(-err));
}

/* The lines of a state, in one write so that workers do not mix them. */
static void report(const struct checker *c, const struct state *st, const struct verdict *v,
                   double ms)
{
	char buf[4096];
	int n = 0;

	if (c->o.verbose)
		n += snprintf(buf, sizeof(buf),
		              "state cut=%zu seed=%" PRIu64 " pos=%" PRIu64 ": %s (%.1f ms)\n",
		              st->cut, st->seed, st->pos, v->problems ? "FAIL" : "ok", ms);
	if (v->problems) {
		char more[64] = "";

		if (v->problems > 1)
			snprintf(more, sizeof(more), " (and %u more problems)", v->problems - 1);
		n += snprintf(buf + n, sizeof(buf) - (size_t)n,
		              "FAIL %s cut=%zu seed=%" PRIu64 ": %s%s\n"
		              "  reproduce: arbor inspect replay %s %s --cut %zu --seed %" PRIu64
		              " -o crash.img\n",
		              c->o.name, st->cut, st->seed, v->reason, more, c->o.base, c->o.log,
		              st->cut, st->seed);
	}
	if (n > 0 && write(1, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1) < 0)
		perror("crashcheck: stdout");
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* 0 passed, 1 failed, -errno when the state could not be built. */
static int check_state(const struct checker *c, const struct state *st, size_t index)
{
	struct verdict v = {{0}, 0};
	double t0 = now_ms();
	struct arb_dev *img;
	int err = arb_memdev_crash_view(c->rec, st->cut, st->seed, &img);

	if (err) {
		fprintf(stderr, "crashcheck: %s: cannot build the state at cut %zu: %s\n",
		        c->o.name, st->cut, strerror(-err));
		return err;
	}
	/* the real tools first: they need the image as the power cut left it */
	if (c->o.tools_every && index % c->o.tools_every == 0)
		verify_real_tools(&c->run, st, &c->tools, img, &v);
	check_fsck(img, &v);
	check_mounted(c, st, img, &v);
	arb_dev_close(img);
	if (v.problems && c->o.keep_failed)
		keep_image(c, st);
	report(c, st, &v, now_ms() - t0);
	return v.problems ? 1 : 0;
}

/* ---- workers ----------------------------------------------------------------------------- */

static void run_share(const struct checker *c, unsigned worker, unsigned jobs, struct tally *t)
{
	for (size_t i = worker; i < c->nstates; i += jobs) {
		int ret = check_state(c, &c->states[i], i);

		if (ret < 0) {
			t->io_error = -ret;
			return;
		}
		t->done++;
		t->failed += (uint64_t)ret;
	}
}

static unsigned workers(const struct checker *c)
{
	return c->o.jobs < c->nstates ? c->o.jobs : (unsigned)(c->nstates ? c->nstates : 1);
}

static int run_workers(const struct checker *c, struct tally *total)
{
	unsigned jobs = workers(c);
	struct tally *t;

	memset(total, 0, sizeof(*total));
	fflush(NULL); /* the workers write their lines with write(2) */
	if (jobs <= 1) {
		run_share(c, 0, 1, total);
		return 0;
	}
	t = mmap(NULL, jobs * sizeof(*t), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1,
	         0);
	if (t == MAP_FAILED)
		return -errno;
	memset(t, 0, jobs * sizeof(*t));
	fflush(NULL);
	for (unsigned w = 0; w < jobs; w++) {
		pid_t pid = fork();

		if (pid < 0) {
			t[w].io_error = errno;
			continue;
		}
		if (pid == 0) {
			run_share(c, w, jobs, &t[w]);
			_exit(0);
		}
	}
	while (wait(NULL) > 0 || errno == EINTR)
		;
	for (unsigned w = 0; w < jobs; w++) {
		total->done += t[w].done;
		total->failed += t[w].failed;
		total->io_error = total->io_error ? total->io_error : t[w].io_error;
	}
	munmap(t, jobs * sizeof(*t));
	return 0;
}

/* ---- setup and summary ----------------------------------------------------------------- */

static int load_run(struct checker *c)
{
	int err;

	if (oracle_load(c->o.oracle, &c->oracle))
		return -1;
	err = arb_replay_load(c->o.base, c->o.log, &c->rec, &c->info);
	if (err) {
		fprintf(stderr, "crashcheck: cannot replay %s on %s: %s\n", c->o.log, c->o.base,
		        err == -EINVAL ? "not a recording log, or the base is too small"
		                       : strerror(-err));
		return -1;
	}
	c->run.flush_ev = calloc(c->info.flushes + 1, sizeof(*c->run.flush_ev));
	if (!c->run.flush_ev)
		return -1;
	for (size_t i = 0; i < c->info.nevents; i++)
		if (arb_memdev_event_is_flush(c->rec, i))
			c->run.flush_ev[c->run.nflush++] = i;
	c->run.oracle = &c->oracle;
	c->run.info = &c->info;
	return 0;
}

static void summary(const struct checker *c, const struct tally *t, double secs)
{
	size_t after_write = 0, reordered = 0;

	for (size_t i = 0; i < c->nstates; i++) {
		const struct state *st = &c->states[i];

		if (st->reordered)
			reordered++;
		else if (st->cut && !arb_memdev_event_is_flush(c->rec, st->cut - 1))
			after_write++;
	}
	if (t->done)
		printf("crashcheck: %s: %.2f ms per state, %.0f states/s (%u workers)\n", c->o.name,
		       secs * 1e3 * workers(c) / (double)t->done,
		       (double)t->done / (secs > 0 ? secs : 1e-9), workers(c));
	printf("crashcheck: %s: %" PRIu64 " states (%zu after a write, %zu reordered), %" PRIu64
	       " failed; %zu events (%" PRIu64 " writes, %" PRIu64 " flushes); %.2f s\n",
	       c->o.name, t->done, after_write, reordered, t->failed, c->info.nevents,
	       c->info.writes, c->info.flushes, secs);
}

int main(int argc, char **argv)
{
	struct checker c = {0};
	struct tally t;
	double t0 = now_ms();
	int err;

	parse_options(argc, argv, &c.o);
	if (load_run(&c))
		return EXIT_USAGE;
	if (c.o.tools_every)
		real_tools_find(&c.tools, argv[0], c.o.name);
	plan_states(&c);
	err = run_workers(&c, &t);
	summary(&c, &t, (now_ms() - t0) / 1e3);
	if (err || t.io_error) {
		fprintf(stderr, "crashcheck: %s: %s\n", c.o.name,
		        strerror(err ? -err : t.io_error));
		return EXIT_USAGE;
	}
	free(c.states);
	free(c.run.flush_ev);
	arb_dev_close(c.rec);
	arb_replay_info_free(&c.info);
	oracle_free(&c.oracle);
	return t.failed ? EXIT_FAILED : 0;
}
