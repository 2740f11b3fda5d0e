/* SPDX-License-Identifier: MIT */
/*
 * crashcheck_verify.c - what a crash state may hold, path by path, and the
 * check of what it does hold (oracle.h).
 *
 * The allowed states of a path: every declaration (V or A) visible at the
 * state's position, plus "absent" before the first one; once a D of the
 * path is covered, only the declaration current at that D and the later
 * ones.  A file replaced atomically (X) must be exactly one allowed
 * version; a file written in place may show, sector by sector, any of
 * them, with bytes past a version's size counting as zeros.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crashcheck.h"
#include "oracle.h"

#define SECTOR 512u
#define READ_CHUNK (1u << 20)

void verdict_fail(struct verdict *v, const char *fmt, ...)
{
	va_list ap;

	/* the first problem is the reason; later ones are only counted */
	if (v->problems++ == 0) {
		va_start(ap, fmt);
		vsnprintf(v->reason, sizeof(v->reason), fmt, ap);
		va_end(ap);
	}
}

/* ---- readers ------------------------------------------------------------------------- */

static int vfs_stat(struct reader *rd, const char *path, struct node_info *ni)
{
	struct vfs_reader *v = (struct vfs_reader *)rd;
	char name[ARB_NAME_MAX + 1];
	struct arb_stat st = {.ino = v->root};
	const char *p = path;

	memset(ni, 0, sizeof(*ni));
	while (*p) {
		size_t n = strcspn(p, "/");
		int err;

		if (n > ARB_NAME_MAX)
			return -ENAMETOOLONG;
		memcpy(name, p, n);
		name[n] = '\0';
		p += n + (p[n] == '/');
		if (n == 0)
			continue;
		err = arb_vfs_lookup(v->fs, st.ino, name, &st);
		if (err == -ENOENT || err == -ENOTDIR)
			return 0;
		if (err)
			return err;
	}
	if (st.ino == v->root && arb_vfs_getattr(v->fs, v->root, &st))
		return -EIO;
	ni->exists = true;
	ni->is_reg = S_ISREG(st.mode);
	ni->is_dir = S_ISDIR(st.mode);
	ni->ino = st.ino;
	ni->size = st.size;
	return 0;
}

static int vfs_read(struct reader *rd, const char *path, const struct node_info *ni, uint64_t off,
                    void *buf, size_t len, size_t *got)
{
	struct vfs_reader *v = (struct vfs_reader *)rd;

	(void)path;
	return arb_vfs_read(v->fs, ni->ino, off, buf, len, got);
}

void vfs_reader_init(struct vfs_reader *v, struct arb_fs *fs, arb_ino_t root)
{
	v->rd.stat = vfs_stat;
	v->rd.read = vfs_read;
	v->fs = fs;
	v->root = root;
}

static int host_stat(struct reader *rd, const char *path, struct node_info *ni)
{
	struct host_reader *h = (struct host_reader *)rd;
	char full[8192];
	struct stat st;

	memset(ni, 0, sizeof(*ni));
	snprintf(full, sizeof(full), "%s/%s", h->top, path);
	if (lstat(full, &st) < 0)
		return errno == ENOENT || errno == ENOTDIR ? 0 : -errno;
	ni->exists = true;
	ni->is_reg = S_ISREG(st.st_mode);
	ni->is_dir = S_ISDIR(st.st_mode);
	ni->ino = st.st_ino;
	ni->size = (uint64_t)st.st_size;
	return 0;
}

static int host_read(struct reader *rd, const char *path, const struct node_info *ni, uint64_t off,
                     void *buf, size_t len, size_t *got)
{
	struct host_reader *h = (struct host_reader *)rd;
	char full[8192];
	ssize_t n = 0;
	int fd;

	(void)ni;
	snprintf(full, sizeof(full), "%s/%s", h->top, path);
	fd = open(full, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	*got = 0;
	while (*got < len) {
		n = pread(fd, (uint8_t *)buf + *got, len - *got, (off_t)(off + *got));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		*got += (size_t)n;
	}
	n = n < 0 ? -errno : 0;
	close(fd);
	return (int)n;
}

void host_reader_init(struct host_reader *h, const char *top)
{
	h->rd.stat = host_stat;
	h->rd.read = host_read;
	h->top = top;
}

/* ---- what a path may hold ------------------------------------------------------------ */

struct allowed {
	const struct decl **v; /* the allowed declarations, V and A */
	size_t n;
	bool absent_ok;              /* absent (an allowed A, or not created yet) */
	bool unborn;                 /* not created yet: no D covered before the first V */
	bool durable;                /* a D is covered: nothing older is allowed */
	bool atomic;                 /* X: whole versions only */
	uint64_t min_size, max_size; /* over the allowed V */
};

/* Declarations of p visible at pos: those made before it. */
static size_t declared_before(const struct opath *p, uint64_t pos)
{
	size_t n = 0;

	while (n < p->ndecls && p->decls[n].pos < pos)
		n++;
	return n;
}

/* The newest D of p the state covers, or NULL. */
static const struct durable *covered_d(const struct run *r, const struct state *st,
                                       const struct opath *p)
{
	const struct durable *best = NULL;

	for (size_t i = 0; i < p->nd; i++)
		if ((!best || p->ds[i].ndecls >= best->ndecls) && state_covers(r, st, p->ds[i].pos))
			best = &p->ds[i];
	return best;
}

static void allow(struct allowed *a, const struct decl *d)
{
	a->v[a->n++] = d;
	if (d->absent) {
		a->absent_ok = true;
		return;
	}
	if (d->size > a->max_size)
		a->max_size = d->size;
	if (d->size < a->min_size)
		a->min_size = d->size;
}

/* 0, or -ENOMEM; free a->v after. */
static int allowed_states(const struct run *r, const struct state *st, const struct opath *p,
                          struct allowed *a)
{
	size_t nvis = declared_before(p, st->pos), first = 0;
	const struct durable *d = covered_d(r, st, p);

	memset(a, 0, sizeof(*a));
	a->min_size = UINT64_MAX;
	a->atomic = p->xpos < st->pos;
	a->v = calloc(p->ndecls + 1, sizeof(*a->v));
	if (!a->v)
		return -ENOMEM;
	/* every path is absent before its first V */
	a->absent_ok = a->unborn = true;
	if (d) {
		size_t at_d = d->ndecls;

		a->durable = true;
		if (at_d > 0) {
			first = at_d - 1;
			a->absent_ok = a->unborn = false;
			/* the promised state, even when the state's position does
			 * not show its declaration (the fsync waited for a flush
			 * that ended before it) */
			if (first >= nvis)
				allow(a, &p->decls[first]);
		}
	}
	for (size_t k = first; k < nvis; k++)
		allow(a, &p->decls[k]);
	return 0;
}

/* ---- content ------------------------------------------------------------------------- */

static bool in_hole(const struct decl *d, uint64_t off, uint64_t end)
{
	for (size_t i = 0; i < d->nholes; i++)
		if (off < d->holes[i].off + d->holes[i].len && d->holes[i].off < end)
			return true;
	return false;
}

static bool byte_ok(const struct decl *d, uint64_t i, uint8_t b)
{
	if (i >= d->size || in_hole(d, i, i + 1))
		return b == 0;
	return b == arb_pattern_byte(d->seed, i);
}

/* Do bytes [off, off + n) of the file (off a multiple of 8) match version d? */
static bool range_matches(const struct decl *d, uint64_t off, const uint8_t *buf, size_t n)
{
	if (off + n <= d->size && !in_hole(d, off, off + n)) {
		size_t i = 0;

		/* the common case, a word at a time */
		for (; i + 8 <= n; i += 8) {
			uint64_t w;

			memcpy(&w, buf + i, 8);
			if (le64toh(w) != arb_pattern_word(d->seed, (off + i) / 8))
				return false;
		}
		for (; i < n; i++)
			if (buf[i] != arb_pattern_byte(d->seed, off + i))
				return false;
		return true;
	}
	for (size_t i = 0; i < n; i++)
		if (!byte_ok(d, off + i, buf[i]))
			return false;
	return true;
}

static void describe_allowed(const struct allowed *a, char *out, size_t len)
{
	size_t used = 0;

	out[0] = '\0';
	for (size_t k = 0; k < a->n && used < len; k++) {
		const struct decl *d = a->v[a->n - 1 - k]; /* newest first */

		if (k == 6) {
			snprintf(out + used, len - used, " ...");
			break;
		}
		if (d->absent)
			used += (size_t)snprintf(out + used, len - used, "%sabsent", k ? ", " : "");
		else
			used += (size_t)snprintf(out + used, len - used,
			                         "%sseed %" PRIu64 " size %" PRIu64, k ? ", " : "",
			                         d->seed, d->size);
	}
	if (a->unborn && used < len)
		snprintf(out + used, len - used, "%snot yet created", a->n ? ", " : "");
}

/* Every byte of the range is that byte of some allowed version. */
static bool bytes_match_some(const struct allowed *a, uint64_t off, const uint8_t *buf, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		bool ok = false;

		for (size_t k = 0; k < a->n && !ok; k++)
			ok = !a->v[k]->absent && byte_ok(a->v[k], off + i, buf[i]);
		if (!ok)
			return false;
	}
	return true;
}

/* In place: every sector matches some allowed version, or else mixes them
 * byte by byte: the kernel splits one write(2) into requests where the
 * caller's buffer crosses a page, not a sector, and a commit may land
 * between two of them.  *hint: the version that matched last, tried first
 * (runs of sectors share one). */
static bool sectors_match(const struct allowed *a, uint64_t off, const uint8_t *buf, size_t n,
                          size_t *hint, uint64_t *bad)
{
	for (size_t s = 0; s < n; s += SECTOR) {
		size_t len = n - s < SECTOR ? n - s : SECTOR;
		bool ok = false;

		for (size_t t = 0; t < a->n && !ok; t++) {
			size_t k = (*hint + t) % a->n;

			if (!a->v[k]->absent && range_matches(a->v[k], off + s, buf + s, len)) {
				*hint = k;
				ok = true;
			}
		}
		if (!ok && !bytes_match_some(a, off + s, buf + s, len)) {
			*bad = off + s;
			return false;
		}
	}
	return true;
}

/* Atomic: drop the candidates (versions of the file's size) that differ. */
static void filter_whole(const struct allowed *a, bool *cand, uint64_t off, const uint8_t *buf,
                         size_t n)
{
	for (size_t k = 0; k < a->n; k++)
		if (cand[k] && !range_matches(a->v[k], off, buf, n))
			cand[k] = false;
}

static bool any(const bool *cand, size_t n)
{
	for (size_t k = 0; k < n; k++)
		if (cand[k])
			return true;
	return false;
}

struct content_check {
	const char *path;
	const struct allowed *a;
	bool *cand;  /* atomic: still possible versions */
	size_t hint; /* in place: last matching version */
	uint64_t bad;
};

/* false when the content cannot be one the oracle allows */
static bool check_chunk(struct content_check *c, uint64_t off, const uint8_t *buf, size_t n)
{
	if (c->a->atomic) {
		filter_whole(c->a, c->cand, off, buf, n);
		c->bad = off;
		return any(c->cand, c->a->n);
	}
	return sectors_match(c->a, off, buf, n, &c->hint, &c->bad);
}

static void start_candidates(struct content_check *c, uint64_t size)
{
	for (size_t k = 0; k < c->a->n; k++)
		c->cand[k] = !c->a->v[k]->absent && c->a->v[k]->size == size;
}

static void report_mismatch(const struct content_check *c, const struct node_info *ni,
                            uint64_t read_to, struct verdict *v)
{
	char allowed[512];

	describe_allowed(c->a, allowed, sizeof(allowed));
	if (c->a->atomic)
		verdict_fail(v,
		             "%s (replaced atomically): size %" PRIu64
		             " is no whole allowed version "
		             "(each differs before offset %" PRIu64 "); allowed: %s",
		             c->path, ni->size, read_to, allowed);
	else
		verdict_fail(v,
		             "%s: sector at %" PRIu64 " matches no allowed version (size %" PRIu64
		             "); allowed: %s",
		             c->path, c->bad, ni->size, allowed);
}

/* Read the whole file and match it; a message on v when it does not. */
static void check_content(struct reader *rd, const char *path, const struct node_info *ni,
                          struct content_check *c, struct verdict *v)
{
	uint8_t *buf = malloc(READ_CHUNK);
	uint64_t off = 0;

	if (!buf) {
		verdict_fail(v, "%s: out of memory", path);
		return;
	}
	if (c->a->atomic)
		start_candidates(c, ni->size);
	while (off < ni->size || (c->a->atomic && off == 0)) {
		size_t want = ni->size - off < READ_CHUNK ? (size_t)(ni->size - off) : READ_CHUNK;
		size_t got = 0;
		int err = want ? rd->read(rd, path, ni, off, buf, want, &got) : 0;

		if (err || got != want) {
			verdict_fail(v, "%s: read at %" PRIu64 ": %s", path, off,
			             err ? strerror(-err) : "short read");
			break;
		}
		if (!check_chunk(c, off, buf, got)) {
			report_mismatch(c, ni, off + got, v);
			break;
		}
		off += got;
		if (!want)
			break;
	}
	free(buf);
}

/* Is a present file of this size possible at all? */
static bool size_allowed(const struct allowed *a, const char *path, uint64_t size,
                         struct verdict *v)
{
	char allowed[512];

	if (size <= a->max_size &&
	    (!a->durable || a->min_size == UINT64_MAX || size >= a->min_size))
		return true;
	describe_allowed(a, allowed, sizeof(allowed));
	verdict_fail(v, "%s: size %" PRIu64 " outside what the oracle allows (%s%s)", path, size,
	             a->durable ? "durable; " : "", allowed);
	return false;
}

static void check_present(struct reader *rd, const struct opath *p, const struct node_info *ni,
                          const struct allowed *a, struct verdict *v)
{
	struct content_check c = {.path = p->path, .a = a};
	char allowed[512];

	if (a->max_size == 0 && a->min_size == UINT64_MAX) {
		describe_allowed(a, allowed, sizeof(allowed));
		verdict_fail(v, "%s exists but may only be absent (%s)", p->path, allowed);
		return;
	}
	if (!ni->is_reg) {
		verdict_fail(v, "%s is not a regular file", p->path);
		return;
	}
	if (!size_allowed(a, p->path, ni->size, v))
		return;
	c.cand = calloc(a->n + 1, sizeof(*c.cand));
	if (!c.cand) {
		verdict_fail(v, "%s: out of memory", p->path);
		return;
	}
	check_content(rd, p->path, ni, &c, v);
	free(c.cand);
}

void verify_path(const struct run *r, const struct state *st, struct reader *rd,
                 const struct opath *p, struct verdict *v)
{
	struct node_info ni;
	struct allowed a;
	char allowed[512];
	int err;

	if (p->ndecls == 0)
		return; /* a D or X alone promises nothing about content */
	if (allowed_states(r, st, p, &a)) {
		verdict_fail(v, "%s: out of memory", p->path);
		return;
	}
	err = rd->stat(rd, p->path, &ni);
	if (err) {
		verdict_fail(v, "%s: lookup: %s", p->path, strerror(-err));
	} else if (!ni.exists && !a.absent_ok) {
		describe_allowed(&a, allowed, sizeof(allowed));
		verdict_fail(v, "%s is missing; allowed: %s%s", p->path,
		             a.durable ? "(durable) " : "", allowed);
	} else if (ni.exists) {
		check_present(rd, p, &ni, &a, v);
	}
	free(a.v);
}

/* ---- hard links and snapshots -------------------------------------------------------- */

/* A declaration of p after oracle line `after` that the state may show. */
static bool changed_after(const struct opath *p, size_t after, uint64_t pos)
{
	for (size_t k = 0; p && k < p->ndecls; k++)
		if (p->decls[k].line > after && p->decls[k].pos < pos)
			return true;
	return false;
}

/* The newest D of PATH2 at or after the L that the state covers, or NULL. */
static const struct durable *link_durable(const struct run *r, const struct state *st,
                                          const struct opath *b, const struct orec *l)
{
	const struct durable *best = NULL;

	for (size_t i = 0; b && i < b->nd; i++)
		if (b->ds[i].line > l->line && (!best || b->ds[i].line > best->line) &&
		    state_covers(r, st, b->ds[i].pos))
			best = &b->ds[i];
	return best;
}

/* Once durable, the two names are one inode, unless either changed since
 * (unlinked, replaced); whether each may be absent is the path check's. */
static void verify_link(const struct run *r, const struct state *st, struct reader *rd,
                        const struct orec *l, struct verdict *v)
{
	const struct opath *a = oracle_path(r->oracle, l->a), *b = oracle_path(r->oracle, l->b);
	const struct durable *d = link_durable(r, st, b, l);
	struct node_info na, nb;

	if (!d || changed_after(a, d->line, st->pos) || changed_after(b, d->line, st->pos))
		return;
	if (rd->stat(rd, l->a, &na) || rd->stat(rd, l->b, &nb) || !na.exists || !nb.exists)
		return;
	if (na.ino != nb.ino)
		verdict_fail(v,
		             "%s and %s should be hard links of one inode, are inodes %" PRIu64
		             " and %" PRIu64,
		             l->a, l->b, na.ino, nb.ino);
}

/* Must a path under a snapshot that exists be there: no allowed state of
 * it, but for "not yet created", is absent? */
static bool must_exist(const struct run *r, const struct state *st, const struct opath *p)
{
	struct allowed a;
	bool must;

	if (allowed_states(r, st, p, &a))
		return false;
	must = a.n > 0;
	for (size_t k = 0; k < a.n; k++)
		if (a.v[k]->absent)
			must = false;
	free(a.v);
	return must;
}

static void verify_snapshot(const struct run *r, const struct state *st, struct reader *rd,
                            const struct orec *t, struct verdict *v)
{
	size_t len = strlen(t->a);
	struct node_info ni;

	if (rd->stat(rd, t->a, &ni) || !ni.exists)
		return;
	for (size_t i = 0; i < r->oracle->npaths; i++) {
		const struct opath *p = &r->oracle->paths[i];
		struct node_info pi;

		if (strncmp(p->path, t->a, len) || p->path[len] != '/' || !must_exist(r, st, p))
			continue;
		if (!rd->stat(rd, p->path, &pi) && !pi.exists)
			verdict_fail(v, "snapshot %s is not whole: %s is missing", t->a, p->path);
	}
}

void verify_namespace(const struct run *r, const struct state *st, struct reader *rd,
                      struct verdict *v)
{
	const struct oracle *o = r->oracle;

	for (size_t i = 0; i < o->npaths; i++)
		verify_path(r, st, rd, &o->paths[i], v);
	for (size_t i = 0; i < o->links.n; i++)
		verify_link(r, st, rd, &o->links.v[i], v);
	for (size_t i = 0; i < o->snaps.n; i++)
		verify_snapshot(r, st, rd, &o->snaps.v[i], v);
}
