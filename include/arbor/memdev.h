/* SPDX-License-Identifier: MIT */
/*
 * memdev.h - an in-memory device for tests: records every write and flush
 * and rebuilds the image as a power cut would leave it, injects failures.
 *
 * Event log: once recording starts, each pwritev call appends one WRITE event
 * (offset + bytes) and each flush appends one FLUSH event.  The image at
 * recording start is kept as the base.
 */
#ifndef ARBOR_MEMDEV_H
#define ARBOR_MEMDEV_H

#include "arbor/io.h"

/* A zero-filled device of size bytes. */
int arb_memdev_create(uint64_t size, struct arb_dev **ret_dev);
/* A device holding a copy of buf. */
int arb_memdev_from_buffer(const void *buf, uint64_t size, struct arb_dev **ret_dev);

/* Direct access to the current contents (size bytes). */
uint8_t *arb_memdev_data(struct arb_dev *dev);

/* Start recording (drops any earlier log; the current image becomes base). */
void arb_memdev_record(struct arb_dev *dev);
/* Number of recorded events (writes and flushes). */
size_t arb_memdev_events(const struct arb_dev *dev);
/* Is event i a flush? */
bool arb_memdev_event_is_flush(const struct arb_dev *dev, size_t i);

/*
 * Build the image a power cut before event `cut` leaves: the base plus every
 * write among events [0, cut).  With a non-zero seed, the writes after the
 * last flush before `cut` are instead applied as a random subset in random
 * order (a volatile write cache losing and reordering what it had not
 * flushed); writes before that flush all land.
 * The result is a new, non-recording memdev.
 */
int arb_memdev_crash_image(const struct arb_dev *dev, size_t cut, uint64_t seed,
                           struct arb_dev **ret_dev);

/*
 * The same image as arb_memdev_crash_image, without copying the device: the
 * view reads dev's cached prefix image and keeps a private copy of each 4 KiB
 * page written to it (by the seeded subset, then by its user).  A state then
 * costs the pages it changes, which is what a checker walking thousands of
 * cuts needs.  While a view is open, the cache cannot move: a crash image
 * or view of another prefix fails with -EBUSY, so close each view before
 * building the next.  dev must be recording (-EINVAL otherwise).
 */
int arb_memdev_crash_view(const struct arb_dev *dev, size_t cut, uint64_t seed,
                          struct arb_dev **ret_dev);

/* Fault injection: after `n` more successful writes, every write fails with
 * `err` (a negative errno); n < 0 disables. */
void arb_memdev_fail_writes_after(struct arb_dev *dev, long n, int err);

/* Counters since creation. */
uint64_t arb_memdev_write_count(const struct arb_dev *dev);
uint64_t arb_memdev_flush_count(const struct arb_dev *dev);

#endif
