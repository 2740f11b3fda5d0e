/* SPDX-License-Identifier: MIT */
/*
 * cli.h - the arbor admin tool: command table, shared helpers.
 *
 * Commands are described by struct cmd_struct (btrfs-progs style): a token,
 * a handler, and a usage string array that drives --help.  The array holds
 * one or more synopsis lines, "", a one-line description, "", then free text
 * and OPTLINE() entries, terminated by NULL.
 *
 * Handlers return an exit status: CLI_EXIT_OK, CLI_EXIT_ERROR (something
 * failed at run time) or CLI_EXIT_USAGE (the command line is wrong).
 */
#ifndef ARBOR_CLI_H
#define ARBOR_CLI_H

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "arbor/btree.h"
#include "arbor/fs.h"
#include "arbor/vfs.h"
#include "arbor_format.h"

#define CLI_EXIT_OK 0
#define CLI_EXIT_ERROR 1
#define CLI_EXIT_USAGE 2

/* One option in a usage array: the option, then its description. */
#define OPTLINE(opt, text) "    " opt "\n            " text

struct cmd_group;
struct cmd_struct;

typedef int (*cmd_fn)(const struct cmd_struct *cmd, int argc, char **argv);

struct cmd_struct {
	const char *token;
	cmd_fn fn;                    /* NULL for a group */
	const char *const *usagestr;  /* see above */
	const struct cmd_group *next; /* sub-commands, or NULL */
	unsigned int flags;           /* CMD_* */
};

/* The command works on the image given with -i. */
#define CMD_IMAGE 0x1

struct cmd_group {
	const char *const *usagestr;
	const struct cmd_struct *const *commands; /* NULL-terminated */
};

extern const struct cmd_struct cmd_struct_inspect;
/* inspect replay (replay.c): no image, works on a recording */
extern const struct cmd_struct cmd_struct_inspect_replay;
extern const struct cmd_struct cmd_struct_engine;
/* files in the filesystem: files.c, names.c, xattr.c */
extern const struct cmd_struct cmd_struct_ls;
extern const struct cmd_struct cmd_struct_stat;
extern const struct cmd_struct cmd_struct_readlink;
extern const struct cmd_struct cmd_struct_cat;
extern const struct cmd_struct cmd_struct_get;
extern const struct cmd_struct cmd_struct_put;
extern const struct cmd_struct cmd_struct_truncate;
extern const struct cmd_struct cmd_struct_mkdir;
extern const struct cmd_struct cmd_struct_mknod;
extern const struct cmd_struct cmd_struct_rm;
extern const struct cmd_struct cmd_struct_rmdir;
extern const struct cmd_struct cmd_struct_ln;
extern const struct cmd_struct cmd_struct_mv;
extern const struct cmd_struct cmd_struct_xattr;
/* subvolumes and snapshots: subvol.c */
extern const struct cmd_struct cmd_struct_subvolume;
extern const struct cmd_struct cmd_struct_snapshot;
/* diff.c, rollback.c */
extern const struct cmd_struct cmd_struct_diff;
extern const struct cmd_struct cmd_struct_rollback;

/* Global options (before the command). */
struct cli_globals {
	const char *image; /* -i */
	int verbose;       /* -v, repeatable */
};
extern struct cli_globals cli_globals;

/* ---- messages and usage (arbor.c) ------------------------------------ */

void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cli_warning(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print the synopsis (and with full, the whole help text) of a command. */
void cli_usage(const struct cmd_struct *cmd, bool full, FILE *out);
/* Print an error, the synopsis, and return CLI_EXIT_USAGE. */
int cli_usage_error(const struct cmd_struct *cmd, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

/*
 * getopt_long for a command: optstring and longopts as for getopt_long
 * (longopts may be NULL).  --help prints the help and exits 0; an unknown
 * option or a missing argument is a usage error (exit 2).  Call in a loop
 * until it returns -1, then use optind.
 */
int cli_getopt(const struct cmd_struct *cmd, int argc, char **argv, const char *optstring,
               const struct option *longopts);
/* For commands whose options are flags without arguments (flags: their
 * letters, longopts may name them too): returns the set given, bit i for
 * flags[i]; then use optind. */
unsigned int cli_flags(const struct cmd_struct *cmd, int argc, char **argv, const char *flags,
                       const struct option *longopts);
/* Exit 2 unless the command got between min and max positional arguments. */
void cli_check_argc(const struct cmd_struct *cmd, int nargs, int min, int max);
/* For commands without options: handle --help, reject anything else that
 * looks like an option, cli_check_argc(); returns the number of arguments,
 * argv[optind..]. */
int cli_no_options(const struct cmd_struct *cmd, int argc, char **argv, int min, int max);

/* ---- arguments (arbor.c): invalid ones exit 2 ------------------------------ */

/* Exit 2 with "invalid WHAT 'ARG'" and the synopsis when err is non-zero. */
void cli_check_arg(const struct cmd_struct *cmd, int err, const char *what, const char *arg);
/* A tree id (see cli_parse_tree_id). */
void cli_arg_tree(const struct cmd_struct *cmd, const char *arg, uint64_t *ret);
/* A key: args[0..2] are OBJECTID TYPE OFFSET. */
void cli_arg_key(const struct cmd_struct *cmd, char **args, struct arb_key *ret);

/* ---- parsing (arbor.c); 0 or -EINVAL / -ERANGE -------------------------- */

#include "parse.h" /* cli_parse_u64, cli_parse_size */
/* A tree id: a number, "root" or "space". */
int cli_parse_tree_id(const char *s, uint64_t *ret);
/* A key type: a number 0..255 or a name as printed by cli_key_type_name. */
int cli_parse_key_type(const char *s, uint8_t *ret);
/* Name of a key type ("ROOT_ITEM", ... or the number); buf of >= 16 bytes. */
const char *cli_key_type_name(uint8_t type, char *buf, size_t len);

/* ---- the image (arbor.c) -------------------------------------------- */

/* The core's message callback of the tool: errors and warnings on stderr,
 * info with -v, debug with -vv. */
void cli_msg(void *ctx, enum arb_msg_level level, const char *text);
/* SOURCE_DATE_EPOCH, or 0 when unset (a warning when malformed): offline
 * commands use it as the time of every change and commit (reproducible
 * images). */
uint64_t cli_source_date_epoch(void);

struct cli_fs {
	struct arb_dev *dev;
	struct arb_fs *fs;
};

typedef int (*cli_dev_fn)(struct arb_dev *dev, void *arg);
typedef int (*cli_fs_fn)(struct cli_fs *cfs, void *arg);

/*
 * Open the -i image (ARB_DEV_EXCL, plus ARB_DEV_RDONLY when rdonly), call
 * fn, close.  Returns CLI_EXIT_OK if fn returned >= 0, else CLI_EXIT_ERROR.
 * Errors are printed where they are met: here (the image does not open)
 * or by fn.
 */
int cli_with_dev(bool rdonly, cli_dev_fn fn, void *arg);
/* The same with the filesystem on the image opened too (core messages on
 * stderr); read-write, a successful fn is followed by a commit. */
int cli_with_fs(bool rdonly, cli_fs_fn fn, void *arg);
/* Open the filesystem on dev read-only just to read its state; returns
 * arb_open()'s result, unprinted (core messages are). */
int cli_fs_info_of(struct arb_dev *dev, struct arb_fs_info *info);
/* Commit the running transaction; prints the error. */
int cli_commit(struct cli_fs *cfs);
/* Print "error: what: strerror" (plus the failed-state reason if any). */
void cli_report(const struct cli_fs *cfs, const char *what, int err);
/* Returns ret; when it is an error prints it: -ENOENT as `missing` (unless
 * NULL), any other as cli_report(what). */
int cli_result(const struct cli_fs *cfs, int ret, const char *missing, const char *what);
/* cli_result() of an operation on tree id: -ENOENT is "no tree ID". */
int cli_tree_result(const struct cli_fs *cfs, uint64_t id, int ret, const char *what);
/* Get a tree handle; prints the error. */
int cli_get_tree(struct cli_fs *cfs, uint64_t id, struct arb_tree **ret_tree);

/* ---- shared decoding (inspect.c) ------------------------------------- */

/* A ROOT_ITEM converted to host byte order. */
struct cli_root_info {
	uint64_t id;
	uint64_t bytenr, generation, csum;
	uint8_t level;
	uint64_t last_snapshot, flags, create_gen, ctime_sec, parent_id;
	uint32_t ctime_nsec;
	uint8_t uuid[16], parent_uuid[16];
};
/* -EUCLEAN if the item is too short. */
int cli_decode_root_item(uint64_t id, const void *data, uint32_t len, struct cli_root_info *ret);

typedef int (*cli_root_fn)(void *ctx, const struct cli_root_info *ri);
/* Call fn for every ROOT_ITEM of the root tree, in key order; stops at a
 * non-zero return of fn and returns it. */
int cli_for_each_root(struct cli_fs *cfs, cli_root_fn fn, void *ctx);

void cli_print_uuid(const uint8_t uuid[16], char out[37]);
/* Hex and ASCII, 16 bytes a line, each line prefixed by indent. */
void cli_hexdump(const void *data, uint32_t len, const char *indent);
/* A value (item data, xattr): printable bytes as a line of text, anything
 * else, or everything when hex, as cli_hexdump(). */
void cli_print_value(const void *data, uint32_t len, bool hex);

/* ---- files in the filesystem (fspath.c) ------------------------------- */

/*
 * The file commands work on the default subvolume, whose root directory is
 * "/".  Paths are absolute; "." and ".." are resolved by name, and no
 * symbolic link is followed.
 */
struct cli_vfs {
	struct cli_fs *cfs;
	struct arb_fs *fs;
	arb_ino_t root;
	struct arb_cred cred; /* owner of what the command creates: the caller */
	uint32_t umask;       /* the caller's, applied to new inodes */
};

typedef int (*cli_vfs_fn)(struct cli_vfs *v, void *arg);

/* cli_with_fs() with the root directory found (and on a read-write open,
 * orphans freed) before fn runs. */
int cli_with_vfs(bool rdonly, cli_vfs_fn fn, void *arg);
/* Exit 2 unless arg is an absolute path. */
void cli_arg_path(const struct cmd_struct *cmd, const char *arg);
/* After the options: exit 2 unless the one argument left is an absolute
 * path; returns it. */
const char *cli_path_arg(const struct cmd_struct *cmd, int argc, char **argv);
/* A command taking PATH and no options: fn gets the path as its arg. */
int cli_run_on_path(const struct cmd_struct *cmd, int argc, char **argv, bool rdonly,
                    cli_vfs_fn fn);
/* Print "error: path: strerror" when ret < 0; returns ret. */
int cli_path_result(const struct cli_vfs *v, const char *path, int ret);

/* A node found by path. */
struct cli_node {
	arb_ino_t dir; /* the directory holding it (for the root: the root) */
	struct arb_stat st;
};
/* Look a path up.  Errors (negative errno) are not printed. */
int cli_vfs_resolve(struct cli_vfs *v, const char *path, struct cli_node *ret);
/* The same, creating missing directories on the way (mkdir -p). */
int cli_vfs_mkdirs(struct cli_vfs *v, const char *path, struct cli_node *ret);

/* Where a path is or would be: its directory and its name. */
struct cli_place {
	arb_ino_t dir;
	char name[ARB_NAME_MAX + 1]; /* "" for the root */
};
/* The directory must exist: -ENOENT, -ENOTDIR otherwise. */
int cli_vfs_place(struct cli_vfs *v, const char *path, struct cli_place *ret);
/* As cp, mv and ln: path's place, or when path is a directory and name is
 * not NULL, name inside it. */
int cli_vfs_target(struct cli_vfs *v, const char *path, const char *name, struct cli_place *ret);
/* Look a place up: -ENOENT when it does not exist (the root always does). */
int cli_vfs_lookup(struct cli_vfs *v, const struct cli_place *pl, struct arb_stat *st);

/* The entries of a directory, in readdir order. */
struct cli_dirent {
	char *name;
	arb_ino_t ino;
	unsigned dtype;     /* DT_* */
	struct arb_stat st; /* zero: filled by the caller if needed */
};
struct cli_dirlist {
	struct cli_dirent *ents;
	size_t count, cap;
};
/* Read every entry of dir; the list is freed with cli_dirlist_free(). */
int cli_vfs_list(struct cli_vfs *v, arb_ino_t dir, struct cli_dirlist *ret);
/* Append an entry (a copy of name). */
int cli_dirlist_add(struct cli_dirlist *l, const char *name, size_t len, arb_ino_t ino,
                    unsigned dtype);
void cli_dirlist_free(struct cli_dirlist *l);

/* "drwxr-xr-x": the type letter and permissions as ls -l; buf >= 11 bytes. */
const char *cli_mode_string(uint32_t mode, char *buf);
/* Local time as "2026-01-31 12:00" or, with nsec, as stat(1) prints it:
 * "2026-01-31 12:00:00.123456789 +0000"; buf >= 64 bytes. */
const char *cli_time_string(const struct timespec *ts, bool nsec, char *buf, size_t len);

#endif /* ARBOR_CLI_H */
