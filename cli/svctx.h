/* SPDX-License-Identifier: MIT */
/*
 * svctx.h - the two ways the subvolume commands (subvol.c, diff.c,
 * rollback.c) reach a filesystem.  Offline (-i IMAGE), paths are absolute
 * paths in the image's default subvolume, the work is done through the
 * core API, and one commit at the end makes it durable (a command that
 * fails commits nothing).  Online (no -i), paths are ordinary paths on a
 * mounted arborfs, and the daemon does the work: the ioctls of
 * arbor/ioctl.h on a directory of the mount.  The commands are written
 * once, against struct sv_ops; svctx.c implements it twice.
 */
#ifndef ARBOR_CLI_SVCTX_H
#define ARBOR_CLI_SVCTX_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cli.h"

enum sv_format { SV_TEXT, SV_JSON };

/* What a command was doing when it failed: chooses the error message. */
enum sv_verb {
	SV_CREATE,   /* create: PATH */
	SV_SNAPSHOT, /* snapshot: the new name */
	SV_SUBVOL,   /* a path that must be a subvolume (source, show, set-default) */
	SV_DELETE,   /* delete: PATH */
	SV_QUERY,    /* list, get-default, set-default: the filesystem as a whole */
};

/* ---- the subvolume table ------------------------------------------------ */

struct sv_ent {
	struct arb_subvol sv;
	bool mounted; /* online: the subvolume the mount shows at its root */
	int state;    /* of path: 0 to do, 1 being found, 2 done */
	char *path;   /* from the top level ("/", "/a/b"); NULL: not known */
};

struct sv_table {
	struct sv_ent *ents; /* by id, as both backends list them */
	size_t count, cap;
};

int sv_table_add(struct sv_table *t, const struct arb_subvol *sv, bool mounted);
void sv_table_free(struct sv_table *t);
struct sv_ent *sv_table_find(const struct sv_table *t, uint64_t id);

/* ---- the backends' interface ---------------------------------------------- */

struct sv_ctx;

/* Every call returns 0 or a negative errno and prints nothing. */
struct sv_ops {
	/* the subvolume whose root directory path is: -ENOTTY for anything else */
	int (*subvol_at)(struct sv_ctx *c, const char *path, uint64_t *ret_id);
	/* 1 if path is a directory, 0 if it is something else or nothing */
	int (*is_dir)(struct sv_ctx *c, const char *path);
	/* path exists (list and set-default name the filesystem by one) */
	int (*exists)(struct sv_ctx *c, const char *path);
	int (*create)(struct sv_ctx *c, const char *path, uint32_t perm, uint64_t *ret_id);
	int (*snapshot)(struct sv_ctx *c, uint64_t src, const char *path, bool rdonly,
	                uint64_t *ret_id);
	/* the subvolume linked as path: its id in *ret_id (0 if not known) */
	int (*destroy)(struct sv_ctx *c, const char *path, uint64_t *ret_id);
	int (*set_default)(struct sv_ctx *c, uint64_t id);
	/* every subvolume, by id */
	int (*list)(struct sv_ctx *c, struct sv_table *t);
	/* directory dirid of subvolume id, relative to its root ("" for the
	 * root, "a/b"): malloc'ed; -ENOENT when it cannot be found */
	int (*dir_path)(struct sv_ctx *c, uint64_t id, uint64_t dirid, char **ret);
	int (*usage)(struct sv_ctx *c, uint64_t id, struct arb_subvol_usage *u);
	/* arb_vfs_diff(): fn is called only once the whole listing is known */
	int (*diff)(struct sv_ctx *c, uint64_t a, uint64_t b, arb_vfs_diff_fn fn, void *ctx,
	            uint64_t *ret_nodes_read);
	/* arb_vfs_rollback() of the subvolume linked as path; keep_name (a
	 * name in the same directory) or NULL; the new and the old id */
	int (*rollback)(struct sv_ctx *c, const char *path, uint64_t snap, const char *keep_name,
	                uint64_t *ret_id, uint64_t *ret_old_id);
	/* deleted subvolumes are freed (and that is committed) */
	int (*wait_cleaned)(struct sv_ctx *c);
};

/* A directory the online search found. */
struct sv_found {
	uint64_t ino;
	char *rel; /* from the mount point; NULL: still wanted */
};

struct sv_ctx {
	const struct sv_ops *ops;
	bool online;
	struct cli_vfs *v; /* offline */
	/* online */
	const char *shown; /* the path the mount was found by, for messages */
	int fd;            /* a directory of the mount: list, info, set-default */
	dev_t dev;
	char *mnt; /* the mount point */
	struct sv_found *found;
	size_t nfound, missing;
	bool scanned;
	struct sv_table *table; /* the one being given paths */
};

/* ---- running a command in either mode ---------------------------------------- */

typedef int (*sv_fn)(struct sv_ctx *c, void *arg);

/* Online, which path finds the mount. */
enum sv_anchor {
	AT_PATH,   /* the path given */
	AT_PARENT, /* the directory holding it (a new name) */
	AT_LINK,   /* the path, or its directory if it does not exist */
};

/* Run fn: offline in one transaction (read-only when rdonly), or online on
 * the mount found by path (how: see sv_anchor; verb: what failure messages
 * say); an exit status. */
int sv_run(sv_fn fn, void *arg, bool rdonly, const char *path, enum sv_anchor how,
           enum sv_verb verb);

/* ---- messages ------------------------------------------------------------------ */

/* Print why what failed on path, saying what to do when there is
 * something to do; returns err. */
int sv_fail(const struct sv_ctx *c, enum sv_verb verb, const char *path, int err);
/* The same for the other commands: fmt (one %s, the path) when it is not
 * NULL, else "error: WHAT: strerror" with what printed from what_fmt. */
int sv_fail_fmt(const struct sv_ctx *c, const char *fmt, const char *what_fmt, const char *path,
                int err);

/* ---- helpers ---------------------------------------------------------------------- */

/* a/b, with one '/' between non-empty parts; NULL when out of memory */
char *sv_path_join(const char *a, const char *b);
/* The directory part of path ("." when there is none) and its last name,
 * malloc'ed; a path ending in "." or ".." is made canonical first (on the
 * host: online only), so that it has a real last name.  The name is ""
 * for "/". */
int sv_split_path(const char *path, char **ret_dir, char **ret_name);
/* A JSON string; bytes that are not UTF-8 as \u00XX. */
void sv_json_string(const char *s);
/* --format FMT (long option value 'F') and -j: true when opt was one. */
bool sv_format_opt(const struct cmd_struct *cmd, int opt, enum sv_format *fmt);
#define SV_FORMAT_LONGOPT                                                                          \
	{                                                                                          \
		"format", required_argument, NULL, 'F'                                             \
	}

#endif
