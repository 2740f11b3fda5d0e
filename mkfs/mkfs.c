/* SPDX-License-Identifier: MIT */
/*
 * mkfs.c - mkfs.arbor: create an Arbor filesystem on a block device or an
 * image file.
 *
 * Safety checks run in btrfs-progs' order (mkfs/common.c) and all of them
 * before the first byte is written, so a refused target stays untouched:
 *
 *   1. the command line (usage errors exit 2);
 *   2. the target exists (or -s SIZE says how big to create it);
 *   3. libblkid full probe (filesystems, partition tables) plus Arbor's own
 *      superblock magic: refuse without -f, naming what was found;
 *   4. not mounted (directly, through a loop device, or by a FUSE daemon
 *      naming the image) and not used as swap;
 *   5. big enough (ARB_MIN_DEVICE_SIZE);
 *   6. exclusive open: O_EXCL on a block device, a flock on a file.
 *
 * Then: create or grow the file (-s), wipe the old signatures (-f), format,
 * create the top-level subvolume and its root directory, commit.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <blkid/blkid.h>
#include <ctype.h>
#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <mntent.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <uuid/uuid.h>

#ifdef __linux__
#include <linux/fs.h>
#endif

#include "arbor/fs.h"
#include "arbor/io.h"
#include "arbor/msg.h"
#include "arbor/super.h"
#include "arbor/vfs.h"
#include "inuse.h"
#include "parse.h"
#include "arbor_format.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

#define PROG "mkfs.arbor"

#define EXIT_OK 0
#define EXIT_ERROR 1 /* operational error, or a refusal */
#define EXIT_USAGE 2

#define LABEL_MAX 128u
#define ROOT_DIR_PERM 0755u

/* Every slot of every superblock copy. */
#define MAX_SLOTS ((int)(ARB_SUPER_COPIES * ARB_SUPER_SLOTS))

struct mkfs_opts {
	const char *path;
	bool force, quiet;
	const char *label;
	bool have_uuid;
	uuid_t fsid;
	uint32_t nodesize;
	bool have_size;
	uint64_t size; /* -s */
	bool have_time;
	uint64_t time_sec; /* SOURCE_DATE_EPOCH */
};

struct target {
	bool exists, is_blk;
	struct stat st;
	uint64_t cur_size; /* bytes now: file size or device size */
	uint64_t fs_size;  /* bytes the filesystem will span */
	bool found;        /* some signature was found by the probes */
	bool created;      /* this run created the file */
};

/* ---- messages ---------------------------------------------------------- */

static void vmessage(const char *prefix, const char *fmt, va_list ap)
{
	fprintf(stderr, "%s: ", prefix);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

static void __attribute__((format(printf, 1, 2))) error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmessage("error", fmt, ap);
	va_end(ap);
}

/* The core's message channel: errors and warnings only. */
static void core_msg(void *ctx, enum arb_msg_level level, const char *text)
{
	size_t len = strlen(text);

	(void)ctx;
	if (level > ARB_MSG_WARN)
		return;
	while (len > 0 && text[len - 1] == '\n')
		len--;
	fprintf(stderr, "%s: %.*s\n", level == ARB_MSG_ERR ? "error" : "warning", (int)len, text);
}

/* ---- usage --------------------------------------------------------------- */

#define OPTLINE(opt, text) "    " opt "\n            " text

static const char *const usage_text[] = {
        "Create an Arbor filesystem on a block device or an image file.",
        "",
        "Options:",
        OPTLINE("-f, --force", "overwrite existing filesystems and partition tables"),
        OPTLINE("-L, --label LABEL", "filesystem label, at most 128 bytes"),
        OPTLINE("-U, --uuid UUID", "filesystem UUID, or 'random' (the default)"),
        OPTLINE("-b, --sectorsize SIZE", "sector size: only 4096 is supported"),
        OPTLINE("-n, --nodesize SIZE",
                "tree node size, a power of two from 4K to 64K (default 16K)"),
        OPTLINE("-s, --size SIZE", "filesystem size; a missing FILE is created and a smaller"),
        "            one grown (never shrunk); on a device, at most its size",
        OPTLINE("-q, --quiet", "print nothing but errors"),
        OPTLINE("-V, --version", "show the version"),
        OPTLINE("-h, --help", "show this help"),
        "",
        "Sizes take a K, M, G or T suffix (powers of 1024).  SOURCE_DATE_EPOCH, if",
        "set, fixes the creation time; with -U it makes the image reproducible.",
        "",
        "Exit status: 0 on success, 1 when the filesystem could not be created (an",
        "error, or a refusal to overwrite or to touch a mounted device), 2 on a usage",
        "error.",
        NULL,
};

static void print_synopsis(FILE *out)
{
	fprintf(out, "usage: " PROG " [options] DEVICE|FILE\n");
}

static void print_help(void)
{
	print_synopsis(stdout);
	putchar('\n');
	for (int i = 0; usage_text[i]; i++)
		printf("%s\n", usage_text[i]);
}

static void __attribute__((format(printf, 1, 2), noreturn)) usage_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmessage("error", fmt, ap);
	va_end(ap);
	print_synopsis(stderr);
	fprintf(stderr, "Try '" PROG " --help' for more information.\n");
	exit(EXIT_USAGE);
}

/* ---- number parsing -------------------------------------------------------- */

/* "1.00 TiB" */
static void pretty_size(uint64_t bytes, char *buf, size_t len)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
	double v = (double)bytes;
	unsigned int u = 0;

	while (v >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%" PRIu64 " B", bytes);
	else
		snprintf(buf, len, "%.2f %s", v, units[u]);
}

/* SOURCE_DATE_EPOCH: 0 if unset; exits on a malformed value. */
static void parse_source_date_epoch(struct mkfs_opts *o)
{
	const char *s = getenv("SOURCE_DATE_EPOCH");
	unsigned long long v;
	char *end;

	if (!s || !*s)
		return;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (!isdigit((unsigned char)*s) || *end || errno || v == 0) {
		error("SOURCE_DATE_EPOCH='%s' is not a positive number of seconds", s);
		exit(EXIT_ERROR);
	}
	o->have_time = true;
	o->time_sec = v;
}

/* ---- the command line ---------------------------------------------------- */

static void parse_args(int argc, char **argv, struct mkfs_opts *o)
{
	static const struct option longopts[] = {
	        {"force", no_argument, NULL, 'f'},
	        {"label", required_argument, NULL, 'L'},
	        {"uuid", required_argument, NULL, 'U'},
	        {"sectorsize", required_argument, NULL, 'b'},
	        {"nodesize", required_argument, NULL, 'n'},
	        {"size", required_argument, NULL, 's'},
	        {"quiet", no_argument, NULL, 'q'},
	        {"version", no_argument, NULL, 'V'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	uint64_t v;
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":fL:U:b:n:s:qVh", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			o->force = true;
			break;
		case 'L':
			if (strlen(optarg) > LABEL_MAX)
				usage_error("label is %zu bytes long: at most %u are allowed",
				            strlen(optarg), LABEL_MAX);
			o->label = optarg;
			break;
		case 'U':
			if (!strcasecmp(optarg, "random")) {
				uuid_generate(o->fsid);
			} else if (uuid_parse(optarg, o->fsid)) {
				usage_error("invalid UUID '%s' (use xxxxxxxx-xxxx-xxxx-xxxx-"
				            "xxxxxxxxxxxx or 'random')",
				            optarg);
			}
			o->have_uuid = true;
			break;
		case 'b':
			if (cli_parse_size(optarg, &v))
				usage_error("invalid sector size '%s'", optarg);
			if (v != ARB_SECTOR_SIZE)
				usage_error("sector size %" PRIu64 " is not supported: Arbor "
				            "sectors are always %u bytes",
				            v, ARB_SECTOR_SIZE);
			break;
		case 'n':
			if (cli_parse_size(optarg, &v) || v < ARB_MIN_NODESIZE ||
			    v > ARB_MAX_NODESIZE || (v & (v - 1)))
				usage_error(
				        "invalid node size '%s': use a power of two from %u to %u",
				        optarg, ARB_MIN_NODESIZE, ARB_MAX_NODESIZE);
			o->nodesize = (uint32_t)v;
			break;
		case 's':
			if (cli_parse_size(optarg, &v) || v == 0)
				usage_error("invalid size '%s'", optarg);
			o->have_size = true;
			o->size = v;
			break;
		case 'q':
			o->quiet = true;
			break;
		case 'V':
			printf(PROG " (arbor) %s\n", PACKAGE_VERSION);
			exit(EXIT_OK);
		case 'h':
			print_help();
			exit(EXIT_OK);
		case ':':
			usage_error("option '%s' needs an argument", argv[optind - 1]);
		default:
			if (optopt)
				usage_error("unknown option '-%c'", optopt);
			usage_error("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (argc - optind < 1)
		usage_error("no device or file given");
	if (argc - optind > 1)
		usage_error("too many arguments");
	o->path = argv[optind];
	if (!*o->path)
		usage_error("empty device or file name");
}

/* ---- the target ---------------------------------------------------------- */

static int blockdev_size(const char *path, uint64_t *size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	int ret = 0;

	if (fd < 0)
		return -errno;
#ifdef BLKGETSIZE64
	if (ioctl(fd, BLKGETSIZE64, size) < 0)
		ret = -errno;
#else
	ret = -EOPNOTSUPP;
#endif
	close(fd);
	return ret;
}

static int stat_target(const struct mkfs_opts *o, struct target *t)
{
	if (stat(o->path, &t->st) < 0) {
		if (errno != ENOENT) {
			error("cannot access %s: %m", o->path);
			return -1;
		}
		if (!o->have_size) {
			error("%s does not exist: use -s SIZE to create an image file of that size",
			      o->path);
			return -1;
		}
		t->fs_size = o->size;
		return 0;
	}
	t->exists = true;
	if (S_ISBLK(t->st.st_mode)) {
		int ret = blockdev_size(o->path, &t->cur_size);

		t->is_blk = true;
		if (ret < 0) {
			error("cannot get the size of %s: %s", o->path, strerror(-ret));
			return -1;
		}
	} else if (S_ISREG(t->st.st_mode)) {
		t->cur_size = (uint64_t)t->st.st_size;
	} else {
		error("%s is neither a block device nor a regular file", o->path);
		return -1;
	}
	if (t->is_blk && o->have_size && o->size > t->cur_size) {
		error("size %" PRIu64 " is larger than the device %s (%" PRIu64 " bytes)", o->size,
		      o->path, t->cur_size);
		return -1;
	}
	t->fs_size = o->have_size ? o->size : t->cur_size;
	return 0;
}

/* ---- existing signatures ------------------------------------------------- */

/* Name what the probe found (nothing with -f: the wipe reports it). */
static void report_blkid_value(blkid_probe pr, const char *path, bool force)
{
	const char *type = NULL, *label = NULL, *pttype = NULL;

	if (force)
		return;
	blkid_probe_lookup_value(pr, "TYPE", &type, NULL);
	blkid_probe_lookup_value(pr, "LABEL", &label, NULL);
	blkid_probe_lookup_value(pr, "PTTYPE", &pttype, NULL);
	if (type && label && *label)
		error("%s contains a %s filesystem labelled '%s'", path, type, label);
	else if (type)
		error("%s contains a %s filesystem", path, type);
	if (pttype)
		error("%s contains a partition table (%s)", path, pttype);
}

/* Several superblocks: name each of them (wipefs' loop, read-only). */
static void report_ambivalent(const char *path)
{
	blkid_probe pr = blkid_new_probe_from_filename(path);

	if (!pr)
		return;
	blkid_probe_enable_superblocks(pr, 1);
	blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_TYPE | BLKID_SUBLKS_LABEL);
	blkid_probe_enable_partitions(pr, 1);
	while (blkid_do_probe(pr) == 0)
		report_blkid_value(pr, path, false);
	blkid_free_probe(pr);
}

/* blkid: 1 if something was found, 0 if not, -1 on error (reported). */
static int probe_blkid(const char *path, bool force)
{
	blkid_probe pr = blkid_new_probe_from_filename(path);
	int ret;

	if (!pr) {
		error("cannot probe %s for existing filesystems: %m", path);
		return -1;
	}
	blkid_probe_enable_superblocks(pr, 1);
	blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_TYPE | BLKID_SUBLKS_LABEL);
	blkid_probe_enable_partitions(pr, 1);
	ret = blkid_do_fullprobe(pr);
	if (ret == 0) {
		report_blkid_value(pr, path, force);
		ret = 1;
	} else if (ret == -2) {
		if (!force) {
			error("%s contains several filesystem signatures:", path);
			report_ambivalent(path);
		}
		ret = 1;
	} else if (ret == 1) {
		ret = 0;
	} else {
		error("cannot probe %s for existing filesystems", path);
		ret = -1;
	}
	blkid_free_probe(pr);
	return ret;
}

/* Arbor's own superblocks (libblkid does not know them): 1 if any slot
 * carries the magic, 0 if none, -1 on error. */
static int probe_arbor(const char *path, bool force)
{
	struct arb_super_slot *slots;
	struct arb_dev *dev;
	int n, ret, found = 0, valid = -1;

	ret = arb_dev_open_file(path, ARB_DEV_RDONLY, &dev);
	if (ret < 0) {
		error("cannot open %s: %s", path, strerror(-ret));
		return -1;
	}
	slots = calloc(MAX_SLOTS, sizeof(*slots));
	if (!slots) {
		error("out of memory");
		arb_dev_close(dev);
		return -1;
	}
	n = dev->size >= ARB_MIN_DEVICE_SIZE ? arb_super_read_all(dev, slots, MAX_SLOTS) : 0;
	if (n < 0) {
		error("cannot read %s: %s", path, strerror(-n));
		found = -1;
	}
	for (int i = 0; i < n; i++) {
		if (slots[i].status == ARB_SLOT_EMPTY || slots[i].status == ARB_SLOT_IO_ERROR)
			continue;
		found = 1;
		if (slots[i].status == ARB_SLOT_VALID &&
		    (valid < 0 ||
		     le64toh(slots[i].sb.generation) > le64toh(slots[valid].sb.generation)))
			valid = i;
	}
	if (found && !force) {
		char label[LABEL_MAX + 1] = "";
		char uuid[37] = "";

		if (valid >= 0) {
			memcpy(label, slots[valid].sb.label, LABEL_MAX);
			uuid_unparse(slots[valid].sb.fsid, uuid);
		}
		if (valid < 0)
			error("%s contains damaged Arbor superblocks", path);
		else if (*label)
			error("%s contains an Arbor filesystem labelled '%s' (uuid %s)", path,
			      label, uuid);
		else
			error("%s contains an Arbor filesystem (uuid %s)", path, uuid);
	}
	free(slots);
	arb_dev_close(dev);
	return found;
}

static int check_signatures(const struct mkfs_opts *o, struct target *t)
{
	int b, a;

	if (!t->exists || t->cur_size == 0)
		return 0;
	b = probe_blkid(o->path, o->force);
	if (b < 0)
		return -1;
	a = probe_arbor(o->path, o->force);
	if (a < 0)
		return -1;
	t->found = a || b;
	if (t->found && !o->force) {
		error("use -f to overwrite %s", o->path);
		return -1;
	}
	return 0;
}

/* ---- mounted, swap ----------------------------------------------------- */

static int check_mounted(const struct mkfs_opts *o, const struct target *t)
{
	struct inuse u;
	int ret;

	if (!t->exists)
		return 0;
	ret = inuse_find(o->path, &u);
	if (ret < 0)
		error("cannot read /proc/self/mounts: %m");
	else if (ret && u.swap)
		error("%s is in use as swap%s%s", o->path, *u.via ? " through /dev/" : "", u.via);
	else if (ret && *u.via)
		error("%s is mounted on %s through /dev/%s", o->path, u.mountpoint, u.via);
	else if (ret)
		error("%s is mounted on %s", o->path, u.mountpoint);
	return ret ? -1 : 0;
}

/* ---- size ------------------------------------------------------------------ */

static int check_size(const struct mkfs_opts *o, const struct target *t)
{
	uint64_t usable = t->fs_size & ~(uint64_t)(ARB_SECTOR_SIZE - 1);
	char min[32];

	if (usable >= ARB_MIN_DEVICE_SIZE)
		return 0;
	pretty_size(ARB_MIN_DEVICE_SIZE, min, sizeof(min));
	if (o->have_size)
		error("size %" PRIu64 " is too small: the minimum is %llu bytes (%s)", t->fs_size,
		      (unsigned long long)ARB_MIN_DEVICE_SIZE, min);
	else
		error("%s is too small (%" PRIu64 " bytes): the minimum is %llu bytes (%s)",
		      o->path, t->fs_size, (unsigned long long)ARB_MIN_DEVICE_SIZE, min);
	return -1;
}

/* ---- writing ----------------------------------------------------------------- */

static int create_file(const char *path, struct target *t)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);

	if (fd < 0) {
		error("cannot create %s: %m", path);
		return -1;
	}
	if (fstat(fd, &t->st) < 0) {
		error("cannot stat %s: %m", path);
		close(fd);
		unlink(path);
		return -1;
	}
	close(fd);
	t->created = true;
	return 0;
}

static int open_target(const struct mkfs_opts *o, struct arb_dev **ret_dev)
{
	int ret = arb_dev_open_file(o->path, ARB_DEV_EXCL, ret_dev);

	if (ret == -EBUSY)
		error("%s is in use (mounted, or opened exclusively by another program)", o->path);
	else if (ret < 0)
		error("cannot open %s: %s", o->path, strerror(-ret));
	return ret < 0 ? -1 : 0;
}

/* Grow a file to -s SIZE (the device is open and locked). */
static int grow_file(const struct mkfs_opts *o, struct target *t, struct arb_dev *dev)
{
	struct stat st;
	int fd;

	if (t->is_blk || !o->have_size || dev->size >= o->size)
		return 0;
	fd = open(o->path, O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		error("cannot open %s: %m", o->path);
		return -1;
	}
	if (fstat(fd, &st) < 0 || st.st_dev != t->st.st_dev || st.st_ino != t->st.st_ino) {
		error("%s changed while being formatted", o->path);
		close(fd);
		return -1;
	}
	if (ftruncate(fd, (off_t)o->size) < 0) {
		error("cannot grow %s to %" PRIu64 " bytes: %m", o->path, o->size);
		close(fd);
		return -1;
	}
	close(fd);
	dev->size = o->size; /* what arb_dev_open_file would now find */
	return 0;
}

/* Erase every signature libblkid knows (blkid_do_wipe loop, as wipefs). */
static int wipe_blkid(const char *path, bool quiet)
{
	blkid_probe pr;
	int fd, ret = 0;

	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		error("cannot open %s: %m", path);
		return -1;
	}
	pr = blkid_new_probe();
	if (!pr || blkid_probe_set_device(pr, fd, 0, 0)) {
		error("cannot probe %s", path);
		if (pr)
			blkid_free_probe(pr);
		close(fd);
		return -1;
	}
	blkid_probe_enable_superblocks(pr, 1);
	blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_MAGIC | BLKID_SUBLKS_TYPE |
	                                              BLKID_SUBLKS_BADCSUM);
	blkid_probe_enable_partitions(pr, 1);
	blkid_probe_set_partitions_flags(pr, BLKID_PARTS_MAGIC);
	while (blkid_do_probe(pr) == 0) {
		const char *type = NULL, *off = NULL;

		if (blkid_probe_lookup_value(pr, "TYPE", &type, NULL))
			blkid_probe_lookup_value(pr, "PTTYPE", &type, NULL);
		if (blkid_probe_lookup_value(pr, "SBMAGIC_OFFSET", &off, NULL))
			blkid_probe_lookup_value(pr, "PTMAGIC_OFFSET", &off, NULL);
		if (blkid_do_wipe(pr, 0)) {
			error("cannot erase the %s signature on %s", type ? type : "unknown", path);
			ret = -1;
			break;
		}
		if (!quiet)
			printf("erased the %s signature at offset %s of %s\n",
			       type ? type : "unknown", off ? off : "?", path);
	}
	blkid_free_probe(pr);
	if (!ret && fsync(fd) < 0) {
		error("cannot write to %s: %m", path);
		ret = -1;
	}
	close(fd);
	return ret;
}

/* Zero the slots that carry Arbor's magic, wherever an old filesystem of
 * this or a recorded size put them (the new format rewrites only its own
 * copies). */
static int wipe_arbor(struct arb_dev *dev, const char *path, bool quiet)
{
	static const uint8_t zero[ARB_SUPER_SLOT_SIZE];
	struct arb_super_slot *slots = calloc(MAX_SLOTS, sizeof(*slots));
	uint64_t sizes[1 + MAX_SLOTS];
	int n, nsizes = 0, erased = 0, ret = 0;

	if (!slots) {
		error("out of memory");
		return -1;
	}
	n = arb_super_read_all(dev, slots, MAX_SLOTS);
	sizes[nsizes++] = dev->size;
	for (int i = 0; i < n; i++) {
		uint64_t total = le64toh(slots[i].sb.total_bytes);

		if (slots[i].status == ARB_SLOT_VALID && total <= dev->size)
			sizes[nsizes++] = total;
	}
	for (int k = 0; k < nsizes && !ret; k++) {
		uint64_t offs[ARB_SUPER_COPIES];
		int copies = arb_super_copies(sizes[k], offs);

		for (int c = 0; c < copies && !ret; c++) {
			for (uint32_t s = 0; s < ARB_SUPER_SLOTS && !ret; s++) {
				uint64_t off = offs[c] + (uint64_t)s * ARB_SUPER_SLOT_SIZE;
				struct arb_super sb;

				if (arb_dev_read(dev, &sb, sizeof(sb), off) ||
				    le64toh(sb.magic) != ARB_SUPER_MAGIC)
					continue;
				ret = arb_dev_write(dev, zero, sizeof(zero), off);
				if (ret < 0)
					error("cannot erase the old superblock at %" PRIu64
					      " on %s: %s",
					      off, path, strerror(-ret));
				else
					erased++;
			}
		}
	}
	free(slots);
	if (!ret && erased)
		ret = arb_dev_flush(dev);
	if (!ret && erased && !quiet)
		printf("erased %d Arbor superblock slot%s of %s\n", erased, erased == 1 ? "" : "s",
		       path);
	return ret < 0 ? -1 : 0;
}

/* Reproducible images: with SOURCE_DATE_EPOCH, the device UUID and the name
 * hash seed derive from the filesystem UUID instead of being random. */
static void derive_ids(const uuid_t fsid, uuid_t devuuid, uint64_t *hash_seed)
{
	static const char dev_name[] = "arbor device";
	static const char seed_name[] = "arbor hash seed";
	uuid_t seed;

	uuid_generate_sha1(devuuid, fsid, dev_name, sizeof(dev_name) - 1);
	uuid_generate_sha1(seed, fsid, seed_name, sizeof(seed_name) - 1);
	memcpy(hash_seed, seed, sizeof(*hash_seed));
	if (!*hash_seed)
		*hash_seed = 1;
}

static int make_filesystem(const struct mkfs_opts *o, struct arb_dev *dev, struct arb_fs_info *info)
{
	struct arb_format_opts fo = {
	        .nodesize = o->nodesize,
	        .size = o->have_size ? o->size : 0,
	        .label = o->label,
	        .time_sec = o->time_sec,
	};
	struct arb_open_opts oo = {.msg = core_msg};
	struct arb_cred cred = {(uint32_t)getuid(), (uint32_t)getgid()};
	uuid_t fsid, devuuid;
	uint64_t hash_seed;
	struct arb_fs *fs;
	int ret;

	if (o->have_uuid)
		uuid_copy(fsid, o->fsid);
	else
		uuid_generate(fsid);
	fo.fsid = fsid;
	if (o->have_time) {
		oo.time_sec = o->time_sec;
		derive_ids(fsid, devuuid, &hash_seed);
		fo.devuuid = devuuid;
		fo.hash_seed = hash_seed;
	}
	ret = arb_format(dev, &fo);
	if (ret < 0) {
		error("cannot format %s: %s", o->path, strerror(-ret));
		return -1;
	}
	ret = arb_open(dev, &oo, &fs);
	if (ret < 0) {
		error("cannot open the new filesystem on %s: %s", o->path, strerror(-ret));
		return -1;
	}
	ret = arb_vfs_init(fs, ROOT_DIR_PERM, &cred);
	if (ret < 0)
		error("cannot create the root directory on %s: %s", o->path, strerror(-ret));
	else if ((ret = arb_commit(fs)) < 0)
		error("cannot commit the new filesystem on %s: %s", o->path, strerror(-ret));
	if (!ret)
		arb_fs_info(fs, info);
	arb_close(fs);
	return ret < 0 ? -1 : 0;
}

static void print_summary(const struct mkfs_opts *o, const struct arb_fs_info *info)
{
	char uuid[37], size[32];

	uuid_unparse(info->fsid, uuid);
	pretty_size(info->total_bytes, size, sizeof(size));
	printf("created an Arbor filesystem on %s\n", o->path);
	printf("label:        %s\n", info->label[0] ? info->label : "(none)");
	printf("uuid:         %s\n", uuid);
	printf("node size:    %" PRIu32 "\n", info->nodesize);
	printf("sector size:  %" PRIu32 "\n", info->sectorsize);
	printf("device size:  %s (%" PRIu64 " bytes)\n", size, info->total_bytes);
	printf("features:     none\n");
}

int main(int argc, char **argv)
{
	struct mkfs_opts o = {.path = NULL};
	struct target t = {.exists = false};
	struct arb_fs_info info;
	struct arb_dev *dev = NULL;
	int ret;

	parse_args(argc, argv, &o);
	parse_source_date_epoch(&o);

	/* checks: nothing is written until all of them pass */
	if (stat_target(&o, &t) || check_signatures(&o, &t) || check_mounted(&o, &t) ||
	    check_size(&o, &t))
		return EXIT_ERROR;

	if (!t.exists && create_file(o.path, &t))
		return EXIT_ERROR;
	ret = open_target(&o, &dev);
	if (!ret)
		ret = grow_file(&o, &t, dev);
	if (!ret && t.found)
		ret = wipe_blkid(o.path, o.quiet);
	if (!ret && t.found)
		ret = wipe_arbor(dev, o.path, o.quiet);
	if (!ret)
		ret = make_filesystem(&o, dev, &info);
	if (dev)
		arb_dev_close(dev);
	if (ret) {
		if (t.created)
			unlink(o.path);
		return EXIT_ERROR;
	}
	if (!o.quiet)
		print_summary(&o, &info);
	return EXIT_OK;
}
