/* SPDX-License-Identifier: MIT */
/*
 * cache.h - the node cache: every tree node in memory lives here, keyed by
 * its address.  Dirty nodes (written in the running transaction) stay until
 * commit; clean ones that nobody pins are evicted least-recently-used first
 * once their total passes the bound.
 */
#ifndef ARBOR_CACHE_H
#define ARBOR_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct arb_node {
	uint64_t bytenr;
	uint8_t *buf;
	uint32_t pins;
	bool dirty;
	bool finalized; /* checksum computed for the commit in progress */
	uint32_t csum;  /* valid when clean or finalized */
	/* leaves: 1 + the slot of the last insert, 0 when unknown; tells a
	 * run of ascending inserts from random ones when the leaf splits */
	uint32_t insert_hint;
	struct arb_node *hnext;
	/* on the LRU list when clean and unpinned, on the dirty list when dirty */
	struct arb_node *prev, *next;
};

struct arb_node_list {
	struct arb_node *head, *tail;
	size_t count;
};

struct arb_cache {
	uint32_t nodesize;
	struct arb_node **buckets;
	size_t nbuckets;
	size_t count;
	size_t max_clean;
	struct arb_node_list lru;
	struct arb_node_list dirty;
};

int arb_cache_init(struct arb_cache *c, uint32_t nodesize, size_t max_bytes);
void arb_cache_destroy(struct arb_cache *c);

/* Find and pin. NULL if absent. */
struct arb_node *arb_cache_get(struct arb_cache *c, uint64_t bytenr);
/* A new pinned, clean node with an uninitialised buffer; replaces (drops) a
 * stale unpinned entry at the same address.  NULL on ENOMEM. */
struct arb_node *arb_cache_add(struct arb_cache *c, uint64_t bytenr);
void arb_cache_pin(struct arb_node *n);
void arb_cache_unpin(struct arb_cache *c, struct arb_node *n);
void arb_cache_set_dirty(struct arb_cache *c, struct arb_node *n);
/* Remove and free a node (its block was released); must be pinned once. */
void arb_cache_forget(struct arb_cache *c, struct arb_node *n);
/* Drop an unpinned clean node at bytenr if present (block freed). */
void arb_cache_drop_clean(struct arb_cache *c, uint64_t bytenr);
/* After a commit: every dirty node becomes clean. */
void arb_cache_clean_all(struct arb_cache *c);
/* Evict down to the bound. */
void arb_cache_trim(struct arb_cache *c);

#endif
