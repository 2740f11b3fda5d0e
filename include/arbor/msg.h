/* SPDX-License-Identifier: MIT */
/*
 * msg.h - the core's message channel.  The core never prints: it returns
 * negative errno codes and, for the details a person needs (which block,
 * which checksum), calls the message function the tool installed.
 */
#ifndef ARBOR_MSG_H
#define ARBOR_MSG_H

enum arb_msg_level { ARB_MSG_ERR = 0, ARB_MSG_WARN = 1, ARB_MSG_INFO = 2, ARB_MSG_DEBUG = 3 };

typedef void (*arb_msg_fn)(void *ctx, enum arb_msg_level level, const char *text);

#endif
