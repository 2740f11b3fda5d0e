/* SPDX-License-Identifier: MIT */
/*
 * inuse.c - is a device or an image file in use: mounted (directly,
 * through a partition or a loop device, or by a FUSE daemon whose mount
 * source names the image) or used as swap.  Shared by mkfs.arbor and
 * fsck.arbor, which refuse to write to a target in use.
 */
#include <dirent.h>
#include <limits.h>
#include <mntent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "inuse.h"

#define MAX_DEVS 64

/* Block devices that stand for the target: the device itself and its
 * partitions, or the loop devices a file backs. */
struct devset {
	dev_t devs[MAX_DEVS];
	char via[MAX_DEVS][NAME_MAX + 1]; /* "loop0" for a loop device, else "" */
	int n;
};

static void devset_add(struct devset *s, dev_t d, const char *via)
{
	if (s->n >= MAX_DEVS)
		return;
	s->devs[s->n] = d;
	snprintf(s->via[s->n], sizeof(s->via[0]), "%s", via);
	s->n++;
}

static int devset_find(const struct devset *s, dev_t d)
{
	for (int i = 0; i < s->n; i++) {
		if (s->devs[i] == d)
			return i;
	}
	return -1;
}

/* Read one line of a sysfs file, without the newline. */
static int read_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "re");
	bool ok;

	if (!f)
		return -1;
	ok = fgets(buf, (int)len, f) != NULL;
	fclose(f);
	if (!ok)
		return -1;
	buf[strcspn(buf, "\n")] = 0;
	return 0;
}

static int read_devnum(const char *path, dev_t *ret)
{
	char buf[64];
	unsigned int maj, min;

	if (read_line(path, buf, sizeof(buf)) || sscanf(buf, "%u:%u", &maj, &min) != 2)
		return -1;
	*ret = makedev(maj, min);
	return 0;
}

/* Partitions of a whole disk: sysfs subdirectories with a "partition" file. */
static void add_partitions(struct devset *s, dev_t whole)
{
	char dir[96], path[PATH_MAX];
	struct dirent *de;
	DIR *d;

	snprintf(dir, sizeof(dir), "/sys/dev/block/%u:%u", major(whole), minor(whole));
	d = opendir(dir);
	if (!d)
		return;
	while ((de = readdir(d)) != NULL) {
		dev_t part;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s/partition", dir, de->d_name);
		if (access(path, F_OK))
			continue;
		snprintf(path, sizeof(path), "%s/%s/dev", dir, de->d_name);
		if (!read_devnum(path, &part))
			devset_add(s, part, "");
	}
	closedir(d);
}

/* Loop devices whose backing file is `real`. */
static void add_loop_devices(struct devset *s, const char *real)
{
	char path[PATH_MAX], backing[PATH_MAX];
	struct dirent *de;
	DIR *d = opendir("/sys/block");

	if (!d)
		return;
	while ((de = readdir(d)) != NULL) {
		dev_t dev;

		if (strncmp(de->d_name, "loop", 4))
			continue;
		snprintf(path, sizeof(path), "/sys/block/%s/loop/backing_file", de->d_name);
		if (read_line(path, backing, sizeof(backing)) || strcmp(backing, real))
			continue;
		snprintf(path, sizeof(path), "/sys/block/%s/dev", de->d_name);
		if (!read_devnum(path, &dev)) {
			devset_add(s, dev, de->d_name);
			add_partitions(s, dev);
		}
	}
	closedir(d);
}

/* Does a mount source or swap name designate the target? */
static bool source_matches(const char *src, const char *path, const char *real,
                           const struct devset *s, const char **via)
{
	struct stat st;
	int i;

	*via = "";
	if (!strcmp(src, path) || (real && !strcmp(src, real)))
		return true;
	if (src[0] != '/' || stat(src, &st) < 0 || !S_ISBLK(st.st_mode))
		return false;
	i = devset_find(s, st.st_rdev);
	if (i < 0)
		return false;
	*via = s->via[i];
	return true;
}

static void devset_fill(struct devset *s, const char *path, const char *real)
{
	struct stat st;

	if (stat(path, &st) == 0 && S_ISBLK(st.st_mode)) {
		devset_add(s, st.st_rdev, "");
		add_partitions(s, st.st_rdev);
	} else if (real) {
		add_loop_devices(s, real);
	}
}

static int find_swap(const char *path, const char *real, const struct devset *s, struct inuse *u)
{
	char line[PATH_MAX + 128], name[PATH_MAX];
	FILE *f = fopen("/proc/swaps", "re");
	int ret = 0;

	if (!f)
		return 0;
	while (!ret && fgets(line, sizeof(line), f)) {
		const char *via;

		/* "Filename Type Size Used Priority"; spaces are escaped as \040 */
		if (sscanf(line, "%4095s", name) != 1 || name[0] != '/')
			continue;
		if (source_matches(name, path, real, s, &via)) {
			u->swap = true;
			snprintf(u->via, sizeof(u->via), "%s", via);
			ret = 1;
		}
	}
	fclose(f);
	return ret;
}

int inuse_find(const char *path, struct inuse *u)
{
	struct devset s = {.n = 0};
	char *real = realpath(path, NULL);
	struct mntent *me;
	FILE *f;
	int ret = 0;

	memset(u, 0, sizeof(*u));
	devset_fill(&s, path, real);
	f = setmntent("/proc/self/mounts", "re");
	if (!f) {
		free(real);
		return -1;
	}
	while (!ret && (me = getmntent(f)) != NULL) {
		const char *via;

		if (!source_matches(me->mnt_fsname, path, real, &s, &via))
			continue;
		snprintf(u->mountpoint, sizeof(u->mountpoint), "%s", me->mnt_dir);
		snprintf(u->via, sizeof(u->via), "%s", via);
		ret = 1;
	}
	endmntent(f);
	if (!ret)
		ret = find_swap(path, real, &s, u);
	free(real);
	return ret;
}
