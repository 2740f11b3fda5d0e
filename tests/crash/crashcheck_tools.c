/* SPDX-License-Identifier: MIT */
/*
 * crashcheck_tools.c - the checks that need programs outside the checker:
 * SQLite databases and git repositories are copied out of the crash state
 * and checked by sqlite3 and git themselves; with --tools-every, the image
 * goes through the real fsck.arbor -n and is mounted with the real arborfs.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "crashcheck.h"

#define COPY_CHUNK (1u << 20)
#define TOOL_OUT 4096
/* paths read through the real mount: a sample, the in-process check read all */
#define REAL_MOUNT_PATHS 8

/* ---- running programs ---------------------------------------------------------------- */

/* posix_spawn, not fork: the checker holds the whole replayed run in
 * memory, and copying its page tables for every sqlite3 or git would cost
 * more than the check. */
static int spawn(char *const argv[], int out_fd, pid_t *pid)
{
	posix_spawn_file_actions_t fa;
	int err = posix_spawn_file_actions_init(&fa);

	if (err)
		return err;
	err = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	if (!err)
		err = posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
	if (!err)
		err = posix_spawn_file_actions_adddup2(&fa, out_fd, 2);
	if (!err)
		err = posix_spawnp(pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	return err;
}

static void drain(int fd, char *out, size_t len)
{
	size_t used = 0;
	char sink[4096];
	ssize_t n;

	for (;;) {
		char *dst = used + 1 < len ? out + used : sink;
		size_t room = used + 1 < len ? len - 1 - used : sizeof(sink);

		n = read(fd, dst, room);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (dst != sink)
			used += (size_t)n;
	}
	if (len)
		out[used] = '\0';
}

int tool_run(char *const argv[], char *out, size_t len)
{
	int fds[2], status, err;
	pid_t pid;

	if (pipe2(fds, O_CLOEXEC) < 0)
		return -1;
	err = spawn(argv, fds[1], &pid);
	close(fds[1]);
	if (err) {
		snprintf(out, len, "cannot run %s: %s", argv[0], strerror(err));
		close(fds[0]);
		return -1;
	}
	drain(fds[0], out, len);
	close(fds[0]);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* The first line of a program's output, for a message. */
static const char *first_line(char *out)
{
	out[strcspn(out, "\n")] = '\0';
	return out[0] ? out : "(no output)";
}

/* A path made with a format; -ENAMETOOLONG rather than a truncated one. */
static int fmt_path(char *buf, size_t len, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static int fmt_path(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* ---- temporary directories ----------------------------------------------------------- */

/* $TMPDIR, else memory (/dev/shm) when there is one: the checks copy
 * repositories out and remove them again for every state, which a disk
 * turns into most of the run's time. */
static const char *tmp_base(void)
{
	const char *tmp = getenv("TMPDIR");

	if (tmp && *tmp)
		return tmp;
	return access("/dev/shm", W_OK | X_OK) == 0 ? "/dev/shm" : "/tmp";
}

int tmpdir_make(char *buf, size_t len, const char *what)
{
	int err = fmt_path(buf, len, "%s/crashcheck-%s.XXXXXX", tmp_base(), what);

	if (err)
		return err;
	return mkdtemp(buf) ? 0 : -errno;
}

static int remove_one(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	remove(path);
	return 0;
}

void tmpdir_remove(const char *dir)
{
	nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- copying out of the crash state -------------------------------------------------- */

static int write_all(int fd, const uint8_t *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int copy_file(struct arb_fs *fs, const struct arb_stat *st, const char *host)
{
	int fd = open(host, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	uint8_t *buf = malloc(COPY_CHUNK);
	uint64_t off = 0;
	int err = fd < 0 ? -errno : buf ? 0 : -ENOMEM;

	while (!err && off < st->size) {
		size_t got = 0;

		err = arb_vfs_read(fs, st->ino, off, buf, COPY_CHUNK, &got);
		if (!err && got == 0)
			break;
		if (!err)
			err = write_all(fd, buf, got);
		off += got;
	}
	free(buf);
	if (fd >= 0)
		close(fd);
	return err;
}

static int copy_node(struct arb_fs *fs, const struct arb_stat *st, const char *host);

struct dir_names {
	char **names;
	size_t n, cap;
};

static int collect_name(void *ctx, const char *name, size_t len, arb_ino_t ino, unsigned dtype,
                        uint64_t cookie)
{
	struct dir_names *d = ctx;

	(void)ino;
	(void)dtype;
	(void)cookie;
	if (d->n == d->cap) {
		size_t cap = d->cap ? 2 * d->cap : 32;
		char **v = realloc(d->names, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		d->names = v;
		d->cap = cap;
	}
	d->names[d->n] = strndup(name, len);
	return d->names[d->n++] ? 0 : -ENOMEM;
}

static int copy_entries(struct arb_fs *fs, arb_ino_t dir, const struct dir_names *d,
                        const char *host)
{
	char sub[PATH_MAX];
	struct arb_stat st;
	int err = 0;

	for (size_t i = 0; i < d->n && !err; i++) {
		err = fmt_path(sub, sizeof(sub), "%s/%s", host, d->names[i]);
		if (!err)
			err = arb_vfs_lookup(fs, dir, d->names[i], &st);
		if (!err)
			err = copy_node(fs, &st, sub);
	}
	return err;
}

static int copy_dir(struct arb_fs *fs, const struct arb_stat *st, const char *host)
{
	struct dir_names d = {0};
	int err = mkdir(host, 0755) < 0 && errno != EEXIST ? -errno : 0;

	if (!err)
		err = arb_vfs_readdir(fs, st->ino, 0, collect_name, &d);
	if (!err)
		err = copy_entries(fs, st->ino, &d, host);
	for (size_t i = 0; i < d.n; i++)
		free(d.names[i]);
	free(d.names);
	return err;
}

static int copy_symlink(struct arb_fs *fs, const struct arb_stat *st, const char *host)
{
	char target[PATH_MAX];
	size_t len = 0;
	int err = arb_vfs_readlink(fs, st->ino, target, sizeof(target) - 1, &len);

	if (err)
		return err;
	target[len < sizeof(target) ? len : sizeof(target) - 1] = '\0';
	return symlink(target, host) < 0 ? -errno : 0;
}

static int copy_node(struct arb_fs *fs, const struct arb_stat *st, const char *host)
{
	if (S_ISDIR(st->mode))
		return copy_dir(fs, st, host);
	if (S_ISREG(st->mode))
		return copy_file(fs, st, host);
	if (S_ISLNK(st->mode))
		return copy_symlink(fs, st, host);
	return 0; /* git and SQLite keep no special files */
}

int copy_out(struct arb_fs *fs, arb_ino_t root, const char *path, const char *host)
{
	struct vfs_reader vr;
	struct node_info ni;
	struct arb_stat st;
	int err;

	vfs_reader_init(&vr, fs, root);
	err = vr.rd.stat(&vr.rd, path, &ni);
	if (err)
		return err;
	if (!ni.exists)
		return -ENOENT;
	err = arb_vfs_getattr(fs, ni.ino, &st);
	return err ? err : copy_node(fs, &st, host);
}

/* ---- results by content ------------------------------------------------------------- */

/*
 * Most crash states hold the same database or repository as the state
 * before: sqlite3 and git, by far the slowest part of a check, run once per
 * distinct content.  The key hashes every copied file's name and bytes.
 */
#define CACHE_SLOTS 1024

struct tool_result {
	uint64_t key; /* 0: empty */
	int ret;      /* what the tool check returned */
	uint64_t n;   /* rows, commits */
	char why[400];
};

static struct tool_result result_cache[CACHE_SLOTS];

static uint64_t mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static uint64_t hash_bytes(uint64_t h, const uint8_t *p, size_t n)
{
	uint64_t w;

	for (; n >= 8; p += 8, n -= 8) {
		memcpy(&w, p, 8);
		h = mix64(h ^ w) + 0x9E3779B97F4A7C15ull;
	}
	w = n;
	memcpy(&w, p, n); /* the tail and its length */
	return mix64(h ^ w ^ ((uint64_t)n << 56));
}

/* nftw has no context argument */
static uint64_t tree_hash;
static size_t tree_top; /* length of the temporary directory's name */

static int hash_one(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	/* the name below the temporary directory, whose name is random */
	const char *rel = strlen(path) > tree_top ? path + tree_top : "";
	uint64_t h = hash_bytes(0x5eed, (const uint8_t *)rel, strlen(rel));
	uint8_t buf[65536];
	ssize_t n;
	int fd;

	(void)sb;
	(void)ftw;
	if (type == FTW_F && (fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0) {
		while ((n = read(fd, buf, sizeof(buf))) > 0)
			h = hash_bytes(h, buf, (size_t)n);
		close(fd);
	}
	/* a sum: the order nftw visits in does not matter */
	tree_hash += mix64(h);
	return 0;
}

/* The key of what dir holds, salted with what is asked of it; never 0. */
static uint64_t content_key(const char *dir, const char *what)
{
	tree_hash = hash_bytes(0, (const uint8_t *)what, strlen(what));
	tree_top = strlen(dir);
	if (nftw(dir, hash_one, 16, FTW_PHYS) != 0)
		return 0;
	return tree_hash ? tree_hash : 1;
}

static struct tool_result *cached(uint64_t key)
{
	struct tool_result *r = &result_cache[key % CACHE_SLOTS];

	return key && r->key == key ? r : NULL;
}

static void remember(uint64_t key, int ret, uint64_t n, const char *why)
{
	struct tool_result *r = &result_cache[key % CACHE_SLOTS];

	if (!key)
		return;
	*r = (struct tool_result){.key = key, .ret = ret, .n = n};
	snprintf(r->why, sizeof(r->why), "%s", ret ? why : "");
}

/* Run check on dir, or take its result for the same content. */
typedef int (*tool_check_fn)(const char *path, uint64_t *n, char *why, size_t len);

static int check_cached(tool_check_fn check, const char *dir, const char *path, const char *what,
                        uint64_t *n, char *why, size_t len)
{
	uint64_t key = content_key(dir, what);
	struct tool_result *r = cached(key);
	int ret;

	if (r) {
		*n = r->n;
		snprintf(why, len, "%s", r->why);
		return r->ret;
	}
	ret = check(path, n, why, len);
	remember(key, ret, *n, why);
	return ret;
}

/* ---- SQLite ---------------------------------------------------------------------------- */

/* What the Q and q records of one database say at a state. */
struct db_bounds {
	bool covered;   /* some Q is covered */
	uint64_t least; /* rows of the covered Q */
	uint64_t most;  /* largest rows declared before the position */
};

static void db_bounds(const struct run *r, const struct state *st, const char *db,
                      struct db_bounds *b)
{
	const struct orecs *l = &r->oracle->sqlite;

	memset(b, 0, sizeof(*b));
	for (size_t i = 0; i < l->n; i++) {
		const struct orec *q = &l->v[i];

		if (strcmp(q->a, db))
			continue;
		if (q->pos < st->pos && q->n > b->most)
			b->most = q->n;
		if (q->done && state_covers(r, st, q->pos)) {
			b->covered = true;
			if (q->n > b->least)
				b->least = q->n;
		}
	}
}

/* DB and the files SQLite keeps beside it, into dir under DB's name. */
static int copy_db(struct arb_fs *fs, arb_ino_t root, const char *db, const char *dir, char *host,
                   size_t len)
{
	static const char *const suffix[] = {"", "-wal", "-journal"};
	char *base = strdup(db), src[PATH_MAX], dst[PATH_MAX];
	int err = base ? 0 : -ENOMEM;

	for (size_t i = 0; i < 3 && !err; i++) {
		err = fmt_path(src, sizeof(src), "%s%s", db, suffix[i]);
		if (!err)
			err = fmt_path(dst, sizeof(dst), "%s/%s%s", dir, basename(base), suffix[i]);
		if (!err && i == 0)
			err = fmt_path(host, len, "%s", dst);
		if (!err)
			err = copy_out(fs, root, src, dst);
		if (err == -ENOENT && i > 0)
			err = 0;
	}
	free(base);
	return err;
}

/* Rows of table t, after PRAGMA integrity_check printed ok.  Two runs:
 * sqlite3 prints errors and results on different streams, unordered. */
static int sqlite_rows(const char *file, uint64_t *rows, char *why, size_t len)
{
	char *check[] = {"sqlite3", (char *)file, "PRAGMA integrity_check;", NULL};
	char *count[] = {"sqlite3", (char *)file, "SELECT count(*) FROM t;", NULL};
	char out[TOOL_OUT];
	int status = tool_run(check, out, sizeof(out));

	if (status != 0 || strcmp(out, "ok\n")) {
		snprintf(why, len, "integrity_check: %.300s (exit %d)", first_line(out), status);
		return -1;
	}
	status = tool_run(count, out, sizeof(out));
	/* a database whose table t was never committed is empty, not damaged */
	if (status != 0 && strstr(out, "no such table: t")) {
		*rows = 0;
		return 0;
	}
	if (status != 0 || sscanf(out, "%" SCNu64, rows) != 1) {
		snprintf(why, len, "SELECT count(*): %.300s (exit %d)", first_line(out), status);
		return -1;
	}
	return 0;
}

static void verify_db(const struct run *r, const struct state *st, struct arb_fs *fs,
                      arb_ino_t root, const char *db, struct verdict *v)
{
	char dir[PATH_MAX], host[PATH_MAX], why[512];
	struct db_bounds b;
	uint64_t rows = 0;
	int err;

	db_bounds(r, st, db, &b);
	if (tmpdir_make(dir, sizeof(dir), "sqlite")) {
		verdict_fail(v, "%s: cannot make a temporary directory", db);
		return;
	}
	err = copy_db(fs, root, db, dir, host, sizeof(host));
	if (err == -ENOENT) {
		if (b.covered)
			verdict_fail(v, "SQLite %s is missing, %" PRIu64 " rows were committed", db,
			             b.least);
	} else if (err) {
		verdict_fail(v, "SQLite %s: copying it out: %s", db, strerror(-err));
	} else if (check_cached(sqlite_rows, dir, host, "sqlite", &rows, why, sizeof(why))) {
		verdict_fail(v, "SQLite %s: %s", db, why);
	} else if (rows < b.least || rows > b.most) {
		verdict_fail(v,
		             "SQLite %s: %" PRIu64 " rows, the oracle allows %" PRIu64 "..%" PRIu64
		             "%s",
		             db, rows, b.least, b.most, b.covered ? "" : " (no commit covered)");
	}
	tmpdir_remove(dir);
}

/* Each database once: at its first record. */
static bool first_of(const struct orecs *l, size_t i)
{
	for (size_t k = 0; k < i; k++)
		if (!strcmp(l->v[k].a, l->v[i].a))
			return false;
	return true;
}

void verify_sqlite(const struct run *r, const struct state *st, struct arb_fs *fs, arb_ino_t root,
                   struct verdict *v)
{
	const struct orecs *l = &r->oracle->sqlite;

	for (size_t i = 0; i < l->n; i++)
		if (first_of(l, i))
			verify_db(r, st, fs, root, l->v[i].a, v);
}

/* ---- git ------------------------------------------------------------------------------- */

static int git_commits(const char *dir, uint64_t *count, char *why, size_t len)
{
	char *fsck[] = {"git", "-c", "safe.directory=*", "-C", (char *)dir, "fsck", NULL};
	char *revs[] = {"git",  "-c", "safe.directory=*", "-C", (char *)dir, "rev-list", "--count",
	                "HEAD", NULL};
	char out[TOOL_OUT];
	int status = tool_run(fsck, out, sizeof(out));

	if (status != 0) {
		snprintf(why, len, "git fsck: exit %d: %.300s", status, first_line(out));
		return -1;
	}
	status = tool_run(revs, out, sizeof(out));
	if (status != 0 || sscanf(out, "%" SCNu64, count) != 1) {
		snprintf(why, len, "git rev-list --count HEAD: exit %d: %.300s", status,
		         first_line(out));
		return -1;
	}
	return 0;
}

static void verify_repo(const struct run *r, const struct state *st, struct arb_fs *fs,
                        arb_ino_t root, const char *repo, struct verdict *v)
{
	const struct orecs *l = &r->oracle->git;
	char dir[PATH_MAX], copy[PATH_MAX], why[512];
	uint64_t least = 0, count = 0;
	bool covered = false;
	int err;

	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->v[i].a, repo) && state_covers(r, st, l->v[i].pos)) {
			covered = true;
			least = l->v[i].n > least ? l->v[i].n : least;
		}
	if (!covered)
		return;
	if (tmpdir_make(dir, sizeof(dir), "git")) {
		verdict_fail(v, "%s: cannot make a temporary directory", repo);
		return;
	}
	err = fmt_path(copy, sizeof(copy), "%s/repo", dir);
	if (!err)
		err = copy_out(fs, root, repo, copy);
	if (err)
		verdict_fail(v, "git %s: copying it out: %s", repo, strerror(-err));
	else if (check_cached(git_commits, dir, copy, "git", &count, why, sizeof(why)))
		verdict_fail(v, "git %s: %s", repo, why);
	else if (count < least)
		verdict_fail(v, "git %s: HEAD has %" PRIu64 " commits, %" PRIu64 " were durable",
		             repo, count, least);
	tmpdir_remove(dir);
}

void verify_git(const struct run *r, const struct state *st, struct arb_fs *fs, arb_ino_t root,
                struct verdict *v)
{
	const struct orecs *l = &r->oracle->git;

	for (size_t i = 0; i < l->n; i++)
		if (first_of(l, i))
			verify_repo(r, st, fs, root, l->v[i].a, v);
}

/* ---- the real fsck.arbor and arborfs --------------------------------------------------- */

static void find_program(char *out, size_t len, const char *argv0, const char *rel)
{
	const char *top = getenv("top_builddir");
	char *self = strdup(argv0);

	if (top && *top)
		snprintf(out, len, "%s/%s", top, rel);
	else if (self && strchr(argv0, '/'))
		/* tests/crash/crashcheck: the build tree is two levels up */
		snprintf(out, len, "%s/../../%s", dirname(self), rel);
	else
		snprintf(out, len, "%s", rel);
	free(self);
}

void real_tools_find(struct real_tools *t, const char *argv0, const char *name)
{
	find_program(t->fsck, sizeof(t->fsck), argv0, "fsck/fsck.arbor");
	find_program(t->arborfs, sizeof(t->arborfs), argv0, "fuse/arborfs");
	t->can_mount = geteuid() == 0 && access("/dev/fuse", R_OK | W_OK) == 0;
	if (!t->can_mount)
		printf("crashcheck: %s: note: not root or no /dev/fuse: --tools-every runs "
		       "fsck.arbor only, without mounting\n",
		       name);
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

int image_write(struct arb_dev *dev, const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	uint8_t *buf = malloc(COPY_CHUNK);
	int err = fd < 0 ? -errno : buf ? 0 : -ENOMEM;

	for (uint64_t off = 0; !err && off < dev->size; off += COPY_CHUNK) {
		size_t n = dev->size - off < COPY_CHUNK ? (size_t)(dev->size - off) : COPY_CHUNK;

		err = arb_dev_read(dev, buf, n, off);
		/* keep the file sparse: the images are mostly empty */
		if (!err && !all_zero(buf, n) && pwrite(fd, buf, n, (off_t)off) != (ssize_t)n)
			err = -EIO;
	}
	if (!err && ftruncate(fd, (off_t)dev->size) < 0)
		err = -errno;
	free(buf);
	if (fd >= 0 && close(fd) < 0 && !err)
		err = -EIO;
	return err;
}

static void real_fsck(const struct real_tools *t, const char *img, struct verdict *v)
{
	char *argv[] = {(char *)t->fsck, "-n", (char *)img, NULL};
	char out[TOOL_OUT];
	int status = tool_run(argv, out, sizeof(out));

	if (status != 0)
		verdict_fail(v, "fsck.arbor -n: exit %d: %s", status, first_line(out));
}

/* A sample of the declared paths, read by the kernel through arborfs. */
static void read_through_mount(const struct run *r, const struct state *st, const char *mnt,
                               struct verdict *v)
{
	size_t n = r->oracle->npaths, step = n > REAL_MOUNT_PATHS ? n / REAL_MOUNT_PATHS : 1;
	struct host_reader h;

	host_reader_init(&h, mnt);
	for (size_t i = 0; i < n; i += step)
		verify_path(r, st, &h.rd, &r->oracle->paths[i], v);
}

static void real_mount(const struct run *r, const struct state *st, const struct real_tools *t,
                       const char *img, const char *mnt, struct verdict *v)
{
	char *mount[] = {(char *)t->arborfs, (char *)img, (char *)mnt, NULL};
	char *umount[] = {"fusermount3", "-u", (char *)mnt, NULL};
	char out[TOOL_OUT];
	int status;

	if (mkdir(mnt, 0755) < 0) {
		verdict_fail(v, "arborfs: cannot make the mount point: %s", strerror(errno));
		return;
	}
	status = tool_run(mount, out, sizeof(out));
	if (status != 0) {
		verdict_fail(v, "arborfs: the image does not mount: exit %d: %s", status,
		             first_line(out));
		return;
	}
	read_through_mount(r, st, mnt, v);
	if (tool_run(umount, out, sizeof(out)) != 0) {
		char *lazy[] = {"umount", "-l", (char *)mnt, NULL};

		verdict_fail(v, "fusermount3 -u: %s", first_line(out));
		tool_run(lazy, out, sizeof(out));
	}
}

void verify_real_tools(const struct run *r, const struct state *st, const struct real_tools *t,
                       struct arb_dev *img, struct verdict *v)
{
	char dir[PATH_MAX], file[PATH_MAX], mnt[PATH_MAX];
	int err;

	if (tmpdir_make(dir, sizeof(dir), "tools")) {
		verdict_fail(v, "cannot make a temporary directory");
		return;
	}
	err = fmt_path(file, sizeof(file), "%s/crash.img", dir);
	if (!err)
		err = fmt_path(mnt, sizeof(mnt), "%s/mnt", dir);
	if (!err)
		err = image_write(img, file);
	if (err) {
		verdict_fail(v, "writing the image for the real tools: %s", strerror(-err));
	} else {
		real_fsck(t, file, v);
		if (t->can_mount)
			real_mount(r, st, t, file, mnt, v);
	}
	tmpdir_remove(dir);
}
