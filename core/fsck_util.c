/* SPDX-License-Identifier: MIT */
/*
 * fsck_util.c - pieces phase 3 of fsck shares (see fsck_fs.h): the
 * open-addressing tables of inodes and directories, the messages, the
 * queue of repairs, names and their fingerprints.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arbor/crc32c.h"
#include "fsck_fs.h"

#define HASH_K 0x9E3779B97F4A7C15ull

/* ---- tables ------------------------------------------------------------------ */

static size_t fhash_home(uint64_t key, size_t cap)
{
	return (size_t)((key * HASH_K) >> 17) & (cap - 1);
}

void fhash_dense(struct fhash *h, uint64_t n)
{
	if (n > SIZE_MAX / h->esz)
		return;
	h->dense = calloc(n, h->esz);
	h->dense_n = h->dense ? n : 0;
}

size_t fhash_slots(const struct fhash *h)
{
	return h->dense_n + h->cap;
}

static void *slot_entry(uint8_t *base, size_t esz, size_t i)
{
	uint8_t *e = base + i * esz;
	uint64_t key;

	memcpy(&key, e, 8);
	return key ? e : NULL;
}

void *fhash_at(const struct fhash *h, size_t i)
{
	if (i < h->dense_n)
		return slot_entry(h->dense, h->esz, i);
	return slot_entry(h->v, h->esz, i - h->dense_n);
}

void *fhash_get(const struct fhash *h, uint64_t key)
{
	if (key < h->dense_n)
		return slot_entry(h->dense, h->esz, key);
	if (!h->cap)
		return NULL;
	for (size_t i = fhash_home(key, h->cap);; i = (i + 1) & (h->cap - 1)) {
		uint8_t *e = h->v + i * h->esz;
		uint64_t k;

		memcpy(&k, e, 8);
		if (k == key)
			return e;
		if (!k)
			return NULL;
	}
}

static int fhash_grow(struct fhash *h)
{
	size_t cap = h->cap ? 2 * h->cap : 1024;
	uint8_t *v = calloc(cap, h->esz);

	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < h->cap; i++) {
		const uint8_t *e = slot_entry(h->v, h->esz, i);
		uint64_t k;

		if (!e)
			continue;
		memcpy(&k, e, 8);
		size_t j = fhash_home(k, cap);

		for (;;) {
			uint64_t used;

			memcpy(&used, v + j * h->esz, 8);
			if (!used)
				break;
			j = (j + 1) & (cap - 1);
		}
		memcpy(v + j * h->esz, e, h->esz);
	}
	free(h->v);
	h->v = v;
	h->cap = cap;
	return 0;
}

void *fhash_add(struct fhash *h, uint64_t key)
{
	uint8_t *e = fhash_get(h, key);

	if (e)
		return e;
	if (key < h->dense_n) {
		e = h->dense + key * h->esz;
		memcpy(e, &key, 8);
		h->used++;
		return e;
	}
	/* at most 3/4 full: probes stay short */
	if ((h->used + 1) * 4 > h->cap * 3 && fhash_grow(h))
		return NULL;
	size_t i = fhash_home(key, h->cap);

	while (slot_entry(h->v, h->esz, i))
		i = (i + 1) & (h->cap - 1);
	e = h->v + i * h->esz;
	memset(e, 0, h->esz);
	memcpy(e, &key, 8);
	h->used++;
	return e;
}

void fhash_free(struct fhash *h)
{
	free(h->v);
	free(h->dense);
	h->v = h->dense = NULL;
	h->cap = h->used = 0;
	h->dense_n = 0;
}

struct fino *fsck_ino(struct fsck_sv *c, uint64_t ino, bool create)
{
	return create ? fhash_add(&c->inos, ino) : fhash_get(&c->inos, ino);
}

struct fdir *fsck_dir(struct fsck_sv *c, uint64_t ino)
{
	return fhash_get(&c->dirs, ino);
}

/* ---- messages ------------------------------------------------------------------ */

static void say(struct fsck_sv *c, enum arb_msg_level level, uint64_t ino, const char *fmt,
                va_list ap)
{
	char text[448];

	vsnprintf(text, sizeof(text), fmt, ap);
	if (ino)
		arb_msgf(c->fs, level, "subvolume %llu: inode %llu: %s", (unsigned long long)c->id,
		         (unsigned long long)ino, text);
	else
		arb_msgf(c->fs, level, "subvolume %llu: %s", (unsigned long long)c->id, text);
}

void fsck_problem(struct fsck_sv *c, uint64_t ino, const char *fmt, ...)
{
	va_list ap;

	if (c->quiet)
		return;
	va_start(ap, fmt);
	say(c, ARB_MSG_ERR, ino, fmt, ap);
	va_end(ap);
	c->r->errors++;
}

void fsck_fixed(struct fsck_sv *c, uint64_t ino, const char *fmt, ...)
{
	va_list ap;

	if (c->quiet || !c->repair)
		return;
	va_start(ap, fmt);
	say(c, ARB_MSG_INFO, ino, fmt, ap);
	va_end(ap);
	c->r->fixed++;
}

void fsck_info(struct fsck_sv *c, uint64_t ino, const char *fmt, ...)
{
	va_list ap;

	if (c->quiet)
		return;
	va_start(ap, fmt);
	say(c, ARB_MSG_INFO, ino, fmt, ap);
	va_end(ap);
}

const char *fsck_name(const char *name, size_t len, char *buf, size_t size)
{
	size_t o = 0;

	buf[o++] = '\'';
	for (size_t i = 0; i < len && o + 6 < size; i++) {
		unsigned char ch = (unsigned char)name[i];

		if (ch >= 0x20 && ch < 0x7f && ch != '\'' && ch != '\\')
			buf[o++] = (char)ch;
		else
			o += (size_t)snprintf(buf + o, size - o, "\\x%02x", ch);
	}
	buf[o++] = '\'';
	buf[o] = 0;
	return buf;
}

/* ---- queued repairs ---------------------------------------------------------------- */

struct fact *fsck_act(struct fsck_sv *c, enum fact_kind kind)
{
	struct fact *a;

	/* checking only: the caller fills a scratch record nobody applies */
	if (!c->repair || c->quiet) {
		memset(&c->scratch, 0, sizeof(c->scratch));
		return &c->scratch;
	}
	a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	a->kind = kind;
	/* reattaching adds to directories whose figures the other repairs
	 * set outright: it comes after them */
	if (kind == FA_REATTACH || kind == FA_SUBVOL_INFO) {
		*c->late_tail = a;
		c->late_tail = &a->next;
	} else {
		*c->acts_tail = a;
		c->acts_tail = &a->next;
	}
	return a;
}

void fsck_set_name(struct fact *a, const char *name, size_t nlen)
{
	if (nlen > ARB_NAME_MAX) /* callers pass valid names; never overrun */
		nlen = ARB_NAME_MAX;
	a->nlen = (uint16_t)nlen;
	memcpy(a->name, name, nlen);
	a->name[nlen] = 0;
}

/* ---- names -------------------------------------------------------------------------- */

bool fsck_name_ok(const char *name, size_t len)
{
	return len >= 1 && len <= ARB_NAME_MAX && !memchr(name, '/', len) &&
	       !memchr(name, 0, len) && !(len == 1 && name[0] == '.') &&
	       !(len == 2 && name[0] == '.' && name[1] == '.');
}

uint64_t fsck_link_fp(uint64_t dir, uint64_t index, const char *name, size_t nlen)
{
	uint64_t x = dir * HASH_K ^ (index + 0x632BE59BD9B4E019ull);

	x ^= (uint64_t)arb_crc32c(0, name, nlen) << 16 ^ nlen;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}
