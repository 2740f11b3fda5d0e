/* SPDX-License-Identifier: MIT */
/* crc32c.h - CRC-32C (Castagnoli), the default checksum of Arbor. */
#ifndef ARBOR_CRC32C_H
#define ARBOR_CRC32C_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Standard CRC-32C: arb_crc32c(0, "123456789", 9) == 0xE3069283.  Chaining
 * works: arb_crc32c(arb_crc32c(0, a, n), b, m) is the CRC of a followed by b.
 * Uses the SSE4.2 instruction when the CPU has it, else a table.
 */
uint32_t arb_crc32c(uint32_t crc, const void *buf, size_t len);

/* The two implementations, exposed for tests and benchmarks. */
uint32_t arb_crc32c_sw(uint32_t crc, const void *buf, size_t len);
uint32_t arb_crc32c_hw(uint32_t crc, const void *buf, size_t len); /* only if available */
bool arb_crc32c_hw_available(void);

#endif
