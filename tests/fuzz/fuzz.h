/* SPDX-License-Identifier: MIT */
/*
 * fuzz.h - shared parts of the libFuzzer harnesses (fuzz_mount, fuzz_fsck).
 *
 * An input does not hold a whole image (the smallest one is 2 MiB, far
 * beyond what a fuzzer mutates well).  It is a list of byte patches on a
 * small valid base image, built once per process from fixed ids, seed and
 * time: a top-level subvolume with directories, regular files (inline,
 * extents, holes, preallocated), hard links, symlinks, special files and
 * xattrs, a nested subvolume, a read-only snapshot, a subvolume being
 * deleted (dropping), an orphan, several commits in the superblock ring
 * and an fsync log to replay.  Nodes are 4 KiB, so the trees have several
 * levels.  After the patches, every checksum the patched image still
 * reaches is recomputed (nodes bottom-up with the checksums their parents
 * record, log blocks, superblock slots), so that a patch is seen by the
 * code that decodes items, not only by the checksum checks.  Patches can
 * redirect pointers: the resealing follows the patched image.
 *
 * Input layout:
 *   byte 0: flags
 *     FZ_NO_NODE_SEAL   leave node checksums (and the parents' copies) as
 *                       patched
 *     FZ_NO_SUPER_SEAL  leave superblock slot checksums as patched
 *     FZ_NO_LOG_SEAL    leave fsync log block checksums as patched
 *     bits 4-5          fuzz_mount: open read-only this many generations
 *                       back (max_generation)
 *     FZ_FSCK_NO_ROLLBACK, FZ_FSCK_CHECK_DATA
 *                       fuzz_fsck: the options of the same names
 *   then patches, to the end of the input:
 *     u8  target   < 0xf0: metadata block target % nblocks of the base
 *                  image (superblock slots, then tree nodes by address,
 *                  then fsync log blocks); >= 0xf0: a raw 4 KiB sector,
 *                  its number in the next u16 (little-endian, modulo the
 *                  sectors of the device)
 *     u16 offset   little-endian, modulo the block size
 *     u8  len      bytes that follow (cut at the end of the block and of
 *                  the input)
 *     len bytes
 *
 * Inputs of this layout stay meaningful only as long as the base image
 * does: when the format or fz_base_image() changes, regenerate the seeds
 * (make fuzz-seeds) and re-check the regression inputs.
 */
#ifndef ARBOR_FUZZ_H
#define ARBOR_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arbor/fs.h"
#include "arbor/io.h"
#include "arbor/msg.h"

#define FZ_NO_NODE_SEAL 0x01u
#define FZ_NO_SUPER_SEAL 0x02u
#define FZ_NO_LOG_SEAL 0x04u
#define FZ_GEN_BACK_SHIFT 4
#define FZ_GEN_BACK_MASK 0x03u
#define FZ_FSCK_NO_ROLLBACK 0x40u
#define FZ_FSCK_CHECK_DATA 0x80u

#define FZ_TARGET_RAW 0xf0u

#define FZ_DEV_SIZE (2u * 1024 * 1024)
#define FZ_NODESIZE 4096u
#define FZ_TIME 1700000000ull

/* The base image (FZ_DEV_SIZE bytes), built on first use; NULL if that
 * failed (a bug: the harnesses abort). */
const uint8_t *fz_base_image(void);

/* Metadata blocks of the base image, in patch target order. */
struct fz_block {
	uint64_t offset;
	uint32_t size;
};
size_t fz_blocks(const struct fz_block **ret);

/* A memdev holding the base image with the input's patches applied and
 * resealed.  *ret_flags: the input's flag byte (0 for an empty input). */
int fz_make_dev(const uint8_t *data, size_t size, struct arb_dev **ret_dev, unsigned *ret_flags);

/* Apply an input to an image buffer of FZ_DEV_SIZE bytes (in place). */
void fz_apply(uint8_t *img, const uint8_t *data, size_t size);

/* A message sink for the core: dropped, or printed to stderr when the
 * environment has ARBOR_FUZZ_VERBOSE=1. */
void fz_msg(void *ctx, enum arb_msg_level level, const char *text);

/* Deterministic randomness (getrandom) while on: the base image and every
 * run are reproducible.  Reset to the same state by each call with on. */
void fz_det_random(bool on);

/* Read everything a mount shows: every subvolume, every directory
 * (readdir, lookup, parent), every inode (getattr, xattrs, readlink, the
 * data of files), statfs, and the diff and usage of subvolumes.  Errors
 * are expected and ignored; the walk is bounded in entries and depth. */
void fz_walk(struct arb_fs *fs);

/* A few changes through the filesystem layer (create, write, xattr,
 * rename, unlink, truncate, snapshot, delete), on whatever the image
 * holds; errors are ignored. */
void fz_change(struct arb_fs *fs);

/* Read every byte of a buffer the core handed out (ASan sees over-reads). */
void fz_touch(const void *buf, size_t len);

#endif
