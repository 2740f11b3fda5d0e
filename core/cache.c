/* SPDX-License-Identifier: MIT */
/* cache.c - the node cache (see cache.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"

static size_t bucket_of(const struct arb_cache *c, uint64_t bytenr)
{
	uint64_t h = bytenr * 0x9E3779B97F4A7C15ull;
	return (size_t)(h >> 20) & (c->nbuckets - 1);
}

static void list_del(struct arb_node_list *l, struct arb_node *n)
{
	if (n->prev)
		n->prev->next = n->next;
	else
		l->head = n->next;
	if (n->next)
		n->next->prev = n->prev;
	else
		l->tail = n->prev;
	n->prev = n->next = NULL;
	l->count--;
}

static void list_add_tail(struct arb_node_list *l, struct arb_node *n)
{
	n->next = NULL;
	n->prev = l->tail;
	if (l->tail)
		l->tail->next = n;
	else
		l->head = n;
	l->tail = n;
	l->count++;
}

int arb_cache_init(struct arb_cache *c, uint32_t nodesize, size_t max_bytes)
{
	memset(c, 0, sizeof(*c));
	c->nodesize = nodesize;
	c->max_clean = max_bytes / nodesize;
	if (c->max_clean < 64)
		c->max_clean = 64;
	c->nbuckets = 1024;
	while (c->nbuckets < c->max_clean)
		c->nbuckets <<= 1;
	c->buckets = calloc(c->nbuckets, sizeof(*c->buckets));
	return c->buckets ? 0 : -ENOMEM;
}

static void unhash(struct arb_cache *c, struct arb_node *n)
{
	struct arb_node **pp = &c->buckets[bucket_of(c, n->bytenr)];

	while (*pp != n)
		pp = &(*pp)->hnext;
	*pp = n->hnext;
	c->count--;
}

static void free_node(struct arb_node *n)
{
	free(n->buf);
	free(n);
}

void arb_cache_destroy(struct arb_cache *c)
{
	for (size_t i = 0; i < c->nbuckets && c->buckets; i++) {
		struct arb_node *n = c->buckets[i];

		while (n) {
			struct arb_node *next = n->hnext;

			free_node(n);
			n = next;
		}
	}
	free(c->buckets);
	memset(c, 0, sizeof(*c));
}

static struct arb_node *lookup(const struct arb_cache *c, uint64_t bytenr)
{
	struct arb_node *n = c->buckets[bucket_of(c, bytenr)];

	while (n && n->bytenr != bytenr)
		n = n->hnext;
	return n;
}

void arb_cache_pin(struct arb_node *n)
{
	n->pins++;
}

struct arb_node *arb_cache_get(struct arb_cache *c, uint64_t bytenr)
{
	struct arb_node *n = lookup(c, bytenr);

	if (!n)
		return NULL;
	if (n->pins == 0 && !n->dirty)
		list_del(&c->lru, n);
	n->pins++;
	return n;
}

/* Remove a node from whichever list holds it and from the hash, and free it. */
static void evict(struct arb_cache *c, struct arb_node *n)
{
	if (n->dirty)
		list_del(&c->dirty, n);
	else if (n->pins == 0)
		list_del(&c->lru, n);
	unhash(c, n);
	free_node(n);
}

struct arb_node *arb_cache_add(struct arb_cache *c, uint64_t bytenr)
{
	struct arb_node *old = lookup(c, bytenr);
	struct arb_node *n;

	if (old) {
		/* a stale copy of a block that was freed and is now reused */
		if (old->pins || old->dirty)
			return NULL;
		evict(c, old);
	}
	n = calloc(1, sizeof(*n));
	if (!n)
		return NULL;
	n->buf = aligned_alloc(4096, c->nodesize);
	if (!n->buf) {
		free(n);
		return NULL;
	}
	n->bytenr = bytenr;
	n->pins = 1;
	size_t b = bucket_of(c, bytenr);
	n->hnext = c->buckets[b];
	c->buckets[b] = n;
	c->count++;
	return n;
}

void arb_cache_trim(struct arb_cache *c)
{
	while (c->lru.count > c->max_clean)
		evict(c, c->lru.head);
}

void arb_cache_unpin(struct arb_cache *c, struct arb_node *n)
{
	if (--n->pins == 0 && !n->dirty) {
		list_add_tail(&c->lru, n);
		arb_cache_trim(c);
	}
}

void arb_cache_set_dirty(struct arb_cache *c, struct arb_node *n)
{
	if (n->dirty)
		return;
	/* pinned by the caller, so it is not on the LRU list */
	n->dirty = true;
	n->finalized = false;
	list_add_tail(&c->dirty, n);
}

void arb_cache_forget(struct arb_cache *c, struct arb_node *n)
{
	n->pins = 0;
	if (n->dirty)
		list_del(&c->dirty, n);
	unhash(c, n);
	free_node(n);
}

void arb_cache_drop_clean(struct arb_cache *c, uint64_t bytenr)
{
	struct arb_node *n = lookup(c, bytenr);

	if (n && !n->dirty && n->pins == 0)
		evict(c, n);
}

void arb_cache_clean_all(struct arb_cache *c)
{
	while (c->dirty.head) {
		struct arb_node *n = c->dirty.head;

		list_del(&c->dirty, n);
		n->dirty = false;
		n->finalized = false;
		if (n->pins == 0)
			list_add_tail(&c->lru, n);
	}
	arb_cache_trim(c);
}
