/* SPDX-License-Identifier: MIT */
/*
 * recdev.h - record every write and flush a filesystem makes, and replay
 * them as a power cut would have left the device.
 *
 * arb_dev_record wraps a device: each write goes through to it and is then
 * appended, with its bytes, to a log file; each flush is appended after the
 * device has completed it.  A copy of the image taken before the recording
 * started (the base) and the log are all a replay needs: arb_replay_load
 * applies the log to the base on an in-memory device (memdev.h) whose event
 * log then mirrors the recorded run, so arb_memdev_crash_image builds the
 * image after a cut at any event, with the writes since the last flush
 * lost and reordered at will.
 *
 * Log format (little-endian): a 64-byte header (magic "ARBRLOG1", u32
 * version 1, u32 header size, u64 device size, zeros), then records of a
 * 32-byte head (u32 magic "RREC", u8 type 1 write / 2 flush, 3 zero bytes,
 * u64 offset, u64 length, u32 crc32c of the bytes, u32 zero) followed, for
 * a write, by its bytes.
 */
#ifndef ARBOR_RECDEV_H
#define ARBOR_RECDEV_H

#include <stddef.h>
#include <stdint.h>

#include "arbor/io.h"

#define ARB_RECLOG_MAGIC "ARBRLOG1"
#define ARB_RECLOG_VERSION 1u
#define ARB_RECLOG_HDR_SIZE 64u
#define ARB_RECLOG_REC_MAGIC 0x43455252u /* "RREC" */
#define ARB_RECLOG_WRITE 1u
#define ARB_RECLOG_FLUSH 2u

/* Record what goes through inner into a new log at log_path (created, or
 * truncated).  The returned device owns inner.  A write that cannot be
 * logged fails with -EIO (the run would no longer be replayable). */
int arb_dev_record(struct arb_dev *inner, const char *log_path, struct arb_dev **ret_dev);

/* Bytes of log written so far by a recording device (0 for another kind):
 * a position a test can note when an fsync returns. */
uint64_t arb_dev_record_pos(struct arb_dev *dev);

struct arb_replay_info {
	uint64_t dev_size;
	uint64_t writes, flushes, bytes;
	/* log offset at which each event ends (events[i]: i-th write or flush),
	 * so a position noted during the run maps to an event count */
	uint64_t *event_end;
	size_t nevents;
	/* a torn last record (the run was killed while logging) is dropped */
	bool torn_tail;
};

/* The base image (a file at least dev_size bytes long) with the log
 * applied, on a recording memdev: its events are the log's, in order.
 * -EINVAL for a log that is not one, -EUCLEAN for a damaged record. */
int arb_replay_load(const char *base_path, const char *log_path, struct arb_dev **ret_memdev,
                    struct arb_replay_info *info);
void arb_replay_info_free(struct arb_replay_info *info);

#endif
