/* SPDX-License-Identifier: MIT */
/*
 * replay.c - "arbor inspect replay BASE LOG": what a recording of an arborfs
 * run (arborfs -o record=LOG, see arbor/recdev.h) holds, and the image a
 * power cut at any event of it leaves, with the unflushed writes lost and
 * reordered as a seed says.  This is how a failure of tests/crash/crashcheck
 * is reproduced: it prints the command to run.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "svctx.h"

#include "arbor/memdev.h"
#include "arbor/recdev.h"

/* Flush events listed one by one in the text summary up to this many. */
#define FLUSHES_LISTED 32
#define WRITE_CHUNK (1u << 20)

struct replay_args {
	const char *base, *log, *out;
	bool have_cut, force;
	uint64_t cut, seed;
	enum sv_format fmt;
};

/* ---- loading ---------------------------------------------------------------------------- */

static int load(const struct replay_args *a, struct arb_dev **dev, struct arb_replay_info *info)
{
	int err = arb_replay_load(a->base, a->log, dev, info);

	switch (err) {
	case 0:
		return 0;
	case -EINVAL:
		cli_error("%s is not an Arbor recording log (arborfs -o record=LOG), or %s is "
		          "smaller than the device it recorded",
		          a->log, a->base);
		break;
	case -EUCLEAN:
		cli_error("%s: a record is damaged (bad magic, range or checksum)", a->log);
		break;
	case -EOPNOTSUPP:
		cli_error("%s: a recording log of a version this arbor does not read", a->log);
		break;
	default:
		cli_error("cannot replay %s on %s: %s", a->log, a->base, strerror(-err));
	}
	return err;
}

/* ---- the summary ---------------------------------------------------------------------------- */

static void print_flushes_json(struct arb_dev *dev, const struct arb_replay_info *info)
{
	bool first = true;

	printf("  \"flush_events\": [");
	for (size_t i = 0; i < info->nevents; i++) {
		if (!arb_memdev_event_is_flush(dev, i))
			continue;
		printf("%s%zu", first ? "" : ", ", i);
		first = false;
	}
	printf("]\n");
}

static void print_json(const struct replay_args *a, struct arb_dev *dev,
                       const struct arb_replay_info *info)
{
	printf("{\n  \"base\": ");
	sv_json_string(a->base);
	printf(",\n  \"log\": ");
	sv_json_string(a->log);
	printf(",\n  \"device_size\": %" PRIu64 ",\n  \"events\": %zu,\n  \"writes\": %" PRIu64
	       ",\n  \"flushes\": %" PRIu64 ",\n  \"bytes\": %" PRIu64
	       ",\n  \"torn_tail\": %s,\n  \"log_end\": %" PRIu64 ",\n",
	       info->dev_size, info->nevents, info->writes, info->flushes, info->bytes,
	       info->torn_tail ? "true" : "false",
	       info->nevents ? info->event_end[info->nevents - 1] : (uint64_t)ARB_RECLOG_HDR_SIZE);
	print_flushes_json(dev, info);
	printf("}\n");
}

static void print_flush_list(struct arb_dev *dev, const struct arb_replay_info *info)
{
	if (info->flushes == 0 || info->flushes > FLUSHES_LISTED)
		return;
	printf("flush events:");
	for (size_t i = 0; i < info->nevents; i++)
		if (arb_memdev_event_is_flush(dev, i))
			printf(" %zu", i);
	printf("\n");
}

static void print_text(const struct replay_args *a, struct arb_dev *dev,
                       const struct arb_replay_info *info)
{
	printf("log %s on base %s\n", a->log, a->base);
	printf("device size %" PRIu64 " bytes\n", info->dev_size);
	printf("%zu events: %" PRIu64 " writes (%" PRIu64 " bytes), %" PRIu64 " flushes\n",
	       info->nevents, info->writes, info->bytes, info->flushes);
	printf("log ends at %" PRIu64 "%s\n",
	       info->nevents ? info->event_end[info->nevents - 1] : (uint64_t)ARB_RECLOG_HDR_SIZE,
	       info->torn_tail ? "; a torn last record (the run was killed) is dropped" : "");
	print_flush_list(dev, info);
}

/* ---- the image after a cut ------------------------------------------------------------------ */

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* The image into fd, sparse: a crash image is mostly the empty device. */
static int write_image(int fd, const uint8_t *data, uint64_t size)
{
	for (uint64_t off = 0; off < size; off += WRITE_CHUNK) {
		size_t n = size - off < WRITE_CHUNK ? (size_t)(size - off) : WRITE_CHUNK;

		if (all_zero(data + off, n))
			continue;
		for (size_t done = 0; done < n;) {
			ssize_t w = pwrite(fd, data + off + done, n - done, (off_t)(off + done));

			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				return w < 0 ? -errno : -EIO;
			done += (size_t)w;
		}
	}
	return ftruncate(fd, (off_t)size) < 0 ? -errno : 0;
}

static int save_image(const struct replay_args *a, struct arb_dev *img)
{
	int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (a->force ? O_TRUNC : O_EXCL);
	int fd = open(a->out, flags, 0644);
	int err;

	if (fd < 0) {
		err = -errno;
		if (err == -EEXIST)
			cli_error("%s exists: not overwriting it without -f", a->out);
		else
			cli_error("cannot create %s: %s", a->out, strerror(-err));
		return err;
	}
	err = write_image(fd, arb_memdev_data(img), img->size);
	if (close(fd) < 0 && !err)
		err = -errno;
	if (err)
		cli_error("cannot write %s: %s", a->out, strerror(-err));
	return err;
}

static void print_written(const struct replay_args *a, size_t cut,
                          const struct arb_replay_info *info)
{
	if (a->fmt == SV_JSON) {
		printf("{\"output\": ");
		sv_json_string(a->out);
		printf(", \"cut\": %zu, \"events\": %zu, \"seed\": %" PRIu64 "}\n", cut,
		       info->nevents, a->seed);
		return;
	}
	printf("wrote %s: the image after a power cut before event %zu of %zu", a->out, cut,
	       info->nevents);
	if (a->seed)
		printf(", unflushed writes as seed %" PRIu64 " leaves them", a->seed);
	printf("\n");
}

static int cut_image(const struct replay_args *a, struct arb_dev *dev,
                     const struct arb_replay_info *info)
{
	size_t cut = a->have_cut ? (size_t)a->cut : info->nevents;
	struct arb_dev *img;
	int err;

	if (a->have_cut && a->cut > info->nevents) {
		cli_error("--cut %" PRIu64 ": the log has only %zu events", a->cut, info->nevents);
		return -EINVAL;
	}
	err = arb_memdev_crash_image(dev, cut, a->seed, &img);
	if (err) {
		cli_error("cannot build the image: %s", strerror(-err));
		return err;
	}
	err = save_image(a, img);
	arb_dev_close(img);
	if (!err)
		print_written(a, cut, info);
	return err;
}

/* ---- the command -------------------------------------------------------------------------- */

enum { OPT_CUT = 256, OPT_SEED };

static void parse_replay_args(const struct cmd_struct *cmd, int argc, char **argv,
                              struct replay_args *a)
{
	static const struct option longopts[] = {
	        {"cut", required_argument, NULL, OPT_CUT},
	        {"seed", required_argument, NULL, OPT_SEED},
	        {"output", required_argument, NULL, 'o'},
	        {"force", no_argument, NULL, 'f'},
	        SV_FORMAT_LONGOPT,
	        {NULL, 0, NULL, 0},
	};
	int c;

	while ((c = cli_getopt(cmd, argc, argv, "o:fj", longopts)) != -1) {
		if (sv_format_opt(cmd, c, &a->fmt))
			continue;
		if (c == OPT_CUT) {
			cli_check_arg(cmd, cli_parse_u64(optarg, &a->cut), "event count", optarg);
			a->have_cut = true;
		} else if (c == OPT_SEED) {
			cli_check_arg(cmd, cli_parse_u64(optarg, &a->seed), "seed", optarg);
		} else if (c == 'o') {
			a->out = optarg;
		} else if (c == 'f') {
			a->force = true;
		}
	}
	cli_check_argc(cmd, argc - optind, 2, 2);
	a->base = argv[optind];
	a->log = argv[optind + 1];
	if (!a->out && (a->have_cut || a->seed || a->force))
		exit(cli_usage_error(cmd, "--cut, --seed and -f go with -o OUT"));
}

static int cmd_inspect_replay(const struct cmd_struct *cmd, int argc, char **argv)
{
	struct replay_args a = {0};
	struct arb_replay_info info;
	struct arb_dev *dev;
	int err;

	parse_replay_args(cmd, argc, argv, &a);
	if (load(&a, &dev, &info))
		return CLI_EXIT_ERROR;
	err = 0;
	if (a.out)
		err = cut_image(&a, dev, &info);
	else if (a.fmt == SV_JSON)
		print_json(&a, dev, &info);
	else
		print_text(&a, dev, &info);
	arb_dev_close(dev);
	arb_replay_info_free(&info);
	return err ? CLI_EXIT_ERROR : CLI_EXIT_OK;
}

static const char *const cmd_inspect_replay_usage[] = {
        "arbor inspect replay BASE LOG [--cut N] [--seed S] [-o OUT [-f]] [--format FMT]",
        "",
        "Replay a recording of an arborfs run into the image a power cut leaves.",
        "",
        "LOG is what arborfs -o record=LOG wrote: every device write and flush of",
        "the run, in order; BASE is a copy of the image taken before the mount.",
        "Each write and each flush is one event, numbered from 0.  Without -o,",
        "print a summary: the device size, the events, writes, flushes and bytes",
        "written, whether the last record was torn (the run was killed while",
        "logging; it is dropped), and the event number of each flush when there",
        "are few.  With -o, write the image after a power cut before event N",
        "(default: after all of them) to OUT.  A non-zero seed loses and reorders",
        "the writes after the last flush before the cut as a volatile cache may:",
        "a random subset, in a random order, the same for the same seed.",
        "This is what tests/crash/crashcheck prints to reproduce a failure.",
        "",
        OPTLINE("--cut N", "a power cut before event N (0: the base image)"),
        OPTLINE("--seed S", "unflushed writes as seed S leaves them (default 0: all land)"),
        OPTLINE("-o, --output OUT", "write the image to OUT (a new file)"),
        OPTLINE("-f, --force", "overwrite OUT if it exists"),
        OPTLINE("--format FMT", "text (the default) or json"),
        OPTLINE("-j", "the same as --format json"),
        NULL,
};

const struct cmd_struct cmd_struct_inspect_replay = {"replay", cmd_inspect_replay,
                                                     cmd_inspect_replay_usage, NULL, 0};
