/* SPDX-License-Identifier: MIT */
/*
 * fuzz_fsck.c - libFuzzer harness: fsck on a damaged image.
 *
 * The input patches the base image (fuzz.h).  arb_fsck runs three times:
 * a check, a repair, a check again.  The device is wrapped so that every
 * write is seen: a check must write nothing, and a repair must write only
 * inside the filesystem, never in the reserved head of the device.  When
 * the repair returns 0 saying it fixed every problem it found, the second
 * check must find none, and the filesystem must open read-only and
 * writable.  A crash, a sanitizer report, a leak, a hang or one of these
 * broken promises (an abort with a message) is a bug.
 */
#include <stdio.h>
#include <stdlib.h>

#include "arbor/fs.h"
#include "arbor/fsck.h"
#include "arbor/io.h"
#include "arbor_format.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A device passing every request to a memdev, watching the writes. */
struct guard {
	struct arb_dev dev; /* first: the public part */
	struct arb_dev *inner;
	bool forbid_writes;
	const char *phase;
};

static void broken(const struct guard *g, const char *what)
{
	fprintf(stderr, "fuzz_fsck: %s: %s\n", g->phase, what);
	abort();
}

static int guard_pread(struct arb_dev *dev, void *buf, size_t len, uint64_t off)
{
	struct guard *g = (struct guard *)dev;

	return g->inner->ops->pread(g->inner, buf, len, off);
}

static int guard_pwritev(struct arb_dev *dev, const struct iovec *iov, int iovcnt, uint64_t off)
{
	struct guard *g = (struct guard *)dev;
	uint64_t len = 0;

	for (int i = 0; i < iovcnt; i++)
		len += iov[i].iov_len;
	if (g->forbid_writes)
		broken(g, "a check without repair wrote to the device");
	if (len > dev->size || off > dev->size - len)
		broken(g, "a write beyond the end of the device");
	if (off < ARB_RESERVED_HEAD)
		broken(g, "a write in the reserved head of the device");
	return g->inner->ops->pwritev(g->inner, iov, iovcnt, off);
}

static int guard_flush(struct arb_dev *dev)
{
	struct guard *g = (struct guard *)dev;

	if (g->forbid_writes)
		broken(g, "a check without repair flushed the device");
	return g->inner->ops->flush(g->inner);
}

static void guard_close(struct arb_dev *dev)
{
	(void)dev; /* the memdev is closed by its owner */
}

static const struct arb_dev_ops guard_ops = {
        .pread = guard_pread,
        .pwritev = guard_pwritev,
        .flush = guard_flush,
        .close = guard_close,
};

static int run_fsck(struct guard *g, unsigned flags, bool repair, struct arb_fsck_report *r)
{
	struct arb_fsck_opts o = {
	        .repair = repair,
	        .check_data = (flags & FZ_FSCK_CHECK_DATA) != 0,
	        .no_rollback = (flags & FZ_FSCK_NO_ROLLBACK) != 0,
	        .msg = fz_msg,
	};

	g->forbid_writes = !repair;
	return arb_fsck(&g->dev, &o, r);
}

/* After a repair that claims to have fixed everything. */
static void expect_repaired(struct guard *g, unsigned flags)
{
	struct arb_open_opts oo = {.read_only = true, .time_sec = FZ_TIME, .msg = fz_msg};
	struct arb_fsck_report r;
	struct arb_fs *fs;
	int err;

	g->phase = "the check after a repair";
	err = run_fsck(g, flags, false, &r);
	if (err || r.errors) {
		fprintf(stderr, "fuzz_fsck: returned %d, %llu errors\n", err,
		        (unsigned long long)r.errors);
		broken(g, "the repair left problems that a new check finds");
	}
	g->phase = "opening after a repair";
	if (arb_open(&g->dev, &oo, &fs))
		broken(g, "the repaired filesystem does not open read-only");
	arb_close(fs);
	oo.read_only = false;
	g->forbid_writes = false;
	if (arb_open(&g->dev, &oo, &fs))
		broken(g, "the repaired filesystem does not open writable");
	arb_close(fs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct guard g = {.dev = {.ops = &guard_ops}};
	struct arb_fsck_report r;
	unsigned flags;
	int err;

	fz_det_random(true);
	if (fz_make_dev(data, size, &g.inner, &flags))
		abort();
	g.dev.size = g.inner->size;
	g.phase = "check";
	(void)run_fsck(&g, flags, false, &r);
	g.phase = "repair";
	err = run_fsck(&g, flags, true, &r);
	if (!err && r.errors == r.fixed)
		expect_repaired(&g, flags);
	arb_dev_close(g.inner);
	fz_det_random(false);
	return 0;
}
