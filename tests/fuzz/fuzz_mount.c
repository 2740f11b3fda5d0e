/* SPDX-License-Identifier: MIT */
/*
 * fuzz_mount.c - libFuzzer harness: what a mount does with a damaged image.
 *
 * The input patches the base image (fuzz.h).  The harness opens it
 * read-only (the newest commit, and with flag bits 4-5 an older one),
 * reads everything as a mount would (fz_walk) and checks it (arb_check,
 * then arb_fsck_namespace when the trees are sound);
 * then opens it writable (replaying the fsync log for real), cleans the
 * orphans up, changes a few things (fz_change), commits, checks, and
 * opens and checks the result.  Any error return is fine; a crash, a sanitizer report, a
 * leak or a hang (libFuzzer's -timeout) is a bug.
 */
#include <stdint.h>
#include <stdlib.h>

#include "arbor/check.h"
#include "arbor/fs.h"
#include "arbor/fsck.h"
#include "arbor/io.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int open_fs(struct arb_dev *dev, bool read_only, uint64_t max_gen, struct arb_fs **ret)
{
	struct arb_open_opts oo = {
	        .read_only = read_only,
	        .cache_bytes = 1u << 20,
	        .max_generation = max_gen,
	        .time_sec = FZ_TIME,
	        .msg = fz_msg,
	};

	return arb_open(dev, &oo, ret);
}

/* arb_check, and when the trees and counts are sound, phase 3 of fsck
 * (its precondition). */
static void check(struct arb_fs *fs)
{
	struct arb_fsck_opts fo = {.msg = fz_msg};
	struct arb_fsck_report fr = {0};
	struct arb_check_report cr;

	if (!arb_check(fs, &cr))
		(void)arb_fsck_namespace(fs, &fo, &fr);
}

/* Read-only, the newest commit up to max_gen: its generation, or 0 if it
 * did not open. */
static uint64_t mount_ro(struct arb_dev *dev, uint64_t max_gen, bool walk)
{
	struct arb_fs_info info;
	struct arb_fs *fs;

	if (open_fs(dev, true, max_gen, &fs))
		return 0;
	if (walk)
		fz_walk(fs);
	check(fs);
	arb_fs_info(fs, &info);
	arb_close(fs);
	return info.generation;
}

static void mount_rw(struct arb_dev *dev)
{
	struct arb_fs *fs;

	if (open_fs(dev, false, 0, &fs))
		return;
	fz_change(fs);
	if (!arb_commit(fs))
		check(fs);
	arb_close(fs);
	(void)mount_ro(dev, 0, false);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct arb_dev *dev;
	unsigned flags, back;
	uint64_t gen;

	fz_det_random(true);
	if (fz_make_dev(data, size, &dev, &flags))
		abort();
	back = (flags >> FZ_GEN_BACK_SHIFT) & FZ_GEN_BACK_MASK;
	gen = mount_ro(dev, 0, true);
	if (back && gen > back)
		(void)mount_ro(dev, gen - back, true);
	mount_rw(dev);
	arb_dev_close(dev);
	fz_det_random(false);
	return 0;
}
