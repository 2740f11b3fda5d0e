/* SPDX-License-Identifier: MIT */
/* spacemap.c - per-sector reference counts and the next-fit allocator. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "spacemap.h"

int arb_sm_init(struct arb_spacemap *sm, uint64_t total_bytes, uint32_t sectorsize,
                uint32_t nodesize, const uint64_t *super_offsets, int ncopies)
{
	memset(sm, 0, sizeof(*sm));
	sm->sectorsize = sectorsize;
	sm->node_sectors = nodesize / sectorsize;
	sm->chunk_sectors = arb_sm_chunk_sectors(nodesize);
	sm->chunk_bytes = arb_sm_chunk_bytes(nodesize);
	sm->total_sectors = total_bytes / sectorsize;
	sm->nchunks = (sm->total_sectors + sm->chunk_sectors - 1) / sm->chunk_sectors;
	sm->chunks = calloc(sm->nchunks, sizeof(*sm->chunks));
	if (!sm->chunks)
		return -ENOMEM;

	sm->resv_start[0] = 0;
	sm->resv_end[0] = ARB_RESERVED_HEAD / sectorsize;
	sm->nresv = 1;
	for (int i = 0; i < ncopies; i++) {
		uint64_t s = super_offsets[i] / sectorsize;

		if (s == sm->resv_end[0]) { /* copy 0 follows the head: merge */
			sm->resv_end[0] += ARB_SUPER_COPY_SIZE / sectorsize;
			continue;
		}
		sm->resv_start[sm->nresv] = s;
		sm->resv_end[sm->nresv] = s + ARB_SUPER_COPY_SIZE / sectorsize;
		sm->nresv++;
	}
	for (int i = 0; i < sm->nresv; i++)
		sm->resv_sectors += sm->resv_end[i] - sm->resv_start[i];

	uint64_t usable = sm->total_sectors - sm->resv_sectors;
	/* What deletes and commits need when ordinary writes stop: a freeing
	 * operation's worst case (64 nodes, vfs_reserve) must fit in the half
	 * of the reserve it may use, and commits keep a quarter besides; the
	 * 1/64 scales with the device, as the trees deepen and commits grow. */
	sm->reserve_sectors = 160 * (nodesize / sectorsize) + usable / 64;
	if (sm->reserve_sectors > usable / 4)
		sm->reserve_sectors = usable / 4;
	sm->cursor = sm->resv_end[0];
	arb_sm_count_groups(sm, &sm->free_groups, &sm->zero_groups);
	return 0;
}

void arb_sm_destroy(struct arb_spacemap *sm)
{
	for (uint64_t i = 0; sm->chunks && i < sm->nchunks; i++) {
		if (sm->chunks[i]) {
			free(sm->chunks[i]->quar);
			free(sm->chunks[i]->counts);
			free(sm->chunks[i]);
		}
	}
	free(sm->chunks);
	free(sm->ovf);
	free(sm->pending);
	for (unsigned i = 0; i < ARB_DEFER_COMMITS; i++)
		free(sm->q[i].ext);
	memset(sm, 0, sizeof(*sm));
}

static uint32_t chunk_len(const struct arb_spacemap *sm, uint64_t idx)
{
	uint64_t first = idx * sm->chunk_sectors;
	uint64_t left = sm->total_sectors - first;

	return left < sm->chunk_sectors ? (uint32_t)left : sm->chunk_sectors;
}

/* The chunk, created all-zero when absent. */
static struct arb_sm_chunk *chunk_get(struct arb_spacemap *sm, uint64_t idx)
{
	struct arb_sm_chunk *c = sm->chunks[idx];

	if (c)
		return c;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->counts = calloc(1, sm->chunk_bytes);
	if (!c->counts) {
		free(c);
		return NULL;
	}
	c->nsectors = chunk_len(sm, idx);
	sm->chunks[idx] = c;
	return c;
}

static inline unsigned get2(const uint8_t *counts, uint32_t s)
{
	return (counts[s >> 2] >> ((s & 3) * 2)) & 3u;
}

static inline void set2(uint8_t *counts, uint32_t s, unsigned v)
{
	unsigned shift = (s & 3) * 2;

	counts[s >> 2] = (uint8_t)((counts[s >> 2] & ~(3u << shift)) | (v << shift));
}

int arb_sm_load_chunk(struct arb_spacemap *sm, uint64_t idx, const void *data, uint32_t len)
{
	if (idx >= sm->nchunks || len != (chunk_len(sm, idx) + 3) / 4)
		return -EUCLEAN;
	struct arb_sm_chunk *c = chunk_get(sm, idx);

	if (!c)
		return -ENOMEM;
	memcpy(c->counts, data, len);
	c->used = 0;
	for (uint32_t s = 0; s < c->nsectors; s++)
		c->used += get2(c->counts, s) != 0;
	c->dirty = false;
	c->on_disk = true;
	return 0;
}

/* ---- overflow counts: a small open-addressing hash ------------------- */

static size_t ovf_slot(const struct arb_spacemap *sm, uint64_t sector)
{
	return (size_t)((sector * 0x9E3779B97F4A7C15ull) >> 17) & (sm->ovf_cap - 1);
}

static struct arb_sm_overflow *ovf_find(const struct arb_spacemap *sm, uint64_t sector)
{
	if (!sm->ovf_cap)
		return NULL;
	for (size_t i = ovf_slot(sm, sector);; i = (i + 1) & (sm->ovf_cap - 1)) {
		if (!sm->ovf[i].used)
			return NULL;
		if (sm->ovf[i].sector == sector)
			return &sm->ovf[i];
	}
}

static int ovf_grow(struct arb_spacemap *sm)
{
	size_t cap = sm->ovf_cap ? sm->ovf_cap * 2 : 64;
	struct arb_sm_overflow *old = sm->ovf, *tab = calloc(cap, sizeof(*tab));
	size_t oldcap = sm->ovf_cap;

	if (!tab)
		return -ENOMEM;
	sm->ovf = tab;
	sm->ovf_cap = cap;
	for (size_t i = 0; i < oldcap; i++) {
		if (!old[i].used)
			continue;
		size_t j = ovf_slot(sm, old[i].sector);

		while (tab[j].used)
			j = (j + 1) & (cap - 1);
		tab[j] = old[i];
	}
	free(old);
	return 0;
}

/* Entries are never removed from the hash while open (a count dropping below
 * 3 leaves a zero entry, deleted from the tree at commit), so probing works. */
static struct arb_sm_overflow *ovf_insert(struct arb_spacemap *sm, uint64_t sector)
{
	struct arb_sm_overflow *o = ovf_find(sm, sector);

	if (o)
		return o;
	if ((sm->ovf_count + 1) * 4 > sm->ovf_cap * 3 && ovf_grow(sm))
		return NULL;
	size_t i = ovf_slot(sm, sector);

	while (sm->ovf[i].used)
		i = (i + 1) & (sm->ovf_cap - 1);
	sm->ovf[i].used = true;
	sm->ovf[i].sector = sector;
	sm->ovf[i].count = 0;
	sm->ovf[i].dirty = false;
	sm->ovf_count++;
	return &sm->ovf[i];
}

int arb_sm_load_overflow(struct arb_spacemap *sm, uint64_t bytenr, uint32_t count)
{
	struct arb_sm_overflow *o;

	if (bytenr % sm->sectorsize || bytenr / sm->sectorsize >= sm->total_sectors || count < 3)
		return -EUCLEAN;
	o = ovf_insert(sm, bytenr / sm->sectorsize);
	if (!o)
		return -ENOMEM;
	o->count = count;
	return 0;
}

/* ---- counts ----------------------------------------------------------- */

static bool is_reserved(const struct arb_spacemap *sm, uint64_t sector, uint64_t n)
{
	for (int i = 0; i < sm->nresv; i++)
		if (sector < sm->resv_end[i] && sector + n > sm->resv_start[i])
			return true;
	return false;
}

bool arb_sm_valid_range(const struct arb_spacemap *sm, uint64_t bytenr, uint64_t nsectors)
{
	uint64_t s = bytenr / sm->sectorsize;

	return bytenr % sm->sectorsize == 0 && nsectors > 0 && s < sm->total_sectors &&
	       nsectors <= sm->total_sectors - s && !is_reserved(sm, s, nsectors);
}

static uint32_t sector_count(const struct arb_spacemap *sm, uint64_t sector)
{
	const struct arb_sm_chunk *c = sm->chunks[sector / sm->chunk_sectors];
	unsigned v;

	if (!c)
		return 0;
	v = get2(c->counts, (uint32_t)(sector % sm->chunk_sectors));
	if (v == ARB_SM_OVERFLOW_MARK) {
		const struct arb_sm_overflow *o = ovf_find(sm, sector);

		return o ? o->count : ARB_SM_OVERFLOW_MARK;
	}
	return v;
}

uint32_t arb_sm_get(const struct arb_spacemap *sm, uint64_t bytenr)
{
	uint64_t s = bytenr / sm->sectorsize;

	return s < sm->total_sectors ? sector_count(sm, s) : 0;
}

/* ---- node-sized free groups ------------------------------------------- */

static bool quarantined(const struct arb_sm_chunk *c, uint32_t s);

/* A sector with count zero, and (unless with_quar) out of quarantine. */
static bool sector_free(const struct arb_spacemap *sm, uint64_t sector, bool with_quar)
{
	const struct arb_sm_chunk *c = sm->chunks[sector / sm->chunk_sectors];
	uint32_t s = (uint32_t)(sector % sm->chunk_sectors);

	return !c || (!get2(c->counts, s) && (with_quar || !quarantined(c, s)));
}

/* Group g (sectors g*node_sectors ...) can take a node (with_quar: will,
 * once the quarantine is over). */
static bool group_free(const struct arb_spacemap *sm, uint64_t g, bool with_quar)
{
	uint64_t first = g * sm->node_sectors;

	if (first + sm->node_sectors > sm->total_sectors ||
	    is_reserved(sm, first, sm->node_sectors))
		return false;
	for (uint64_t s = first; s < first + sm->node_sectors; s++)
		if (!sector_free(sm, s, with_quar))
			return false;
	return true;
}

void arb_sm_count_groups(const struct arb_spacemap *sm, uint64_t *ret_free, uint64_t *ret_zero)
{
	uint64_t nfree = 0, nzero = 0, groups = sm->total_sectors / sm->node_sectors;

	for (uint64_t g = 0; g < groups; g++) {
		const struct arb_sm_chunk *c = sm->chunks[g * sm->node_sectors / sm->chunk_sectors];
		uint64_t first = g * sm->node_sectors;

		if (c && c->used == c->nsectors)
			continue; /* a full chunk: nothing to look at */
		if (!c || (!c->used && !c->nquar)) {
			/* an empty chunk: only the reserved areas to skip */
			bool whole = !is_reserved(sm, first, sm->node_sectors);

			nfree += whole;
			nzero += whole;
			continue;
		}
		nfree += group_free(sm, g, false);
		nzero += group_free(sm, g, true);
	}
	*ret_free = nfree;
	*ret_zero = nzero;
}

/* Around a change of a sector's state, called just before it (before) and
 * just after: *groups follows.  A sector that stops being free breaks its
 * group if the group was whole; one that becomes free may complete it. */
static void group_track(struct arb_spacemap *sm, uint64_t sector, bool was_free, bool before,
                        bool with_quar, uint64_t *groups)
{
	uint64_t g = sector / sm->node_sectors;

	if (before && was_free && group_free(sm, g, with_quar))
		(*groups)--;
	else if (!before && !was_free && group_free(sm, g, with_quar))
		(*groups)++;
}

/* A sector's count goes from or to zero: both group totals follow. */
static void count_track(struct arb_spacemap *sm, uint64_t sector, bool was_zero, bool in_quar,
                        bool before)
{
	group_track(sm, sector, was_zero && !in_quar, before, false, &sm->free_groups);
	group_track(sm, sector, was_zero, before, true, &sm->zero_groups);
}

static int set_sector(struct arb_spacemap *sm, uint64_t sector, uint32_t old, uint32_t count)
{
	struct arb_sm_chunk *c = chunk_get(sm, sector / sm->chunk_sectors);
	uint32_t s = (uint32_t)(sector % sm->chunk_sectors);

	if (!c)
		return -ENOMEM;
	if (count >= 3 || old >= 3) {
		struct arb_sm_overflow *o = ovf_insert(sm, sector);

		if (!o)
			return -ENOMEM;
		o->count = count >= 3 ? count : 0;
		o->dirty = true;
	}
	bool in_quar = quarantined(c, s);

	if (!old != !count)
		count_track(sm, sector, !old, in_quar, true);
	set2(c->counts, s, count >= 3 ? ARB_SM_OVERFLOW_MARK : count);
	if (!old != !count)
		count_track(sm, sector, !old, in_quar, false);
	if (old == 0 && count) {
		c->used++;
		sm->sectors_used++;
	} else if (old && count == 0) {
		c->used--;
		sm->sectors_used--;
	}
	c->dirty = true;
	return 0;
}

int arb_sm_add(struct arb_spacemap *sm, uint64_t bytenr, uint64_t nsectors, int delta)
{
	uint64_t first = bytenr / sm->sectorsize;

	if (!arb_sm_valid_range(sm, bytenr, nsectors))
		return -EUCLEAN;
	for (uint64_t s = first; s < first + nsectors; s++) {
		uint32_t old = sector_count(sm, s);
		int64_t now = (int64_t)old + delta;

		if (now < 0 || now > UINT32_MAX)
			return -EUCLEAN;
		int ret = set_sector(sm, s, old, (uint32_t)now);

		if (ret)
			return ret;
	}
	return 0;
}

/* ---- allocation ------------------------------------------------------- */

uint64_t arb_sm_total_sectors(const struct arb_spacemap *sm)
{
	return sm->total_sectors - sm->resv_sectors;
}

uint64_t arb_sm_free_sectors(const struct arb_spacemap *sm)
{
	uint64_t taken = sm->sectors_used + sm->quarantined;
	uint64_t total = arb_sm_total_sectors(sm);

	/* never wraps: a free count near 2^64 would pass every space check */
	return taken < total ? total - taken : 0;
}

static bool quarantined(const struct arb_sm_chunk *c, uint32_t s)
{
	return c->quar && (c->quar[s >> 3] >> (s & 7) & 1);
}

static bool run_is_free(const struct arb_sm_chunk *c, uint32_t s, uint64_t n)
{
	if (!c)
		return true;
	for (uint64_t i = 0; i < n; i++)
		if (get2(c->counts, (uint32_t)(s + i)) || quarantined(c, (uint32_t)(s + i)))
			return false;
	return true;
}

static int mark_quarantine(struct arb_spacemap *sm, uint64_t first, uint64_t n, bool on)
{
	for (uint64_t sector = first; sector < first + n; sector++) {
		struct arb_sm_chunk *c = chunk_get(sm, sector / sm->chunk_sectors);
		uint32_t s = (uint32_t)(sector % sm->chunk_sectors);

		if (!c)
			return -ENOMEM;
		if (!c->quar && !(c->quar = calloc(1, (sm->chunk_sectors + 7) / 8)))
			return -ENOMEM;
		if (quarantined(c, s) == on)
			continue;
		/* a sector referenced again in the transaction that freed it
		 * (a shared leaf copied after one of its extents was dropped)
		 * is in use, not freed: it must not count twice */
		if (on && get2(c->counts, s))
			continue;
		/* free before the toggle exactly when it goes into quarantine */
		group_track(sm, sector, on, true, false, &sm->free_groups);
		c->quar[s >> 3] ^= (uint8_t)(1u << (s & 7));
		group_track(sm, sector, on, false, false, &sm->free_groups);
		c->nquar += on ? 1 : -1;
		sm->quarantined += on ? 1 : -1;
	}
	return 0;
}

int arb_sm_quarantine(struct arb_spacemap *sm, uint64_t gen, uint64_t bytenr, uint64_t nsectors)
{
	struct arb_sm_qlist *q = &sm->q[gen % ARB_DEFER_COMMITS];

	if (!arb_sm_valid_range(sm, bytenr, nsectors))
		return -EUCLEAN;
	if (q->n && q->gen != gen)
		arb_sm_expire(sm, q->gen);
	if (q->n == q->cap) {
		size_t cap = q->cap ? q->cap * 2 : 64;
		struct arb_extent *e = realloc(q->ext, cap * sizeof(*e));

		if (!e)
			return -ENOMEM;
		q->ext = e;
		q->cap = cap;
	}
	q->gen = gen;
	q->ext[q->n++] = (struct arb_extent){bytenr, nsectors};
	return mark_quarantine(sm, bytenr / sm->sectorsize, nsectors, true);
}

void arb_sm_expire(struct arb_spacemap *sm, uint64_t gen)
{
	for (unsigned i = 0; i < ARB_DEFER_COMMITS; i++) {
		struct arb_sm_qlist *q = &sm->q[i];

		if (!q->n || q->gen > gen)
			continue;
		/* clearing bits needs no memory: chunk and bitmap exist */
		for (size_t j = 0; j < q->n; j++)
			mark_quarantine(sm, q->ext[j].bytenr / sm->sectorsize, q->ext[j].nsectors,
			                false);
		q->n = 0;
	}
}

/* First free aligned run of n sectors at or after sector `from` inside chunk
 * idx; UINT64_MAX if none. */
static uint64_t search_chunk(const struct arb_spacemap *sm, uint64_t idx, uint64_t from, uint64_t n,
                             uint32_t align)
{
	const struct arb_sm_chunk *c = sm->chunks[idx];
	uint64_t base = idx * sm->chunk_sectors;
	uint64_t len = chunk_len(sm, idx);

	if (c && c->nsectors - c->used - c->nquar < n)
		return UINT64_MAX;
	uint64_t s = from > base ? from : base;

	s = (s + align - 1) / align * align;
	for (; s + n <= base + len; s += align) {
		if (is_reserved(sm, s, n))
			continue;
		if (run_is_free(c, (uint32_t)(s - base), n))
			return s;
	}
	return UINT64_MAX;
}

int arb_sm_alloc(struct arb_spacemap *sm, uint64_t nsectors, uint32_t align, uint64_t keep_free,
                 uint64_t *ret_bytenr)
{
	uint64_t free_now = arb_sm_free_sectors(sm);

	if (nsectors == 0 || nsectors > sm->chunk_sectors)
		return -EINVAL;
	if (free_now < nsectors || free_now - nsectors < keep_free)
		return -ENOSPC;
	if (sm->cursor >= sm->total_sectors)
		sm->cursor = 0;
	uint64_t start = sm->cursor / sm->chunk_sectors;

	/* one full lap, starting (and finally ending) in the cursor's chunk */
	for (uint64_t i = 0; i <= sm->nchunks; i++) {
		uint64_t idx = (start + i) % sm->nchunks;
		uint64_t from = i == 0 ? sm->cursor : idx * sm->chunk_sectors;
		uint64_t s = search_chunk(sm, idx, from, nsectors, align);

		if (s == UINT64_MAX)
			continue;
		int ret = arb_sm_add(sm, s * sm->sectorsize, nsectors, 1);

		if (ret)
			return ret;
		sm->cursor = s + nsectors;
		*ret_bytenr = s * sm->sectorsize;
		return 0;
	}
	return -ENOSPC;
}

int arb_sm_defer(struct arb_spacemap *sm, uint64_t bytenr, uint64_t nsectors)
{
	if (sm->npending &&
	    sm->pending[sm->npending - 1].bytenr +
	                    sm->pending[sm->npending - 1].nsectors * sm->sectorsize ==
	            bytenr) {
		sm->pending[sm->npending - 1].nsectors += nsectors;
	} else {
		if (sm->npending == sm->pending_cap) {
			size_t cap = sm->pending_cap ? sm->pending_cap * 2 : 256;
			struct arb_extent *p = realloc(sm->pending, cap * sizeof(*p));

			if (!p)
				return -ENOMEM;
			sm->pending = p;
			sm->pending_cap = cap;
		}
		sm->pending[sm->npending].bytenr = bytenr;
		sm->pending[sm->npending].nsectors = nsectors;
		sm->npending++;
	}
	sm->pending_sectors += nsectors;
	return 0;
}

uint64_t arb_sm_count_used(const struct arb_spacemap *sm)
{
	uint64_t used = 0;

	for (uint64_t i = 0; i < sm->nchunks; i++)
		if (sm->chunks[i])
			used += sm->chunks[i]->used;
	return used;
}
