/* SPDX-License-Identifier: MIT */
/* test_crc32c.c - CRC-32C against published vectors, hw vs sw, chaining. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "arbor/crc32c.h"

#define MAX_LEN 4096
#define MAX_MISALIGN 16

/* Deterministic filler so a failure reproduces. */
static uint64_t rng_state = 0x243F6A8885A308D3ull;

static uint64_t rng_next(void)
{
	uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static void fill_random(uint8_t *buf, size_t len)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)rng_next();
}

/* Bit-at-a-time reference: too slow for real use, obviously right. */
static uint32_t crc_reference(uint32_t crc, const uint8_t *p, size_t len)
{
	crc = ~crc;
	while (len--) {
		crc ^= *p++;
		for (int b = 0; b < 8; b++)
			crc = (crc >> 1) ^ ((crc & 1) ? 0x82F63B78u : 0);
	}
	return ~crc;
}

typedef uint32_t (*crc_fn)(uint32_t, const void *, size_t);

/* Check a vector with every implementation the machine has. */
static void check_all(const void *buf, size_t len, uint32_t expect)
{
	assert_int_equal(arb_crc32c(0, buf, len), expect);
	assert_int_equal(arb_crc32c_sw(0, buf, len), expect);
	assert_int_equal(crc_reference(0, buf, len), expect);
	if (arb_crc32c_hw_available())
		assert_int_equal(arb_crc32c_hw(0, buf, len), expect);
}

static void test_check_value(void **state)
{
	(void)state;
	check_all("123456789", 9, 0xE3069283u);
}

static void test_empty(void **state)
{
	(void)state;
	check_all("", 0, 0);
	/* An empty buffer leaves any running value alone. */
	assert_int_equal(arb_crc32c(0x12345678u, "", 0), 0x12345678u);
	assert_int_equal(arb_crc32c_sw(0x12345678u, NULL, 0), 0x12345678u);
}

/* RFC 3720, B.4: the iSCSI CRC examples. */
static void test_rfc3720_vectors(void **state)
{
	uint8_t buf[32];

	(void)state;
	memset(buf, 0, sizeof(buf));
	check_all(buf, sizeof(buf), 0x8A9136AAu);
	memset(buf, 0xFF, sizeof(buf));
	check_all(buf, sizeof(buf), 0x62A8AB43u);
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)i;
	check_all(buf, sizeof(buf), 0x46DD794Eu);
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)(31 - i);
	check_all(buf, sizeof(buf), 0x113FDB5Cu);
}

/* The software path against the bitwise reference, every length. */
static void test_sw_matches_reference(void **state)
{
	uint8_t *buf = malloc(MAX_LEN + MAX_MISALIGN);

	(void)state;
	assert_non_null(buf);
	fill_random(buf, MAX_LEN + MAX_MISALIGN);
	for (size_t len = 0; len <= MAX_LEN; len++) {
		size_t mis = rng_next() % MAX_MISALIGN;
		uint32_t seed = (uint32_t)rng_next();

		assert_int_equal(arb_crc32c_sw(seed, buf + mis, len),
		                 crc_reference(seed, buf + mis, len));
	}
	free(buf);
}

/* Every length 0..4096 at a random misalignment and a random start value. */
static void test_hw_matches_sw(void **state)
{
	uint8_t *buf = malloc(MAX_LEN + MAX_MISALIGN);

	(void)state;
	if (!arb_crc32c_hw_available())
		skip();
	assert_non_null(buf);
	for (size_t len = 0; len <= MAX_LEN; len++) {
		size_t mis = rng_next() % MAX_MISALIGN;
		uint32_t seed = (len & 1) ? (uint32_t)rng_next() : 0;

		fill_random(buf + mis, len);
		assert_int_equal(arb_crc32c_hw(seed, buf + mis, len),
		                 arb_crc32c_sw(seed, buf + mis, len));
	}
	free(buf);
}

/* Large buffers exercise many long rounds of the interleaved hw path. */
static void test_large_buffers(void **state)
{
	size_t len = (1u << 20) + 77;
	uint8_t *buf = malloc(len + 1);

	(void)state;
	assert_non_null(buf);
	fill_random(buf, len + 1);
	for (size_t mis = 0; mis < 2; mis++) {
		uint32_t ref = crc_reference(0, buf + mis, len);

		assert_int_equal(arb_crc32c_sw(0, buf + mis, len), ref);
		assert_int_equal(arb_crc32c(0, buf + mis, len), ref);
	}
	free(buf);
}

static void check_chaining(crc_fn fn, const uint8_t *buf, size_t len)
{
	uint32_t whole = fn(0, buf, len);

	for (size_t cut = 0; cut <= len; cut++) {
		uint32_t part = fn(0, buf, cut);

		assert_int_equal(fn(part, buf + cut, len - cut), whole);
	}
}

static void test_chaining(void **state)
{
	uint8_t buf[3 * 1024 + 300];

	(void)state;
	fill_random(buf, sizeof(buf));
	check_chaining(arb_crc32c, buf, sizeof(buf));
	check_chaining(arb_crc32c_sw, buf, sizeof(buf));
	if (arb_crc32c_hw_available())
		check_chaining(arb_crc32c_hw, buf, sizeof(buf));
	/* Byte at a time is the extreme case of chaining. */
	{
		uint32_t crc = 0;

		for (size_t i = 0; i < sizeof(buf); i++)
			crc = arb_crc32c(crc, buf + i, 1);
		assert_int_equal(crc, arb_crc32c(0, buf, sizeof(buf)));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_check_value),     cmocka_unit_test(test_empty),
	        cmocka_unit_test(test_rfc3720_vectors), cmocka_unit_test(test_sw_matches_reference),
	        cmocka_unit_test(test_hw_matches_sw),   cmocka_unit_test(test_large_buffers),
	        cmocka_unit_test(test_chaining),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
