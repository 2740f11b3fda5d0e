/* SPDX-License-Identifier: MIT */
/* parse.c - number arguments shared by the tools (see parse.h). */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "parse.h"

/* A number without sign; *end is where it stopped. */
static int parse_unsigned(const char *s, int base, char **end, unsigned long long *ret)
{
	if (!*s || *s == '-' || *s == '+' || isspace((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	*ret = strtoull(s, end, base);
	if (errno)
		return -errno;
	return *end == s ? -EINVAL : 0;
}

int cli_parse_u64(const char *s, uint64_t *ret)
{
	char *end;
	unsigned long long v;
	int err = parse_unsigned(s, 0, &end, &v);

	if (err)
		return err;
	if (*end)
		return -EINVAL;
	*ret = v;
	return 0;
}

/* "", K, KB, KiB (any case) ...: the shift, or -1. */
static int size_shift(const char *suffix)
{
	static const char units[] = "KMGT";
	const char *p;

	if (!*suffix)
		return 0;
	p = strchr(units, toupper((unsigned char)suffix[0]));
	if (!p || !*p)
		return -1;
	if (suffix[1] && strcasecmp(suffix + 1, "b") && strcasecmp(suffix + 1, "ib"))
		return -1;
	return 10 * (int)(p - units + 1);
}

int cli_parse_size(const char *s, uint64_t *ret)
{
	char *end;
	unsigned long long v;
	int shift, err = parse_unsigned(s, 10, &end, &v);

	if (err)
		return err;
	shift = size_shift(end);
	if (shift < 0)
		return -EINVAL;
	if (shift && v > (UINT64_MAX >> shift))
		return -ERANGE;
	*ret = (uint64_t)v << shift;
	return 0;
}
