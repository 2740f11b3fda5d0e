/* SPDX-License-Identifier: MIT */
/*
 * memdev.c - an in-memory struct arb_dev for tests: event recording, crash
 * images and write fault injection.
 *
 * The log stores each write's bytes in one growing arena (not one malloc per
 * event): crash tests record thousands of writes.
 *
 * Crash images are built from a cached "prefix snapshot": base plus every
 * write in [0, snap_cut).  Building the image for cut c copies the snapshot
 * after moving it to c (or to the last flush for seeded images), so a caller
 * walking cut = 0..N applies each logged write about once in total instead of
 * once per image.  A crash view does not even copy it: it reads the snapshot
 * and keeps private copies of the pages written to it.
 */
#include "arbor/memdev.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct mem_event {
	uint64_t off; /* device offset of a write */
	uint64_t len; /* bytes written; 0 for a flush */
	size_t data;  /* where the bytes start in the log arena */
	bool flush;
};

struct memdev {
	struct arb_dev dev; /* first: the public part */
	uint8_t *data;

	/* Recording (base == NULL: not recording). */
	uint8_t *base;
	struct mem_event *ev;
	size_t nev, ev_cap;
	uint8_t *arena;
	size_t arena_len, arena_cap;

	/* Crash-image cache: base + writes [0, snap_cut), built lazily. */
	pthread_mutex_t snap_lock;
	uint8_t *snap;
	size_t snap_cut;
	unsigned views; /* open crash views: they read snap, which must stay put */

	/* Fault injection: writes left before failing, < 0 when disabled. */
	long fail_after;
	int fail_err;

	uint64_t writes, flushes;
};

static const struct arb_dev_ops memdev_ops;

/* NULL for a device of another backend, so misuse cannot corrupt memory. */
static struct memdev *to_memdev(const struct arb_dev *dev)
{
	if (!dev || dev->ops != &memdev_ops)
		return NULL;
	return (struct memdev *)dev;
}

/* ---- the log --------------------------------------------------------- */

/* buf grown to hold at least need elements of elem bytes (doubling), or NULL. */
static void *grow(void *buf, size_t *cap, size_t need, size_t elem)
{
	size_t ncap = *cap ? *cap : 16;
	void *nbuf;

	if (need <= *cap)
		return buf;
	while (ncap < need) {
		if (ncap > SIZE_MAX / 2 / elem)
			return NULL;
		ncap *= 2;
	}
	nbuf = realloc(buf, ncap * elem);
	if (nbuf)
		*cap = ncap;
	return nbuf;
}

static int reserve_slot(struct memdev *m)
{
	struct mem_event *ev = grow(m->ev, &m->ev_cap, m->nev + 1, sizeof(*m->ev));

	if (!ev)
		return -ENOMEM;
	m->ev = ev;
	return 0;
}

static int reserve_event(struct memdev *m, uint64_t len)
{
	uint8_t *arena;

	if (len > SIZE_MAX - m->arena_len || reserve_slot(m) < 0)
		return -ENOMEM;
	arena = grow(m->arena, &m->arena_cap, m->arena_len + (size_t)len, 1);
	if (!arena)
		return -ENOMEM;
	m->arena = arena;
	return 0;
}

static void log_write(struct memdev *m, const struct iovec *iov, int iovcnt, uint64_t off,
                      uint64_t len)
{
	struct mem_event *e = &m->ev[m->nev++];

	*e = (struct mem_event){.off = off, .len = len, .data = m->arena_len};
	for (int i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len == 0)
			continue; /* its base may be NULL */
		memcpy(m->arena + m->arena_len, iov[i].iov_base, iov[i].iov_len);
		m->arena_len += iov[i].iov_len;
	}
}

static void log_flush(struct memdev *m)
{
	m->ev[m->nev++] = (struct mem_event){.flush = true};
}

/* Apply a logged write to an image. */
static void apply_event(const struct memdev *m, uint8_t *img, const struct mem_event *e)
{
	if (!e->flush)
		memcpy(img + e->off, m->arena + e->data, e->len);
}

static void drop_log(struct memdev *m)
{
	free(m->base);
	free(m->ev);
	free(m->arena);
	free(m->snap);
	m->base = m->arena = m->snap = NULL;
	m->ev = NULL;
	m->nev = m->ev_cap = m->arena_len = m->arena_cap = m->snap_cut = 0;
}

/* ---- arb_dev_ops ----------------------------------------------------- */

static int memdev_pread(struct arb_dev *dev, void *buf, size_t len, uint64_t off)
{
	memcpy(buf, to_memdev(dev)->data + off, len);
	return 0;
}

static int memdev_pwritev(struct arb_dev *dev, const struct iovec *iov, int iovcnt, uint64_t off)
{
	struct memdev *m = to_memdev(dev);
	uint64_t len = 0;
	uint8_t *dst;

	if (m->fail_after == 0)
		return m->fail_err;
	for (int i = 0; i < iovcnt; i++)
		len += iov[i].iov_len;
	/* Reserve log space first so a failure leaves the image untouched. */
	if (m->base && reserve_event(m, len) < 0)
		return -ENOMEM;

	dst = m->data + off;
	for (int i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len == 0)
			continue;
		memcpy(dst, iov[i].iov_base, iov[i].iov_len);
		dst += iov[i].iov_len;
	}
	if (m->base)
		log_write(m, iov, iovcnt, off, len);
	if (m->fail_after > 0)
		m->fail_after--;
	m->writes++;
	return 0;
}

static int memdev_flush(struct arb_dev *dev)
{
	struct memdev *m = to_memdev(dev);

	if (m->base) {
		if (reserve_slot(m) < 0)
			return -ENOMEM;
		log_flush(m);
	}
	m->flushes++;
	return 0;
}

static void memdev_close(struct arb_dev *dev)
{
	struct memdev *m = to_memdev(dev);

	drop_log(m);
	pthread_mutex_destroy(&m->snap_lock);
	free(m->data);
	free(m);
}

static const struct arb_dev_ops memdev_ops = {
        .pread = memdev_pread,
        .pwritev = memdev_pwritev,
        .flush = memdev_flush,
        .close = memdev_close,
};

/* ---- creation -------------------------------------------------------- */

/* A device with uninitialised contents; callers fill them. */
static int memdev_alloc(uint64_t size, bool zero, struct memdev **ret)
{
	struct memdev *m;
	size_t bytes;

	if (size > SIZE_MAX)
		return -ENOMEM;
	bytes = size ? (size_t)size : 1; /* malloc(0) may return NULL */
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->data = zero ? calloc(1, bytes) : malloc(bytes);
	if (!m->data) {
		free(m);
		return -ENOMEM;
	}
	pthread_mutex_init(&m->snap_lock, NULL);
	m->dev.ops = &memdev_ops;
	m->dev.size = size;
	m->fail_after = -1;
	*ret = m;
	return 0;
}

int arb_memdev_create(uint64_t size, struct arb_dev **ret_dev)
{
	struct memdev *m;
	int ret = memdev_alloc(size, true, &m);

	if (ret < 0)
		return ret;
	*ret_dev = &m->dev;
	return 0;
}

int arb_memdev_from_buffer(const void *buf, uint64_t size, struct arb_dev **ret_dev)
{
	struct memdev *m;
	int ret = memdev_alloc(size, false, &m);

	if (ret < 0)
		return ret;
	if (size)
		memcpy(m->data, buf, (size_t)size);
	*ret_dev = &m->dev;
	return 0;
}

uint8_t *arb_memdev_data(struct arb_dev *dev)
{
	struct memdev *m = to_memdev(dev);

	return m ? m->data : NULL;
}

/* ---- recording ------------------------------------------------------- */

void arb_memdev_record(struct arb_dev *dev)
{
	struct memdev *m = to_memdev(dev);
	size_t bytes;

	if (!m)
		return;
	bytes = m->dev.size ? (size_t)m->dev.size : 1;
	drop_log(m);
	/*
	 * The API cannot report failure; without a base the device simply
	 * does not record, and crash images fall back to the current image.
	 */
	m->base = malloc(bytes);
	if (m->base)
		memcpy(m->base, m->data, (size_t)m->dev.size);
}

size_t arb_memdev_events(const struct arb_dev *dev)
{
	const struct memdev *m = to_memdev(dev);

	return m ? m->nev : 0;
}

bool arb_memdev_event_is_flush(const struct arb_dev *dev, size_t i)
{
	const struct memdev *m = to_memdev(dev);

	return m && i < m->nev && m->ev[i].flush;
}

/* ---- crash images ---------------------------------------------------- */

/* A tiny PRNG (splitmix64): reproducible from the seed alone. */
static uint64_t splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

/* Index just past the last flush before cut: everything below it landed. */
static size_t stable_prefix(const struct memdev *m, size_t cut)
{
	while (cut > 0 && !m->ev[cut - 1].flush)
		cut--;
	return cut;
}

/* Move the snapshot to base + writes [0, to).  Called with snap_lock held. */
static int snap_move(struct memdev *m, size_t to)
{
	size_t bytes = m->dev.size ? (size_t)m->dev.size : 1;

	if (m->views && (!m->snap || to != m->snap_cut))
		return -EBUSY;
	if (!m->snap) {
		m->snap = malloc(bytes);
		if (!m->snap)
			return -ENOMEM;
		m->snap_cut = to + 1; /* force the rebuild below */
	}
	/* Writes cannot be undone: going backwards restarts from base. */
	if (to < m->snap_cut) {
		memcpy(m->snap, m->base, (size_t)m->dev.size);
		m->snap_cut = 0;
	}
	for (; m->snap_cut < to; m->snap_cut++)
		apply_event(m, m->snap, &m->ev[m->snap_cut]);
	return 0;
}

/* Where apply_random puts a write it keeps: a flat image, or a view. */
typedef int (*apply_fn)(void *target, const struct memdev *m, const struct mem_event *e);

static int apply_to_image(void *img, const struct memdev *m, const struct mem_event *e)
{
	apply_event(m, img, e);
	return 0;
}

/*
 * The unflushed writes [from, cut) as a volatile cache may leave them: a
 * random subset, applied in a random order (it matters where they overlap).
 * The keep probability is itself random per seed, so across seeds images
 * range from "nothing landed" to "everything landed, reordered".
 */
static int apply_random_to(const struct memdev *m, apply_fn apply, void *target, size_t from,
                           size_t cut, uint64_t seed)
{
	size_t n = cut - from;
	uint64_t rng = seed;
	uint64_t keep;
	size_t *idx;
	int ret = 0;

	if (n == 0)
		return 0;
	idx = malloc(n * sizeof(*idx));
	if (!idx)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		idx[i] = from + i;
	/* Fisher-Yates shuffle; the modulo bias is irrelevant for tests. */
	for (size_t i = n - 1; i > 0; i--) {
		size_t j = (size_t)(splitmix64(&rng) % (i + 1));
		size_t t = idx[i];

		idx[i] = idx[j];
		idx[j] = t;
	}
	keep = splitmix64(&rng);
	for (size_t i = 0; i < n && ret == 0; i++)
		if (splitmix64(&rng) < keep)
			ret = apply(target, m, &m->ev[idx[i]]);
	free(idx);
	return ret;
}

static int apply_random(const struct memdev *m, uint8_t *img, size_t from, size_t cut,
                        uint64_t seed)
{
	return apply_random_to(m, apply_to_image, img, from, cut, seed);
}

/* Copy base + writes [0, prefix) into img, through the snapshot cache. */
static int build_prefix(const struct memdev *cm, size_t prefix, uint8_t *img)
{
	/* The cache is internal state: the caller's device is not const. */
	struct memdev *m = (struct memdev *)cm;
	int ret;

	pthread_mutex_lock(&m->snap_lock);
	ret = snap_move(m, prefix);
	if (ret == 0)
		memcpy(img, m->snap, (size_t)m->dev.size);
	pthread_mutex_unlock(&m->snap_lock);
	return ret;
}

int arb_memdev_crash_image(const struct arb_dev *dev, size_t cut, uint64_t seed,
                           struct arb_dev **ret_dev)
{
	const struct memdev *m = to_memdev(dev);
	struct memdev *out;
	size_t prefix;
	int ret;

	if (!m || cut > m->nev)
		return -EINVAL;
	ret = memdev_alloc(m->dev.size, false, &out);
	if (ret < 0)
		return ret;

	/* Not recording: no events, the image is the device as it is. */
	if (!m->base) {
		memcpy(out->data, m->data, (size_t)m->dev.size);
		*ret_dev = &out->dev;
		return 0;
	}
	prefix = seed ? stable_prefix(m, cut) : cut;
	ret = build_prefix(m, prefix, out->data);
	if (ret == 0 && seed)
		ret = apply_random(m, out->data, prefix, cut, seed);
	if (ret < 0) {
		memdev_close(&out->dev);
		return ret;
	}
	*ret_dev = &out->dev;
	return 0;
}

/* ---- crash views ------------------------------------------------------ */

/*
 * A crash view reads the prefix cache itself and keeps only the pages
 * written to it (by the random subset of a seeded cut, then by whoever opens
 * the filesystem on it): a state costs what it changes, not a copy of the
 * whole device.
 */
#define VIEW_PAGE 4096u

struct memview {
	struct arb_dev dev; /* first: the public part */
	struct memdev *parent;
	uint8_t **pages; /* private copy of each page written, or NULL */
	size_t npages;
};

static const struct arb_dev_ops view_ops;

static struct memview *to_view(struct arb_dev *dev)
{
	return (struct memview *)dev;
}

/* The bytes of page p as the view sees them. */
static const uint8_t *view_page(const struct memview *v, size_t p)
{
	return v->pages[p] ? v->pages[p] : v->parent->snap + (size_t)p * VIEW_PAGE;
}

static int view_pread(struct arb_dev *dev, void *buf, size_t len, uint64_t off)
{
	struct memview *v = to_view(dev);
	uint8_t *dst = buf;

	while (len) {
		size_t p = (size_t)(off / VIEW_PAGE), in = (size_t)(off % VIEW_PAGE);
		size_t n = VIEW_PAGE - in < len ? VIEW_PAGE - in : len;

		memcpy(dst, view_page(v, p) + in, n);
		dst += n;
		off += n;
		len -= n;
	}
	return 0;
}

/* Page p made private (copied from the cache on first write). */
static uint8_t *view_own(struct memview *v, size_t p)
{
	uint64_t start = (uint64_t)p * VIEW_PAGE;
	size_t n = v->dev.size - start < VIEW_PAGE ? (size_t)(v->dev.size - start) : VIEW_PAGE;

	if (!v->pages[p]) {
		v->pages[p] = malloc(VIEW_PAGE);
		if (v->pages[p])
			memcpy(v->pages[p], v->parent->snap + start, n);
	}
	return v->pages[p];
}

static int view_write(struct memview *v, const uint8_t *src, size_t len, uint64_t off)
{
	while (len) {
		size_t p = (size_t)(off / VIEW_PAGE), in = (size_t)(off % VIEW_PAGE);
		size_t n = VIEW_PAGE - in < len ? VIEW_PAGE - in : len;
		uint8_t *page = view_own(v, p);

		if (!page)
			return -ENOMEM;
		memcpy(page + in, src, n);
		src += n;
		off += n;
		len -= n;
	}
	return 0;
}

static int view_pwritev(struct arb_dev *dev, const struct iovec *iov, int iovcnt, uint64_t off)
{
	struct memview *v = to_view(dev);

	for (int i = 0; i < iovcnt; i++) {
		int err = view_write(v, iov[i].iov_base, iov[i].iov_len, off);

		if (err)
			return err;
		off += iov[i].iov_len;
	}
	return 0;
}

static int view_flush(struct arb_dev *dev)
{
	(void)dev;
	return 0;
}

static void view_close(struct arb_dev *dev)
{
	struct memview *v = to_view(dev);

	for (size_t p = 0; p < v->npages; p++)
		free(v->pages[p]);
	free(v->pages);
	pthread_mutex_lock(&v->parent->snap_lock);
	v->parent->views--;
	pthread_mutex_unlock(&v->parent->snap_lock);
	free(v);
}

static const struct arb_dev_ops view_ops = {
        .pread = view_pread,
        .pwritev = view_pwritev,
        .flush = view_flush,
        .close = view_close,
};

static int apply_to_view(void *view, const struct memdev *m, const struct mem_event *e)
{
	return e->flush ? 0 : view_write(view, m->arena + e->data, (size_t)e->len, e->off);
}

/* Move the cache to prefix and count a view on it. */
static int pin_prefix(struct memdev *m, size_t prefix)
{
	int ret;

	pthread_mutex_lock(&m->snap_lock);
	ret = snap_move(m, prefix);
	if (ret == 0)
		m->views++;
	pthread_mutex_unlock(&m->snap_lock);
	return ret;
}

static struct memview *view_alloc(struct memdev *m)
{
	struct memview *v = calloc(1, sizeof(*v));

	if (!v)
		return NULL;
	v->npages = (size_t)((m->dev.size + VIEW_PAGE - 1) / VIEW_PAGE);
	v->pages = calloc(v->npages ? v->npages : 1, sizeof(*v->pages));
	if (!v->pages) {
		free(v);
		return NULL;
	}
	v->parent = m;
	v->dev.ops = &view_ops;
	v->dev.size = m->dev.size;
	return v;
}

int arb_memdev_crash_view(const struct arb_dev *dev, size_t cut, uint64_t seed,
                          struct arb_dev **ret_dev)
{
	/* The cache is internal state: the caller's device is not const. */
	struct memdev *m = (struct memdev *)to_memdev(dev);
	struct memview *v;
	size_t prefix;
	int ret;

	if (!m || !m->base || cut > m->nev)
		return -EINVAL;
	prefix = seed ? stable_prefix(m, cut) : cut;
	v = view_alloc(m);
	if (!v)
		return -ENOMEM;
	ret = pin_prefix(m, prefix);
	if (ret < 0) {
		free(v->pages);
		free(v);
		return ret;
	}
	if (seed)
		ret = apply_random_to(m, apply_to_view, v, prefix, cut, seed);
	if (ret < 0) {
		view_close(&v->dev);
		return ret;
	}
	*ret_dev = &v->dev;
	return 0;
}

/* ---- fault injection and counters ------------------------------------ */

void arb_memdev_fail_writes_after(struct arb_dev *dev, long n, int err)
{
	struct memdev *m = to_memdev(dev);

	if (!m)
		return;
	m->fail_after = n < 0 ? -1 : n;
	/* A "failure" returning success would silently drop writes. */
	m->fail_err = err < 0 ? err : -EIO;
}

uint64_t arb_memdev_write_count(const struct arb_dev *dev)
{
	const struct memdev *m = to_memdev(dev);

	return m ? m->writes : 0;
}

uint64_t arb_memdev_flush_count(const struct arb_dev *dev)
{
	const struct memdev *m = to_memdev(dev);

	return m ? m->flushes : 0;
}
