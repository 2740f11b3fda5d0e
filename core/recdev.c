/* SPDX-License-Identifier: MIT */
/*
 * recdev.c - the recording device and the replay of its log (recdev.h).
 */
#include "arbor/recdev.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arbor/crc32c.h"
#include "arbor/memdev.h"

struct rec_head {
	uint32_t magic;
	uint8_t type;
	uint8_t pad[3];
	uint64_t off;
	uint64_t len;
	uint32_t csum;
	uint32_t pad2;
} __attribute__((packed));
_Static_assert(sizeof(struct rec_head) == 32, "record head is 32 bytes");

struct log_hdr {
	char magic[8];
	uint32_t version;
	uint32_t hdr_size;
	uint64_t dev_size;
	uint8_t zero[40];
} __attribute__((packed));
_Static_assert(sizeof(struct log_hdr) == ARB_RECLOG_HDR_SIZE, "log header is 64 bytes");

struct recdev {
	struct arb_dev dev; /* first: the public part */
	struct arb_dev *inner;
	int log_fd;
	uint64_t pos;
	/* the core may write from more than one thread: a write and its
	 * record go together, in the order the device saw them */
	pthread_mutex_t lock;
};

static const struct arb_dev_ops rec_ops;

static struct recdev *to_recdev(const struct arb_dev *dev)
{
	return dev && dev->ops == &rec_ops ? (struct recdev *)dev : NULL;
}

static int write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int append_record(struct recdev *r, uint8_t type, uint64_t off, const struct iovec *iov,
                         int iovcnt)
{
	struct rec_head h = {.magic = htole32(ARB_RECLOG_REC_MAGIC), .type = type};
	uint64_t len = 0;
	uint32_t csum = 0;

	for (int i = 0; i < iovcnt; i++) {
		csum = arb_crc32c(csum, iov[i].iov_base, iov[i].iov_len);
		len += iov[i].iov_len;
	}
	h.off = htole64(off);
	h.len = htole64(len);
	h.csum = htole32(csum);
	int err = write_all(r->log_fd, &h, sizeof(h));

	for (int i = 0; i < iovcnt && !err; i++)
		err = write_all(r->log_fd, iov[i].iov_base, iov[i].iov_len);
	if (!err)
		r->pos += sizeof(h) + len;
	return err;
}

static int rec_pread(struct arb_dev *dev, void *buf, size_t len, uint64_t off)
{
	return arb_dev_read(to_recdev(dev)->inner, buf, len, off);
}

static int rec_pwritev(struct arb_dev *dev, const struct iovec *iov, int iovcnt, uint64_t off)
{
	struct recdev *r = to_recdev(dev);
	int err;

	pthread_mutex_lock(&r->lock);
	err = arb_dev_writev(r->inner, iov, iovcnt, off);
	if (!err)
		err = append_record(r, ARB_RECLOG_WRITE, off, iov, iovcnt);
	pthread_mutex_unlock(&r->lock);
	return err;
}

static int rec_flush(struct arb_dev *dev)
{
	struct recdev *r = to_recdev(dev);
	int err;

	pthread_mutex_lock(&r->lock);
	err = arb_dev_flush(r->inner);
	if (!err)
		err = append_record(r, ARB_RECLOG_FLUSH, 0, NULL, 0);
	pthread_mutex_unlock(&r->lock);
	return err;
}

static void rec_prefetch(struct arb_dev *dev, uint64_t off, uint64_t len)
{
	arb_dev_prefetch(to_recdev(dev)->inner, off, len);
}

static void rec_close(struct arb_dev *dev)
{
	struct recdev *r = to_recdev(dev);

	arb_dev_close(r->inner);
	close(r->log_fd);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

static const struct arb_dev_ops rec_ops = {
        .pread = rec_pread,
        .pwritev = rec_pwritev,
        .flush = rec_flush,
        .close = rec_close,
        .prefetch = rec_prefetch,
};

int arb_dev_record(struct arb_dev *inner, const char *log_path, struct arb_dev **ret_dev)
{
	struct log_hdr h = {.version = htole32(ARB_RECLOG_VERSION),
	                    .hdr_size = htole32(ARB_RECLOG_HDR_SIZE),
	                    .dev_size = htole64(inner->size)};
	struct recdev *r = calloc(1, sizeof(*r));
	int err;

	if (!r)
		return -ENOMEM;
	memcpy(h.magic, ARB_RECLOG_MAGIC, sizeof(h.magic));
	r->log_fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (r->log_fd < 0) {
		err = -errno;
		free(r);
		return err;
	}
	err = write_all(r->log_fd, &h, sizeof(h));
	if (err) {
		close(r->log_fd);
		free(r);
		return err;
	}
	pthread_mutex_init(&r->lock, NULL);
	r->inner = inner;
	r->pos = sizeof(h);
	r->dev.ops = &rec_ops;
	r->dev.size = inner->size;
	r->dev.read_only = inner->read_only;
	*ret_dev = &r->dev;
	return 0;
}

uint64_t arb_dev_record_pos(struct arb_dev *dev)
{
	struct recdev *r = to_recdev(dev);
	uint64_t pos;

	if (!r)
		return 0;
	pthread_mutex_lock(&r->lock);
	pos = r->pos;
	pthread_mutex_unlock(&r->lock);
	return pos;
}

/* ---- replay ------------------------------------------------------------------------- */

static int read_exact(int fd, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = pread(fd, p, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ENODATA;
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

static int note_event(struct arb_replay_info *info, uint64_t end)
{
	size_t n = info->nevents;

	/* capacity: 1024, then doubled each time it is reached */
	if (n == 0 || (n >= 1024 && (n & (n - 1)) == 0)) {
		size_t cap = n ? 2 * n : 1024;
		uint64_t *v = realloc(info->event_end, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		info->event_end = v;
	}
	info->event_end[info->nevents++] = end;
	return 0;
}

/* Apply the record at *pos (returns 1 past the end, 0 applied, <0). */
static int replay_one(int fd, uint64_t log_size, uint64_t *pos, struct arb_dev *dev,
                      struct arb_replay_info *info, uint8_t **buf, size_t *cap)
{
	struct rec_head h;
	uint64_t len, off;

	if (*pos == log_size)
		return 1;
	if (log_size - *pos < sizeof(h))
		return info->torn_tail = true, 1;
	int err = read_exact(fd, &h, sizeof(h), *pos);

	if (err)
		return err;
	len = le64toh(h.len);
	off = le64toh(h.off);
	if (le32toh(h.magic) != ARB_RECLOG_REC_MAGIC ||
	    (h.type != ARB_RECLOG_WRITE && h.type != ARB_RECLOG_FLUSH) ||
	    (h.type == ARB_RECLOG_FLUSH && len) || off > dev->size || len > dev->size - off)
		return -EUCLEAN;
	if (log_size - *pos - sizeof(h) < len)
		return info->torn_tail = true, 1;
	if (h.type == ARB_RECLOG_FLUSH) {
		err = arb_dev_flush(dev);
		info->flushes++;
	} else {
		if (len > *cap) {
			uint8_t *b = realloc(*buf, len);

			if (!b)
				return -ENOMEM;
			*buf = b;
			*cap = len;
		}
		err = read_exact(fd, *buf, len, *pos + sizeof(h));
		if (!err && arb_crc32c(0, *buf, len) != le32toh(h.csum))
			err = -EUCLEAN;
		if (!err)
			err = arb_dev_write(dev, *buf, len, off);
		info->writes++;
		info->bytes += len;
	}
	*pos += sizeof(h) + len;
	return err ? err : note_event(info, *pos);
}

static int replay_log(int fd, struct arb_dev *dev, struct arb_replay_info *info)
{
	uint64_t pos = ARB_RECLOG_HDR_SIZE, size;
	uint8_t *buf = NULL;
	size_t cap = 0;
	int ret;
	off_t end = lseek(fd, 0, SEEK_END);

	if (end < 0)
		return -errno;
	size = (uint64_t)end;
	do
		ret = replay_one(fd, size, &pos, dev, info, &buf, &cap);
	while (ret == 0);
	free(buf);
	return ret < 0 ? ret : 0;
}

static int read_header(int fd, uint64_t *dev_size)
{
	struct log_hdr h;
	int err = read_exact(fd, &h, sizeof(h), 0);

	if (err == -ENODATA)
		return -EINVAL;
	if (err)
		return err;
	if (memcmp(h.magic, ARB_RECLOG_MAGIC, sizeof(h.magic)) ||
	    le32toh(h.hdr_size) != ARB_RECLOG_HDR_SIZE)
		return -EINVAL;
	if (le32toh(h.version) != ARB_RECLOG_VERSION)
		return -EOPNOTSUPP;
	*dev_size = le64toh(h.dev_size);
	return *dev_size ? 0 : -EINVAL;
}

static int load_base(const char *base_path, uint64_t size, struct arb_dev **ret)
{
	int fd = open(base_path, O_RDONLY | O_CLOEXEC);
	int err;

	if (fd < 0)
		return -errno;
	err = arb_memdev_create(size, ret);
	if (!err) {
		err = read_exact(fd, arb_memdev_data(*ret), size, 0);
		if (err) {
			arb_dev_close(*ret);
			*ret = NULL;
		}
	}
	close(fd);
	return err == -ENODATA ? -EINVAL : err;
}

int arb_replay_load(const char *base_path, const char *log_path, struct arb_dev **ret_memdev,
                    struct arb_replay_info *info)
{
	struct arb_dev *dev = NULL;
	int fd = open(log_path, O_RDONLY | O_CLOEXEC);
	int err;

	memset(info, 0, sizeof(*info));
	if (fd < 0)
		return -errno;
	err = read_header(fd, &info->dev_size);
	if (!err)
		err = load_base(base_path, info->dev_size, &dev);
	if (!err) {
		arb_memdev_record(dev);
		err = replay_log(fd, dev, info);
	}
	close(fd);
	if (err) {
		if (dev)
			arb_dev_close(dev);
		arb_replay_info_free(info);
		return err;
	}
	*ret_memdev = dev;
	return 0;
}

void arb_replay_info_free(struct arb_replay_info *info)
{
	free(info->event_end);
	info->event_end = NULL;
	info->nevents = 0;
}
