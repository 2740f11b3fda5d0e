/* SPDX-License-Identifier: MIT */
/*
 * files.c - the file commands that read or write data and attributes:
 * ls, stat, readlink, cat, get, put, truncate.  Data moves in 1 MiB chunks
 * in both directions, so file sizes are bounded by the filesystem only.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "cli.h"

#include "arbor/vfs.h"

#define CHUNK_SIZE (1u << 20)
/* Symbolic link targets are shorter than this (arb_vfs_symlink). */
#define TARGET_MAX 4096u

/* ---- helpers -------------------------------------------------------------- */

/* Resolve path to a regular file; prints the error. */
static int regular_file(struct cli_vfs *v, const char *path, struct cli_node *n)
{
	int ret = cli_vfs_resolve(v, path, n);

	if (ret == 0 && S_ISDIR(n->st.mode))
		ret = -EISDIR;
	if (ret == 0 && !S_ISREG(n->st.mode)) {
		cli_error("%s: not a regular file", path);
		return -EINVAL;
	}
	return cli_path_result(v, path, ret);
}

/* A symbolic link's target, NUL-terminated; buf of TARGET_MAX + 1 bytes. */
static int read_target(struct cli_vfs *v, arb_ino_t ino, char *buf)
{
	size_t len = 0;
	int ret = arb_vfs_readlink(v->fs, ino, buf, TARGET_MAX, &len);

	buf[len < TARGET_MAX ? len : TARGET_MAX] = '\0';
	return ret;
}

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Read up to len bytes, fewer only at the end of the input. */
static ssize_t read_full(int fd, void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = read(fd, (char *)buf + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

static int vfs_write_all(struct cli_vfs *v, arb_ino_t ino, uint64_t off, const void *buf,
                         size_t len)
{
	const char *p = buf;

	while (len) {
		size_t n = 0;
		int ret = arb_vfs_write(v->fs, ino, off, p, len, &n);

		if (ret)
			return ret;
		if (!n)
			return -EIO;
		p += n;
		off += n;
		len -= n;
	}
	return 0;
}

static void *chunk_buffer(void)
{
	void *buf = malloc(CHUNK_SIZE);

	if (!buf)
		cli_error("out of memory");
	return buf;
}

/* ---- ls -------------------------------------------------------------------- */

struct ls_op {
	const char *path;
	bool lng, all;
};

/* Column widths of ls -l. */
struct ls_widths {
	int nlink, uid, gid, size;
};

/* The size column: the size, or "major, minor" for devices. */
static void size_field(const struct arb_stat *st, char *buf, size_t len)
{
	if (S_ISCHR(st->mode) || S_ISBLK(st->mode))
		snprintf(buf, len, "%u, %u", major(st->rdev), minor(st->rdev));
	else
		snprintf(buf, len, "%" PRIu64, st->size);
}

static int max_width(int w, uint64_t v)
{
	int n = snprintf(NULL, 0, "%" PRIu64, v);

	return n > w ? n : w;
}

static void measure(const struct cli_dirlist *l, struct ls_widths *w)
{
	char size[48];

	memset(w, 0, sizeof(*w));
	for (size_t i = 0; i < l->count; i++) {
		const struct arb_stat *st = &l->ents[i].st;
		int n;

		w->nlink = max_width(w->nlink, st->nlink);
		w->uid = max_width(w->uid, st->uid);
		w->gid = max_width(w->gid, st->gid);
		size_field(st, size, sizeof(size));
		n = (int)strlen(size);
		w->size = n > w->size ? n : w->size;
	}
}

static int print_long(struct cli_vfs *v, const struct cli_dirent *e, const struct ls_widths *w)
{
	char mode[11], size[48], when[64];
	const struct arb_stat *st = &e->st;

	size_field(st, size, sizeof(size));
	printf("%s %*" PRIu32 " %*" PRIu32 " %*" PRIu32 " %*s %s %s",
	       cli_mode_string(st->mode, mode), w->nlink, st->nlink, w->uid, st->uid, w->gid,
	       st->gid, w->size, size, cli_time_string(&st->mtime, false, when, sizeof(when)),
	       e->name);
	if (S_ISLNK(st->mode)) {
		char target[TARGET_MAX + 1];
		int ret = read_target(v, st->ino, target);

		if (ret)
			return ret;
		printf(" -> %s", target);
	}
	putchar('\n');
	return 0;
}

static int by_name(const void *a, const void *b)
{
	const struct cli_dirent *x = a, *y = b;

	return strcmp(x->name, y->name);
}

static int print_list(struct cli_vfs *v, struct cli_dirlist *l, bool lng)
{
	struct ls_widths w;
	int ret = 0;

	if (l->count > 1)
		qsort(l->ents, l->count, sizeof(l->ents[0]), by_name);
	measure(l, &w);
	for (size_t i = 0; i < l->count && !ret; i++) {
		if (lng)
			ret = print_long(v, &l->ents[i], &w);
		else
			puts(l->ents[i].name);
	}
	return ret;
}

static int stat_all(struct cli_vfs *v, struct cli_dirlist *l)
{
	int ret = 0;

	for (size_t i = 0; i < l->count && !ret; i++)
		ret = arb_vfs_getattr(v->fs, l->ents[i].ino, &l->ents[i].st);
	return ret;
}

/* The entries to show of node n: a directory's, or n itself. */
static int ls_collect(struct cli_vfs *v, const struct ls_op *op, const struct cli_node *n,
                      struct cli_dirlist *l)
{
	int ret;

	if (!S_ISDIR(n->st.mode)) {
		memset(l, 0, sizeof(*l));
		return cli_dirlist_add(l, op->path, strlen(op->path), n->st.ino, 0);
	}
	ret = cli_vfs_list(v, n->st.ino, l);
	if (ret || !op->all)
		return ret;
	ret = cli_dirlist_add(l, ".", 1, n->st.ino, DT_DIR);
	if (!ret)
		ret = cli_dirlist_add(l, "..", 2, n->dir, DT_DIR);
	return ret;
}

static int do_ls(struct cli_vfs *v, void *arg)
{
	const struct ls_op *op = arg;
	struct cli_dirlist l = {NULL, 0, 0};
	struct cli_node n;
	int ret = cli_vfs_resolve(v, op->path, &n);

	if (!ret)
		ret = ls_collect(v, op, &n, &l);
	if (!ret && op->lng)
		ret = stat_all(v, &l);
	if (!ret)
		ret = print_list(v, &l, op->lng);
	cli_dirlist_free(&l);
	return cli_path_result(v, op->path, ret);
}

static int cmd_ls(const struct cmd_struct *cmd, int argc, char **argv)
{
	struct ls_op op = {"/", false, false};
	unsigned int flags = cli_flags(cmd, argc, argv, "la", NULL);

	op.lng = flags & 1;
	op.all = flags & 2;
	cli_check_argc(cmd, argc - optind, 0, 1);
	if (optind < argc)
		op.path = argv[optind];
	cli_arg_path(cmd, op.path);
	return cli_with_vfs(true, do_ls, &op);
}

static const char *const cmd_ls_usage[] = {
        "arbor -i IMAGE ls [-l] [-a] [PATH]",
        "",
        "List a directory (default: /), sorted by name, or show a single file.",
        "",
        "Every name is listed, those starting with a dot too.",
        "",
        OPTLINE("-l", "long format: mode, links, uid, gid, size, mtime, name, link target"),
        OPTLINE("-a", "list . and .. as well"),
        NULL,
};

const struct cmd_struct cmd_struct_ls = {"ls", cmd_ls, cmd_ls_usage, NULL, CMD_IMAGE};

/* ---- stat ------------------------------------------------------------------ */

static const char *type_name(uint32_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG:
		return "regular file";
	case S_IFDIR:
		return "directory";
	case S_IFLNK:
		return "symbolic link";
	case S_IFCHR:
		return "character device";
	case S_IFBLK:
		return "block device";
	case S_IFIFO:
		return "fifo";
	case S_IFSOCK:
		return "socket";
	default:
		return "unknown";
	}
}

static void print_time(const char *name, const struct timespec *ts)
{
	char buf[64];

	printf("%-11s %s\n", name, cli_time_string(ts, true, buf, sizeof(buf)));
}

static void print_stat(const char *path, const struct arb_stat *st)
{
	char mode[11];

	printf("%-11s %s\n", "path", path);
	printf("%-11s %" PRIu64 " (subvolume %" PRIu64 ", local %" PRIu64 ")\n", "inode", st->ino,
	       arb_ino_subvol(st->ino), arb_ino_local(st->ino));
	printf("%-11s %s\n", "type", type_name(st->mode));
	printf("%-11s %04" PRIo32 " (%s)\n", "mode", st->mode & 07777,
	       cli_mode_string(st->mode, mode));
	printf("%-11s %" PRIu32 "\n", "links", st->nlink);
	printf("%-11s %" PRIu32 "\n", "uid", st->uid);
	printf("%-11s %" PRIu32 "\n", "gid", st->gid);
	printf("%-11s %" PRIu64 "\n", "size", st->size);
	printf("%-11s %" PRIu64 "\n", "blocks", st->blocks);
	printf("%-11s %" PRIu64 " (%u:%u)\n", "rdev", st->rdev, major(st->rdev), minor(st->rdev));
	print_time("atime", &st->atime);
	print_time("mtime", &st->mtime);
	print_time("ctime", &st->ctime);
	print_time("btime", &st->btime);
	printf("%-11s %" PRIu64 "\n", "generation", st->generation);
}

static int do_stat(struct cli_vfs *v, void *arg)
{
	const char *path = arg;
	struct cli_node n;
	int ret = cli_vfs_resolve(v, path, &n);

	if (!ret)
		print_stat(path, &n.st);
	return cli_path_result(v, path, ret);
}

static int cmd_stat(const struct cmd_struct *cmd, int argc, char **argv)
{
	return cli_run_on_path(cmd, argc, argv, true, do_stat);
}

static const char *const cmd_stat_usage[] = {
        "arbor -i IMAGE stat PATH",
        "",
        "Show every attribute of an inode.",
        "",
        "The inode number, type, mode, links, owner, size, 512-byte blocks,",
        "device number, the four times with nanoseconds, and the generation",
        "(the commit that created the inode).  Symbolic links are not followed.",
        NULL,
};

const struct cmd_struct cmd_struct_stat = {"stat", cmd_stat, cmd_stat_usage, NULL, CMD_IMAGE};

/* ---- readlink ----------------------------------------------------------------- */

static int do_readlink(struct cli_vfs *v, void *arg)
{
	const char *path = arg;
	char target[TARGET_MAX + 1];
	struct cli_node n;
	int ret = cli_vfs_resolve(v, path, &n);

	if (!ret && !S_ISLNK(n.st.mode)) {
		cli_error("%s: not a symbolic link", path);
		return -EINVAL;
	}
	if (!ret)
		ret = read_target(v, n.st.ino, target);
	if (!ret)
		puts(target);
	return cli_path_result(v, path, ret);
}

static int cmd_readlink(const struct cmd_struct *cmd, int argc, char **argv)
{
	return cli_run_on_path(cmd, argc, argv, true, do_readlink);
}

static const char *const cmd_readlink_usage[] = {
        "arbor -i IMAGE readlink PATH",
        "",
        "Print the target of a symbolic link.",
        NULL,
};

const struct cmd_struct cmd_struct_readlink = {"readlink", cmd_readlink, cmd_readlink_usage, NULL,
                                               CMD_IMAGE};

/* ---- cat, get ------------------------------------------------------------------ */

struct get_op {
	const char *path;
	const char *host; /* "-": standard output */
};

static int copy_out(struct cli_vfs *v, const struct get_op *op, arb_ino_t ino, int fd)
{
	void *buf = chunk_buffer();
	uint64_t off = 0;
	size_t n = 0;
	int ret = buf ? 0 : -ENOMEM;

	while (ret == 0) {
		ret = cli_path_result(v, op->path,
		                      arb_vfs_read(v->fs, ino, off, buf, CHUNK_SIZE, &n));
		if (ret || !n)
			break;
		ret = write_all(fd, buf, n);
		if (ret)
			cli_error("cannot write %s: %s", op->host, strerror(-ret));
		off += n;
	}
	free(buf);
	return ret;
}

static int close_host(int fd, const char *host)
{
	if (close(fd) == 0)
		return 0;
	cli_error("cannot write %s: %s", host, strerror(errno));
	return -errno;
}

static int do_get(struct cli_vfs *v, void *arg)
{
	const struct get_op *op = arg;
	struct cli_node n;
	int fd, ret = regular_file(v, op->path, &n);

	if (ret)
		return ret;
	if (!strcmp(op->host, "-"))
		return copy_out(v, op, n.st.ino, STDOUT_FILENO);
	fd = open(op->host, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, n.st.mode & 0777);
	if (fd < 0) {
		cli_error("cannot create %s: %s", op->host, strerror(errno));
		return -errno;
	}
	ret = copy_out(v, op, n.st.ino, fd);
	if (close_host(fd, op->host) && !ret)
		ret = -EIO;
	return ret;
}

static int cmd_cat(const struct cmd_struct *cmd, int argc, char **argv)
{
	struct get_op op = {NULL, "-"};

	cli_flags(cmd, argc, argv, "", NULL);
	op.path = cli_path_arg(cmd, argc, argv);
	return cli_with_vfs(true, do_get, &op);
}

static const char *const cmd_cat_usage[] = {
        "arbor -i IMAGE cat PATH",
        "",
        "Write the content of a regular file to standard output.",
        NULL,
};

const struct cmd_struct cmd_struct_cat = {"cat", cmd_cat, cmd_cat_usage, NULL, CMD_IMAGE};

static int cmd_get(const struct cmd_struct *cmd, int argc, char **argv)
{
	struct get_op op;

	cli_no_options(cmd, argc, argv, 2, 2);
	op.path = argv[optind];
	op.host = argv[optind + 1];
	cli_arg_path(cmd, op.path);
	return cli_with_vfs(true, do_get, &op);
}

static const char *const cmd_get_usage[] = {
        "arbor -i IMAGE get PATH HOSTFILE",
        "",
        "Copy a regular file out of the filesystem ('-': to standard output).",
        "",
        "HOSTFILE is created with the file's permissions (less the umask) or",
        "overwritten.",
        NULL,
};

const struct cmd_struct cmd_struct_get = {"get", cmd_get, cmd_get_usage, NULL, CMD_IMAGE};

/* ---- put ---------------------------------------------------------------------------- */

struct put_op {
	const char *host; /* "-": standard input */
	const char *path;
	bool preserve; /* -p */
	bool from_stdin;
	int fd;
	struct stat hst; /* of the host file (not from_stdin) */
};

/* Permissions of a new file: the host file's, as cp sets them. */
static uint32_t new_file_mode(const struct cli_vfs *v, const struct put_op *op)
{
	if (op->from_stdin)
		return 0666 & ~v->umask;
	if (op->preserve)
		return op->hst.st_mode & 07777;
	return op->hst.st_mode & 0777 & ~v->umask;
}

/* Create the file at pl, or empty the regular file there. */
static int open_target(struct cli_vfs *v, const struct put_op *op, const struct cli_place *pl,
                       struct arb_stat *st)
{
	struct arb_setattr sa = {.valid = ARB_SET_SIZE, .size = 0};
	int ret = cli_vfs_lookup(v, pl, st);

	if (ret == -ENOENT)
		return arb_vfs_mknod(v->fs, pl->dir, pl->name, S_IFREG | new_file_mode(v, op), 0,
		                     &v->cred, st);
	if (ret)
		return ret;
	if (S_ISDIR(st->mode))
		return -EISDIR;
	if (!S_ISREG(st->mode))
		return -EEXIST;
	if (op->preserve) {
		sa.valid |= ARB_SET_MODE;
		sa.mode = new_file_mode(v, op);
	}
	return arb_vfs_setattr(v->fs, st->ino, &sa, st);
}

static int copy_in(struct cli_vfs *v, const struct put_op *op, arb_ino_t ino)
{
	void *buf = chunk_buffer();
	uint64_t off = 0;
	int ret = buf ? 0 : -ENOMEM;

	while (ret == 0) {
		ssize_t n = read_full(op->fd, buf, CHUNK_SIZE);

		if (n <= 0) {
			if (n < 0)
				cli_error("cannot read %s: %s", op->host, strerror((int)-n));
			ret = (int)n;
			break;
		}
		ret = cli_path_result(v, op->path, vfs_write_all(v, ino, off, buf, (size_t)n));
		off += (uint64_t)n;
	}
	free(buf);
	return ret;
}

/* -p: the host file's owner and times. */
static int preserve_attrs(struct cli_vfs *v, const struct put_op *op, arb_ino_t ino)
{
	struct arb_setattr sa = {
	        .valid = ARB_SET_UID | ARB_SET_GID | ARB_SET_ATIME | ARB_SET_MTIME,
	        .uid = op->hst.st_uid,
	        .gid = op->hst.st_gid,
	        .atime = op->hst.st_atim,
	        .mtime = op->hst.st_mtim,
	};

	return cli_path_result(v, op->path, arb_vfs_setattr(v->fs, ino, &sa, NULL));
}

static int do_put(struct cli_vfs *v, void *arg)
{
	const struct put_op *op = arg;
	struct cli_place pl;
	struct arb_stat st;
	int ret = cli_vfs_target(v, op->path, op->from_stdin ? NULL : basename(op->host), &pl);

	if (!ret)
		ret = open_target(v, op, &pl, &st);
	if (cli_path_result(v, op->path, ret))
		return ret;
	ret = copy_in(v, op, st.ino);
	if (!ret && op->preserve)
		ret = preserve_attrs(v, op, st.ino);
	return ret;
}

/* Open the host file (before the image: a missing file changes nothing). */
static int open_host(struct put_op *op)
{
	if (op->from_stdin) {
		op->fd = STDIN_FILENO;
		return 0;
	}
	op->fd = open(op->host, O_RDONLY | O_CLOEXEC);
	if (op->fd < 0 || fstat(op->fd, &op->hst) < 0) {
		cli_error("cannot open %s: %s", op->host, strerror(errno));
		return -errno;
	}
	if (S_ISDIR(op->hst.st_mode)) {
		cli_error("cannot read %s: %s", op->host, strerror(EISDIR));
		return -EISDIR;
	}
	return 0;
}

static int cmd_put(const struct cmd_struct *cmd, int argc, char **argv)
{
	struct put_op op = {.fd = -1};
	int ret;

	op.preserve = cli_flags(cmd, argc, argv, "p", NULL);
	cli_check_argc(cmd, argc - optind, 2, 2);
	op.host = argv[optind];
	op.path = argv[optind + 1];
	op.from_stdin = !strcmp(op.host, "-");
	cli_arg_path(cmd, op.path);
	if (op.preserve && op.from_stdin)
		return cli_usage_error(cmd, "-p needs a host file, not standard input");
	ret = open_host(&op) ? CLI_EXIT_ERROR : cli_with_vfs(false, do_put, &op);
	if (op.fd > STDIN_FILENO)
		close(op.fd);
	return ret;
}

static const char *const cmd_put_usage[] = {
        "arbor -i IMAGE put [-p] HOSTFILE PATH",
        "",
        "Copy a host file into the filesystem ('-': from standard input).",
        "",
        "PATH is created, or the regular file there is overwritten; when PATH",
        "is a directory the file goes into it under the host file's name.  A",
        "new file gets the host file's permissions less the umask (0666 less",
        "the umask from standard input) and belongs to the caller.",
        "",
        OPTLINE("-p", "keep the host file's mode, owner, group, mtime and atime"),
        NULL,
};

const struct cmd_struct cmd_struct_put = {"put", cmd_put, cmd_put_usage, NULL, CMD_IMAGE};

/* ---- truncate ------------------------------------------------------------------- */

struct truncate_op {
	const char *path;
	uint64_t size;
};

static int do_truncate(struct cli_vfs *v, void *arg)
{
	const struct truncate_op *op = arg;
	struct arb_setattr sa = {.valid = ARB_SET_SIZE, .size = op->size};
	struct cli_node n;
	int ret = regular_file(v, op->path, &n);

	if (ret)
		return ret;
	return cli_path_result(v, op->path, arb_vfs_setattr(v->fs, n.st.ino, &sa, NULL));
}

static int cmd_truncate(const struct cmd_struct *cmd, int argc, char **argv)
{
	struct truncate_op op = {NULL, 0};
	bool sized = false;
	int c;

	while ((c = cli_getopt(cmd, argc, argv, "s:", NULL)) != -1) {
		cli_check_arg(cmd, cli_parse_size(optarg, &op.size), "size", optarg);
		sized = true;
	}
	if (!sized)
		return cli_usage_error(cmd, "no size given: use -s SIZE");
	op.path = cli_path_arg(cmd, argc, argv);
	return cli_with_vfs(false, do_truncate, &op);
}

static const char *const cmd_truncate_usage[] = {
        "arbor -i IMAGE truncate -s SIZE PATH",
        "",
        "Shrink or extend a regular file to SIZE bytes (extended: zeros).",
        "",
        OPTLINE("-s SIZE", "the new size, with an optional K, M, G or T suffix"),
        NULL,
};

const struct cmd_struct cmd_struct_truncate = {"truncate", cmd_truncate, cmd_truncate_usage, NULL,
                                               CMD_IMAGE};
