/* SPDX-License-Identifier: MIT */
/*
 * main.c - arborfs: mount an Arbor filesystem with FUSE (low-level API).
 *
 *   arborfs IMAGE MOUNTPOINT [-o OPTIONS] [-f] [-d] [-s] [-h] [-V]
 *
 * Order, as libfuse's passthrough_ll: options, then every check that can
 * refuse (mount point, exclusive open of the image, superblock, subvolume,
 * orphan cleanup in memory), then session, signal handlers, mount,
 * daemonize, the commit, cleaner and worker threads, and the session loop
 * (one thread: see worker.c for why).  A refusal
 * writes nothing: the first commit comes after the mount.  mount(8) runs
 * "arborfs SOURCE MOUNTPOINT -o OPTS" through mount.fuse3 for
 * "mount -t fuse.arborfs".
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "arborfs.h"
#include "arbor/recdev.h"

#include <ctype.h>
#include <fcntl.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

#define EXIT_OK 0
#define EXIT_ERROR 1 /* an error, or a refusal */
#define EXIT_USAGE 2

struct afs_opts {
	char *image;
	char *mountpoint;
	char *commit; /* -o commit=N */
	char *spin;   /* -o spin=US */
	char *record; /* -o record=LOG */
	char *subvol; /* -o subvol=ID or subvol=PATH */
	int nonopts;
	bool ro, has_fsname, has_subtype, help, version, bad;
};

enum { KEY_HELP, KEY_VERSION, KEY_RO, KEY_RW, KEY_FSNAME, KEY_SUBTYPE };

#define AFS_OPT(t, p)                                                                              \
	{                                                                                          \
		t, offsetof(struct afs_opts, p), 1                                                 \
	}

static const struct fuse_opt opt_spec[] = {
        AFS_OPT("commit=%s", commit),
        AFS_OPT("spin=%s", spin),
        AFS_OPT("record=%s", record),
        AFS_OPT("subvol=%s", subvol),
        FUSE_OPT_KEY("ro", KEY_RO),
        FUSE_OPT_KEY("rw", KEY_RW),
        FUSE_OPT_KEY("fsname=", KEY_FSNAME),
        FUSE_OPT_KEY("subtype=", KEY_SUBTYPE),
        FUSE_OPT_KEY("-h", KEY_HELP),
        FUSE_OPT_KEY("--help", KEY_HELP),
        FUSE_OPT_KEY("-V", KEY_VERSION),
        FUSE_OPT_KEY("--version", KEY_VERSION),
        FUSE_OPT_END,
};

/* ---- messages and usage --------------------------------------------------------- */

static void __attribute__((format(printf, 1, 2))) error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("error: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

#define OPTLINE(opt, text) "    " opt "\n            " text

static const char *const usage_text[] = {
        "Mount the Arbor filesystem of IMAGE (an image file or a block device) on",
        "MOUNTPOINT with FUSE.",
        "",
        "Options:",
        OPTLINE("-o commit=N", "commit every N seconds (default 5; 0: only on fsync and unmount)"),
        OPTLINE("-o spin=US", "poll US microseconds for the next request before sleeping\n"
                              "            (default 100; 0: never poll)"),
        OPTLINE("-o subvol=ID|PATH",
                "mount the subvolume with tree id ID, or the one at PATH (names of\n"
                "            subvolumes and directories from the root of the default\n"
                "            subvolume, e.g. snaps/monday); default: the default subvolume"),
        OPTLINE("-o ro", "mount read-only: nothing is written to IMAGE"),
        OPTLINE("-o record=LOG",
                "log every write and flush to IMAGE in LOG (for crash testing: with\n"
                "            a copy of IMAGE taken before the mount, `arbor inspect replay`\n"
                "            rebuilds the image a power cut would leave at any point)"),
        OPTLINE("-f", "stay in the foreground"),
        OPTLINE("-d", "print every FUSE request (implies -f)"),
        OPTLINE("-s", "single-threaded (always: accepted for compatibility)"),
        OPTLINE("-V, --version", "show the version"),
        OPTLINE("-h, --help", "show this help, then libfuse's options"),
        "",
        "Permissions are checked by the kernel: default_permissions is always on.",
        "The image is locked while mounted.  Exit status: 0 after a clean unmount,",
        "1 on an error or a refusal, 2 on a usage error.",
        NULL,
};

static void print_synopsis(FILE *out)
{
	fprintf(out, "usage: " AFS_PROG " IMAGE MOUNTPOINT [-o OPTIONS] [-f] [-d] [-s]\n");
}

static void print_help(void)
{
	print_synopsis(stdout);
	putchar('\n');
	for (int i = 0; usage_text[i]; i++)
		printf("%s\n", usage_text[i]);
	printf("\nlibfuse options:\n");
	fflush(stdout);
	fuse_cmdline_help();
	fuse_lowlevel_help();
}

static void print_version(void)
{
	printf(AFS_PROG " %s\n", PACKAGE_VERSION);
	printf("FUSE library version %s\n", fuse_pkgversion());
	fflush(stdout);
	fuse_lowlevel_version();
}

static int usage_error(const char *fmt, const char *arg)
{
	fputs("error: ", stderr);
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	print_synopsis(stderr);
	fprintf(stderr, "Try '" AFS_PROG " --help' for more information.\n");
	return EXIT_USAGE;
}

/* ---- options ---------------------------------------------------------------------- */

static int nonopt(struct afs_opts *o, const char *arg)
{
	char **slot = o->nonopts == 0 ? &o->image : o->nonopts == 1 ? &o->mountpoint : NULL;

	o->nonopts++;
	if (!slot) {
		usage_error("unexpected argument '%s'", arg);
		o->bad = true;
		return -1;
	}
	*slot = strdup(arg);
	if (!*slot)
		return -1;
	return slot == &o->image ? 0 : 1; /* libfuse takes the mount point */
}

static int opt_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	struct afs_opts *o = data;

	(void)outargs;
	switch (key) {
	case FUSE_OPT_KEY_NONOPT:
		return nonopt(o, arg);
	case KEY_HELP:
		o->help = true;
		return 0;
	case KEY_VERSION:
		o->version = true;
		return 0;
	case KEY_RO:
	case KEY_RW:
		o->ro = key == KEY_RO;
		return 1;
	case KEY_FSNAME:
		o->has_fsname = true;
		return 1;
	case KEY_SUBTYPE:
		o->has_subtype = true;
		return 1;
	default:
		return 1;
	}
}

/* A decimal number, nothing else. */
static int parse_u64(const char *s, uint64_t max, uint64_t *ret)
{
	char *end;
	unsigned long long v;

	if (!isdigit((unsigned char)s[0]))
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v > max)
		return -1;
	*ret = v;
	return 0;
}

/* What -o subvol= names: a tree id (0: the default subvolume), or a path
 * resolved once the image is open. */
struct subvol_spec {
	uint64_t id;
	const char *path;
};

static int check_values(const struct afs_opts *o, struct afs *a, struct subvol_spec *subvol)
{
	uint64_t v = AFS_DEFAULT_COMMIT;

	if (o->commit && parse_u64(o->commit, UINT32_MAX, &v))
		return usage_error("commit=%s: expected a number of seconds", o->commit);
	a->commit_secs = (unsigned)v;
	v = (uint64_t)AFS_SPIN_US;
	if (o->spin && parse_u64(o->spin, 100000, &v))
		return usage_error("spin=%s: expected microseconds (at most 100000)", o->spin);
	a->spin_us = (double)v;
	a->record = o->record;
	subvol->id = 0;
	subvol->path = NULL;
	/* a number is an id; a subvolume named by digits is "./123" */
	if (o->subvol && parse_u64(o->subvol, UINT64_MAX, &subvol->id))
		subvol->path = o->subvol;
	return 0;
}

/* "-oNAME=VALUE" with fuse_opt's escapes for ',' and '\'. */
static int add_opt_value(struct fuse_args *args, const char *name, const char *value)
{
	size_t nlen = strlen(name), vlen = strlen(value);
	char *opt = malloc(3 + nlen + 2 * vlen + 1);
	char *p = opt;
	int ret;

	if (!opt)
		return -1;
	p += sprintf(p, "-o%s", name);
	for (const char *s = value; *s; s++) {
		if (*s == ',' || *s == '\\')
			*p++ = '\\';
		*p++ = *s;
	}
	*p = '\0';
	ret = fuse_opt_add_arg(args, opt);
	free(opt);
	return ret;
}

/* default_permissions always; fsname=IMAGE (absolute) and subtype=arborfs
 * unless given. */
static int add_defaults(struct fuse_args *args, const struct afs_opts *o)
{
	char *real = realpath(o->image, NULL);
	int ret = fuse_opt_add_arg(args, "-odefault_permissions");

	if (!ret && !o->has_fsname)
		ret = add_opt_value(args, "fsname=", real ? real : o->image);
	if (!ret && !o->has_subtype)
		ret = fuse_opt_add_arg(args, "-osubtype=" AFS_PROG);
	free(real);
	return ret;
}

static int check_mountpoint(const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		error("mount point %s: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		error("mount point %s is not a directory", path);
		return -1;
	}
	return 0;
}

/* ---- the image ---------------------------------------------------------------------- */

static int open_dev(struct afs *a)
{
	int flags = ARB_DEV_EXCL | (a->read_only ? ARB_DEV_RDONLY : 0);
	int ret = arb_dev_open_file(a->image, flags, &a->dev);

	if (ret == -EBUSY)
		error("%s is in use (mounted by another arborfs, or open in another Arbor tool)",
		      a->image);
	else if ((ret == -EACCES || ret == -EROFS || ret == -EPERM) && !a->read_only)
		error("cannot open %s for writing: %s (use -o ro to mount it read-only)", a->image,
		      strerror(-ret));
	else if (ret)
		error("cannot open %s: %s", a->image, strerror(-ret));
	if (!ret && a->record) {
		struct arb_dev *rec;

		ret = arb_dev_record(a->dev, a->record, &rec);
		if (ret)
			error("record=%s: %s", a->record, strerror(-ret));
		else
			a->dev = rec;
	}
	return ret;
}

/* Follow the names of path from the root of the default subvolume ("" and
 * "." components are skipped); it must end at the root directory of a
 * subvolume. */
static int resolve_subvol_path(struct afs *a, const char *path, uint64_t *ret_id)
{
	char *copy = strdup(path), *save = NULL, *name;
	arb_ino_t ino;
	int ret;

	if (!copy)
		return -ENOMEM;
	ret = arb_vfs_root(a->fs, 0, &ino);
	if (ret)
		error("%s: subvol=%s: no default subvolume to start from: %s", a->image, path,
		      strerror(-ret));
	for (name = strtok_r(copy, "/", &save); !ret && name; name = strtok_r(NULL, "/", &save)) {
		struct arb_stat st;

		if (strcmp(name, ".") == 0)
			continue;
		ret = arb_vfs_lookup(a->fs, ino, name, &st);
		if (ret == -EINVAL)
			error("%s: subvol=%s: '%s' is not a name that can be followed", a->image,
			      path, name);
		else if (ret)
			error("%s: subvol=%s: cannot find '%s': %s", a->image, path, name,
			      strerror(-ret));
		else
			ino = st.ino;
	}
	free(copy);
	if (!ret && arb_ino_local(ino) != ARB_FIRST_INO) {
		error("%s: subvol=%s: not a subvolume", a->image, path);
		ret = -ENOTDIR;
	}
	if (!ret)
		*ret_id = arb_ino_subvol(ino);
	return ret;
}

static int find_root(struct afs *a, uint64_t subvol)
{
	int ret = arb_vfs_root(a->fs, subvol, &a->root);

	if (ret == -ENOENT && subvol)
		error("%s has no subvolume %llu", a->image, (unsigned long long)subvol);
	else if (ret == -ENOENT)
		error("%s has no default subvolume to mount (not made by mkfs.arbor?)", a->image);
	else if (ret)
		error("cannot find the subvolume to mount on %s: %s", a->image, strerror(-ret));
	return ret;
}

/* Why arb_open refused (the core said the details). */
static const char *open_reason(int err)
{
	switch (err) {
	case -EINVAL:
		return "not an Arbor filesystem";
	case -EUCLEAN:
		return "no superblock or tree verifies: the filesystem is damaged";
	case -EOPNOTSUPP:
		return "unsupported format version or features";
	case -EROFS:
		return "it can only be mounted read-only (-o ro)";
	default:
		return strerror(-err);
	}
}

/* Everything that may refuse the mount.  Nothing is committed here. */
static int open_image(struct afs *a, const struct subvol_spec *spec)
{
	uint64_t subvol = spec->id;
	struct arb_open_opts opts = {.read_only = a->read_only, .msg = afs_core_msg, .msg_ctx = a};
	uint64_t freed = 0;
	int ret = open_dev(a);

	if (ret)
		return ret;
	ret = arb_open(a->dev, &opts, &a->fs);
	if (ret) {
		error("cannot open the filesystem on %s: %s", a->image, open_reason(ret));
		return ret;
	}
	if (spec->path)
		ret = resolve_subvol_path(a, spec->path, &subvol);
	if (!ret)
		ret = find_root(a, subvol);
	if (!ret && !a->read_only) {
		ret = arb_vfs_orphan_cleanup(a->fs, &freed);
		if (ret)
			error("cannot free the orphan inodes of %s: %s", a->image, strerror(-ret));
		else if (freed)
			afs_log(a, LOG_INFO, "freed %llu orphan inodes", (unsigned long long)freed);
	}
	return ret;
}

static void close_image(struct afs *a)
{
	if (a->fs)
		arb_close(a->fs);
	if (a->dev)
		arb_dev_close(a->dev);
	a->fs = NULL;
	a->dev = NULL;
}

/* ---- the session ---------------------------------------------------------------------- */

static double mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* The signals that end the session (libfuse's handlers exit it). */
static void session_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGHUP);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
}

/*
 * The next request: polled for spin_us before sleeping in the kernel.
 * The session signals are blocked everywhere but in the ppoll below (the
 * other threads inherit the block), so a signal always wakes this thread
 * and can never slip in between the check of the exit flag and the sleep.
 */
static int next_request(struct fuse_session *se, struct fuse_buf *buf, double spin_us,
                        const sigset_t *sleep_mask)
{
	double until = mono_us() + spin_us;
	struct pollfd pfd = {.fd = fuse_session_fd(se), .events = POLLIN};
	int res;

	for (;;) {
		res = fuse_session_receive_buf(se, buf);
		if (res != -EAGAIN)
			return res;
		if (fuse_session_exited(se))
			return -EINTR;
		if (mono_us() >= until) {
			if (ppoll(&pfd, 1, NULL, sleep_mask) < 0 && errno != EINTR)
				return -errno;
			until = mono_us() + spin_us;
		}
	}
}

/*
 * One thread serves every request; the few that must wait for the kernel
 * go to the worker thread (worker.c).  Between requests the thread polls
 * the device for a while before it sleeps: a process making requests one
 * after the other (creating files) sends the next within microseconds,
 * and a thread still running takes it without the wake-up of an idle CPU,
 * which costs more than the work itself.  A signal ends it with 0.
 */
static int session_loop(struct afs *a, struct fuse_session *se, const sigset_t *sleep_mask)
{
	struct fuse_buf buf = {.mem = NULL};
	int fd = fuse_session_fd(se), res = 0;

	if (afs_worker_start(a))
		afs_log(a, LOG_WARNING,
		        "no worker thread: the kernel forgets names of changed "
		        "subvolumes only when they time out");
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	while (!fuse_session_exited(se)) {
		res = next_request(se, &buf, a->spin_us, sleep_mask);
		if (res == -EINTR) {
			res = 0;
			continue;
		}
		if (res <= 0)
			break;
		fuse_session_process_buf(se, &buf);
	}
	free(buf.mem);
	fuse_session_reset(se);
	afs_worker_stop(a);
	return res < 0 ? res : 0;
}

/* The last commit, after the session loop: destroy commits too, but it
 * comes later (fuse_session_destroy), and not after a failed daemonize. */
static int final_commit(struct afs *a)
{
	int ret;

	afs_lock(a);
	ret = afs_unlock(a, afs_commit_locked(a));
	if (ret < 0 && !a->failed)
		afs_log(a, LOG_ERR, "final commit failed: %s", strerror(-ret));
	return ret < 0 || a->failed ? EXIT_ERROR : EXIT_OK;
}

/* Mount, serve until unmount or a signal, commit.  The exit status. */
static int serve(struct afs *a, struct fuse_session *se, const struct fuse_cmdline_opts *c)
{
	bool mounted = false;
	int ret = EXIT_ERROR;
	sigset_t stop, sleep_mask;

	if (fuse_set_signal_handlers(se))
		return EXIT_ERROR;
	session_signals(&stop);
	pthread_sigmask(SIG_BLOCK, &stop, &sleep_mask);
	if (fuse_session_mount(se, c->mountpoint))
		goto out_signals;
	mounted = true;
	afs_space_init(a, c->mountpoint);
	if (fuse_daemonize(c->foreground))
		goto out_unmount;
	a->use_syslog = !c->foreground;
	if (afs_committer_start(a))
		afs_log(a, LOG_WARNING, "no commit thread: commits on fsync and unmount only");
	if (afs_cleaner_start(a))
		afs_log(a, LOG_WARNING,
		        "no cleaner thread: deleted subvolumes are freed "
		        "by `arbor subvolume delete --wait` only");
	ret = session_loop(a, se, &sleep_mask) < 0 ? EXIT_ERROR : EXIT_OK;
	afs_cleaner_stop(a);
	afs_committer_stop(a);
out_unmount:
	fuse_session_unmount(se);
	if (final_commit(a))
		ret = EXIT_ERROR;
out_signals:
	fuse_remove_signal_handlers(se);
	pthread_sigmask(SIG_SETMASK, &sleep_mask, NULL);
	return mounted ? ret : EXIT_ERROR;
}

static void afs_init(struct afs *a)
{
	pthread_condattr_t ca;

	memset(a, 0, sizeof(*a));
	pthread_mutex_init(&a->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&a->wake, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&a->clean_wake, NULL);
	pthread_cond_init(&a->cleaned, NULL);
	pthread_mutex_init(&a->jobs_lock, NULL);
	pthread_cond_init(&a->jobs_wake, NULL);
}

static int parse_args(struct fuse_args *args, struct afs_opts *o)
{
	if (fuse_opt_parse(args, o, opt_spec, opt_proc) == -1)
		return o->bad ? EXIT_USAGE : EXIT_ERROR;
	if (o->help) {
		print_help();
		return EXIT_OK;
	}
	if (o->version) {
		print_version();
		return EXIT_OK;
	}
	if (o->nonopts < 2)
		return usage_error("%s", o->nonopts ? "no mount point given" : "no image given");
	return -1;
}

static int run(struct fuse_args *args, struct afs_opts *o, struct afs *a)
{
	struct fuse_cmdline_opts c = {0};
	struct fuse_session *se;
	struct subvol_spec subvol;
	int ret = parse_args(args, o);

	if (ret >= 0)
		return ret;
	ret = check_values(o, a, &subvol);
	if (ret)
		return ret;
	a->image = o->image;
	a->read_only = o->ro;
	if (check_mountpoint(o->mountpoint))
		return EXIT_ERROR;
	if (add_defaults(args, o) || fuse_parse_cmdline(args, &c))
		return EXIT_ERROR;
	a->debug = c.debug;
	se = fuse_session_new(args, &afs_ops, sizeof(afs_ops), a);
	a->se = se;
	if (!se) {
		ret = EXIT_USAGE; /* libfuse named the unknown option */
	} else if (open_image(a, &subvol)) {
		fuse_session_destroy(se); /* never mounted: destroy is not called */
		ret = EXIT_ERROR;
	} else {
		openlog(AFS_PROG, LOG_PID, LOG_DAEMON);
		ret = serve(a, se, &c);
		fuse_session_destroy(se); /* destroy commits, a no-op by now */
	}
	close_image(a);
	free(c.mountpoint);
	return ret;
}

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct afs_opts o = {0};
	struct afs a;
	int ret;

	afs_init(&a);
	ret = run(&args, &o, &a);
	fuse_opt_free_args(&args);
	free(o.image);
	free(o.mountpoint);
	free(o.commit);
	free(o.spin);
	free(o.record);
	free(o.subvol);
	return ret;
}
