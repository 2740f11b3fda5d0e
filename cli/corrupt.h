/* SPDX-License-Identifier: MIT */
/*
 * corrupt.h - "arbor inspect corrupt": what its two files share (corrupt.c:
 * the group, superblock slots, nodes, reference counts and data;
 * corrupt_item.c: items edited through a transaction).
 */
#ifndef ARBOR_CLI_CORRUPT_H
#define ARBOR_CLI_CORRUPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cli.h"

extern const struct cmd_struct cmd_struct_inspect_corrupt;
extern const struct cmd_struct cmd_struct_corrupt_item;

/* Most edits one command takes (--field, --set, --offset ...). */
#define CORRUPT_MAX_EDITS 16

/* A little-endian field of an on-disk structure. */
struct corrupt_field {
	const char *name;
	uint32_t off;
	uint8_t size; /* 1, 2, 4 or 8 */
};

/* The field called name in a table of n, or NULL. */
const struct corrupt_field *corrupt_find_field(const struct corrupt_field *tab, size_t n,
                                               const char *name);
/* Exit 2 naming the fields of the table when name is not one of them. */
const struct corrupt_field *corrupt_arg_field(const struct cmd_struct *cmd,
                                              const struct corrupt_field *tab, size_t n,
                                              const char *name);
/* Store v in size bytes, little-endian (the high bits of v are dropped). */
void corrupt_put_le(uint8_t *p, uint8_t size, uint64_t v);

/* "NAME=VALUE": the name (at most size - 1 bytes) and the number; exits 2
 * when malformed. */
void corrupt_arg_assign(const struct cmd_struct *cmd, const char *arg, char *name, size_t size,
                        uint64_t *ret);
/* "OBJECTID,TYPE,OFFSET", TYPE a number or a name (INODE_ITEM, DIR_ITEM,
 * ROOT_ITEM, ...): 0 or -EINVAL. */
int corrupt_parse_key(const char *s, struct arb_key *ret);
/* Hex digits, pairs, optionally separated by spaces or colons: a malloc'ed
 * buffer (NULL for none), 0 or -EINVAL / -ENOMEM. */
int corrupt_parse_hex(const char *s, uint8_t **ret, size_t *ret_len);
/* Print a key as (objectid TYPE offset) with the type's name. */
const char *corrupt_key_string(const struct arb_key *k, char *buf, size_t len);

/*
 * Open the -i image for damage: writable and exclusive (a mounted or
 * otherwise locked image is refused), the filesystem opened at the newest
 * commit (max_gen 0) or the newest at or before max_gen, read-only unless
 * write; SOURCE_DATE_EPOCH is the time of a commit.  Calls fn; a writable
 * filesystem is committed when fn succeeds.  Returns an exit status.
 */
int corrupt_with_fs(bool write, uint64_t max_gen, cli_fs_fn fn, void *arg);
/* The device alone, with the same refusal. */
int corrupt_with_dev(cli_dev_fn fn, void *arg);

/* Edit the data of item key of tree (the root tree: the engine allows
 * no ordinary edit of it) in place, in the commit cfs has open read-only,
 * then recompute the checksums up to its superblock slots.  fn changes
 * the len bytes of data, or returns a negative errno. */
typedef int (*corrupt_raw_fn)(void *ctx, uint8_t *data, uint32_t len);
int corrupt_raw_item(struct cli_fs *cfs, uint64_t tree, const struct arb_key *key,
                     corrupt_raw_fn fn, void *ctx);

/* A path of the default subvolume (errors printed). */
int corrupt_resolve(struct cli_fs *cfs, const char *path, struct cli_node *ret);
/* The EXTENT_DATA item of inode local covering file offset off: its key
 * and header; -ENOENT for a hole. */
int corrupt_find_extent(struct arb_tree *t, uint64_t local, uint64_t off, struct arb_key *ret,
                        struct arb_file_extent *fe);

#endif
