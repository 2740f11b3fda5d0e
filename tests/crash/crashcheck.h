/* SPDX-License-Identifier: MIT */
/*
 * crashcheck.h - the parts of the crash checker (crashcheck.c): the oracle
 * (crashcheck_oracle.c), the checks of one crash state against it
 * (crashcheck_verify.c) and the outside programs it runs: sqlite3, git,
 * fsck.arbor and arborfs (crashcheck_tools.c).  See oracle.h for the
 * contract with the workloads.
 */
#ifndef ARBOR_TESTS_CRASHCHECK_H
#define ARBOR_TESTS_CRASHCHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arbor/io.h"
#include "arbor/recdev.h"
#include "arbor/vfs.h"

/* ---- the oracle (crashcheck_oracle.c) ------------------------------------------------ */

struct hole {
	uint64_t off, len;
};

/* One V or A of a path: a state it may be in from pos on. */
struct decl {
	uint64_t pos;
	size_t line; /* in the oracle file: orders records of one position */
	bool absent; /* A */
	uint64_t seed, size;
	struct hole *holes;
	size_t nholes;
};

/* A D record: its position, and how many declarations of the path came
 * before it in the file (the state it promises is the last of those; file
 * order, not position, also settles a declaration at the same position). */
struct durable {
	uint64_t pos;
	size_t ndecls;
	size_t line;
};

struct opath {
	char *path;
	struct decl *decls; /* in log order */
	size_t ndecls;
	struct durable *ds; /* D records */
	size_t nd;
	uint64_t xpos; /* first X; UINT64_MAX: none */
};

/* L, T, Q/q and G records: a position, one or two names, a number. */
struct orec {
	uint64_t pos;
	size_t line;
	char *a, *b;
	uint64_t n;
	bool done; /* Q (a COMMIT returned), not q (about to start) */
};

struct orecs {
	struct orec *v;
	size_t n, cap;
};

struct oracle {
	struct opath *paths; /* sorted by path */
	size_t npaths;
	struct orecs links, snaps, sqlite, git;
};

/* Read ORACLE; 0, or -1 after printing why. */
int oracle_load(const char *file, struct oracle *o);
void oracle_free(struct oracle *o);
struct opath *oracle_path(const struct oracle *o, const char *path);

/* ---- a crash state ------------------------------------------------------------------- */

struct state {
	size_t cut;     /* a power cut before event cut */
	uint64_t seed;  /* non-zero: the unflushed writes as a random subset */
	size_t held;    /* events [0, held) are surely in the image */
	uint64_t pos;   /* log offset where the last event it holds ends */
	bool reordered; /* seeded */
};

/* Everything the checks of one state need to know about the run. */
struct run {
	const struct oracle *oracle;
	const struct arb_replay_info *info;
	size_t *flush_ev; /* event index of every flush, ascending */
	size_t nflush;
};

/* Does the state hold the flush an fsync whose record is at pos waited for? */
bool state_covers(const struct run *r, const struct state *st, uint64_t pos);

/* Why a state failed: the first problem, and how many there were. */
struct verdict {
	char reason[1024];
	unsigned problems;
};

void verdict_fail(struct verdict *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- reading a crash state (crashcheck_verify.c) --------------------------------------- */

struct node_info {
	bool exists;
	bool is_reg, is_dir;
	uint64_t ino, size;
};

/* How the checks see a filesystem: in process through the vfs, or through
 * a real mount (the host's system calls). */
struct reader {
	/* 0 (absent: exists false), or a negative errno */
	int (*stat)(struct reader *rd, const char *path, struct node_info *ni);
	int (*read)(struct reader *rd, const char *path, const struct node_info *ni, uint64_t off,
	            void *buf, size_t len, size_t *got);
};

struct vfs_reader {
	struct reader rd;
	struct arb_fs *fs;
	arb_ino_t root;
};

void vfs_reader_init(struct vfs_reader *v, struct arb_fs *fs, arb_ino_t root);

struct host_reader {
	struct reader rd;
	const char *top; /* the mount point */
};

void host_reader_init(struct host_reader *h, const char *top);

/* Check one declared path against what the oracle allows. */
void verify_path(const struct run *r, const struct state *st, struct reader *rd,
                 const struct opath *p, struct verdict *v);
/* Every path, hard link and snapshot of the oracle. */
void verify_namespace(const struct run *r, const struct state *st, struct reader *rd,
                      struct verdict *v);

/* ---- outside programs (crashcheck_tools.c) -------------------------------------------- */

/* Run argv (PATH searched), its stdout and stderr into out (NUL-ended,
 * truncated to len); returns the exit status, or -1 when it did not run
 * or was killed. */
int tool_run(char *const argv[], char *out, size_t len);

/* A fresh temporary directory (under $TMPDIR or /tmp), and its removal. */
int tmpdir_make(char *buf, size_t len, const char *what);
void tmpdir_remove(const char *dir);

/* Copy the file or directory tree at path of the crash state to host; 0,
 * -ENOENT when absent, or another negative errno. */
int copy_out(struct arb_fs *fs, arb_ino_t root, const char *path, const char *host);

/* Q/q and G records: SQLite and git work on copies taken out of fs. */
void verify_sqlite(const struct run *r, const struct state *st, struct arb_fs *fs, arb_ino_t root,
                   struct verdict *v);
void verify_git(const struct run *r, const struct state *st, struct arb_fs *fs, arb_ino_t root,
                struct verdict *v);

/* --tools-every: the image through the real fsck.arbor -n and arborfs. */
struct real_tools {
	char fsck[4096], arborfs[4096];
	bool can_mount; /* root and /dev/fuse */
};

/* Find the programs ($top_builddir, else next to argv0); prints a note
 * when mounting is not possible. */
void real_tools_find(struct real_tools *t, const char *argv0, const char *name);
/* Write dev to a new file at path (sparse). */
int image_write(struct arb_dev *dev, const char *path);
void verify_real_tools(const struct run *r, const struct state *st, const struct real_tools *t,
                       struct arb_dev *img, struct verdict *v);

#endif
