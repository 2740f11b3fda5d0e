/* SPDX-License-Identifier: MIT */
/*
 * fsck.c - the whole check (and repair) of a filesystem: which commit to
 * trust, its trees and counts, then its namespace (fsck_fs.c).
 *
 * Phase 1 reads every superblock slot.  A slot that does not verify and
 * names a generation at or after the newest valid one is a commit the
 * writer did not finish (a power cut: nothing fsync promised is lost);
 * one naming an older generation is damage.
 *
 * Phase 2 walks every tree of the newest commit (arb_check): nodes,
 * structure, reference counts, each tree's totals.  If a node does not
 * read back, the older commits of the ring are tried, newest first, and
 * the first whose trees are all intact is used: the newer ones are lost
 * and each is reported with its time.  Invariant 4 of arbor_format.h
 * keeps every root the ring names intact, so this is exact, not a guess.
 * Count errors are repaired by setting the space map to what the walk
 * found.
 *
 * Repairs are ordinary transactions, committed once at the end; when
 * slots were damaged, every slot is rewritten.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "arbor/check.h"
#include "arbor/fsck.h"
#include "arbor/super.h"
#include "fs_internal.h"

#define MAX_SLOTS (ARB_SUPER_COPIES * ARB_SUPER_SLOTS)
#define FSCK_CACHE_BYTES (64u << 20)

struct fsck {
	struct arb_dev *dev;
	const struct arb_fsck_opts *o;
	struct arb_fsck_report *r;
	struct arb_super_slot slots[MAX_SLOTS];
	int nslots;
	uint64_t gens[MAX_SLOTS]; /* valid generations, newest first, distinct */
	uint64_t gen_time[MAX_SLOTS];
	int ngens;
	bool mute; /* drop the core's error lines (a repeated walk) */
};

static void say(const struct fsck *f, enum arb_msg_level level, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static void say(const struct fsck *f, enum arb_msg_level level, const char *fmt, ...)
{
	char text[512];
	va_list ap;

	if (!f->o->msg)
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	f->o->msg(f->o->msg_ctx, level, text);
}

/* One problem: an error line; with repair, the line saying what was done. */
static void problem(struct fsck *f, const char *repair, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static void problem(struct fsck *f, const char *repair, const char *fmt, ...)
{
	char text[448];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	say(f, ARB_MSG_ERR, "%s", text);
	f->r->errors++;
	if (repair) {
		say(f, ARB_MSG_INFO, "%s", repair);
		f->r->fixed++;
	}
}

static const char *utc(uint64_t sec, char *buf, size_t len)
{
	time_t t = (time_t)sec;
	struct tm tm;

	if (!gmtime_r(&t, &tm) || !strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm))
		snprintf(buf, len, "%llu", (unsigned long long)sec);
	return buf;
}

/* ---- phase 1: the superblock ring ------------------------------------------------ */

static void add_generation(struct fsck *f, const struct arb_super *sb)
{
	uint64_t gen = le64toh(sb->generation);
	int i = 0;

	while (i < f->ngens && f->gens[i] > gen)
		i++;
	if (i < f->ngens && f->gens[i] == gen)
		return;
	memmove(&f->gens[i + 1], &f->gens[i], (size_t)(f->ngens - i) * sizeof(f->gens[0]));
	memmove(&f->gen_time[i + 1], &f->gen_time[i],
	        (size_t)(f->ngens - i) * sizeof(f->gen_time[0]));
	f->gens[i] = gen;
	f->gen_time[i] = le64toh(sb->commit_time_sec);
	f->ngens++;
}

/* The filesystem is the one the newest valid slot names. */
static const uint8_t *newest_fsid(const struct fsck *f)
{
	const struct arb_super_slot *best = NULL;

	for (int i = 0; i < f->nslots; i++)
		if (f->slots[i].status == ARB_SLOT_VALID &&
		    (!best || le64toh(f->slots[i].sb.generation) > le64toh(best->sb.generation)))
			best = &f->slots[i];
	return best ? best->sb.fsid : NULL;
}

static void judge_slot(struct fsck *f, const struct arb_super_slot *s, const uint8_t *fsid)
{
	uint64_t gen = le64toh(s->sb.generation);

	switch (s->status) {
	case ARB_SLOT_EMPTY:
		return;
	case ARB_SLOT_VALID:
		if (memcmp(s->sb.fsid, fsid, 16)) {
			say(f, ARB_MSG_INFO,
			    "superblock copy %d slot %d: left by another filesystem, ignored",
			    s->copy, s->slot);
			return;
		}
		f->r->slots_valid++;
		add_generation(f, &s->sb);
		return;
	default:
		break;
	}
	if (s->status != ARB_SLOT_IO_ERROR && gen >= f->r->newest_valid) {
		say(f, ARB_MSG_INFO,
		    "superblock copy %d slot %d: generation %llu was being written when the "
		    "writer stopped (an interrupted commit: nothing it promised is lost)",
		    s->copy, s->slot, (unsigned long long)gen);
		f->r->slots_interrupted++;
		return;
	}
	problem(f, NULL, "superblock copy %d slot %d (offset %llu): %s", s->copy, s->slot,
	        (unsigned long long)s->offset, arb_slot_status_str(s->status));
	f->r->slots_damaged++;
}

static int check_ring(struct fsck *f)
{
	const uint8_t *fsid;

	f->nslots = arb_super_read_all(f->dev, f->slots, MAX_SLOTS);
	if (f->nslots < 0)
		return f->nslots;
	fsid = newest_fsid(f);
	if (!fsid) {
		say(f, ARB_MSG_ERR,
		    "no superblock slot verifies: not an Arbor filesystem, or "
		    "every copy of the superblock is damaged");
		return -EUCLEAN;
	}
	for (int i = 0; i < f->nslots; i++)
		if (f->slots[i].status == ARB_SLOT_VALID &&
		    !memcmp(f->slots[i].sb.fsid, fsid, 16) &&
		    le64toh(f->slots[i].sb.generation) > f->r->newest_valid)
			f->r->newest_valid = le64toh(f->slots[i].sb.generation);
	for (int i = 0; i < f->nslots; i++)
		judge_slot(f, &f->slots[i], fsid);
	return 0;
}

/* ---- phase 2: the trees of one commit -------------------------------------------- */

static void check_progress(void *ctx, uint64_t done, uint64_t total)
{
	const struct fsck *f = ctx;

	f->o->progress(f->o->progress_ctx, 2, done, total);
}

/* The core's messages, except while a repair walk repeats what the check
 * walk already said. */
static void fs_msg(void *ctx, enum arb_msg_level level, const char *text)
{
	const struct fsck *f = ctx;

	if (f->o->msg && !(f->mute && level == ARB_MSG_ERR))
		f->o->msg(f->o->msg_ctx, level, text);
}

static int open_at(struct fsck *f, uint64_t gen, bool writable, struct arb_fs **ret)
{
	struct arb_open_opts oo = {
	        .read_only = !writable,
	        /* every node is visited once or twice, in order: a small cache
	         * reuses its buffers instead of faulting in fresh memory */
	        .cache_bytes = FSCK_CACHE_BYTES,
	        .max_generation = gen,
	        .msg = fs_msg,
	        .msg_ctx = f,
	};

	return arb_open(f->dev, &oo, ret);
}

static int walk_trees(struct fsck *f, struct arb_fs *fs, bool fix, struct arb_check_report *cr)
{
	struct arb_check_opts co = {.fix = fix};
	int err;

	if (f->o->progress) {
		co.progress = check_progress;
		co.progress_ctx = f;
	}
	err = arb_check_ex(fs, &co, cr);
	return err == -EUCLEAN ? 0 : err;
}

/* Index in gens[] of the newest commit whose trees read back whole, or
 * -1; *ret_fs is that commit opened read-only, *cr what its walk found. */
static int find_intact_commit(struct fsck *f, struct arb_fs **ret_fs, struct arb_check_report *cr)
{
	for (int i = 0; i < f->ngens; i++) {
		struct arb_fs_info info;
		struct arb_fs *fs;
		int err = open_at(f, f->gens[i], false, &fs);

		/* only damage makes an older commit worth a try: not memory,
		 * not features this build does not have */
		if (err == -ENOMEM || err == -EOPNOTSUPP)
			return err;
		if (err)
			continue; /* no older slot of the ring opens either */
		arb_fs_info(fs, &info);
		while (i + 1 < f->ngens && f->gens[i] > info.generation)
			i++; /* the roots of the newer ones did not verify */
		err = walk_trees(f, fs, false, cr);
		if (!err && !cr->bad_nodes) {
			*ret_fs = fs;
			return i;
		}
		say(f, ARB_MSG_ERR, "generation %llu: %llu tree nodes do not read back",
		    (unsigned long long)info.generation, (unsigned long long)cr->bad_nodes);
		arb_close(fs);
		if (err)
			return err;
	}
	return -1;
}

static void report_lost(struct fsck *f, int chosen, bool fixed)
{
	char lost[32], kept[32], done[96];

	utc(f->gen_time[chosen], kept, sizeof(kept));
	snprintf(done, sizeof(done), "went back to commit %llu of %s",
	         (unsigned long long)f->gens[chosen], kept);
	for (int i = 0; i < chosen; i++) {
		problem(f, fixed && i == chosen - 1 ? done : NULL,
		        "commit %llu of %s is damaged: going back to commit %llu of %s loses "
		        "what it changed",
		        (unsigned long long)f->gens[i], utc(f->gen_time[i], lost, sizeof(lost)),
		        (unsigned long long)f->gens[chosen], kept);
		f->r->lost_commits++;
	}
	/* one repair fixes them all */
	if (fixed && chosen > 1)
		f->r->fixed += (uint64_t)chosen - 1;
}

static void count_problems(struct fsck *f, const struct arb_check_report *cr, bool fixed)
{
	uint64_t counts = cr->count_mismatch + cr->leaked + cr->missing + cr->used_mismatch;

	if (counts)
		problem(f, fixed ? "space map set to what the trees reference" : NULL,
		        "space map: %llu sectors counted wrong (%llu leaked, %llu in use but "
		        "counted free)%s",
		        (unsigned long long)counts, (unsigned long long)cr->leaked,
		        (unsigned long long)cr->missing,
		        cr->used_mismatch ? ", used-sector total wrong" : "");
	if (cr->tree_totals)
		problem(f, fixed ? "referenced space of the trees recounted" : NULL,
		        "%llu trees count their referenced space wrong",
		        (unsigned long long)cr->tree_totals);
	f->r->count_errors = counts + cr->tree_totals;
}

static void note_figures(struct fsck *f, struct arb_fs *fs, const struct arb_check_report *cr)
{
	struct arb_fs_info info;

	arb_fs_info(fs, &info);
	f->r->generation = info.generation;
	f->r->trees = cr->trees;
	f->r->nodes = cr->nodes;
	f->r->dropping = cr->dropping;
	f->r->used_sectors = info.used_sectors;
	f->r->total_sectors = info.total_sectors;
}

/* ---- phases 2 and 3 with repair -------------------------------------------------- */

static int verify_repair(struct fsck *f, struct arb_fs *fs)
{
	struct arb_check_report cr;
	int err = arb_check(fs, &cr);

	if (err == -EUCLEAN) {
		problem(f, NULL, "the filesystem is still inconsistent after the repair");
		return 0;
	}
	return err;
}

/* cr: what the read-only walk of this commit found. */
static int repair(struct fsck *f, int chosen, struct arb_check_report *cr)
{
	struct arb_fs *fs;
	int err = open_at(f, f->gens[chosen], true, &fs);

	if (err)
		return err;
	/* the counts again, fixing, only if the first walk found them wrong */
	if (cr->count_mismatch + cr->leaked + cr->missing + cr->used_mismatch + cr->tree_totals) {
		f->mute = true;
		err = walk_trees(f, fs, true, cr);
		f->mute = false;
	}
	if (!err) {
		count_problems(f, cr, true);
		note_figures(f, fs, cr);
		err = arb_fsck_namespace(fs, f->o, f->r);
	}
	/* a fallback, damaged slots, or a slot an interrupted commit tore
	 * (once newer commits pass it, it would read as damage): every slot
	 * must name the repaired state */
	if (!err && (chosen > 0 || f->r->slots_damaged || f->r->slots_interrupted)) {
		err = arb_commit_every_slot(fs);
		if (!err && f->r->slots_damaged) {
			say(f, ARB_MSG_INFO, "rewrote every superblock slot");
			f->r->fixed += f->r->slots_damaged;
		}
	} else if (!err && f->r->errors) {
		err = arb_commit(fs);
	}
	/* nothing found: nothing written (the writable open changed nothing) */
	if (!err && f->r->errors)
		err = verify_repair(f, fs);
	if (!err)
		note_figures(f, fs, cr);
	arb_close(fs);
	return err;
}

static int check_only(struct fsck *f, struct arb_fs *fs, const struct arb_check_report *cr)
{
	struct arb_fsck_opts o = *f->o;

	o.repair = false; /* also when a repair was asked but cannot be made */
	count_problems(f, cr, false);
	note_figures(f, fs, cr);
	return arb_fsck_namespace(fs, &o, f->r);
}

int arb_fsck(struct arb_dev *dev, const struct arb_fsck_opts *o, struct arb_fsck_report *r)
{
	struct fsck *f = calloc(1, sizeof(*f));
	struct arb_check_report cr;
	struct arb_fs *fs = NULL;
	int chosen, err;

	if (!f)
		return -ENOMEM;
	memset(r, 0, sizeof(*r));
	f->dev = dev;
	f->o = o;
	f->r = r;
	err = check_ring(f);
	chosen = err ? err : find_intact_commit(f, &fs, &cr);
	if (chosen == -1) {
		problem(f, NULL,
		        "no commit in the superblock ring has intact trees: "
		        "the damaged subtrees cannot be repaired");
		r->bad_nodes = 1;
	} else if (chosen >= 0) {
		/* preen: giving up commits is a decision left to the user */
		bool may_repair = o->repair && !(chosen > 0 && o->no_rollback);

		report_lost(f, chosen, may_repair);
		if (may_repair) {
			arb_close(fs);
			err = repair(f, chosen, &cr);
		} else {
			err = check_only(f, fs, &cr);
			arb_close(fs);
		}
	} else {
		err = chosen;
	}
	free(f);
	return err;
}
