/* SPDX-License-Identifier: MIT */
/*
 * crashcheck_oracle.c - read an ORACLE file (oracle.h) into what the checks
 * ask of it: per path, its declarations (V, A), durability records (D) and
 * whether it is replaced atomically (X); and the lists of hard links (L),
 * snapshots (T), SQLite (Q, q) and git (G) records.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crashcheck.h"

#define MAX_FIELDS 1024

/* One per-path record while reading: grouped by path once all are read. */
struct prec {
	char *path;
	size_t line;
	char kind; /* 'V', 'A', 'D', 'X' */
	struct decl d;
};

struct reading {
	const char *file;
	size_t line;
	struct prec *recs;
	size_t nrecs, cap;
	struct oracle *o;
};

static int bad_line(const struct reading *rd, const char *why)
{
	fprintf(stderr, "crashcheck: %s:%zu: %s\n", rd->file, rd->line, why);
	return -1;
}

static int parse_num(const char *s, uint64_t *ret)
{
	char *end;

	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	*ret = strtoull(s, &end, 10);
	return errno || *end ? -1 : 0;
}

static void *grow(void *buf, size_t *cap, size_t need, size_t elem)
{
	size_t ncap = *cap ? *cap : 16;
	void *nbuf;

	if (need <= *cap)
		return buf;
	while (ncap < need)
		ncap *= 2;
	nbuf = realloc(buf, ncap * elem);
	if (!nbuf) {
		fprintf(stderr, "crashcheck: out of memory\n");
		exit(2);
	}
	*cap = ncap;
	return nbuf;
}

static char *dup_str(const char *s)
{
	char *d = strdup(s);

	if (!d) {
		fprintf(stderr, "crashcheck: out of memory\n");
		exit(2);
	}
	return d;
}

static int add_prec(struct reading *rd, char kind, const char *path, const struct decl *d)
{
	struct prec *p;

	if (!path || path[0] == '/' || !path[0])
		return bad_line(rd, "a path must be relative and not empty");
	rd->recs = grow(rd->recs, &rd->cap, rd->nrecs + 1, sizeof(*rd->recs));
	p = &rd->recs[rd->nrecs++];
	p->path = dup_str(path);
	p->line = rd->line;
	p->kind = kind;
	p->d = *d;
	p->d.line = rd->line;
	return 0;
}

/* V PATH SEED SIZE [HOLE_OFF HOLE_LEN]... */
static int parse_version(struct reading *rd, uint64_t pos, char **f, int nf)
{
	struct decl d = {.pos = pos};

	if (nf < 3 || (nf - 3) % 2 || parse_num(f[1], &d.seed) || parse_num(f[2], &d.size))
		return bad_line(rd, "V needs PATH SEED SIZE [HOLE_OFF HOLE_LEN]...");
	d.nholes = (size_t)(nf - 3) / 2;
	if (d.nholes) {
		d.holes = calloc(d.nholes, sizeof(*d.holes));
		if (!d.holes)
			return bad_line(rd, "out of memory");
	}
	for (size_t i = 0; i < d.nholes; i++)
		if (parse_num(f[3 + 2 * i], &d.holes[i].off) ||
		    parse_num(f[4 + 2 * i], &d.holes[i].len)) {
			free(d.holes);
			return bad_line(rd, "a hole is HOLE_OFF HOLE_LEN, two numbers");
		}
	return add_prec(rd, 'V', f[0], &d);
}

static void add_orec(struct reading *rd, struct orecs *l, uint64_t pos, const char *a,
                     const char *b, uint64_t n, bool done)
{
	l->v = grow(l->v, &l->cap, l->n + 1, sizeof(*l->v));
	l->v[l->n++] = (struct orec){pos, rd->line, dup_str(a), b ? dup_str(b) : NULL, n, done};
}

/* A record of the non-path kinds: L, T, Q, q, G. */
static int parse_other(struct reading *rd, uint64_t pos, char kind, char **f, int nf)
{
	uint64_t n = 0;

	switch (kind) {
	case 'L':
		if (nf != 2)
			return bad_line(rd, "L needs PATH1 PATH2");
		add_orec(rd, &rd->o->links, pos, f[0], f[1], 0, false);
		return 0;
	case 'T':
		if (nf != 1)
			return bad_line(rd, "T needs DIR");
		add_orec(rd, &rd->o->snaps, pos, f[0], NULL, 0, false);
		return 0;
	case 'Q':
	case 'q':
		if (nf != 2 || parse_num(f[1], &n))
			return bad_line(rd, "Q and q need DB ROWS");
		add_orec(rd, &rd->o->sqlite, pos, f[0], NULL, n, kind == 'Q');
		return 0;
	case 'G':
		if (nf != 2 || parse_num(f[1], &n))
			return bad_line(rd, "G needs REPO COMMITS");
		add_orec(rd, &rd->o->git, pos, f[0], NULL, n, true);
		return 0;
	}
	return bad_line(rd, "unknown record kind");
}

static int parse_line(struct reading *rd, char *line)
{
	char *f[MAX_FIELDS], *save = NULL;
	struct decl d = {0};
	int nf = 0;
	uint64_t pos;

	for (char *t = strtok_r(line, " \n", &save); t; t = strtok_r(NULL, " \n", &save)) {
		if (nf == MAX_FIELDS)
			return bad_line(rd, "too many fields");
		f[nf++] = t;
	}
	if (nf == 0)
		return 0;
	if (nf < 3 || parse_num(f[0], &pos) || strlen(f[1]) != 1)
		return bad_line(rd, "not POS KIND ARGS...");
	d.pos = pos;
	switch (f[1][0]) {
	case 'V':
		return parse_version(rd, pos, f + 2, nf - 2);
	case 'A':
		d.absent = true;
		/* fall through */
	case 'D':
	case 'X':
		if (nf != 3)
			return bad_line(rd, "A, D and X need one PATH");
		return add_prec(rd, f[1][0], f[2], &d);
	}
	return parse_other(rd, pos, f[1][0], f + 2, nf - 2);
}

static int cmp_prec(const void *a, const void *b)
{
	const struct prec *x = a, *y = b;
	int c = strcmp(x->path, y->path);

	if (c)
		return c;
	return x->line < y->line ? -1 : x->line > y->line;
}

static void add_to_path(struct opath *p, struct prec *r, size_t *dcap, size_t *cap)
{
	switch (r->kind) {
	case 'V':
	case 'A':
		p->decls = grow(p->decls, dcap, p->ndecls + 1, sizeof(*p->decls));
		p->decls[p->ndecls++] = r->d;
		break;
	case 'D':
		p->ds = grow(p->ds, cap, p->nd + 1, sizeof(*p->ds));
		p->ds[p->nd++] = (struct durable){r->d.pos, p->ndecls, r->line};
		break;
	case 'X':
		if (r->d.pos < p->xpos)
			p->xpos = r->d.pos;
		break;
	}
}

/* Sorted records, grouped into one opath per path. */
static void group_paths(struct reading *rd)
{
	struct oracle *o = rd->o;
	size_t pcap = 0, dcap = 0, cap = 0;

	if (rd->nrecs) /* none: a workload with only Q or G records */
		qsort(rd->recs, rd->nrecs, sizeof(*rd->recs), cmp_prec);
	for (size_t i = 0; i < rd->nrecs; i++) {
		struct prec *r = &rd->recs[i];

		if (!o->npaths || strcmp(o->paths[o->npaths - 1].path, r->path)) {
			o->paths = grow(o->paths, &pcap, o->npaths + 1, sizeof(*o->paths));
			o->paths[o->npaths++] = (struct opath){.path = r->path, .xpos = UINT64_MAX};
			dcap = cap = 0;
		} else {
			free(r->path);
		}
		add_to_path(&o->paths[o->npaths - 1], r, &dcap, &cap);
	}
	free(rd->recs);
}

int oracle_load(const char *file, struct oracle *o)
{
	struct reading rd = {.file = file, .o = o};
	FILE *f = fopen(file, "r");
	char *line = NULL;
	size_t len = 0;
	int err = 0;

	memset(o, 0, sizeof(*o));
	if (!f) {
		fprintf(stderr, "crashcheck: %s: %s\n", file, strerror(errno));
		return -1;
	}
	while (!err && getline(&line, &len, f) >= 0) {
		rd.line++;
		err = parse_line(&rd, line);
	}
	free(line);
	fclose(f);
	group_paths(&rd);
	if (err)
		oracle_free(o);
	return err;
}

static void free_orecs(struct orecs *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].a);
		free(l->v[i].b);
	}
	free(l->v);
}

void oracle_free(struct oracle *o)
{
	for (size_t i = 0; i < o->npaths; i++) {
		struct opath *p = &o->paths[i];

		for (size_t k = 0; k < p->ndecls; k++)
			free(p->decls[k].holes);
		free(p->decls);
		free(p->ds);
		free(p->path);
	}
	free(o->paths);
	free_orecs(&o->links);
	free_orecs(&o->snaps);
	free_orecs(&o->sqlite);
	free_orecs(&o->git);
	memset(o, 0, sizeof(*o));
}

static int cmp_path_key(const void *key, const void *elem)
{
	return strcmp(key, ((const struct opath *)elem)->path);
}

struct opath *oracle_path(const struct oracle *o, const char *path)
{
	return bsearch(path, o->paths, o->npaths, sizeof(*o->paths), cmp_path_key);
}
