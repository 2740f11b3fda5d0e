/* SPDX-License-Identifier: MIT */
/*
 * fsck_fs.h - shared state of phase 3 of fsck (the namespace check of each
 * subvolume): fsck_fs.c walks a subvolume's tree once and checks every
 * item alone and every inode's own items together; fsck_links.c then
 * checks what ties inodes together (names, link counts, reachability, the
 * orphan list), fsck_subvol.c the links to other subvolumes, and
 * fsck_repair.c applies the repairs; fsck_util.c holds the shared pieces.
 * Not installed.
 *
 * Memory: one 40-byte entry per inode and one per directory, in
 * open-addressing tables; a directory's entries are held only while its
 * items are walked.  Repairs are queued during the checks (a tree edit
 * would invalidate the walk's iterator) and applied at the end.
 */
#ifndef ARBOR_FSCK_FS_H
#define ARBOR_FSCK_FS_H

#include <stdbool.h>
#include <stdint.h>

#include "arbor/fsck.h"
#include "vfs_internal.h"

/* ---- open-addressing tables keyed by a non-zero u64 at offset 0 ---- */

/* Keys below dense_n have a fixed slot in a flat array (inode numbers are
 * handed out in order, so a subvolume's are dense: the walk touches the
 * array in order, where a hash would scatter every access); the rest, if
 * any, go to the hash table. */
struct fhash {
	uint8_t *v;
	size_t esz, cap, used;
	uint8_t *dense;
	uint64_t dense_n;
};

/* Give keys below n a flat array (calloc: pages never touched cost
 * nothing); on failure the hash table takes every key. */
void fhash_dense(struct fhash *h, uint64_t n);
void *fhash_get(const struct fhash *h, uint64_t key);
/* The entry of key, created zeroed (but for the key) if missing; NULL: ENOMEM. */
void *fhash_add(struct fhash *h, uint64_t key);
/* Every entry is fhash_at(h, i) for some i < fhash_slots(h), in increasing
 * key order among the dense ones; NULL for a free slot. */
size_t fhash_slots(const struct fhash *h);
void *fhash_at(const struct fhash *h, size_t i);
void fhash_free(struct fhash *h);

/* ---- what is known of each inode ---- */

enum {
	FI_ITEM = 1 << 0,    /* a valid inode item */
	FI_ORPHAN = 1 << 1,  /* on the orphan list */
	FI_FREE = 1 << 2,    /* to be freed (no name, link count 0) */
	FI_PROBLEM = 1 << 3, /* its names need a closer look */
	FI_REACH = 1 << 4,   /* reachable from the root (directories) */
	FI_VISIT = 1 << 5,   /* on the path being followed */
	FI_DETACH = 1 << 6,  /* reattached under /lost+found */
	FI_CYCLE = 1 << 7,   /* ... to cut a loop of directories */
};

/* Bit of entry types: one per DT_* value, SUBVOL and invalid apart. */
#define FT_BAD (1u << 15)

struct fino {
	uint64_t ino;      /* local number */
	uint64_t parent;   /* the directory of the (first) entry naming it */
	uint64_t fp;       /* sum of the fingerprints of the entries naming it,
	                      minus those of its back-references: 0 when they agree */
	uint32_t nlink;    /* as stored */
	uint32_t nents;    /* entries naming it (after the name check: kept names) */
	uint32_t nrefs;    /* back-reference records */
	uint16_t enttypes; /* 1 << type of every entry naming it */
	uint8_t dtype;     /* DT_* of its mode; 0 before its item is seen */
	uint8_t flags;     /* FI_* */
};

struct fdir {
	uint64_t ino;
	uint64_t size;       /* as stored */
	uint64_t names_len;  /* of its entries: what size must be */
	uint64_t next_index; /* as stored */
	uint64_t max_index;  /* highest index in use, +1 (0: none) */
	uint32_t subdirs;    /* entries naming directories or subvolumes */
	uint32_t nlink;      /* as stored */
};

/* A subvolume link: a directory entry of type ARB_DT_SUBVOL. */
struct fsublink {
	uint64_t dir, index, child;
	uint16_t nlen;
	char name[ARB_NAME_MAX + 1];
};

/* An entry naming an inode whose names are looked at closely. */
struct flink {
	uint64_t dir, index, child;
	uint8_t type;
	uint16_t nlen;
	char name[ARB_NAME_MAX + 1];
};

/* ---- queued repairs ---- */

enum fact_kind {
	FA_DEL_ITEM,    /* delete key (extents give their sectors back) */
	FA_DEL_REC,     /* remove the record `name` from a hashed item */
	FA_DEL_ENTRY,   /* remove dir/name (DIR_ITEM record + DIR_INDEX) */
	FA_DEL_IREF,    /* remove the back-reference of child to dir/name */
	FA_ADD_ENTRY,   /* DIR_ITEM record and DIR_INDEX (both, or the missing one) */
	FA_ADD_IREF,    /* back-reference of child to dir/name, index */
	FA_SET_TYPE,    /* entry dir/name gets type */
	FA_FREE_INODE,  /* every item of ino, and its orphan item */
	FA_ORPHAN_ADD,  /* put ino on the orphan list */
	FA_SET_INODE,   /* fields of an inode item */
	FA_REATTACH,    /* move ino under /lost+found */
	FA_SUBVOL_INFO, /* rewrite the info item */
	FA_ROOT_DEL,    /* delete a root-tree item */
	FA_ROOT_PUT,    /* write a root ref/backref */
};

/* FA_SET_INODE fields */
enum { FS_NLINK = 1, FS_SIZE = 2, FS_NBYTES = 4, FS_NEXT_INDEX = 8 };

/* FA_ADD_ENTRY: which halves */
enum { FE_ITEM = 1, FE_INDEX = 2 };

struct fact {
	struct fact *next;
	enum fact_kind kind;
	struct arb_key key; /* DEL_ITEM, DEL_REC, ROOT_* */
	enum rec_kind rec;  /* DEL_REC */
	uint64_t ino;       /* the inode or directory the repair is about */
	uint64_t child, index, parent;
	uint8_t type;
	unsigned fields;
	uint64_t nlink, size, nbytes, next_index;
	uint16_t nlen;
	char name[ARB_NAME_MAX + 1];
};

/* ---- one subvolume being checked ---- */

struct fsck_sv {
	struct arb_fs *fs;
	const struct arb_fsck_opts *o;
	struct arb_fsck_report *r;
	struct arb_tree *t;
	uint64_t id;
	bool repair;
	bool quiet; /* the second walk (entries of suspect inodes): no reports */

	struct fhash inos; /* struct fino */
	struct fhash dirs; /* struct fdir */

	uint64_t *orphans; /* ORPHAN items, in key order */
	size_t norphans, orphans_cap;

	struct fsublink *sublinks;
	size_t nsublinks, sublinks_cap;

	/* the second walk: entries naming suspect inodes */
	struct flink *links;
	size_t nlinks, links_cap;

	bool have_info; /* a valid SUBVOL_INFO */
	struct arb_subvol_info info;
	uint64_t inode_items;    /* INODE_ITEM keys present (what the core counts) */
	uint64_t max_ino;        /* highest objectid of an inode */
	uint64_t removed_inodes; /* inode items repair removes */

	struct fact *acts, **acts_tail;
	struct fact *late, **late_tail; /* applied after acts */
	struct fact scratch;            /* filled when nothing is queued */
	uint64_t freed_inodes;          /* inodes repair frees */
	uint64_t lost_found;            /* its number, 0: none yet */
	bool lost_found_made;
	uint64_t data_bytes;
};

/* Report a problem (one line, counted) / a repair (counted as fixed). */
void fsck_problem(struct fsck_sv *c, uint64_t ino, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
void fsck_fixed(struct fsck_sv *c, uint64_t ino, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
void fsck_info(struct fsck_sv *c, uint64_t ino, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
/* A name fit for a message: printable, quoted ('\xNN' for other bytes). */
const char *fsck_name(const char *name, size_t len, char *buf, size_t size);
#define FSCK_NAMEBUF (ARB_NAME_MAX * 4 + 3)

/* A queued repair (zeroed; kind set), or NULL (ENOMEM). */
struct fact *fsck_act(struct fsck_sv *c, enum fact_kind kind);
void fsck_set_name(struct fact *a, const char *name, size_t nlen);

struct fino *fsck_ino(struct fsck_sv *c, uint64_t ino, bool create);
struct fdir *fsck_dir(struct fsck_sv *c, uint64_t ino);
uint64_t fsck_link_fp(uint64_t dir, uint64_t index, const char *name, size_t nlen);

/* fsck_fs.c: the walk.  quiet: only the entries naming FI_PROBLEM inodes
 * are gathered (into c->links). */
int fsck_walk(struct fsck_sv *c);
/* Does item data hold a valid name: 1..ARB_NAME_MAX bytes, no '/' or NUL? */
bool fsck_name_ok(const char *name, size_t len);

/* fsck_links.c: everything between inodes (the repairs are queued) */
int fsck_links(struct fsck_sv *c);
/* Queue the removal of an entry (and, has_ref, of its back-reference),
 * and take it out of its directory's figures. */
int fsck_remove_entry(struct fsck_sv *c, const struct flink *e, bool has_ref);

/* fsck_subvol.c: the subvolume links of this subvolume against the root tree */
int fsck_subvol_links(struct fsck_sv *c);

/* fsck_repair.c: apply the queued repairs */
int fsck_apply(struct fsck_sv *c);

#endif
