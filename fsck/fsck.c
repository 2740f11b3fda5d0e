/* SPDX-License-Identifier: MIT */
/*
 * fsck.c - fsck.arbor: check an Arbor filesystem and repair it, with the
 * exit codes of fsck(8) so that `fsck -t arbor` and boot scripts can use it.
 *
 *   -n  check only: opened read-only, nothing is written (a mounted image
 *       is checked as of its last commit, with a warning);
 *   -y  repair everything found, going back to an older commit of the
 *       superblock ring when a tree of the newest one is damaged;
 *   -p  (-a) preen: repair what needs no decision; a repair that would give
 *       up commits is left for -y (exit 4);
 *   none: from a terminal, check, then ask before repairing.
 *
 * The work is the core's (arb_fsck); this file chooses the mode, refuses to
 * write to an image in use, shows progress and maps the outcome to an exit
 * code.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "arbor/fsck.h"
#include "arbor/io.h"
#include "inuse.h"
#include "parse.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

#define PROG "fsck.arbor"

/* fsck(8) exit codes */
#define FSCK_OK 0
#define FSCK_FIXED 1
#define FSCK_UNCORRECTED 4
#define FSCK_ERROR 8
#define FSCK_USAGE 16
#define FSCK_CANCELED 32

enum mode { MODE_ASK, MODE_CHECK, MODE_REPAIR, MODE_PREEN };

struct options {
	enum mode mode;
	bool verbose, check_data;
	int progress_fd; /* -1: none */
	const char *path;
};

/* ---- messages ------------------------------------------------------------------- */

static bool verbose;
static bool bar_shown; /* a progress bar is on the current line of stdout */

static void clear_bar(void)
{
	if (bar_shown) {
		fputs("\r\033[K", stdout);
		bar_shown = false;
	}
}

static void __attribute__((format(printf, 1, 2))) error(const char *fmt, ...)
{
	va_list ap;

	clear_bar();
	fflush(stdout);
	fprintf(stderr, PROG ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Problems and repairs to stdout (what fsck says about the filesystem),
 * the core's own warnings to stderr. */
static void core_msg(void *ctx, enum arb_msg_level level, const char *text)
{
	size_t len = strlen(text);

	(void)ctx;
	if (level == ARB_MSG_DEBUG && !verbose)
		return;
	while (len > 0 && text[len - 1] == '\n')
		len--;
	clear_bar();
	if (level == ARB_MSG_WARN) {
		fflush(stdout);
		fprintf(stderr, PROG ": warning: %.*s\n", (int)len, text);
	} else {
		printf("%.*s\n", (int)len, text);
	}
}

/* ---- usage ---------------------------------------------------------------------- */

static const char *const usage_text[] = {
        "Usage: " PROG " [-n|-y|-p] [-f] [-v] [-C FD] [--check-data] DEVICE|FILE",
        "",
        "Check an Arbor filesystem and repair it.",
        "",
        "  -n, --no        check only: open read-only, write nothing",
        "  -y, --yes       repair everything found (may go back to an older commit",
        "                  when a tree of the newest one is damaged)",
        "  -p, -a, --preen repair what needs no decision; exit 4 if more is needed",
        "  -f, --force     accepted for fsck(8); every check is always complete",
        "  -v, --verbose   also show figures and what was found healthy",
        "  -C FD           progress: a bar on the terminal for 0, else lines",
        "                  \"phase done total\" to file descriptor FD (fsck(8))",
        "      --check-data  also read every data block and verify its checksum",
        "  -V, --version   show the version",
        "  -h, --help      show this help",
        "",
        "Without -n, -y or -p, from a terminal: check, then ask before repairing.",
        "Exit status (fsck(8)): 0 clean, 1 errors fixed, 4 errors left",
        "uncorrected, 8 operational error, 16 usage error, 32 cancelled.",
        NULL,
};

static void print_usage(FILE *out)
{
	for (int i = 0; usage_text[i]; i++)
		fprintf(out, "%s\n", usage_text[i]);
}

static void __attribute__((format(printf, 1, 2), noreturn)) usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, PROG ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nUsage: " PROG " [-n|-y|-p] [-f] [-v] [-C FD] [--check-data] "
	                "DEVICE|FILE (try --help)\n");
	exit(FSCK_USAGE);
}

static void set_mode(struct options *o, enum mode m)
{
	if (o->mode != MODE_ASK && o->mode != m)
		usage_error("only one of -n, -y and -p may be given");
	o->mode = m;
}

static void parse_progress_fd(struct options *o, const char *arg)
{
	uint64_t fd;

	if (cli_parse_u64(arg, &fd) || fd > 1024)
		usage_error("-C needs a file descriptor number, not '%s'", arg);
	o->progress_fd = (int)fd;
}

static void parse_args(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
	        {"no", no_argument, NULL, 'n'},
	        {"yes", no_argument, NULL, 'y'},
	        {"preen", no_argument, NULL, 'p'},
	        {"force", no_argument, NULL, 'f'},
	        {"verbose", no_argument, NULL, 'v'},
	        {"check-data", no_argument, NULL, 'D'},
	        {"version", no_argument, NULL, 'V'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":nypafvrC:Vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'n':
			set_mode(o, MODE_CHECK);
			break;
		case 'y':
			set_mode(o, MODE_REPAIR);
			break;
		case 'p':
		case 'a':
			set_mode(o, MODE_PREEN);
			break;
		case 'f':
		case 'r': /* fsck(8)'s "interactive": the default */
			break;
		case 'v':
			o->verbose = true;
			break;
		case 'D':
			o->check_data = true;
			break;
		case 'C':
			parse_progress_fd(o, optarg);
			break;
		case 'V':
			printf(PROG " (arbor) %s\n", PACKAGE_VERSION);
			exit(FSCK_OK);
		case 'h':
			print_usage(stdout);
			exit(FSCK_OK);
		case ':':
			usage_error("option -%c needs an argument", optopt);
		default:
			usage_error("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (argc - optind != 1)
		usage_error(argc == optind ? "no device or file given" : "too many arguments");
	o->path = argv[optind];
}

/* ---- progress ------------------------------------------------------------------- */

static const char *const phase_names[] = {"", "superblocks", "trees", "files"};

static void show_progress(void *ctx, int phase, uint64_t done, uint64_t total)
{
	const struct options *o = ctx;
	int pct;

	if (phase < 1 || phase > 3)
		return;
	if (o->progress_fd > 0) {
		dprintf(o->progress_fd, "%d %" PRIu64 " %" PRIu64 " %s\n", phase, done, total,
		        o->path);
		return;
	}
	pct = total ? (int)(done * 100 / total) : 0;
	pct = pct > 100 ? 100 : pct;
	printf("\r%s: phase %d (%s) [%-40.*s] %3d%%", o->path, phase, phase_names[phase],
	       pct * 40 / 100, "########################################", pct);
	fflush(stdout);
	bar_shown = true;
}

/* ---- running the check ---------------------------------------------------------- */

static void cancelled(int sig)
{
	static const char text[] = "\n" PROG ": cancelled\n";

	(void)sig;
	/* every commit is crash-safe: stopping anywhere leaves the image
	 * as it was or repaired */
	if (write(STDERR_FILENO, text, sizeof(text) - 1) < 0) {
		/* nothing more to say */
	}
	_exit(FSCK_CANCELED);
}

/* Writable and exclusive when repairing; a check of an image in use reads
 * its last commit. */
static int open_device(const struct options *o, bool repair, struct arb_dev **ret)
{
	struct inuse u;
	int in_use = inuse_find(o->path, &u);
	int err;

	if (in_use > 0 && repair) {
		if (u.swap)
			error("%s is in use as swap", o->path);
		else
			error("%s is mounted on %s: unmount it before a repair (-n checks it "
			      "read-only)",
			      o->path, u.mountpoint);
		return -EBUSY;
	}
	err = arb_dev_open_file(o->path, repair ? ARB_DEV_EXCL : ARB_DEV_RDONLY | ARB_DEV_EXCL,
	                        ret);
	if ((err == -EBUSY || err == -EWOULDBLOCK) && !repair) {
		fprintf(stderr,
		        PROG ": warning: %s is in use (mounted by arborfs?): checking its last "
		             "commit; changes since are not seen\n",
		        o->path);
		err = arb_dev_open_file(o->path, ARB_DEV_RDONLY, ret);
	} else if (err == -EBUSY || err == -EWOULDBLOCK) {
		error("%s is in use (mounted by arborfs?): unmount it before a repair", o->path);
		return err;
	}
	if (err)
		error("cannot open %s: %s", o->path, strerror(-err));
	return err;
}

static int run(const struct options *o, bool repair, struct arb_fsck_report *r)
{
	struct arb_fsck_opts fo = {
	        .repair = repair,
	        .check_data = o->check_data,
	        .no_rollback = o->mode == MODE_PREEN,
	        .msg = core_msg,
	};
	struct arb_dev *dev;
	int err = open_device(o, repair, &dev);

	if (err)
		return err;
	if (o->progress_fd >= 0) {
		fo.progress = show_progress;
		fo.progress_ctx = (void *)o;
	}
	err = arb_fsck(dev, &fo, r);
	clear_bar();
	arb_dev_close(dev);
	if (err)
		error("%s could not be checked: %s", o->path, strerror(-err));
	return err;
}

static bool ask_repair(void)
{
	char answer[16];

	printf("Repair? [y/N] ");
	fflush(stdout);
	return fgets(answer, sizeof(answer), stdin) && (answer[0] == 'y' || answer[0] == 'Y');
}

static void print_summary(const struct options *o, const struct arb_fsck_report *r)
{
	uint64_t left = r->errors - r->fixed;
	const char *state = !r->errors ? "clean" : !left ? "errors fixed" : "errors left";

	printf("%s: %s, %" PRIu64 " files, %" PRIu64 " directories in %" PRIu64
	       " subvolumes, %" PRIu64 "/%" PRIu64 " sectors used, generation %" PRIu64 "\n",
	       o->path, state, r->files + r->symlinks + r->other, r->directories, r->subvolumes,
	       r->used_sectors, r->total_sectors, r->generation);
	if (o->verbose)
		printf("%" PRIu64 " trees, %" PRIu64 " nodes, %" PRIu64 " inodes, %" PRIu64
		       " bytes of file data%s\n",
		       r->trees, r->nodes, r->inodes, r->data_bytes,
		       o->check_data ? " (checksums verified)" : "");
	if (left)
		printf("%s: %" PRIu64 " problems left uncorrected%s\n", o->path, left,
		       r->lost_commits && o->mode == MODE_PREEN
		               ? ": going back to an older commit needs fsck.arbor -y"
		               : "");
}

static int exit_code(const struct arb_fsck_report *r)
{
	if (!r->errors)
		return FSCK_OK;
	return r->fixed == r->errors ? FSCK_FIXED : FSCK_UNCORRECTED;
}

int main(int argc, char **argv)
{
	struct options o = {.mode = MODE_ASK, .progress_fd = -1};
	struct arb_fsck_report r;
	bool repair;

	parse_args(argc, argv, &o);
	verbose = o.verbose;
	if (o.mode == MODE_ASK && !isatty(STDIN_FILENO)) {
		error("not a terminal: give -n to check, -y or -p to repair");
		return FSCK_USAGE;
	}
	signal(SIGINT, cancelled);
	signal(SIGTERM, cancelled);
	repair = o.mode == MODE_REPAIR || o.mode == MODE_PREEN;
	if (run(&o, repair, &r))
		return FSCK_ERROR;
	if (o.mode == MODE_ASK && r.errors && ask_repair()) {
		if (run(&o, true, &r))
			return FSCK_ERROR;
	}
	print_summary(&o, &r);
	return exit_code(&r);
}
