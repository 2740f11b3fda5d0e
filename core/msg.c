/* SPDX-License-Identifier: MIT */
/* msg.c - the message channel and the failed state. */
#include <stdarg.h>
#include <stdio.h>

#include "fs_internal.h"

static void vmsg(const struct arb_fs *fs, enum arb_msg_level level, const char *fmt, va_list ap)
{
	char text[512];

	if (!fs->msg)
		return;
	vsnprintf(text, sizeof(text), fmt, ap);
	fs->msg(fs->msg_ctx, level, text);
}

void arb_msgf(const struct arb_fs *fs, enum arb_msg_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg(fs, level, fmt, ap);
	va_end(ap);
}

int arb_fail(struct arb_fs *fs, int err, const char *fmt, ...)
{
	va_list ap;

	if (!fs->failed) {
		int n;

		va_start(ap, fmt);
		n = vsnprintf(fs->failed_reason, sizeof(fs->failed_reason), fmt, ap);
		va_end(ap);
		if (n >= 0 && (size_t)n < sizeof(fs->failed_reason))
			snprintf(fs->failed_reason + n, sizeof(fs->failed_reason) - (size_t)n,
			         " (error %d)", err);
		fs->failed = true;
		arb_msgf(fs, ARB_MSG_ERR, "%s; no further changes are accepted", fs->failed_reason);
	}
	return err;
}
