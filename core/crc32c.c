/* SPDX-License-Identifier: MIT */
/*
 * crc32c.c - CRC-32C (Castagnoli).
 *
 * Two implementations of the same function:
 *  - software: slicing-by-8 over tables built once at first use;
 *  - hardware: the SSE4.2 crc32 instruction, run as three interleaved
 *    streams whose results are merged with "shift by n zero bytes" tables,
 *    because one stream is bound by the instruction's 3-cycle latency while
 *    the CPU can issue one per cycle.
 *
 * Internally both work on the raw CRC register (the public value xor ~0), so
 * that a stream started from register 0 can be merged in by linearity:
 *   reg(A || B) = shift(reg(A), |B|) ^ reg_from_0(B).
 */
#include "arbor/crc32c.h"

#include <pthread.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <nmmintrin.h>
#define ARB_CRC_X86 1
#else
#define ARB_CRC_X86 0
#endif

/* The Castagnoli polynomial, bit-reflected (bit 31 is x^0). */
#define CRC32C_POLY 0x82F63B78u

/*
 * Stream lengths of the hardware path.  LONG fits a 4 KiB node in one round
 * (3 x 1 KiB), SHORT mops up most of the rest in small rounds so that little
 * is left for the latency-bound single stream.
 */
#define HW_LONG 1024
#define HW_SHORT 64

static uint32_t sw_table[8][256];
#if ARB_CRC_X86
static uint32_t shift_long[4][256];
static uint32_t shift_short[4][256];
#endif
static bool hw_ok;
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

/* ---- table generation ------------------------------------------------ */

/* Multiply the register by x once (i.e. feed it a zero bit). */
static uint32_t mul_x(uint32_t r)
{
	return (r >> 1) ^ ((r & 1) ? CRC32C_POLY : 0);
}

static void build_sw_table(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t r = i;

		for (int b = 0; b < 8; b++)
			r = mul_x(r);
		sw_table[0][i] = r;
	}
	/* Table k: the byte followed by k zero bytes. */
	for (int k = 1; k < 8; k++)
		for (int i = 0; i < 256; i++) {
			uint32_t prev = sw_table[k - 1][i];

			sw_table[k][i] = (prev >> 8) ^ sw_table[0][prev & 0xff];
		}
}

#if ARB_CRC_X86
/* a * b mod P, both in reflected form; used only to build tables. */
static uint32_t mul_mod_p(uint32_t a, uint32_t b)
{
	uint32_t p = 0;

	/* Walk a from x^0 (bit 31) upwards, with b holding b * x^i. */
	for (uint32_t m = 1u << 31; m != 0; m >>= 1) {
		if (a & m)
			p ^= b;
		b = mul_x(b);
	}
	return p;
}

/* x^(8 * nbytes) mod P: the effect of nbytes zero bytes on the register. */
static uint32_t x_pow_bytes(size_t nbytes)
{
	uint32_t r = 1u << 31; /* x^0 */

	for (size_t i = 0; i < 8 * nbytes; i++)
		r = mul_x(r);
	return r;
}

/*
 * Shifting the register by n zero bytes is linear, so split it into its four
 * bytes and precompute each byte's image: four lookups instead of n steps.
 */
static void build_shift_table(uint32_t table[4][256], size_t nbytes)
{
	uint32_t xn = x_pow_bytes(nbytes);

	for (int k = 0; k < 4; k++)
		for (uint32_t i = 0; i < 256; i++)
			table[k][i] = mul_mod_p(xn, i << (8 * k));
}
#endif

static void crc_init(void)
{
	build_sw_table();
#if ARB_CRC_X86
	build_shift_table(shift_long, HW_LONG);
	build_shift_table(shift_short, HW_SHORT);
	__builtin_cpu_init();
	hw_ok = __builtin_cpu_supports("sse4.2");
#endif
}

static inline void crc_ensure_init(void)
{
	pthread_once(&crc_once, crc_init);
}

/* ---- software: slicing-by-8 ------------------------------------------ */

/* Load 8 bytes as a little-endian word, at any alignment. */
static inline uint64_t load_le64(const uint8_t *p)
{
	uint64_t w;

	memcpy(&w, p, sizeof(w));
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	w = __builtin_bswap64(w);
#endif
	return w;
}

static uint32_t sw_bytes(uint32_t r, const uint8_t *p, size_t len)
{
	while (len--)
		r = (r >> 8) ^ sw_table[0][(r ^ *p++) & 0xff];
	return r;
}

static uint32_t sw_reg(uint32_t r, const uint8_t *p, size_t len)
{
	for (; len >= 8; p += 8, len -= 8) {
		uint64_t w = load_le64(p) ^ r;

		/* Byte j of the word is followed by 7 - j more bytes. */
		r = sw_table[7][w & 0xff] ^ sw_table[6][(w >> 8) & 0xff] ^
		    sw_table[5][(w >> 16) & 0xff] ^ sw_table[4][(w >> 24) & 0xff] ^
		    sw_table[3][(w >> 32) & 0xff] ^ sw_table[2][(w >> 40) & 0xff] ^
		    sw_table[1][(w >> 48) & 0xff] ^ sw_table[0][w >> 56];
	}
	return sw_bytes(r, p, len);
}

uint32_t arb_crc32c_sw(uint32_t crc, const void *buf, size_t len)
{
	crc_ensure_init();
	return ~sw_reg(~crc, buf, len);
}

/* ---- hardware: SSE4.2 ------------------------------------------------ */

#if ARB_CRC_X86

static inline uint32_t shift_reg(const uint32_t table[4][256], uint32_t r)
{
	return table[0][r & 0xff] ^ table[1][(r >> 8) & 0xff] ^ table[2][(r >> 16) & 0xff] ^
	       table[3][r >> 24];
}

#if defined(__x86_64__)
/* One 8-byte step; on i386 there is no 64-bit form, so do two 4-byte ones. */
__attribute__((target("sse4.2"))) static inline uint32_t hw_step8(uint32_t r, const uint8_t *p)
{
	uint64_t w;

	memcpy(&w, p, sizeof(w));
	return (uint32_t)_mm_crc32_u64(r, w);
}
#else
__attribute__((target("sse4.2"))) static inline uint32_t hw_step8(uint32_t r, const uint8_t *p)
{
	uint32_t lo, hi;

	memcpy(&lo, p, sizeof(lo));
	memcpy(&hi, p + 4, sizeof(hi));
	return _mm_crc32_u32(_mm_crc32_u32(r, lo), hi);
}
#endif

__attribute__((target("sse4.2"))) static uint32_t hw_bytes(uint32_t r, const uint8_t *p, size_t len)
{
	while (len--)
		r = _mm_crc32_u8(r, *p++);
	return r;
}

/*
 * Rounds of three interleaved streams of `stream` bytes each; the three
 * dependency chains overlap in the pipeline.  Returns the bytes consumed.
 */
__attribute__((target("sse4.2"))) static size_t
hw_rounds(uint32_t *reg, const uint8_t *p, size_t len, size_t stream, const uint32_t table[4][256])
{
	uint32_t r = *reg;
	size_t done = 0;

	for (; len - done >= 3 * stream; done += 3 * stream) {
		const uint8_t *a = p + done, *b = a + stream, *c = b + stream;
		uint32_t r1 = 0, r2 = 0;

		for (size_t i = 0; i < stream; i += 8) {
			r = hw_step8(r, a + i);
			r1 = hw_step8(r1, b + i);
			r2 = hw_step8(r2, c + i);
		}
		r = shift_reg(table, r) ^ r1;
		r = shift_reg(table, r) ^ r2;
	}
	*reg = r;
	return done;
}

__attribute__((target("sse4.2"))) static uint32_t hw_reg(uint32_t r, const uint8_t *p, size_t len)
{
	/* Align to 8 so the word loads never straddle a cache line. */
	size_t head = (size_t)(-(uintptr_t)p & 7);
	size_t done;

	if (head > len)
		head = len;
	r = hw_bytes(r, p, head);
	p += head;
	len -= head;

	done = hw_rounds(&r, p, len, HW_LONG, shift_long);
	p += done;
	len -= done;
	done = hw_rounds(&r, p, len, HW_SHORT, shift_short);
	p += done;
	len -= done;

	for (; len >= 8; p += 8, len -= 8)
		r = hw_step8(r, p);
	return hw_bytes(r, p, len);
}

#endif /* ARB_CRC_X86 */

bool arb_crc32c_hw_available(void)
{
	crc_ensure_init();
	return hw_ok;
}

uint32_t arb_crc32c_hw(uint32_t crc, const void *buf, size_t len)
{
	crc_ensure_init();
#if ARB_CRC_X86
	/* Guard anyway: a stray call on an old CPU must not fault. */
	if (hw_ok)
		return ~hw_reg(~crc, buf, len);
#endif
	return ~sw_reg(~crc, buf, len);
}

uint32_t arb_crc32c(uint32_t crc, const void *buf, size_t len)
{
	return arb_crc32c_hw(crc, buf, len);
}
