/* SPDX-License-Identifier: MIT */
/* test_memdev.c - the in-memory recording device and the file backend. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "arbor/io.h"
#include "arbor/memdev.h"

/* ---- helpers --------------------------------------------------------- */

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;

static uint64_t rng_next(void)
{
	uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static struct arb_dev *new_memdev(uint64_t size)
{
	struct arb_dev *dev = NULL;

	assert_int_equal(arb_memdev_create(size, &dev), 0);
	assert_non_null(dev);
	return dev;
}

static void write_str(struct arb_dev *dev, uint64_t off, const char *s)
{
	assert_int_equal(arb_dev_write(dev, s, strlen(s), off), 0);
}

static void assert_image(struct arb_dev *dev, const char *expect)
{
	assert_int_equal(dev->size, strlen(expect));
	assert_memory_equal(arb_memdev_data(dev), expect, strlen(expect));
}

/* ---- basic device behaviour ------------------------------------------ */

static void test_create_zeroed(void **state)
{
	struct arb_dev *dev = new_memdev(4096);
	uint8_t buf[4096], zero[4096] = {0};

	(void)state;
	assert_int_equal(dev->size, 4096);
	assert_false(dev->read_only);
	assert_int_equal(arb_dev_read(dev, buf, sizeof(buf), 0), 0);
	assert_memory_equal(buf, zero, sizeof(buf));
	arb_dev_close(dev);
}

static void test_round_trip(void **state)
{
	struct arb_dev *dev = new_memdev(1 << 16);
	uint8_t in[1000], out[1000];

	(void)state;
	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)rng_next();
	assert_int_equal(arb_dev_write(dev, in, sizeof(in), 12345), 0);
	assert_int_equal(arb_dev_read(dev, out, sizeof(out), 12345), 0);
	assert_memory_equal(in, out, sizeof(in));
	assert_memory_equal(arb_memdev_data(dev) + 12345, in, sizeof(in));
	/* The very end of the device is reachable. */
	assert_int_equal(arb_dev_write(dev, in, 10, (1 << 16) - 10), 0);
	assert_int_equal(arb_dev_read(dev, out, 10, (1 << 16) - 10), 0);
	assert_memory_equal(in, out, 10);
	assert_int_equal(arb_dev_flush(dev), 0);
	arb_dev_close(dev);
}

static void test_writev_gathers(void **state)
{
	struct arb_dev *dev = new_memdev(32);
	struct iovec iov[] = {
	        {.iov_base = "ab", .iov_len = 2},
	        {.iov_base = NULL, .iov_len = 0},
	        {.iov_base = "cde", .iov_len = 3},
	};

	(void)state;
	arb_memdev_record(dev);
	assert_int_equal(arb_dev_writev(dev, iov, 3, 4), 0);
	assert_memory_equal(arb_memdev_data(dev) + 4, "abcde", 5);
	/* One pwritev is one event. */
	assert_int_equal(arb_memdev_events(dev), 1);
	assert_int_equal(arb_memdev_write_count(dev), 1);
	arb_dev_close(dev);
}

static void test_from_buffer(void **state)
{
	char src[] = "hello, arbor";
	struct arb_dev *dev = NULL;

	(void)state;
	assert_int_equal(arb_memdev_from_buffer(src, sizeof(src), &dev), 0);
	assert_int_equal(dev->size, sizeof(src));
	src[0] = 'J'; /* a copy, not an alias */
	assert_memory_equal(arb_memdev_data(dev), "hello, arbor", sizeof(src));
	arb_dev_close(dev);
}

static void test_out_of_range(void **state)
{
	struct arb_dev *dev = new_memdev(100);
	uint8_t buf[16] = {0};
	struct iovec iov[2] = {{buf, 8}, {buf, 8}};

	(void)state;
	assert_int_equal(arb_dev_read(dev, buf, 1, 100), -EINVAL);
	assert_int_equal(arb_dev_read(dev, buf, 16, 90), -EINVAL);
	assert_int_equal(arb_dev_write(dev, buf, 1, 100), -EINVAL);
	assert_int_equal(arb_dev_write(dev, buf, 2, UINT64_MAX), -EINVAL);
	assert_int_equal(arb_dev_writev(dev, iov, 2, 85), -EINVAL);
	assert_int_equal(arb_dev_writev(dev, iov, -1, 0), -EINVAL);
	assert_int_equal(arb_dev_read(dev, buf, 16, 84), 0);
	assert_int_equal(arb_dev_writev(dev, iov, 2, 84), 0);
	/* Rejected requests never count as writes. */
	assert_int_equal(arb_memdev_write_count(dev), 1);
	arb_dev_close(dev);
}

static void test_read_only(void **state)
{
	struct arb_dev *dev = new_memdev(64);
	uint8_t buf[8] = {1};

	(void)state;
	dev->read_only = true;
	assert_int_equal(arb_dev_write(dev, buf, 8, 0), -EROFS);
	assert_int_equal(arb_dev_read(dev, buf, 8, 0), 0);
	assert_int_equal(buf[0], 0);
	assert_int_equal(arb_dev_flush(dev), 0);
	arb_dev_close(dev);
}

static void test_counters(void **state)
{
	struct arb_dev *dev = new_memdev(64);

	(void)state;
	write_str(dev, 0, "x");
	write_str(dev, 1, "y");
	assert_int_equal(arb_dev_flush(dev), 0);
	arb_memdev_record(dev); /* counters are since creation */
	write_str(dev, 2, "z");
	assert_int_equal(arb_dev_flush(dev), 0);
	assert_int_equal(arb_dev_flush(dev), 0);
	assert_int_equal(arb_memdev_write_count(dev), 3);
	assert_int_equal(arb_memdev_flush_count(dev), 3);
	arb_dev_close(dev);
}

/* ---- recording and crash images -------------------------------------- */

static void test_recording(void **state)
{
	struct arb_dev *dev = new_memdev(16);

	(void)state;
	write_str(dev, 0, "before");
	assert_int_equal(arb_memdev_events(dev), 0); /* not recording yet */
	arb_memdev_record(dev);
	write_str(dev, 0, "A");
	assert_int_equal(arb_dev_flush(dev), 0);
	write_str(dev, 1, "B");
	assert_int_equal(arb_memdev_events(dev), 3);
	assert_false(arb_memdev_event_is_flush(dev, 0));
	assert_true(arb_memdev_event_is_flush(dev, 1));
	assert_false(arb_memdev_event_is_flush(dev, 2));
	assert_false(arb_memdev_event_is_flush(dev, 3)); /* out of range */

	/* Recording again drops the log and rebases on the current image. */
	arb_memdev_record(dev);
	assert_int_equal(arb_memdev_events(dev), 0);
	{
		struct arb_dev *img = NULL;

		assert_int_equal(arb_memdev_crash_image(dev, 0, 0, &img), 0);
		assert_memory_equal(arb_memdev_data(img), "ABfore", 6);
		arb_dev_close(img);
		assert_int_equal(arb_memdev_crash_image(dev, 1, 0, &img), -EINVAL);
	}
	arb_dev_close(dev);
}

/*
 * The scripted sequence and the image a power cut before each event leaves.
 * Event:  0 W(0,"AAAA")  1 W(2,"BB")  2 FLUSH  3 W(10,"CCC")  4 W(1,"D")
 *         5 FLUSH  6 W(14,"EE")
 */
static const char *const script_expect[] = {
        "0123456789abcdef", /* cut 0: base */
        "AAAA456789abcdef", "AABB456789abcdef", "AABB456789abcdef", "AABB456789CCCdef",
        "ADBB456789CCCdef", "ADBB456789CCCdef", "ADBB456789CCCdEE",
};
#define SCRIPT_EVENTS 7

static struct arb_dev *scripted_dev(void)
{
	struct arb_dev *dev = NULL;

	assert_int_equal(arb_memdev_from_buffer("0123456789abcdef", 16, &dev), 0);
	arb_memdev_record(dev);
	write_str(dev, 0, "AAAA");
	write_str(dev, 2, "BB");
	assert_int_equal(arb_dev_flush(dev), 0);
	write_str(dev, 10, "CCC");
	write_str(dev, 1, "D");
	assert_int_equal(arb_dev_flush(dev), 0);
	write_str(dev, 14, "EE");
	assert_int_equal(arb_memdev_events(dev), SCRIPT_EVENTS);
	return dev;
}

static void check_cut(struct arb_dev *dev, size_t cut)
{
	struct arb_dev *img = NULL;

	assert_int_equal(arb_memdev_crash_image(dev, cut, 0, &img), 0);
	assert_image(img, script_expect[cut]);
	/* The image is a plain, independent, non-recording device. */
	write_str(img, 0, "zz");
	assert_int_equal(arb_memdev_events(img), 0);
	arb_dev_close(img);
}

static void test_crash_image_every_cut(void **state)
{
	struct arb_dev *dev = scripted_dev();
	struct arb_dev *img = NULL;

	(void)state;
	for (size_t cut = 0; cut <= SCRIPT_EVENTS; cut++)
		check_cut(dev, cut);
	/* Backwards and scattered, so the prefix cache must rewind. */
	for (size_t cut = SCRIPT_EVENTS + 1; cut-- > 0;)
		check_cut(dev, cut);
	for (int i = 0; i < 50; i++)
		check_cut(dev, rng_next() % (SCRIPT_EVENTS + 1));
	assert_int_equal(arb_memdev_crash_image(dev, SCRIPT_EVENTS + 1, 0, &img), -EINVAL);
	/* The source device was not disturbed. */
	assert_image(dev, script_expect[SCRIPT_EVENTS]);
	arb_dev_close(dev);
}

static void test_crash_image_seeded_script(void **state)
{
	struct arb_dev *dev = scripted_dev();
	struct arb_dev *img = NULL;

	(void)state;
	/* Cuts right after a flush leave nothing to lose or reorder. */
	for (size_t cut = 0; cut <= SCRIPT_EVENTS; cut++) {
		if (cut != 0 && cut != 3 && cut != 6)
			continue;
		assert_int_equal(arb_memdev_crash_image(dev, cut, 12345, &img), 0);
		assert_image(img, script_expect[cut]);
		arb_dev_close(img);
	}
	/* Cut 5: events 3 and 4 are unflushed, each lands or not. */
	for (uint64_t seed = 1; seed <= 64; seed++) {
		const char *ok[] = {"AABB456789abcdef", "AABB456789CCCdef", "ADBB456789abcdef",
		                    "ADBB456789CCCdef"};
		bool found = false;

		assert_int_equal(arb_memdev_crash_image(dev, 5, seed, &img), 0);
		for (int i = 0; i < 4; i++)
			found |= memcmp(arb_memdev_data(img), ok[i], 16) == 0;
		assert_true(found);
		arb_dev_close(img);
	}
	arb_dev_close(dev);
}

/*
 * Random subset mode on a random workload.  Each write stores its own tag
 * (event index + 1) in one 8-byte slot, so any image can be explained: a
 * slot holds its value at the last flush, or the tag of an unflushed write
 * to that slot; never anything else.
 */
#define SLOTS 32
#define RAND_EVENTS 400

static uint64_t slot_at(const uint8_t *img, int slot)
{
	uint64_t v;

	memcpy(&v, img + 8 * slot, sizeof(v));
	return v;
}

struct rand_log {
	int slot[RAND_EVENTS]; /* -1 for a flush */
};

static struct arb_dev *random_workload(struct rand_log *log)
{
	struct arb_dev *dev = new_memdev(8 * SLOTS);

	arb_memdev_record(dev);
	for (int i = 0; i < RAND_EVENTS; i++) {
		uint64_t tag = (uint64_t)i + 1;

		if (rng_next() % 8 == 0) {
			log->slot[i] = -1;
			assert_int_equal(arb_dev_flush(dev), 0);
			continue;
		}
		/* Few slots, so unflushed writes often overlap. */
		log->slot[i] = (int)(rng_next() % SLOTS);
		assert_int_equal(arb_dev_write(dev, &tag, 8, 8 * (uint64_t)log->slot[i]), 0);
	}
	return dev;
}

/* Check one seeded image; count unflushed writes that landed / were lost. */
static void check_seeded(const struct rand_log *log, size_t cut, const uint8_t *img, int *landed,
                         int *lost)
{
	size_t stable = cut;

	while (stable > 0 && log->slot[stable - 1] >= 0)
		stable--;
	for (int s = 0; s < SLOTS; s++) {
		uint64_t durable = 0, v = slot_at(img, s);
		bool ok;

		for (size_t i = 0; i < stable; i++)
			if (log->slot[i] == s)
				durable = i + 1;
		ok = v == durable;
		for (size_t i = stable; i < cut; i++) {
			if (log->slot[i] != s)
				continue;
			ok |= v == i + 1;
			if (v == i + 1)
				(*landed)++;
			else
				(*lost)++;
		}
		assert_true(ok);
	}
}

static void test_crash_image_random_subset(void **state)
{
	static struct rand_log log;
	struct arb_dev *dev = random_workload(&log);
	int landed = 0, lost = 0;

	(void)state;
	for (size_t cut = 0; cut <= RAND_EVENTS; cut++) {
		for (uint64_t seed = 1; seed <= 4; seed++) {
			struct arb_dev *img = NULL;
			uint64_t s = seed * 0x1000193 + cut;

			assert_int_equal(arb_memdev_crash_image(dev, cut, s, &img), 0);
			check_seeded(&log, cut, arb_memdev_data(img), &landed, &lost);
			arb_dev_close(img);
		}
	}
	/* Both outcomes happen: the subset really is random. */
	assert_true(landed > 0);
	assert_true(lost > 0);
	arb_dev_close(dev);
}

static void test_crash_image_seed_reproducible(void **state)
{
	static struct rand_log log;
	struct arb_dev *dev = random_workload(&log);
	struct arb_dev *a = NULL, *b = NULL;

	(void)state;
	for (size_t cut = 0; cut <= RAND_EVENTS; cut += 7) {
		assert_int_equal(arb_memdev_crash_image(dev, cut, 99, &a), 0);
		assert_int_equal(arb_memdev_crash_image(dev, RAND_EVENTS, 5, &b), 0);
		arb_dev_close(b);
		assert_int_equal(arb_memdev_crash_image(dev, cut, 99, &b), 0);
		assert_memory_equal(arb_memdev_data(a), arb_memdev_data(b), 8 * SLOTS);
		arb_dev_close(a);
		arb_dev_close(b);
	}
	arb_dev_close(dev);
}

/*
 * Two unflushed, partly overlapping writes: every outcome a volatile cache
 * allows must show up across seeds, including the older write landing last.
 */
static void test_crash_image_reorders(void **state)
{
	static const char *const outcomes[] = {
	        "\0\0\0\0\0\0", /* neither */
	        "aaaa\0\0",     /* only the first */
	        "\0\0bbbb",     /* only the second */
	        "aabbbb",       /* both, in order */
	        "aaaabb",       /* both, reordered */
	};
	struct arb_dev *dev = new_memdev(6);
	bool seen[5] = {false};

	(void)state;
	arb_memdev_record(dev);
	write_str(dev, 0, "aaaa");
	write_str(dev, 2, "bbbb");
	for (uint64_t seed = 1; seed <= 200; seed++) {
		struct arb_dev *img = NULL;
		int which = -1;

		assert_int_equal(arb_memdev_crash_image(dev, 2, seed, &img), 0);
		for (int i = 0; i < 5; i++)
			if (memcmp(arb_memdev_data(img), outcomes[i], 6) == 0)
				which = i;
		if (which < 0)
			fail_msg("image holds bytes never written");
		seen[which] = true;
		arb_dev_close(img);
	}
	for (int i = 0; i < 5; i++)
		assert_true(seen[i]);
	arb_dev_close(dev);
}

/* The prefix cache against a from-scratch model, cuts in random order. */
static void test_crash_image_matches_model(void **state)
{
	enum { SIZE = 1 << 16, EVENTS = 300 };
	struct arb_dev *dev = new_memdev(SIZE);
	static uint8_t model[EVENTS + 1][SIZE];
	uint8_t chunk[512];

	(void)state;
	for (size_t i = 0; i < SIZE; i++)
		arb_memdev_data(dev)[i] = (uint8_t)rng_next();
	arb_memdev_record(dev);
	memcpy(model[0], arb_memdev_data(dev), SIZE);
	for (int e = 0; e < EVENTS; e++) {
		size_t len = 1 + rng_next() % sizeof(chunk);
		uint64_t off = rng_next() % (SIZE - len);

		for (size_t i = 0; i < len; i++)
			chunk[i] = (uint8_t)rng_next();
		memcpy(model[e + 1], model[e], SIZE);
		if (e % 10 == 9) {
			assert_int_equal(arb_dev_flush(dev), 0);
			continue;
		}
		assert_int_equal(arb_dev_write(dev, chunk, len, off), 0);
		memcpy(model[e + 1] + off, chunk, len);
	}
	for (int i = 0; i < 3 * EVENTS; i++) {
		size_t cut = i < EVENTS ? (size_t)i : rng_next() % (EVENTS + 1);
		struct arb_dev *img = NULL;

		assert_int_equal(arb_memdev_crash_image(dev, cut, 0, &img), 0);
		assert_memory_equal(arb_memdev_data(img), model[cut], SIZE);
		arb_dev_close(img);
	}
	arb_dev_close(dev);
}

/* A view of a crash state reads what the copied image holds, keeps its
 * own writes to itself, and pins the prefix cache while open. */
static void test_crash_view_matches_image(void **state)
{
	enum { SIZE = 1 << 16, EVENTS = 200 };
	struct arb_dev *dev = new_memdev(SIZE);
	static uint8_t got[SIZE];
	uint8_t chunk[9000];

	(void)state;
	for (size_t i = 0; i < SIZE; i++)
		arb_memdev_data(dev)[i] = (uint8_t)rng_next();
	arb_memdev_record(dev);
	for (int e = 0; e < EVENTS; e++) {
		size_t len = 1 + rng_next() % sizeof(chunk);
		uint64_t off = rng_next() % (SIZE - len);

		if (e % 7 == 6) {
			assert_int_equal(arb_dev_flush(dev), 0);
			continue;
		}
		for (size_t i = 0; i < len; i++)
			chunk[i] = (uint8_t)rng_next();
		assert_int_equal(arb_dev_write(dev, chunk, len, off), 0);
	}
	for (int i = 0; i < 200; i++) {
		size_t cut = rng_next() % (EVENTS + 1);
		uint64_t seed = i % 3 ? rng_next() : 0;
		struct arb_dev *img = NULL, *view = NULL, *other = NULL;

		assert_int_equal(arb_memdev_crash_image(dev, cut, seed, &img), 0);
		assert_int_equal(arb_memdev_crash_view(dev, cut, seed, &view), 0);
		assert_int_equal(arb_dev_read(view, got, SIZE, 0), 0);
		assert_memory_equal(got, arb_memdev_data(img), SIZE);
		/* the cache is pinned: another prefix must wait */
		if (cut != EVENTS && cut > 0) {
			size_t elsewhere = cut == 1 ? EVENTS : 1;

			assert_int_equal(arb_memdev_crash_image(dev, elsewhere, 0, &other), -EBUSY);
		}
		/* writes stay in the view */
		write_str(view, rng_next() % (SIZE - 8), "scribble");
		arb_dev_close(view);
		assert_int_equal(arb_memdev_crash_view(dev, cut, seed, &view), 0);
		assert_int_equal(arb_dev_read(view, got, SIZE, 0), 0);
		assert_memory_equal(got, arb_memdev_data(img), SIZE);
		arb_dev_close(view);
		arb_dev_close(img);
	}
	arb_dev_close(dev);
}

/* ---- fault injection ------------------------------------------------- */

static void test_fail_writes_after(void **state)
{
	struct arb_dev *dev = new_memdev(16);

	(void)state;
	arb_memdev_record(dev);
	arb_memdev_fail_writes_after(dev, 2, -ENOSPC);
	write_str(dev, 0, "a");
	write_str(dev, 1, "b");
	assert_int_equal(arb_dev_write(dev, "c", 1, 2), -ENOSPC);
	assert_int_equal(arb_dev_write(dev, "d", 1, 3), -ENOSPC);
	/* A failed write changes nothing and is not logged or counted. */
	assert_memory_equal(arb_memdev_data(dev), "ab\0\0", 4);
	assert_int_equal(arb_memdev_events(dev), 2);
	assert_int_equal(arb_memdev_write_count(dev), 2);
	/* Flushes are not affected. */
	assert_int_equal(arb_dev_flush(dev), 0);

	arb_memdev_fail_writes_after(dev, -1, -ENOSPC);
	write_str(dev, 2, "c");
	arb_memdev_fail_writes_after(dev, 0, -EIO);
	assert_int_equal(arb_dev_write(dev, "d", 1, 3), -EIO);
	/* A non-negative errno still fails, as -EIO. */
	arb_memdev_fail_writes_after(dev, 0, 0);
	assert_int_equal(arb_dev_write(dev, "d", 1, 3), -EIO);
	assert_int_equal(arb_memdev_write_count(dev), 3);
	arb_dev_close(dev);
}

/* ---- the file backend ------------------------------------------------ */

struct tmpfile {
	char path[4096];
};

static void make_tmpfile(struct tmpfile *t, off_t size)
{
	const char *dir = getenv("TMPDIR");
	int fd;

	if (!dir || !*dir)
		dir = "/tmp";
	snprintf(t->path, sizeof(t->path), "%s/arbor-test-XXXXXX", dir);
	fd = mkstemp(t->path);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, size), 0);
	close(fd);
}

static void test_file_basic(void **state)
{
	struct tmpfile t;
	struct arb_dev *dev = NULL;
	uint8_t in[8192], out[8192];

	(void)state;
	make_tmpfile(&t, 1 << 20);
	assert_int_equal(arb_dev_open_file(t.path, 0, &dev), 0);
	assert_int_equal(dev->size, 1 << 20);
	assert_false(dev->read_only);
	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)rng_next();
	assert_int_equal(arb_dev_write(dev, in, sizeof(in), 4096), 0);
	assert_int_equal(arb_dev_flush(dev), 0);
	assert_int_equal(arb_dev_read(dev, out, sizeof(out), 4096), 0);
	assert_memory_equal(in, out, sizeof(in));
	assert_int_equal(arb_dev_read(dev, out, 1, 1 << 20), -EINVAL);
	assert_int_equal(arb_dev_write(dev, in, 2, (1 << 20) - 1), -EINVAL);
	arb_dev_close(dev);

	/* Reopened: the data persisted. */
	assert_int_equal(arb_dev_open_file(t.path, 0, &dev), 0);
	assert_int_equal(arb_dev_read(dev, out, sizeof(out), 4096), 0);
	assert_memory_equal(in, out, sizeof(in));
	arb_dev_close(dev);
	unlink(t.path);
}

/* More iovecs than one pwritev batch, with empty ones mixed in. */
static void test_file_writev_many(void **state)
{
	enum { N = 300 };
	struct tmpfile t;
	struct arb_dev *dev = NULL;
	static struct iovec iov[N];
	static uint8_t src[N * 7], out[N * 7];
	size_t total = 0;

	(void)state;
	make_tmpfile(&t, 1 << 16);
	assert_int_equal(arb_dev_open_file(t.path, 0, &dev), 0);
	for (size_t i = 0; i < sizeof(src); i++)
		src[i] = (uint8_t)rng_next();
	for (int i = 0; i < N; i++) {
		size_t len = (size_t)(i % 7 == 3 ? 0 : 1 + rng_next() % 6);

		iov[i] = (struct iovec){.iov_base = src + total, .iov_len = len};
		total += len;
	}
	assert_int_equal(arb_dev_writev(dev, iov, N, 100), 0);
	assert_int_equal(arb_dev_read(dev, out, total, 100), 0);
	assert_memory_equal(src, out, total);
	arb_dev_close(dev);
	unlink(t.path);
}

static void test_file_excl(void **state)
{
	struct tmpfile t;
	struct arb_dev *a = NULL, *b = NULL;

	(void)state;
	make_tmpfile(&t, 4096);
	assert_int_equal(arb_dev_open_file(t.path, ARB_DEV_EXCL, &a), 0);
	assert_int_equal(arb_dev_open_file(t.path, ARB_DEV_EXCL, &b), -EBUSY);
	assert_int_equal(arb_dev_open_file(t.path, ARB_DEV_EXCL | ARB_DEV_RDONLY, &b), -EBUSY);
	/* Without EXCL nobody asks for the lock. */
	assert_int_equal(arb_dev_open_file(t.path, 0, &b), 0);
	arb_dev_close(b);
	/* Closing releases the lock. */
	arb_dev_close(a);
	assert_int_equal(arb_dev_open_file(t.path, ARB_DEV_EXCL, &b), 0);
	arb_dev_close(b);
	unlink(t.path);
}

static void test_file_read_only(void **state)
{
	struct tmpfile t;
	struct arb_dev *dev = NULL;
	uint8_t buf[16];

	(void)state;
	make_tmpfile(&t, 4096);
	assert_int_equal(arb_dev_open_file(t.path, ARB_DEV_RDONLY, &dev), 0);
	assert_true(dev->read_only);
	assert_int_equal(dev->size, 4096);
	assert_int_equal(arb_dev_write(dev, "x", 1, 0), -EROFS);
	assert_int_equal(arb_dev_read(dev, buf, sizeof(buf), 0), 0);
	assert_int_equal(arb_dev_flush(dev), 0);
	arb_dev_close(dev);
	unlink(t.path);
}

static void test_file_bad_paths(void **state)
{
	struct tmpfile t;
	struct arb_dev *dev = NULL;

	(void)state;
	make_tmpfile(&t, 0);
	unlink(t.path);
	assert_int_equal(arb_dev_open_file(t.path, 0, &dev), -ENOENT);
	/* Not a regular file or block device. */
	assert_int_equal(arb_dev_open_file("/", 0, &dev), -EINVAL);
	assert_int_equal(arb_dev_open_file("/dev/null", ARB_DEV_RDONLY, &dev), -EINVAL);
}

/* A file that shrinks under the device makes reads fail, not hang. */
static void test_file_short_read(void **state)
{
	struct tmpfile t;
	struct arb_dev *dev = NULL;
	uint8_t buf[64];

	(void)state;
	make_tmpfile(&t, 4096);
	assert_int_equal(arb_dev_open_file(t.path, 0, &dev), 0);
	assert_int_equal(truncate(t.path, 100), 0);
	assert_int_equal(arb_dev_read(dev, buf, sizeof(buf), 80), -EIO);
	assert_int_equal(arb_dev_read(dev, buf, 20, 80), 0);
	arb_dev_close(dev);
	unlink(t.path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_create_zeroed),
	        cmocka_unit_test(test_round_trip),
	        cmocka_unit_test(test_writev_gathers),
	        cmocka_unit_test(test_from_buffer),
	        cmocka_unit_test(test_out_of_range),
	        cmocka_unit_test(test_read_only),
	        cmocka_unit_test(test_counters),
	        cmocka_unit_test(test_recording),
	        cmocka_unit_test(test_crash_image_every_cut),
	        cmocka_unit_test(test_crash_image_seeded_script),
	        cmocka_unit_test(test_crash_image_random_subset),
	        cmocka_unit_test(test_crash_image_seed_reproducible),
	        cmocka_unit_test(test_crash_image_reorders),
	        cmocka_unit_test(test_crash_image_matches_model),
	        cmocka_unit_test(test_crash_view_matches_image),
	        cmocka_unit_test(test_fail_writes_after),
	        cmocka_unit_test(test_file_basic),
	        cmocka_unit_test(test_file_writev_many),
	        cmocka_unit_test(test_file_excl),
	        cmocka_unit_test(test_file_read_only),
	        cmocka_unit_test(test_file_bad_paths),
	        cmocka_unit_test(test_file_short_read),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
