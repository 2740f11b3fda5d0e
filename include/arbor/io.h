/* SPDX-License-Identifier: MIT */
/*
 * io.h - the block device seam.  Every byte the core reads or writes goes
 * through a struct arb_dev; backends: a regular file or block device
 * (arb_dev_open_file) and an in-memory recording device for tests
 * (memdev.h).
 */
#ifndef ARBOR_IO_H
#define ARBOR_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct arb_dev;

struct arb_dev_ops {
	/* Full transfers: return 0, or a negative errno (-EIO on a short one). */
	int (*pread)(struct arb_dev *dev, void *buf, size_t len, uint64_t off);
	int (*pwritev)(struct arb_dev *dev, const struct iovec *iov, int iovcnt, uint64_t off);
	/* Make every completed write durable (fdatasync for files). */
	int (*flush)(struct arb_dev *dev);
	void (*close)(struct arb_dev *dev);
	/* Optional: start reading a range that will be wanted soon. */
	void (*prefetch)(struct arb_dev *dev, uint64_t off, uint64_t len);
};

struct arb_dev {
	const struct arb_dev_ops *ops;
	uint64_t size; /* bytes */
	bool read_only;
};

#define ARB_DEV_RDONLY 0x1 /* open read-only */
#define ARB_DEV_EXCL 0x2   /* O_EXCL on block devices, an exclusive flock on files */

/* Open a regular file or a block device; size from fstat / BLKGETSIZE64. */
int arb_dev_open_file(const char *path, int flags, struct arb_dev **ret_dev);

int arb_dev_read(struct arb_dev *dev, void *buf, size_t len, uint64_t off);
int arb_dev_write(struct arb_dev *dev, const void *buf, size_t len, uint64_t off);
int arb_dev_writev(struct arb_dev *dev, const struct iovec *iov, int iovcnt, uint64_t off);
int arb_dev_flush(struct arb_dev *dev);
/* A hint, never an error: the range will be read soon. */
void arb_dev_prefetch(struct arb_dev *dev, uint64_t off, uint64_t len);
void arb_dev_close(struct arb_dev *dev);

#endif
