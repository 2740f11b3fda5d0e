/* SPDX-License-Identifier: MIT */
/*
 * arbor.c - main() of the arbor admin tool: global options, the command
 * dispatcher, --help, and the helpers every command shares (messages,
 * number parsing, opening the image).
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"

#include "arbor/io.h"
#include "arbor/msg.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

struct cli_globals cli_globals;

/* "arbor engine put": the command being run, for "Try '... --help'". */
static char cmd_path[128] = "arbor";

/* ---- messages ---------------------------------------------------------- */

static void vmessage(const char *prefix, const char *fmt, va_list ap)
{
	fprintf(stderr, "%s: ", prefix);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void cli_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmessage("error", fmt, ap);
	va_end(ap);
}

void cli_warning(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmessage("warning", fmt, ap);
	va_end(ap);
}

/* The message callback installed into the core. */
void cli_msg(void *ctx, enum arb_msg_level level, const char *text)
{
	static const char *const names[] = {"error", "warning", "info", "debug"};
	size_t len = strlen(text);
	unsigned int lvl = (unsigned int)level;

	if (lvl > ARB_MSG_DEBUG)
		lvl = ARB_MSG_DEBUG;
	/* errors and warnings always; info with -v, debug with -vv */
	if (lvl > ARB_MSG_WARN + (unsigned int)cli_globals.verbose)
		return;
	while (len > 0 && text[len - 1] == '\n')
		len--;
	fprintf(stderr, "%s: %.*s\n", names[lvl], (int)len, text);
}

/* ---- usage ------------------------------------------------------------- */

/* Index of the "" that ends the synopsis lines. */
static int synopsis_end(const char *const *u)
{
	int i = 0;

	while (u[i] && u[i][0])
		i++;
	return i;
}

static void print_synopsis(const char *const *u, FILE *out)
{
	int n = synopsis_end(u);

	for (int i = 0; i < n; i++)
		fprintf(out, "%s%s\n", i ? "   or: " : "usage: ", u[i]);
}

/* The one-line description, or NULL. */
static const char *short_description(const char *const *u)
{
	int n = synopsis_end(u);

	return u[n] && u[n + 1] ? u[n + 1] : NULL;
}

static void print_group_commands(const struct cmd_group *grp, FILE *out)
{
	for (int i = 0; grp->commands[i]; i++) {
		const struct cmd_struct *c = grp->commands[i];
		const char *desc = short_description(c->usagestr);
		int n = synopsis_end(c->usagestr);

		for (int j = 0; j < n; j++)
			fprintf(out, "  %s\n", c->usagestr[j]);
		if (desc)
			fprintf(out, "        %s\n", desc);
		if (c->next)
			fprintf(out, "        (see: %s %s --help)\n", cmd_path, c->token);
		fputc('\n', out);
	}
}

void cli_usage(const struct cmd_struct *cmd, bool full, FILE *out)
{
	const char *const *u = cmd->usagestr;
	int n = synopsis_end(u);

	print_synopsis(u, out);
	if (!full)
		return;
	if (u[n]) {
		for (int i = n + 1; u[i]; i++)
			fprintf(out, "%s%s\n", i == n + 1 ? "\n" : "", u[i]);
	}
	if (cmd->next) {
		fprintf(out, "\nCommands:\n\n");
		print_group_commands(cmd->next, out);
	}
}

int cli_usage_error(const struct cmd_struct *cmd, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmessage("error", fmt, ap);
	va_end(ap);
	cli_usage(cmd, false, stderr);
	fprintf(stderr, "Try '%s --help' for more information.\n", cmd_path);
	return CLI_EXIT_USAGE;
}

/* ---- option parsing ------------------------------------------------------ */

#define CLI_OPT_HELP 0x10000

static int count_longopts(const struct option *o)
{
	int n = 0;

	while (o && o[n].name)
		n++;
	return n;
}

int cli_getopt(const struct cmd_struct *cmd, int argc, char **argv, const char *optstring,
               const struct option *longopts)
{
	int n = count_longopts(longopts);
	struct option all[n + 2];
	char shortopts[strlen(optstring) + 2];
	int c;

	if (n)
		memcpy(all, longopts, (size_t)n * sizeof(all[0]));
	all[n] = (struct option){"help", no_argument, NULL, CLI_OPT_HELP};
	all[n + 1] = (struct option){NULL, 0, NULL, 0};
	snprintf(shortopts, sizeof(shortopts), ":%s", optstring);
	opterr = 0;
	c = getopt_long(argc, argv, shortopts, all, NULL);
	if (c == CLI_OPT_HELP) {
		cli_usage(cmd, true, stdout);
		exit(CLI_EXIT_OK);
	}
	if (c == ':')
		exit(cli_usage_error(cmd, "option '%s' needs an argument", argv[optind - 1]));
	if (c == '?') {
		if (optopt)
			exit(cli_usage_error(cmd, "unknown option '-%c'", optopt));
		exit(cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]));
	}
	return c;
}

unsigned int cli_flags(const struct cmd_struct *cmd, int argc, char **argv, const char *flags,
                       const struct option *longopts)
{
	unsigned int set = 0;
	int c;

	optind = 0;
	while ((c = cli_getopt(cmd, argc, argv, flags, longopts)) != -1) {
		const char *p = strchr(flags, c);

		if (p)
			set |= 1u << (p - flags);
	}
	return set;
}

int cli_no_options(const struct cmd_struct *cmd, int argc, char **argv, int min, int max)
{
	cli_flags(cmd, argc, argv, "", NULL);
	cli_check_argc(cmd, argc - optind, min, max);
	return argc - optind;
}

void cli_check_argc(const struct cmd_struct *cmd, int nargs, int min, int max)
{
	if (nargs < min)
		exit(cli_usage_error(cmd, "not enough arguments"));
	if (nargs > max)
		exit(cli_usage_error(cmd, "too many arguments"));
}

void cli_check_arg(const struct cmd_struct *cmd, int err, const char *what, const char *arg)
{
	if (err)
		exit(cli_usage_error(cmd, "invalid %s '%s'", what, arg));
}

void cli_arg_tree(const struct cmd_struct *cmd, const char *arg, uint64_t *ret)
{
	cli_check_arg(cmd, cli_parse_tree_id(arg, ret), "tree id", arg);
}

void cli_arg_key(const struct cmd_struct *cmd, char **args, struct arb_key *ret)
{
	cli_check_arg(cmd, cli_parse_u64(args[0], &ret->objectid), "objectid", args[0]);
	cli_check_arg(cmd, cli_parse_key_type(args[1], &ret->type), "key type", args[1]);
	cli_check_arg(cmd, cli_parse_u64(args[2], &ret->offset), "offset", args[2]);
}

/* ---- number and name parsing --------------------------------------------- */

/* The unsigned number s starts with, in base (0: C prefixes); *end is what
 * follows it.  No leading sign, at least one digit. */
int cli_parse_tree_id(const char *s, uint64_t *ret)
{
	if (!strcmp(s, "root")) {
		*ret = ARB_ROOT_TREE_ID;
		return 0;
	}
	if (!strcmp(s, "space")) {
		*ret = ARB_SPACE_TREE_ID;
		return 0;
	}
	return cli_parse_u64(s, ret);
}

static const struct {
	uint8_t type;
	const char *name;
} key_types[] = {
        {ARB_ROOT_ITEM_KEY, "ROOT_ITEM"},
        {ARB_SM_CHUNK_KEY, "SM_CHUNK"},
        {ARB_SM_OVERFLOW_KEY, "SM_OVERFLOW"},
        {ARB_SM_DEFER_KEY, "SM_DEFER"},
};

const char *cli_key_type_name(uint8_t type, char *buf, size_t len)
{
	for (size_t i = 0; i < sizeof(key_types) / sizeof(key_types[0]); i++) {
		if (key_types[i].type == type)
			return key_types[i].name;
	}
	snprintf(buf, len, "%u", type);
	return buf;
}

int cli_parse_key_type(const char *s, uint8_t *ret)
{
	uint64_t v;

	for (size_t i = 0; i < sizeof(key_types) / sizeof(key_types[0]); i++) {
		if (!strcasecmp(s, key_types[i].name)) {
			*ret = key_types[i].type;
			return 0;
		}
	}
	if (cli_parse_u64(s, &v) || v > UINT8_MAX)
		return -EINVAL;
	*ret = (uint8_t)v;
	return 0;
}

/* ---- the image ----------------------------------------------------------- */

uint64_t cli_source_date_epoch(void)
{
	const char *s = getenv("SOURCE_DATE_EPOCH");
	uint64_t v;

	if (!s || !*s)
		return 0;
	if (cli_parse_u64(s, &v)) {
		cli_warning("ignoring invalid SOURCE_DATE_EPOCH '%s'", s);
		return 0;
	}
	return v;
}

/* Open the -i image (ARB_DEV_EXCL, plus ARB_DEV_RDONLY when rdonly). */
static int open_dev(bool rdonly, struct arb_dev **ret_dev)
{
	int flags = ARB_DEV_EXCL | (rdonly ? ARB_DEV_RDONLY : 0);
	int ret = arb_dev_open_file(cli_globals.image, flags, ret_dev);

	if (ret < 0)
		cli_error("cannot open %s: %s", cli_globals.image, strerror(-ret));
	return ret;
}

int cli_with_dev(bool rdonly, cli_dev_fn fn, void *arg)
{
	struct arb_dev *dev;
	int ret = open_dev(rdonly, &dev);

	if (ret < 0)
		return CLI_EXIT_ERROR;
	ret = fn(dev, arg);
	arb_dev_close(dev);
	return ret < 0 ? CLI_EXIT_ERROR : CLI_EXIT_OK;
}

int cli_with_fs(bool rdonly, cli_fs_fn fn, void *arg)
{
	struct arb_open_opts opts = {
	        .read_only = rdonly,
	        .time_sec = cli_source_date_epoch(),
	        .msg = cli_msg,
	};
	struct cli_fs cfs = {NULL, NULL};
	int ret = open_dev(rdonly, &cfs.dev);

	if (ret < 0)
		return CLI_EXIT_ERROR;
	ret = arb_open(cfs.dev, &opts, &cfs.fs);
	if (ret < 0) {
		cli_error("cannot open the filesystem on %s: %s", cli_globals.image,
		          strerror(-ret));
	} else {
		ret = fn(&cfs, arg);
		if (ret >= 0 && !rdonly)
			ret = cli_commit(&cfs);
		arb_close(cfs.fs);
	}
	arb_dev_close(cfs.dev);
	return ret < 0 ? CLI_EXIT_ERROR : CLI_EXIT_OK;
}

int cli_fs_info_of(struct arb_dev *dev, struct arb_fs_info *info)
{
	struct arb_open_opts opts = {.read_only = true, .msg = cli_msg};
	struct arb_fs *fs;
	int ret = arb_open(dev, &opts, &fs);

	if (ret < 0)
		return ret;
	arb_fs_info(fs, info);
	arb_close(fs);
	return 0;
}

void cli_report(const struct cli_fs *cfs, const char *what, int err)
{
	const char *reason = cfs && cfs->fs ? arb_fs_failed_reason(cfs->fs) : NULL;

	if (reason)
		cli_error("%s: %s (filesystem failed: %s)", what, strerror(-err), reason);
	else
		cli_error("%s: %s", what, strerror(-err));
}

int cli_result(const struct cli_fs *cfs, int ret, const char *missing, const char *what)
{
	if (ret == -ENOENT && missing)
		cli_error("%s", missing);
	else if (ret < 0)
		cli_report(cfs, what, ret);
	return ret;
}

int cli_tree_result(const struct cli_fs *cfs, uint64_t id, int ret, const char *what)
{
	char missing[32];

	snprintf(missing, sizeof(missing), "no tree %" PRIu64, id);
	return cli_result(cfs, ret, missing, what);
}

/* Offline, no cleaner thread runs: deleted trees are freed before the
 * commit, so that the tool leaves the space it freed visible at once. */
int cli_commit(struct cli_fs *cfs)
{
	int ret = cli_result(cfs, arb_fs_drop_all(cfs->fs), NULL, "freeing deleted trees failed");

	return ret ? ret : cli_result(cfs, arb_commit(cfs->fs), NULL, "commit failed");
}

int cli_get_tree(struct cli_fs *cfs, uint64_t id, struct arb_tree **ret_tree)
{
	return cli_tree_result(cfs, id, arb_tree_get(cfs->fs, id, ret_tree),
	                       "cannot open the tree");
}

/* ---- the command table ----------------------------------------------------- */

static const char *const arbor_usage[] = {
        "arbor [-i IMAGE] [-v] COMMAND [ARGS...]",
        "arbor COMMAND --help",
        "",
        "Administer Arbor filesystems.",
        "",
        "Global options (before the command):",
        OPTLINE("-i, --image IMAGE", "work offline on this image file or block device"),
        OPTLINE("-v, --verbose", "show informational core messages (twice: debug)"),
        OPTLINE("-h, --help", "show this help"),
        OPTLINE("-V, --version", "show the version"),
        "",
        "File commands (ls, cat, put, ...) take absolute paths: / is the root",
        "directory of the default subvolume.  Symbolic links are not followed.",
        "The subvolume, snapshot, diff and rollback commands also work on a",
        "mounted arborfs: without -i their paths are ordinary paths on the mount.",
        "",
        "Exit status: 0 on success, 1 when the command failed, 2 on a usage error.",
        NULL,
};

static const struct cmd_struct *const arbor_commands[] = {
        &cmd_struct_ls,       &cmd_struct_stat,   &cmd_struct_cat,
        &cmd_struct_get,      &cmd_struct_put,    &cmd_struct_mkdir,
        &cmd_struct_rm,       &cmd_struct_rmdir,  &cmd_struct_ln,
        &cmd_struct_readlink, &cmd_struct_mv,     &cmd_struct_truncate,
        &cmd_struct_mknod,    &cmd_struct_xattr,  &cmd_struct_subvolume,
        &cmd_struct_snapshot, &cmd_struct_diff,   &cmd_struct_rollback,
        &cmd_struct_inspect,  &cmd_struct_engine, NULL,
};

static const struct cmd_group arbor_group = {arbor_usage, arbor_commands};

static const struct cmd_struct cmd_struct_arbor = {"arbor", NULL, arbor_usage, &arbor_group, 0};

static bool is_help(const char *arg)
{
	return !strcmp(arg, "--help") || !strcmp(arg, "-h");
}

static bool wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc && strcmp(argv[i], "--"); i++) {
		if (is_help(argv[i]))
			return true;
	}
	return false;
}

static const struct cmd_struct *find_command(const struct cmd_group *grp, const char *token)
{
	for (int i = 0; grp->commands[i]; i++) {
		if (!strcmp(grp->commands[i]->token, token))
			return grp->commands[i];
	}
	return NULL;
}

static int run_command(const struct cmd_struct *cmd, int argc, char **argv);

/* argv[0] is the group's token, argv[1] the sub-command. */
static int run_group(const struct cmd_struct *grp_cmd, int argc, char **argv)
{
	const struct cmd_struct *cmd;
	size_t len;

	if (argc < 2)
		return cli_usage_error(grp_cmd, "no command given");
	if (is_help(argv[1])) {
		cli_usage(grp_cmd, true, stdout);
		return CLI_EXIT_OK;
	}
	cmd = find_command(grp_cmd->next, argv[1]);
	if (!cmd)
		return cli_usage_error(grp_cmd, "unknown command '%s'", argv[1]);
	len = strlen(cmd_path);
	snprintf(cmd_path + len, sizeof(cmd_path) - len, " %s", cmd->token);
	return run_command(cmd, argc - 1, argv + 1);
}

static int run_command(const struct cmd_struct *cmd, int argc, char **argv)
{
	if (cmd->next)
		return run_group(cmd, argc, argv);
	if ((cmd->flags & CMD_IMAGE) && !cli_globals.image && !wants_help(argc, argv))
		return cli_usage_error(cmd, "no image given: use arbor -i IMAGE ...");
	optind = 0;
	return cmd->fn(cmd, argc, argv);
}

static int parse_globals(int argc, char **argv)
{
	static const struct option longopts[] = {
	        {"image", required_argument, NULL, 'i'},
	        {"verbose", no_argument, NULL, 'v'},
	        {"help", no_argument, NULL, 'h'},
	        {"version", no_argument, NULL, 'V'},
	        {NULL, 0, NULL, 0},
	};
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:i:vhV", longopts, NULL)) != -1) {
		switch (c) {
		case 'i':
			cli_globals.image = optarg;
			break;
		case 'v':
			cli_globals.verbose++;
			break;
		case 'h':
			cli_usage(&cmd_struct_arbor, true, stdout);
			exit(CLI_EXIT_OK);
		case 'V':
			printf("arbor %s\n", PACKAGE_VERSION);
			exit(CLI_EXIT_OK);
		case ':':
			exit(cli_usage_error(&cmd_struct_arbor, "option '%s' needs an argument",
			                     argv[optind - 1]));
		default:
			exit(cli_usage_error(&cmd_struct_arbor, "unknown option '%s'",
			                     argv[optind - 1]));
		}
	}
	return optind;
}

int main(int argc, char **argv)
{
	int first = parse_globals(argc, argv);

	/* run_group expects argv[0] to be the group token */
	return run_group(&cmd_struct_arbor, argc - first + 1, argv + first - 1);
}
