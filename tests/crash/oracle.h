/* SPDX-License-Identifier: MIT */
/*
 * oracle.h - the contract between the crash workloads (crashwork.c, run on
 * an arborfs mount recording with -o record=LOG) and the checker
 * (crashcheck.c, which replays LOG into crash states): what content each
 * file may hold, and what must be durable from which log position on.
 *
 * ORACLE FILE: text, one record per line, fields separated by one space:
 *
 *   POS KIND ARGS...
 *
 * POS is the size of the recording log (stat st_size) read just before the
 * record is written: for a declaration, before the change it announces is
 * made; for a durability record, after the fsync/fsyncdir/syncfs that
 * guarantees it has returned.  Paths are relative to the root of the
 * mounted subvolume, contain no spaces, and never begin with '/'.
 *
 *   POS V PATH SEED SIZE [HOLE_OFF HOLE_LEN]...
 *       PATH may hold this content from now on: byte i (i < SIZE) is
 *       arb_pattern_byte(SEED, i), except inside a hole (zero).  Declared
 *       before the write, truncate, punch, link, rename or snapshot that
 *       makes it so.
 *   POS A PATH
 *       PATH may be absent from now on (before unlink, rename away, delete
 *       of a snapshot).  Every path is absent before its first V.
 *   POS D PATH
 *       Durable: in every crash state that holds the flush this fsync (or
 *       fsyncdir, or syncfs) waited for, PATH is in the state its last
 *       V/A before POS declared, or in a state declared after it.
 *   POS X PATH
 *       PATH is replaced atomically (rename-over): it always holds exactly
 *       one whole declared version (or is absent where that is allowed),
 *       never a blend of two.  Without X, a file written in place may
 *       show, sector by sector (512 bytes), any of its allowed versions.
 *   POS L PATH1 PATH2
 *       Once durable (a D for PATH2 at or after this POS is covered), the
 *       two names are hard links of one inode.
 *   POS T DIR
 *       DIR (a snapshot) appears whole or not at all: when it exists, every
 *       path under it whose allowed states are all present exists.
 *   POS Q DB ROWS
 *       SQLite: after a COMMIT returned (synchronous=FULL), table t of
 *       database DB holds ROWS rows; the checker copies DB and its -wal and
 *       -journal files out of the crash image, runs PRAGMA integrity_check
 *       (must print ok) and counts the rows: at least the ROWS of the last
 *       covered Q, at most the largest ROWS declared by a q before the
 *       state's position.
 *   POS q DB ROWS
 *       SQLite: a transaction that may leave ROWS rows is about to start.
 *   POS G REPO COMMITS
 *       git: after `git commit` and a syncfs returned, REPO's HEAD has
 *       COMMITS commits.  When covered: `git fsck` passes on a copy of REPO
 *       and HEAD has at least COMMITS commits.
 *
 * COVERED: a durability record at POS is covered by a crash state when the
 * state holds every event up to and including the last FLUSH event that
 * ends at or before POS in the log (the flush the fsync waited for).  A
 * declaration at POS can only show in a state that holds some event ending
 * after POS ("nothing that was never written appears").
 */
#ifndef ARBOR_TESTS_CRASH_ORACLE_H
#define ARBOR_TESTS_CRASH_ORACLE_H

#include <stdint.h>

/* The content of version SEED at byte offset i: cheap, and different for
 * every (seed, 8-byte word) so a misplaced or stale sector never matches. */
static inline uint64_t arb_pattern_word(uint64_t seed, uint64_t word)
{
	uint64_t z = seed * 0x9E3779B97F4A7C15ull + word + 1;

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static inline uint8_t arb_pattern_byte(uint64_t seed, uint64_t i)
{
	return (uint8_t)(arb_pattern_word(seed, i / 8) >> (8 * (i % 8)));
}

/* Fill buf with bytes [off, off + len) of version seed. */
static inline void arb_pattern_fill(uint64_t seed, uint64_t off, uint8_t *buf, uint64_t len)
{
	for (uint64_t i = 0; i < len; i++)
		buf[i] = arb_pattern_byte(seed, off + i);
}

#endif
