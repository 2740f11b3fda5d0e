/* SPDX-License-Identifier: MIT */
/*
 * parse.h - number arguments shared by the tools (arbor, mkfs.arbor):
 * 0 or a negative errno, never a message.
 */
#ifndef ARBOR_CLI_PARSE_H
#define ARBOR_CLI_PARSE_H

#include <stdint.h>

/* Decimal, 0x hex or 0 octal, the whole string. */
int cli_parse_u64(const char *s, uint64_t *ret);
/* Decimal bytes with an optional binary suffix: K, KB, KiB ... T (any case). */
int cli_parse_size(const char *s, uint64_t *ret);

#endif
