/* SPDX-License-Identifier: MIT */
/*
 * io.c - the file / block device backend of struct arb_dev, and the generic
 * wrappers that check every request before it reaches a backend.
 *
 * Backends may assume what the wrappers enforce: the range lies inside the
 * device, writes only reach writable devices, and len > 0.
 */
/* 64-bit off_t on 32-bit hosts too: devices exceed 2 GiB. */
#ifndef _FILE_OFFSET_BITS
#define _FILE_OFFSET_BITS 64
#endif

#include "arbor/io.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef __linux__
#include <linux/fs.h>
#include <sys/ioctl.h>
#endif

/* iovecs handed to one pwritev call; well under any IOV_MAX. */
#define IOV_BATCH 64

struct file_dev {
	struct arb_dev dev; /* first: the public part */
	int fd;
};

static struct file_dev *to_file_dev(struct arb_dev *dev)
{
	return (struct file_dev *)dev;
}

/* ---- the file backend ------------------------------------------------ */

static int file_pread(struct arb_dev *dev, void *buf, size_t len, uint64_t off)
{
	int fd = to_file_dev(dev)->fd;
	uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = pread(fd, p, len, (off_t)off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		/* EOF before the end: the file shrank under us. */
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

/* Drop `done` bytes from the front of an iovec array, skipping empty ones. */
static void iov_advance(struct iovec **iov, int *cnt, size_t done)
{
	while (*cnt > 0 && done >= (*iov)->iov_len) {
		done -= (*iov)->iov_len;
		(*iov)++;
		(*cnt)--;
	}
	if (*cnt > 0 && done > 0) {
		(*iov)->iov_base = (uint8_t *)(*iov)->iov_base + done;
		(*iov)->iov_len -= done;
	}
}

/* Write a private (mutable) batch completely, resuming after short writes. */
static int write_batch(int fd, struct iovec *iov, int cnt, uint64_t *off)
{
	iov_advance(&iov, &cnt, 0);
	while (cnt > 0) {
		ssize_t n = pwritev(fd, iov, cnt, (off_t)*off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		/* No progress at all would loop forever. */
		if (n == 0)
			return -EIO;
		*off += (uint64_t)n;
		iov_advance(&iov, &cnt, (size_t)n);
	}
	return 0;
}

static int file_pwritev(struct arb_dev *dev, const struct iovec *iov, int iovcnt, uint64_t off)
{
	int fd = to_file_dev(dev)->fd;
	struct iovec batch[IOV_BATCH];

	/* Copy in batches: the caller's array is const and may be long. */
	for (int i = 0; i < iovcnt; i += IOV_BATCH) {
		int n = iovcnt - i < IOV_BATCH ? iovcnt - i : IOV_BATCH;
		int ret;

		memcpy(batch, iov + i, (size_t)n * sizeof(*batch));
		ret = write_batch(fd, batch, n, &off);
		if (ret < 0)
			return ret;
	}
	return 0;
}

static int file_flush(struct arb_dev *dev)
{
	int fd = to_file_dev(dev)->fd;

	while (fdatasync(fd) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	return 0;
}

static void file_prefetch(struct arb_dev *dev, uint64_t off, uint64_t len)
{
	/* the kernel reads ahead asynchronously, so the disk works while
	 * the caller parses what it has */
	(void)posix_fadvise(to_file_dev(dev)->fd, (off_t)off, (off_t)len, POSIX_FADV_WILLNEED);
}

static void file_close(struct arb_dev *dev)
{
	struct file_dev *fdev = to_file_dev(dev);

	/* Closing also drops the flock. */
	close(fdev->fd);
	free(fdev);
}

static const struct arb_dev_ops file_ops = {
        .pread = file_pread,
        .pwritev = file_pwritev,
        .flush = file_flush,
        .close = file_close,
        .prefetch = file_prefetch,
};

/* ---- opening --------------------------------------------------------- */

static int blockdev_size(int fd, uint64_t *size)
{
#ifdef BLKGETSIZE64
	if (ioctl(fd, BLKGETSIZE64, size) < 0)
		return -errno;
	return 0;
#else
	(void)fd;
	(void)size;
	return -EOPNOTSUPP;
#endif
}

/* Size and exclusivity of an opened fd whose type was checked by stat. */
static int setup_fd(int fd, const struct stat *before, int flags, uint64_t *size)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	/* The path was replaced between stat and open: let the caller retry. */
	if (st.st_dev != before->st_dev || st.st_ino != before->st_ino)
		return -EAGAIN;
	if (S_ISBLK(st.st_mode))
		return blockdev_size(fd, size);

	if ((flags & ARB_DEV_EXCL) && flock(fd, LOCK_EX | LOCK_NB) < 0)
		return errno == EWOULDBLOCK ? -EBUSY : -errno;
	*size = (uint64_t)st.st_size;
	return 0;
}

int arb_dev_open_file(const char *path, int flags, struct arb_dev **ret_dev)
{
	int oflags = O_CLOEXEC | ((flags & ARB_DEV_RDONLY) ? O_RDONLY : O_RDWR);
	struct file_dev *fdev;
	struct stat st;
	uint64_t size = 0;
	int fd, ret;

	/*
	 * stat before open: opening a FIFO would block, and O_EXCL means
	 * "not in use" only for block devices (elsewhere it needs O_CREAT).
	 */
	if (stat(path, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
		return -EINVAL;
	if (S_ISBLK(st.st_mode) && (flags & ARB_DEV_EXCL))
		oflags |= O_EXCL;

	fd = open(path, oflags);
	if (fd < 0)
		return -errno;
	ret = setup_fd(fd, &st, flags, &size);
	if (ret < 0)
		goto err_close;

	fdev = calloc(1, sizeof(*fdev));
	if (!fdev) {
		ret = -ENOMEM;
		goto err_close;
	}
	fdev->dev.ops = &file_ops;
	fdev->dev.size = size;
	fdev->dev.read_only = (flags & ARB_DEV_RDONLY) != 0;
	fdev->fd = fd;
	*ret_dev = &fdev->dev;
	return 0;

err_close:
	close(fd);
	return ret;
}

/* ---- generic wrappers ------------------------------------------------ */

/* Is [off, off + len) inside the device?  Written to avoid overflow. */
static bool in_range(const struct arb_dev *dev, uint64_t len, uint64_t off)
{
	return len <= dev->size && off <= dev->size - len;
}

int arb_dev_read(struct arb_dev *dev, void *buf, size_t len, uint64_t off)
{
	if (!in_range(dev, len, off))
		return -EINVAL;
	if (len == 0)
		return 0;
	return dev->ops->pread(dev, buf, len, off);
}

int arb_dev_write(struct arb_dev *dev, const void *buf, size_t len, uint64_t off)
{
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};

	return arb_dev_writev(dev, &iov, 1, off);
}

/* Total length of an iovec array, or -EINVAL if it overflows. */
static int iov_total(const struct iovec *iov, int iovcnt, uint64_t *total)
{
	uint64_t sum = 0;

	if (iovcnt < 0)
		return -EINVAL;
	for (int i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len > UINT64_MAX - sum)
			return -EINVAL;
		sum += iov[i].iov_len;
	}
	*total = sum;
	return 0;
}

int arb_dev_writev(struct arb_dev *dev, const struct iovec *iov, int iovcnt, uint64_t off)
{
	uint64_t total;
	int ret;

	if (dev->read_only)
		return -EROFS;
	ret = iov_total(iov, iovcnt, &total);
	if (ret < 0)
		return ret;
	if (!in_range(dev, total, off))
		return -EINVAL;
	if (total == 0)
		return 0;
	return dev->ops->pwritev(dev, iov, iovcnt, off);
}

int arb_dev_flush(struct arb_dev *dev)
{
	/* Nothing can have been written through a read-only device. */
	if (dev->read_only)
		return 0;
	return dev->ops->flush(dev);
}

void arb_dev_prefetch(struct arb_dev *dev, uint64_t off, uint64_t len)
{
	if (dev->ops->prefetch && off < dev->size)
		dev->ops->prefetch(dev, off, len);
}

void arb_dev_close(struct arb_dev *dev)
{
	if (dev)
		dev->ops->close(dev);
}
