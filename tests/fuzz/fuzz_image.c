/* SPDX-License-Identifier: MIT */
/*
 * fuzz_image.c - the base image of the harnesses, the patches an input
 * applies to it, and the resealing of every checksum (see fuzz.h).
 */
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "arbor/crc32c.h"
#include "arbor/memdev.h"
#include "arbor/super.h"
#include "arbor/vfs.h"
#include "arbor_format.h"
#include "fuzz.h"

#define NSECTORS (FZ_DEV_SIZE / ARB_SECTOR_SIZE)
#define MAX_BLOCKS 1024u
#define MAX_LOG_BLOCKS 64u
#define MAX_DEPTH 12

/* ---- deterministic randomness ---------------------------------------------- */

static bool det_on;
static uint64_t det_state;

void fz_det_random(bool on)
{
	det_on = on;
	det_state = 0x5eed0f0a7b0c0de5ull;
}

static uint64_t det_next(void)
{
	uint64_t z = (det_state += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

/* Interposes the C library's: the core's uuids and log nonces come from
 * here, so a run depends on its input alone. */
ssize_t getrandom(void *buf, size_t len, unsigned int flags)
{
	uint8_t *p = buf;

	if (!det_on)
		return syscall(SYS_getrandom, buf, len, flags);
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)det_next();
	return (ssize_t)len;
}

void fz_msg(void *ctx, enum arb_msg_level level, const char *text)
{
	static int verbose = -1;

	(void)ctx;
	if (verbose < 0) {
		const char *v = getenv("ARBOR_FUZZ_VERBOSE");

		verbose = v && *v == '1';
	}
	if (verbose)
		fprintf(stderr, "arbor[%d]: %s\n", (int)level, text);
}

/* ---- resealing ------------------------------------------------------------------ */

enum { RS_NEW = 0, RS_BUSY, RS_DONE };

struct reseal {
	uint8_t *img;
	uint8_t state[NSECTORS];
	uint32_t csum[NSECTORS];
	bool seal_nodes;
};

static uint64_t get64(const void *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return le64toh(v);
}

static void put64(void *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, sizeof(v));
}

/* crc32c of bytes 32.. of a block, stored in its first 4 bytes (rest 0). */
static uint32_t seal_block(uint8_t *b, uint32_t size, bool write)
{
	uint32_t c = arb_crc32c(0, b + ARB_CSUM_SIZE, size - ARB_CSUM_SIZE);
	uint32_t le = htole32(c);

	if (!write) {
		memcpy(&le, b, sizeof(le));
		return le32toh(le);
	}
	memset(b, 0, ARB_CSUM_SIZE);
	memcpy(b, &le, sizeof(le));
	return c;
}

static bool node_addr_ok(uint64_t bytenr)
{
	return bytenr % ARB_SECTOR_SIZE == 0 && bytenr <= FZ_DEV_SIZE - FZ_NODESIZE;
}

static uint32_t reseal_node(struct reseal *r, uint64_t bytenr, int depth);

/* The pointers of an internal node record their children's checksums. */
static void reseal_children(struct reseal *r, uint8_t *node, int depth)
{
	const struct arb_node_header *h = (const void *)node;
	uint32_t n = le16toh(h->nritems),
	         max = (FZ_NODESIZE - sizeof(*h)) / sizeof(struct arb_key_ptr);
	struct arb_key_ptr *kp = (struct arb_key_ptr *)(node + sizeof(*h));

	for (uint32_t i = 0; i < n && i < max; i++)
		put64(&kp[i].csum, reseal_node(r, get64(&kp[i].bytenr), depth + 1));
}

/* Root items (in any leaf) point to the roots of other trees. */
static void reseal_root_items(struct reseal *r, uint8_t *node, int depth)
{
	const struct arb_node_header *h = (const void *)node;
	uint32_t n = le16toh(h->nritems),
	         max = (FZ_NODESIZE - sizeof(*h)) / sizeof(struct arb_item);
	const struct arb_item *it = (const struct arb_item *)(node + sizeof(*h));

	for (uint32_t i = 0; i < n && i < max; i++) {
		uint64_t off = sizeof(*h) + (uint64_t)le32toh(it[i].offset);
		struct arb_blkptr *bp;

		if (it[i].key.type != ARB_ROOT_ITEM_KEY || le32toh(it[i].size) < sizeof(*bp) ||
		    off + sizeof(*bp) > FZ_NODESIZE)
			continue;
		bp = (struct arb_blkptr *)(node + off);
		put64(&bp->csum, reseal_node(r, get64(&bp->bytenr), depth + 1));
	}
}

/* The checksum of the node at bytenr once its subtree is resealed (its
 * stored one when it is not a node, or is met again on a cycle). */
static uint32_t reseal_node(struct reseal *r, uint64_t bytenr, int depth)
{
	uint64_t s = bytenr / ARB_SECTOR_SIZE;
	const struct arb_node_header *h;
	uint8_t *node;

	if (!node_addr_ok(bytenr))
		return 0;
	node = r->img + bytenr;
	h = (const void *)node;
	if (r->state[s] == RS_DONE)
		return r->csum[s];
	if (r->state[s] == RS_BUSY || depth > MAX_DEPTH || le32toh(h->magic) != ARB_NODE_MAGIC)
		return seal_block(node, FZ_NODESIZE, false);
	r->state[s] = RS_BUSY;
	if (h->level)
		reseal_children(r, node, depth);
	else
		reseal_root_items(r, node, depth);
	r->csum[s] = seal_block(node, FZ_NODESIZE, true);
	r->state[s] = RS_DONE;
	return r->csum[s];
}

/* Follow a log chain, resealing each block; fn sees each block. */
static void reseal_log(struct reseal *r, uint64_t bytenr, bool seal,
                       void (*fn)(uint64_t off, uint32_t size))
{
	for (unsigned i = 0; i < MAX_LOG_BLOCKS && node_addr_ok(bytenr); i++) {
		struct arb_log_header *lh = (struct arb_log_header *)(r->img + bytenr);

		if (le64toh(lh->magic) != ARB_LOG_MAGIC)
			return;
		seal_block(r->img + bytenr, ARB_LOG_BLOCK_SIZE, seal);
		if (fn)
			fn(bytenr, ARB_LOG_BLOCK_SIZE);
		bytenr = le64toh(lh->next);
	}
}

static void reseal_slot(struct reseal *r, struct arb_super *sb, unsigned flags,
                        void (*log_fn)(uint64_t off, uint32_t size))
{
	if (le64toh(sb->magic) != ARB_SUPER_MAGIC)
		return;
	if (r->seal_nodes) {
		put64(&sb->root_tree.csum, reseal_node(r, le64toh(sb->root_tree.bytenr), 0));
		put64(&sb->space_tree.csum, reseal_node(r, le64toh(sb->space_tree.bytenr), 0));
	}
	reseal_log(r, le64toh(sb->log_bytenr), !(flags & FZ_NO_LOG_SEAL), log_fn);
	if (!(flags & FZ_NO_SUPER_SEAL))
		arb_super_set_csum(sb);
}

/* Reseal img; with log_fn/r_out, also report the log blocks and keep the
 * walk's state (the block table of the base image). */
static void reseal(uint8_t *img, unsigned flags, void (*log_fn)(uint64_t off, uint32_t size),
                   struct reseal *r)
{
	uint64_t offs[ARB_SUPER_COPIES];
	int ncopies = arb_super_copies(FZ_DEV_SIZE, offs);

	memset(r, 0, sizeof(*r));
	r->img = img;
	r->seal_nodes = !(flags & FZ_NO_NODE_SEAL);
	for (int c = 0; c < ncopies; c++)
		for (unsigned s = 0; s < ARB_SUPER_SLOTS; s++)
			reseal_slot(r,
			            (struct arb_super *)(img + offs[c] + s * ARB_SUPER_SLOT_SIZE),
			            flags, log_fn);
}

/* ---- the block table --------------------------------------------------------- */

static struct fz_block blocks[MAX_BLOCKS];
static size_t nblocks;

static void add_block(uint64_t off, uint32_t size)
{
	for (size_t i = 0; i < nblocks; i++)
		if (blocks[i].offset == off)
			return;
	if (nblocks < MAX_BLOCKS)
		blocks[nblocks++] = (struct fz_block){off, size};
}

static void build_table(uint8_t *img)
{
	static struct reseal r;
	uint64_t offs[ARB_SUPER_COPIES];
	int ncopies = arb_super_copies(FZ_DEV_SIZE, offs);

	for (int c = 0; c < ncopies; c++)
		for (unsigned s = 0; s < ARB_SUPER_SLOTS; s++)
			add_block(offs[c] + s * ARB_SUPER_SLOT_SIZE, ARB_SUPER_SLOT_SIZE);
	reseal(img, 0, NULL, &r);
	for (size_t s = 0; s < NSECTORS; s++)
		if (r.state[s] == RS_DONE)
			add_block(s * ARB_SECTOR_SIZE, FZ_NODESIZE);
	reseal(img, 0, add_block, &r);
}

size_t fz_blocks(const struct fz_block **ret)
{
	if (!fz_base_image())
		return 0;
	*ret = blocks;
	return nblocks;
}

/* ---- the base image ---------------------------------------------------------- */

static const struct arb_cred cred = {.uid = 1000, .gid = 1000};
static const uint8_t big_value[900];

static int mk(struct arb_fs *fs, arb_ino_t dir, const char *name, uint32_t mode, arb_ino_t *ret)
{
	struct arb_stat st;
	int err;

	if (S_ISDIR(mode))
		err = arb_vfs_mkdir(fs, dir, name, mode & 07777, &cred, &st);
	else
		err = arb_vfs_mknod(fs, dir, name, mode, (mode & S_IFMT) == S_IFCHR ? 0x0801 : 0,
		                    &cred, &st);
	if (!err && ret)
		*ret = st.ino;
	return err;
}

static int put(struct arb_fs *fs, arb_ino_t ino, uint64_t off, size_t len, uint8_t fill)
{
	uint8_t buf[8192];
	size_t done;
	int err = 0;

	for (size_t at = 0; at < len && !err; at += sizeof(buf)) {
		size_t n = len - at < sizeof(buf) ? len - at : sizeof(buf);

		for (size_t i = 0; i < sizeof(buf); i++)
			buf[i] = (uint8_t)(fill + (off + at + i) * 7);
		err = arb_vfs_write(fs, ino, off + at, buf, n, &done);
	}
	return err;
}

static int base_files(struct arb_fs *fs, arb_ino_t root, arb_ino_t *ret_data)
{
	arb_ino_t dir, sub, big, f;
	struct arb_stat st;
	char name[32];
	int err = mk(fs, root, "dir", S_IFDIR | 0755, &dir);

	err = err ?: mk(fs, dir, "sub", S_IFDIR | 0700, &sub);
	err = err ?: mk(fs, root, "big", S_IFDIR | 0755, &big);
	for (int i = 0; !err && i < 32; i++) {
		snprintf(name, sizeof(name), "entry-with-a-long-name-%02d", i);
		err = mk(fs, big, name, S_IFREG | 0644, i % 8 ? NULL : &f);
	}
	err = err ?: mk(fs, root, "inline", S_IFREG | 0644, &f);
	err = err ?: put(fs, f, 0, 300, 1);
	err = err ?: mk(fs, root, "data", S_IFREG | 0644, ret_data);
	err = err ?: put(fs, *ret_data, 0, 20000, 2);
	err = err ?: arb_vfs_setxattr(fs, *ret_data, "user.small", "v", 1, 0);
	err = err ?: arb_vfs_setxattr(fs, *ret_data, "user.big", big_value, sizeof(big_value), 0);
	err = err ?: arb_vfs_setxattr(fs, root, "trusted.t", "root", 4, 0);
	err = err ?: arb_vfs_link(fs, *ret_data, sub, "link", &st);
	err = err ?: mk(fs, dir, "holey", S_IFREG | 0600, &f);
	err = err ?: put(fs, f, 65536, 4096, 3);
	err = err ?: arb_vfs_fallocate(fs, f, 0, 8192, 16384);
	err = err ?: arb_vfs_symlink(fs, root, "sym", "dir/sub/link", &cred, &st);
	err = err ?: mk(fs, dir, "fifo", S_IFIFO | 0644, NULL);
	err = err ?: mk(fs, dir, "chr", S_IFCHR | 0644, NULL);
	return err;
}

static int base_subvols(struct arb_fs *fs, arb_ino_t root)
{
	struct arb_stat sv, gone, st;
	uint64_t def;
	int err = arb_vfs_subvol_make(fs, root, "sv", 0755, &cred, &sv);

	err = err ?: mk(fs, sv.ino, "in-sv", S_IFDIR | 0755, NULL);
	err = err ?: arb_commit(fs);
	err = err ?: arb_vfs_subvol_default(fs, &def);
	err = err ?: arb_vfs_snapshot(fs, def, root, "snap", ARB_SNAPSHOT_RDONLY, &st);
	err = err ?: arb_vfs_subvol_make(fs, root, "gone", 0755, &cred, &gone);
	for (int i = 0; !err && i < 12; i++) {
		char name[16];

		snprintf(name, sizeof(name), "g%d", i);
		err = mk(fs, gone.ino, name, S_IFDIR | 0755, NULL);
	}
	err = err ?: arb_commit(fs);
	err = err ?: arb_vfs_subvol_delete(fs, root, "gone");
	return err ?: arb_commit(fs);
}

/* An unlinked open file (an orphan), then an fsync logged, not committed. */
static int base_tail(struct arb_fs *fs, arb_ino_t root, arb_ino_t data)
{
	arb_ino_t orph;
	int err = put(fs, data, 4096, 4096, 4);

	err = err ?: mk(fs, root, "orphan", S_IFREG | 0644, &orph);
	err = err ?: put(fs, orph, 0, 8192, 5);
	err = err ?: arb_vfs_open(fs, orph);
	err = err ?: arb_vfs_unlink(fs, root, "orphan");
	err = err ?: arb_commit(fs);
	/* the first fsync commits and starts a log, the next ones append */
	err = err ?: put(fs, data, 0, 100, 6);
	err = err ?: arb_vfs_fsync(fs, data);
	err = err ?: put(fs, data, 8192, 6000, 7);
	err = err ?: arb_vfs_fsync(fs, data);
	err = err ?: put(fs, data, 30000, 100, 8);
	return err ?: arb_vfs_fsync(fs, data);
}

static int build_base(struct arb_dev *dev)
{
	static const uint8_t fsid[16] = "arbor-fuzz-fsid";
	static const uint8_t devuuid[16] = "arbor-fuzz-dev";
	struct arb_format_opts fo = {.nodesize = FZ_NODESIZE,
	                             .fsid = fsid,
	                             .devuuid = devuuid,
	                             .label = "fuzz",
	                             .hash_seed = 0x1234567887654321ull,
	                             .time_sec = FZ_TIME};
	struct arb_open_opts oo = {.time_sec = FZ_TIME, .msg = fz_msg};
	struct arb_fs *fs;
	arb_ino_t root, data = 0;
	int err = arb_format(dev, &fo);

	err = err ?: arb_open(dev, &oo, &fs);
	if (err)
		return err;
	err = arb_vfs_init(fs, 0755, &cred);
	err = err ?: arb_vfs_root(fs, 0, &root);
	err = err ?: base_files(fs, root, &data);
	err = err ?: arb_commit(fs);
	err = err ?: base_subvols(fs, root);
	err = err ?: base_tail(fs, root, data);
	arb_close(fs);
	return err;
}

const uint8_t *fz_base_image(void)
{
	static uint8_t *img;
	struct arb_dev *dev;

	if (img)
		return img;
	fz_det_random(true);
	if (arb_memdev_create(FZ_DEV_SIZE, &dev))
		return NULL;
	if (!build_base(dev)) {
		img = malloc(FZ_DEV_SIZE);
		if (img) {
			memcpy(img, arb_memdev_data(dev), FZ_DEV_SIZE);
			build_table(img);
		}
	}
	arb_dev_close(dev);
	return img;
}

/* ---- patches ------------------------------------------------------------------- */

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

/* One patch at data[*pos]; false at the end of the input. */
static bool apply_one(uint8_t *img, const uint8_t *data, size_t size, size_t *pos)
{
	size_t p = *pos, len;
	uint64_t base;
	uint32_t bsize = ARB_SECTOR_SIZE, off;

	if (p + 1 > size)
		return false;
	if (data[p] >= FZ_TARGET_RAW) {
		if (p + 3 > size)
			return false;
		base = (uint64_t)(get16(data + p + 1) % NSECTORS) * ARB_SECTOR_SIZE;
		p += 3;
	} else {
		const struct fz_block *b = &blocks[data[p] % nblocks];

		base = b->offset;
		bsize = b->size;
		p += 1;
	}
	if (p + 3 > size)
		return false;
	off = get16(data + p) % bsize;
	len = data[p + 2];
	p += 3;
	len = len < size - p ? len : size - p;
	len = len < bsize - off ? len : bsize - off;
	memcpy(img + base + off, data + p, len);
	*pos = p + len;
	return true;
}

void fz_apply(uint8_t *img, const uint8_t *data, size_t size)
{
	static struct reseal r;
	size_t pos = 1;

	if (size == 0 || nblocks == 0)
		return;
	while (apply_one(img, data, size, &pos))
		;
	reseal(img, data[0], NULL, &r);
}

int fz_make_dev(const uint8_t *data, size_t size, struct arb_dev **ret_dev, unsigned *ret_flags)
{
	const uint8_t *base = fz_base_image();
	int err;

	if (!base)
		abort();
	err = arb_memdev_from_buffer(base, FZ_DEV_SIZE, ret_dev);
	if (err)
		return err;
	fz_apply(arb_memdev_data(*ret_dev), data, size);
	*ret_flags = size ? data[0] : 0;
	return 0;
}

void fz_touch(const void *buf, size_t len)
{
	static uint8_t scratch[4096];
	const uint8_t *p = buf;

	/* memcpy: the sanitizer checks the whole range at once */
	for (size_t done = 0; done < len; done += sizeof(scratch))
		memcpy(scratch, p + done,
		       len - done < sizeof(scratch) ? len - done : sizeof(scratch));
}
