/* SPDX-License-Identifier: MIT */
/*
 * arbor_format.h - the Arbor on-disk format. This file is the specification:
 * every byte Arbor writes is described here, and nothing else defines layout.
 *
 * ===================================================================== *
 *  INVARIANTS
 * ===================================================================== *
 *
 * 1. No write ever lands on a block that a durable root can still reach.
 *    A durable root is one referenced by any superblock slot that is, or may
 *    be, on disk.  New versions of blocks always go to free space
 *    (copy-on-write, "shadowing").
 *
 * 2. Every metadata block (tree node) is self-describing and checksummed:
 *    struct arb_node_header carries magic, checksum, filesystem UUID, its own
 *    address, the generation (commit) that wrote it, the tree that created
 *    it, its level and item count.  Every pointer to a node carries the
 *    node's address, generation and checksum, so the parent verifies the
 *    child (a Merkle tree) and the child still verifies alone.
 *
 * 3. Commit of generation G: write every dirty node to fresh space, flush,
 *    write superblock slot (G % ARB_SUPER_SLOTS) in every superblock copy,
 *    flush.  Mount picks the valid slot with the highest generation whose
 *    trees verify, falling back to older slots.
 *
 * 4. A block freed by commit F (its reference count reached zero) is listed
 *    in the freed[] array of superblock slot F and counted zero in F's space
 *    map, but is not reused before commit F + ARB_DEFER_COMMITS: the ring
 *    then still holds slot F, so mount rebuilds this quarantine from the
 *    freed[] lists of the last ARB_DEFER_COMMITS generations.  Hence every
 *    root still held by a superblock slot stays intact on disk: the roots of
 *    G-1 .. G-4 while commit G is in flight.  A commit F that frees more
 *    ranges than freed[] holds keeps the rest counted and lists them as
 *    DEFER items in the space tree; commit G drops the DEFER items with
 *    F <= G - ARB_DEFER_COMMITS and counts their ranges zero, free at once.
 *    (Keeping every free in the space tree would never settle: freeing
 *    rewrites a space-tree node, which frees that node again.)
 *
 * 5. Reference counts (Rodeh, "B-trees, Shadowing, and Clones"): the space
 *    map holds one count per sector.  A node or extent occupying several
 *    sectors carries the same count in each.  A freshly allocated node has
 *    count 1.  Cloning a tree adds one reference to its root node only.
 *    Shadowing a node whose count is above one adds a reference to each
 *    child (and, in leaves, to each data extent an item points to) and drops
 *    one from the old node.  A node whose generation is above its tree's
 *    last_snapshot cannot be shared and is shadowed without any count lookup.
 *    So: count(block) = number of parents (nodes, root items, superblock
 *    pointers) that point to it + 1 if it sits in a DEFER item.  fsck
 *    recomputes exactly this sum.  Space-map chunks whose counts are all
 *    zero have no item.
 *
 * 6. Within one node, keys are strictly increasing.  In an internal node the
 *    key of a pointer equals the first key of the child it points to, and a
 *    child's level is its parent's level - 1.  Leaves are level 0.
 *
 * All integers are little-endian.  All structures are packed; their sizes are
 * checked with _Static_assert below.
 *
 * ===================================================================== *
 *  DEVICE LAYOUT  (byte offsets; a "sector" is 4096 bytes)
 * ===================================================================== *
 *
 *  OFFSET          SIZE     CONTENT
 *  0               64 KiB   untouched (boot code, partition tables)
 *  64 KiB          16 KiB   superblock copy 0: ring of 4 slots of 4 KiB
 *  64 MiB          16 KiB   superblock copy 1 (only if the device reaches it)
 *  256 GiB         16 KiB   superblock copy 2 (only if the device reaches it)
 *  end - 64 KiB    16 KiB   superblock copy 3, placed at the last 64 KiB
 *                           boundary at least 64 KiB before the end (only if
 *                           it does not overlap another copy)
 *  everywhere else          tree nodes and data extents, allocated from the
 *                           space map
 *
 * ===================================================================== *
 *  SUPERBLOCK SLOT  (struct arb_super, 4096 bytes)
 * ===================================================================== *
 *
 *  OFFSET SIZE DESCRIPTION
 *     0    32  csum: crc32c (little-endian, first 4 bytes) of bytes 32..4095
 *    32     8  magic ARB_SUPER_MAGIC
 *    40    16  fsid: filesystem UUID
 *    56    16  dev_uuid: UUID of this device
 *    72     8  bytenr: byte offset of this slot (catches misdirected writes)
 *    80     8  generation: commit number, starts at 1 (mkfs)
 *    88     4  format_version (ARB_FORMAT_VERSION)
 *    92     2  csum_type (ARB_CSUM_*)
 *    94     2  slot: this slot's index in its ring
 *    96     4  sectorsize (4096)
 *   100     4  nodesize (4096 .. 65536, power of two)
 *   104     8  total_bytes: usable device size, a multiple of sectorsize
 *   112     8  compat feature bits (unknown ones are ignored)
 *   120     8  ro_compat feature bits (unknown ones: mount read-only only)
 *   128     8  incompat feature bits (unknown ones: refuse to open)
 *   136    32  root_tree: struct arb_blkptr to the root of the root tree
 *   168    32  space_tree: struct arb_blkptr to the root of the space tree
 *   200     8  sectors_used: sectors with a non-zero count in the space map
 *   208     8  alloc_cursor: byte offset where the next-fit allocator resumes
 *   216     8  next_tree_id: next free tree id (>= ARB_FIRST_USER_TREE)
 *   224     8  hash_seed: seed for name hashes (filesystem layer)
 *   232     8  commit_time_sec
 *   240     4  commit_time_nsec
 *   244     4  reserved, zero
 *   248   128  label, NUL-padded
 *   376     4  freed_count: entries used in freed[]
 *   380     4  reserved, zero
 *   384  3680  freed[230]: {le64 bytenr, le64 nsectors} ranges this commit
 *              freed (their counts are zero from this commit on); see 4.
 *  4064     8  log_bytenr: head block of this commit's fsync log, 0: none
 *              (ARB_FEATURE_INCOMPAT_FSYNC_LOG); counted used in the
 *              space map of this commit
 *  4072     8  log_nonce: random, carried by every block of that log
 *  4080    16  reserved, zero
 *
 * ===================================================================== *
 *  FSYNC LOG BLOCK  (4096 bytes, struct arb_log_header + records)
 * ===================================================================== *
 *
 *  fsync() of a file whose only changes since the last commit are data
 *  writes appends the file's new extent items and inode item to a chain
 *  of log blocks and flushes once, instead of committing (which rewrites
 *  every changed leaf and its path).  The superblock names the head; each
 *  block names the next, allocated before the block is written.  At open,
 *  the chain of the newest commit is read while blocks verify (checksum,
 *  magic, fsid, nonce, generation, seq), and every complete fsync (up to a
 *  block flagged ARB_LOG_END) whose data checksums verify is replayed.
 *
 *  struct arb_log_header (96 bytes):
 *     0    32  csum: crc32c (first 4 bytes, rest zero) of bytes 32..4095
 *    32     8  magic ARB_LOG_MAGIC
 *    40    16  fsid
 *    56     8  nonce: the superblock's log_nonce
 *    64     8  generation: the commit this log extends
 *    72     8  seq: 0 for the head, then 1, 2, ...
 *    80     8  next: address of the following block
 *    88     4  used: bytes of records after the header
 *    92     4  flags: ARB_LOG_END on the last block of one fsync
 *  records, each struct arb_log_rec (40 bytes) + len bytes of payload:
 *    ARB_LOG_EXTENT  remove [offset, offset+num_bytes) of inode (tree, ino),
 *                    then insert the payload as its EXTENT_DATA item at
 *                    offset (a REG item's sectors gain one reference)
 *    ARB_LOG_HOLE    remove [offset, offset+num_bytes) only
 *    ARB_LOG_INODE   the payload is the inode item (last record of a file)
 *
 * ===================================================================== *
 *  TREE NODE  (nodesize bytes)
 * ===================================================================== *
 *
 *  struct arb_node_header (96 bytes):
 *  OFFSET SIZE DESCRIPTION
 *     0    32  csum: crc32c (first 4 bytes, rest zero) of bytes 32..nodesize-1
 *    32    16  fsid
 *    48     8  bytenr: the node's own address
 *    56     8  generation: the commit that wrote this version
 *    64     8  owner: id of the tree that created the node (a shared node
 *              keeps its creator's id)
 *    72     4  magic ARB_NODE_MAGIC
 *    76     2  nritems
 *    78     1  level: 0 for leaves
 *    79     1  flags, zero
 *    80    16  reserved, zero
 *
 *  Internal node (level > 0): after the header, nritems struct arb_key_ptr
 *  (41 bytes each) sorted by key.
 *
 *  Leaf (level 0): after the header, nritems struct arb_item (25 bytes each)
 *  sorted by key; item data is packed from the end of the node towards the
 *  item array.  item.offset is relative to the end of the header; item i's
 *  data lies in [96 + offset, 96 + offset + size) and must not overlap the
 *  item array nor another item's data.
 *
 *    +--------+--------+--------+----  free  ----+--------+--------+
 *    | header | item 0 | item 1 |                | data 1 | data 0 |
 *    +--------+--------+--------+----------------+--------+--------+
 *
 * ===================================================================== *
 *  TREES AND ITEMS
 * ===================================================================== *
 *
 *  The superblock points to two trees; the root tree points to the others.
 *
 *  Root tree (id 1): one ROOT_ITEM per other tree.
 *    key (tree id, ARB_ROOT_ITEM_KEY, 0) -> struct arb_root_item
 *
 *  Space tree (id 2): the space map and the deferred frees.
 *    key (0, ARB_SM_CHUNK_KEY, chunk index) -> packed 2-bit counts:
 *        nodesize/8 bytes covering nodesize/2 sectors (the last chunk of a
 *        device may be shorter); sector s of the chunk sits at bits
 *        2*(s%4) .. 2*(s%4)+1 of byte s/4.
 *        Value 0: free, 1 or 2: that count, 3: see the OVERFLOW item.
 *        A missing chunk item means every count in it is zero.
 *    key (0, ARB_SM_OVERFLOW_KEY, bytenr) -> le32 count (>= 3)
 *    key (F, ARB_SM_DEFER_KEY, n) -> array of struct arb_freed_extent:
 *        ranges freed by commit F that did not fit in its freed[] list
 *        (n = 0, 1, ... numbers the items of one commit); still counted 1
 *        in the chunks until commit F + ARB_DEFER_COMMITS.
 *
 *  User trees (id >= ARB_FIRST_USER_TREE): any keys; the filesystem layer
 *  defines them.  They may be cloned, so their nodes are reference counted.
 *  The root and space trees are never shared.
 *
 *  Root tree, filesystem items:
 *    key (ARB_DEFAULT_SUBVOL_OBJ, ARB_DEFAULT_SUBVOL_KEY, 0) -> le64 id of
 *        the subvolume mounted by default (the top-level one from mkfs)
 *
 * ===================================================================== *
 *  FILESYSTEM TREES (one user tree per subvolume)
 * ===================================================================== *
 *
 *  A subvolume is a user tree.  Its objects are numbered locally from
 *  ARB_FIRST_INO (the root directory); the number a user sees is
 *  ((tree id - ARB_FIRST_USER_TREE + 1) << ARB_SUBVOL_SHIFT) | local, so
 *  numbers are unique across every subvolume of the filesystem.
 *  Names are at most ARB_NAME_MAX bytes, without '/' or NUL.  hash(x) is
 *  arb_name_hash(seed, x): x read as little-endian 64-bit words (the last
 *  one zero-padded), h = seed ^ (len * K); for each word w:
 *  h = mix(h ^ w), with mix the splitmix64 finalizer and K = 0x9E3779B97F4A7C15;
 *  the result is mix(h).  The seed is the superblock's hash_seed, plus the
 *  parent's number times K for INODE_REF.
 *
 *  KEY                                   VALUE
 *  (ARB_SUBVOL_INFO_OBJ, SUBVOL_INFO, 0) struct arb_subvol_info
 *  (ARB_ORPHAN_OBJ, ORPHAN, ino)         empty: ino has no name and is freed
 *                                        when released, or at the next open
 *  (ino, INODE_ITEM, 0)                  struct arb_inode_item
 *  (ino, INODE_REF, hash(parent,name))   struct arb_inode_ref + name, one per
 *                                        link (colliding links chained)
 *  (ino, XATTR_ITEM, hash(name))         struct arb_xattr + name + value
 *                                        (colliding names chained)
 *  (dir, DIR_ITEM, hash(name))           struct arb_dir_entry + name
 *                                        (colliding names chained)
 *  (dir, DIR_INDEX, index)               struct arb_dir_entry + name; index
 *                                        increases per directory and is the
 *                                        readdir cookie
 *  (ino, EXTENT_DATA, file offset)       struct arb_file_extent, then for
 *                                        INLINE the bytes, for REG one le32
 *                                        crc32c per sector (PREALLOC: none)
 *
 *  In the root tree, for subvolumes (tree ids):
 *  (DEFAULT_SUBVOL_OBJ, DEFAULT_SUBVOL, 0) le64 id mounted by default
 *  (parent, ROOT_REF, child)             struct arb_root_ref + name: child is
 *                                        linked in parent, directory dirid,
 *                                        by a DIR_ITEM/DIR_INDEX whose type
 *                                        is ARB_DT_SUBVOL and ino the child id
 *  (child, ROOT_BACKREF, parent)         the same record, found from the child
 *  A subvolume whose root item has ARB_ROOT_RDONLY refuses every change.
 *  Deleting a subvolume removes its links and sets ARB_ROOT_DROPPING in
 *  one commit; a background dropper frees it in small steps.
 *
 *  Data extents: a REG or PREALLOC item references exactly the sectors
 *  [disk_bytenr, disk_bytenr + num_bytes) and holds one count on each (so
 *  overwriting the middle of an extent frees the middle at once: no
 *  "bookends").  PREALLOC sectors read as zeros; their checksums are not
 *  checked.  A missing range is a hole.  Inline data is used only for a
 *  file whose whole content fits in one item at offset 0.
 */
#ifndef ARBOR_FORMAT_H
#define ARBOR_FORMAT_H

#include <stdint.h>

#define ARB_FORMAT_VERSION 1

#define ARB_SECTOR_SIZE 4096u
#define ARB_MIN_NODESIZE 4096u
#define ARB_MAX_NODESIZE 65536u
#define ARB_DEFAULT_NODESIZE 16384u

#define ARB_RESERVED_HEAD (64u * 1024)
#define ARB_SUPER_SLOTS 4u
#define ARB_SUPER_SLOT_SIZE 4096u
#define ARB_SUPER_COPY_SIZE (ARB_SUPER_SLOTS * ARB_SUPER_SLOT_SIZE)
#define ARB_SUPER_COPIES 4u
#define ARB_SUPER_OFFSET0 (64ull * 1024)
#define ARB_SUPER_OFFSET1 (64ull * 1024 * 1024)
#define ARB_SUPER_OFFSET2 (256ull * 1024 * 1024 * 1024)
/* the last copy sits at the last 64 KiB boundary at least this far from the end */
#define ARB_SUPER_TAIL_GAP (64ull * 1024)

/* Commits a freed block waits before it may be reused; equals the ring size
 * so that every root still named by a slot stays intact (invariant 4). */
#define ARB_DEFER_COMMITS 4u

/* Smallest device we format: the head, one ring, and room for a few trees. */
#define ARB_MIN_DEVICE_SIZE (2ull * 1024 * 1024)

#define ARB_SUPER_MAGIC 0x314253524f425241ull /* "ARBORSB1" */
#define ARB_NODE_MAGIC 0x45444f4eu            /* "NODE" */

#define ARB_CSUM_CRC32C 1u
#define ARB_CSUM_SIZE 32u

/* Feature bits. */
#define ARB_FEATURE_INCOMPAT_FSYNC_LOG 1ull /* superblock log_bytenr/log_nonce */
#define ARB_FEATURE_COMPAT_SUPP 0ull
#define ARB_FEATURE_RO_COMPAT_SUPP 0ull
#define ARB_FEATURE_INCOMPAT_SUPP ARB_FEATURE_INCOMPAT_FSYNC_LOG

/* Tree ids. */
#define ARB_ROOT_TREE_ID 1ull
#define ARB_SPACE_TREE_ID 2ull
#define ARB_FIRST_USER_TREE 256ull

/* Key types (the u8 in the middle of a key). 1..127 belong to the
 * filesystem layer; 128..255 to the engine. */
#define ARB_ROOT_ITEM_KEY 132u
#define ARB_SM_CHUNK_KEY 200u
#define ARB_SM_OVERFLOW_KEY 201u
#define ARB_SM_DEFER_KEY 202u

/* 2-bit space map values */
#define ARB_SM_OVERFLOW_MARK 3u

#define ARB_PACKED __attribute__((packed))

struct arb_disk_key {
	uint64_t objectid;
	uint8_t type;
	uint64_t offset;
} ARB_PACKED;
_Static_assert(sizeof(struct arb_disk_key) == 17, "disk key is 17 bytes");

/* A pointer to a tree node: from the superblock or a root item. */
struct arb_blkptr {
	uint64_t bytenr;
	uint64_t generation;
	uint64_t csum; /* crc32c of the node, zero-extended */
	uint8_t level;
	uint8_t reserved[7];
} ARB_PACKED;
_Static_assert(sizeof(struct arb_blkptr) == 32, "blkptr is 32 bytes");

struct arb_node_header {
	uint8_t csum[ARB_CSUM_SIZE];
	uint8_t fsid[16];
	uint64_t bytenr;
	uint64_t generation;
	uint64_t owner;
	uint32_t magic;
	uint16_t nritems;
	uint8_t level;
	uint8_t flags;
	uint8_t reserved[16];
} ARB_PACKED;
_Static_assert(sizeof(struct arb_node_header) == 96, "node header is 96 bytes");

/* Leaf item header. */
struct arb_item {
	struct arb_disk_key key;
	uint32_t offset; /* of the data, from the end of the node header */
	uint32_t size;
} ARB_PACKED;
_Static_assert(sizeof(struct arb_item) == 25, "leaf item is 25 bytes");

/* Internal node entry. */
struct arb_key_ptr {
	struct arb_disk_key key;
	uint64_t bytenr;
	uint64_t generation;
	uint64_t csum;
} ARB_PACKED;
_Static_assert(sizeof(struct arb_key_ptr) == 41, "key pointer is 41 bytes");

#define ARB_ROOT_RDONLY (1ull << 0)
/* The tree is deleted and being freed: no one may read or change it any
 * more.  drop_key is the dropper's cursor: every subtree whose key range
 * ends at or before it has given back its references (shared subtrees one
 * count, exclusive ones every block and extent); a node whose range
 * straddles it is held by this tree alone and is freed when its last child
 * is.  Once the root is freed the root item goes.  So the blocks a
 * dropping tree still holds are exactly those reachable from its root
 * through ranges that end after drop_key (fsck and arb_check count them so). */
#define ARB_ROOT_DROPPING (1ull << 1)

struct arb_root_item {
	struct arb_blkptr root;
	uint64_t last_snapshot; /* generation of the last clone of/into it */
	uint64_t flags;         /* ARB_ROOT_* */
	uint64_t create_gen;
	uint64_t ctime_sec;
	uint32_t ctime_nsec;
	uint32_t reserved0;
	uint8_t uuid[16];
	uint8_t parent_uuid[16];
	uint64_t parent_id;
	/* what the tree references, kept up to date by every edit: its nodes
	 * and the data sectors its items name (one count per item) */
	uint64_t ref_nodes;
	uint64_t ref_data_sectors;
	struct arb_disk_key drop_key; /* ARB_ROOT_DROPPING: the dropper's cursor */
	uint8_t reserved[15];
} ARB_PACKED;
_Static_assert(sizeof(struct arb_root_item) == 160, "root item is 160 bytes");

/* A range freed by the commit that wrote the superblock slot. */
struct arb_freed_extent {
	uint64_t bytenr;
	uint64_t nsectors;
} ARB_PACKED;
_Static_assert(sizeof(struct arb_freed_extent) == 16, "freed extent is 16 bytes");

#define ARB_SUPER_FREED_MAX 230u

struct arb_super {
	uint8_t csum[ARB_CSUM_SIZE];
	uint64_t magic;
	uint8_t fsid[16];
	uint8_t dev_uuid[16];
	uint64_t bytenr;
	uint64_t generation;
	uint32_t format_version;
	uint16_t csum_type;
	uint16_t slot;
	uint32_t sectorsize;
	uint32_t nodesize;
	uint64_t total_bytes;
	uint64_t compat;
	uint64_t ro_compat;
	uint64_t incompat;
	struct arb_blkptr root_tree;
	struct arb_blkptr space_tree;
	uint64_t sectors_used;
	uint64_t alloc_cursor;
	uint64_t next_tree_id;
	uint64_t hash_seed;
	uint64_t commit_time_sec;
	uint32_t commit_time_nsec;
	uint32_t reserved0;
	char label[128];
	uint32_t freed_count; /* entries used in freed[] */
	uint32_t reserved1;
	struct arb_freed_extent freed[ARB_SUPER_FREED_MAX];
	uint64_t log_bytenr;
	uint64_t log_nonce;
	uint8_t reserved[16];
} ARB_PACKED;
_Static_assert(sizeof(struct arb_super) == ARB_SUPER_SLOT_SIZE, "superblock slot is 4096 bytes");

/* fsync log blocks (see FSYNC LOG BLOCK above) */
#define ARB_LOG_MAGIC 0x474f4c524f425241ull /* "ARBORLOG" */
#define ARB_LOG_BLOCK_SIZE 4096u
#define ARB_LOG_END 1u

struct arb_log_header {
	uint8_t csum[ARB_CSUM_SIZE];
	uint64_t magic;
	uint8_t fsid[16];
	uint64_t nonce;
	uint64_t generation;
	uint64_t seq;
	uint64_t next;
	uint32_t used;
	uint32_t flags;
} ARB_PACKED;
_Static_assert(sizeof(struct arb_log_header) == 96, "log block header is 96 bytes");

#define ARB_LOG_EXTENT 1u
#define ARB_LOG_HOLE 2u
#define ARB_LOG_INODE 3u

struct arb_log_rec {
	uint8_t type;
	uint8_t reserved[3];
	uint32_t len; /* payload bytes after this header */
	uint64_t tree;
	uint64_t ino; /* local inode number in that tree */
	uint64_t offset;
	uint64_t num_bytes;
} ARB_PACKED;
_Static_assert(sizeof(struct arb_log_rec) == 40, "log record header is 40 bytes");

/* Space map chunk geometry: one chunk item is nodesize/8 bytes of 2-bit
 * counts, i.e. nodesize/2 sectors. */
static inline uint32_t arb_sm_chunk_bytes(uint32_t nodesize)
{
	return nodesize / 8;
}
static inline uint32_t arb_sm_chunk_sectors(uint32_t nodesize)
{
	return nodesize / 2;
}

/* ===================================================================== */
/* Filesystem layer                                                        */
/* ===================================================================== */

#define ARB_NAME_MAX 255u
#define ARB_FIRST_INO 256ull /* the root directory of every subvolume */
#define ARB_SUBVOL_SHIFT 40u
#define ARB_MAX_FILE_SIZE (1ull << 52) /* 4 PiB: offsets stay far from overflow */

/* filesystem key types (1..127) */
#define ARB_INODE_ITEM_KEY 1u
#define ARB_INODE_REF_KEY 12u
#define ARB_XATTR_ITEM_KEY 24u
#define ARB_ORPHAN_KEY 48u
#define ARB_DIR_ITEM_KEY 84u
#define ARB_DIR_INDEX_KEY 96u
#define ARB_EXTENT_DATA_KEY 108u
#define ARB_SUBVOL_INFO_KEY 120u
#define ARB_DEFAULT_SUBVOL_KEY 121u
#define ARB_ROOT_REF_KEY 122u
#define ARB_ROOT_BACKREF_KEY 123u

/* objectids below ARB_FIRST_INO in a subvolume tree */
#define ARB_SUBVOL_INFO_OBJ 1ull
#define ARB_ORPHAN_OBJ 2ull
/* objectid of the default-subvolume item in the root tree */
#define ARB_DEFAULT_SUBVOL_OBJ 3ull

struct arb_timespec {
	uint64_t sec;
	uint32_t nsec;
} ARB_PACKED;
_Static_assert(sizeof(struct arb_timespec) == 12, "timespec is 12 bytes");

struct arb_inode_item {
	uint64_t generation; /* commit that created the inode */
	uint64_t size;
	uint64_t nbytes; /* bytes of data extents and inline data */
	uint32_t nlink;
	uint32_t uid;
	uint32_t gid;
	uint32_t mode; /* st_mode: type and permission bits */
	uint64_t rdev;
	uint64_t flags;
	uint64_t next_index; /* directories: next DIR_INDEX */
	uint64_t sequence;   /* bumped by every change (NFS change attribute) */
	struct arb_timespec atime, mtime, ctime, otime;
	uint8_t reserved[40];
} ARB_PACKED;
_Static_assert(sizeof(struct arb_inode_item) == 160, "inode item is 160 bytes");

/* An INODE_REF / DIR_ITEM / DIR_INDEX item is a sequence of records, each
 * followed by name_len bytes of name (DIR_INDEX and INODE_REF items hold
 * one; hashed items more only on a hash collision). */
struct arb_inode_ref {
	uint64_t parent;
	uint64_t index;
	uint16_t name_len;
} ARB_PACKED;
_Static_assert(sizeof(struct arb_inode_ref) == 18, "inode ref is 18 bytes");

struct arb_dir_entry {
	uint64_t ino; /* local number; ARB_DT_SUBVOL: the subvolume's tree id */
	uint64_t index;
	uint8_t type; /* DT_* of the target, or ARB_DT_SUBVOL */
	uint16_t name_len;
} ARB_PACKED;
_Static_assert(sizeof(struct arb_dir_entry) == 19, "dir entry is 19 bytes");

/* A directory entry naming another subvolume (its root directory): no
 * INODE_REF in this tree; the ROOT_REF / ROOT_BACKREF pair in the root
 * tree records the link instead. */
#define ARB_DT_SUBVOL 0x40u

/* (parent subvolume, ROOT_REF, child subvolume) and (child, ROOT_BACKREF,
 * parent) in the root tree: where a subvolume is linked, header + name. */
struct arb_root_ref {
	uint64_t dirid; /* local number of the directory holding the link */
	uint64_t index; /* its DIR_INDEX */
	uint16_t name_len;
} ARB_PACKED;
_Static_assert(sizeof(struct arb_root_ref) == 18, "root ref is 18 bytes");

struct arb_xattr {
	uint16_t name_len;
	uint16_t value_len;
} ARB_PACKED;
_Static_assert(sizeof(struct arb_xattr) == 4, "xattr header is 4 bytes");

#define ARB_EXTENT_INLINE 0u
#define ARB_EXTENT_REG 1u
#define ARB_EXTENT_PREALLOC 2u

struct arb_file_extent {
	uint64_t generation;
	uint64_t num_bytes;   /* logical bytes covered; sector multiple except inline */
	uint64_t disk_bytenr; /* REG/PREALLOC: first sector referenced */
	uint8_t type;
	uint8_t reserved[7];
} ARB_PACKED;
_Static_assert(sizeof(struct arb_file_extent) == 32, "file extent is 32 bytes");

struct arb_subvol_info {
	uint64_t next_ino;
	uint64_t reserved[7];
} ARB_PACKED;
_Static_assert(sizeof(struct arb_subvol_info) == 64, "subvolume info is 64 bytes");

#endif /* ARBOR_FORMAT_H */
