#!/bin/bash
# tests/cli/test_subvol.sh - the subvolume and snapshot commands of the
# arbor tool, offline (-i) on an image made by mkfs.arbor: create, list,
# show, snapshot (writable and read-only), set-default, get-default and
# delete, their errors and exit statuses, the JSON output, snapshot
# isolation, read-only snapshots refusing changes, and the space of
# everything deleted coming back; diff against a brute-force comparison
# of host copies after random changes, rollback (kept, named, deleted old
# content, refusals), and show's referenced and exclusive space.  engine
# check runs after every step.
# (The online mode, on a mount, is tested by tests/fuse/test_subvol.sh.)
# Prints TAP.

# shellcheck source=tests/cli/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MKFS=$top_builddir/mkfs/mkfs.arbor
if [ ! -x "$MKFS" ]; then
	echo "Bail out! $MKFS is not built"
	exit 1
fi

img=$T/subvol.img
base_used=
umask 022

# t_a EXPECTED DESCRIPTION ARGS...: arbor on the test image.
t_a() {
	local want=$1 desc=$2
	shift 2
	t_arbor "$want" "$desc" -i "$img" "$@"
}

# t_skip REASON: a visible skipped check.
t_skip() {
	t_count=$((t_count + 1))
	echo "ok $t_count # SKIP $1"
}

# t_same DESCRIPTION FILE COPY: the two files are equal (FILE may be $OUT).
t_same() {
	cp -- "$2" "$T/got"
	t_rc 0 "$1" cmp "$T/got" "$3"
}

# t_json DESCRIPTION: the last stdout is valid JSON (needs python3).
t_json() {
	if ! command -v python3 >/dev/null; then
		t_skip "$1 (python3 is missing)"
		return 0
	fi
	cp -- "$OUT" "$T/json"
	t_rc 0 "$1" python3 -m json.tool "$T/json"
}

# json_field FIELD: a field of the JSON object on the last stdout, as
# Python prints it (True, None, ...); empty without python3.
json_field() {
	command -v python3 >/dev/null || return 0
	python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' \
		"$OUT" "$1"
}

# t_jfield DESCRIPTION FIELD EXPECTED: a field of the last JSON object.
t_jfield() {
	if ! command -v python3 >/dev/null; then
		t_skip "$1 (python3 is missing)"
		return 0
	fi
	t_equal "$1" "$(json_field "$2")" "$3"
}

# t_check: engine check is clean.
t_check() {
	t_a 0 "engine check after $1" engine check
	t_grep "the image is clean after $1" '^clean$'
}

# used: the used sectors of the last commit.
used() {
	"$ARBOR" -i "$img" engine info | awk '$1 == "used" && $2 == "sectors" { print $3 }'
}

# settle: commits that change nothing but let deferred frees finish
# (blocks freed by a commit are reused only a few commits later).
settle() {
	local n=0
	while [ "$n" -lt 6 ]; do
		"$ARBOR" -i "$img" mkdir -p / || return 1
		n=$((n + 1))
	done
}

# show_field FIELD PATH: the value of one line of "subvolume show".
show_field() {
	"$ARBOR" -i "$img" subvolume show "$2" |
		awk -v f="$1" 'substr($0, 1, 11) == sprintf("%-11s", f) { print substr($0, 13); exit }'
}

# ---- setup ------------------------------------------------------------------

test_setup() {
	t_rc 0 "mkfs.arbor makes a 64 MiB image" "$MKFS" -q -s 64M "$img"
	head -c 300000 /dev/urandom >"$T/base"
	t_a 0 "put a file in the top level" put "$T/base" /base
	t_a 0 "a harmless command" mkdir -p /
	t_a 0 "and again" mkdir -p /
	base_used=$(used)
	t_rc 0 "engine info gives the used sectors" test -n "$base_used"
	t_check "setup"
}

test_help() {
	t_a 0 "subvolume --help" subvolume --help
	t_grep "lists the subvolume commands" 'subvolume set-default'
	t_a 0 "subvolume create --help" subvolume create --help
	t_grep "shows its synopsis" '^usage: arbor \[-i IMAGE\] subvolume create'
	t_a 0 "snapshot create --help" snapshot create --help
	t_grep "shows -r" '^ +-r$'
	t_a 2 "subvolume without a command" subvolume
	t_a 2 "an unknown subvolume command" subvolume frob
}

# ---- the top level ------------------------------------------------------------

test_top_level() {
	t_a 0 "list of a new filesystem" subvolume list
	t_grep "has a header" '^ID +GEN +PARENT +FLAGS +PATH$'
	t_grep "and the top level, the default" '^256 +[0-9]+ +0 +default +/$'
	t_equal "and nothing else" "$(wc -l <"$OUT")" 2
	t_a 0 "list -j" subvolume list -j
	t_json "list -j is JSON"
	t_a 0 "get-default" subvolume get-default
	t_grep "is the top level" '^256 +[0-9]+ +0 +default +/$'
	t_a 0 "get-default --format json" subvolume get-default --format json
	t_json "get-default --format json is JSON"
	t_jfield "its id" id 256
	t_jfield "its path" path /
	t_jfield "it is the default" default True
	t_a 0 "show /" subvolume show /
	t_grep "show names the top level" '^name +\(top level\)$'
	t_grep "and its flags" '^flags +default$'
}

# ---- create -----------------------------------------------------------------------

test_create() {
	t_a 0 "create /sv" subvolume create /sv
	t_grep "says what it made" "^Create subvolume '/sv' \\(id 257\\)\$"
	t_a 0 "stat /sv" stat /sv
	t_grep "its root is local 256 of subvolume 257" '^inode +[0-9]+ \(subvolume 257, local 256\)$'
	t_grep "with mode 0755 (umask 022)" '^mode +0755 '
	t_a 0 "ls / shows it" ls /
	t_grep "as a name" '^sv$'
	t_a 0 "create -m 700 -j /priv" subvolume create -m 700 -j /priv
	t_json "create -j is JSON"
	t_jfield "with the new id" id 258
	t_jfield "and its path" path /priv
	t_jfield "and its parent" parent_id 256
	t_a 0 "stat /priv" stat /priv
	t_grep "-m sets the mode" '^mode +0700 '
	t_a 1 "create over an existing name" subvolume create /sv
	t_grep "says the name is taken" "^error: cannot create '/sv': the name is taken" "$ERR"
	t_a 1 "create in a missing directory" subvolume create /nope/x
	t_grep "says the directory is missing" "the directory to hold it does not exist" "$ERR"
	t_a 1 "create /" subvolume create /
	t_a 2 "create of a relative path" subvolume create sv2
	t_grep "wants an absolute path" "paths in the filesystem start with '/'" "$ERR"
	t_a 2 "create with an invalid mode" subvolume create -m 8 /x
	t_a 2 "create without a path" subvolume create
	t_a 2 "create with an invalid format" subvolume create --format xml /x
	t_a 0 "list" subvolume list
	t_grep "shows /sv" '^257 +[0-9]+ +256 +- +/sv$'
	t_grep "and /priv" '^258 +[0-9]+ +256 +- +/priv$'
	t_a 0 "delete /priv" subvolume delete /priv
	t_grep "says so" "^Delete subvolume '/priv' \\(id 258\\)\$"
	t_a 1 "show of the deleted /priv" subvolume show /priv
	t_grep "says it does not exist" "'/priv' does not exist" "$ERR"
	t_check "create"
}

# ---- snapshots ------------------------------------------------------------------------

test_isolation() {
	head -c 70000 /dev/urandom >"$T/a"
	head -c 5000 /dev/urandom >"$T/b"
	head -c 9000 /dev/urandom >"$T/c"
	t_a 0 "put a file in /sv" put "$T/a" /sv/f
	t_a 0 "snapshot /sv as /snap" snapshot create /sv /snap
	t_grep "says what it made" "^Create a snapshot of '/sv' in '/snap' \\(id 259\\)\$"
	t_a 0 "overwrite the file in /sv" put "$T/b" /sv/f
	t_a 0 "cat it from the snapshot" cat /snap/f
	t_same "the snapshot has the old bytes" "$OUT" "$T/a"
	t_a 0 "cat it from /sv" cat /sv/f
	t_same "the source has the new ones" "$OUT" "$T/b"
	t_a 0 "put a new file in the snapshot" put "$T/c" /snap/g
	t_a 1 "the source does not have it" stat /sv/g
	t_a 0 "stat the snapshot's file" stat /snap/f
	t_grep "it is in subvolume 259" '^inode +[0-9]+ \(subvolume 259, '
	t_check "snapshot isolation"
}

test_snapshot_show() {
	t_a 0 "show -j /snap" subvolume show -j /snap
	t_json "show -j is JSON"
	t_jfield "it is a snapshot of /sv" source_id 257
	t_jfield "named snap" name snap
	t_jfield "writable" readonly False
	local src_uuid
	src_uuid=$(show_field uuid /sv)
	t_jfield "its parent uuid is /sv's uuid" parent_uuid "$src_uuid"
	t_a 0 "show /snap" subvolume show /snap
	t_grep "path" '^path +/snap$'
	t_grep "id" '^id +259$'
	t_grep "source id" '^source id +257$'
	t_grep "parent uuid" "^parent uuid +$src_uuid\$"
	t_grep "ctime" '^ctime +[0-9]{4}-[0-9]{2}-[0-9]{2} '
	t_a 0 "show /sv" subvolume show /sv
	t_grep "lists its snapshot" '^snapshots +/snap$'
	t_grep "has no source" '^source id +-$'
	t_a 1 "show of a directory that is not a subvolume" subvolume show /sv/f
	t_grep "says it is not a subvolume" "is not a subvolume" "$ERR"
}

test_snapshot_into_dir() {
	t_a 0 "mkdir /snaps" mkdir /snaps
	t_a 0 "snapshot into an existing directory" snapshot create /sv /snaps
	t_grep "uses the source's name" "in '/snaps/sv'"
	t_a 0 "snapshot -r" snapshot create -r /sv /snaps/ro
	t_grep "says read-only" "^Create a read-only snapshot of '/sv' in '/snaps/ro'"
	t_a 0 "list" subvolume list
	t_grep "shows /snaps/sv" '^[0-9]+ +[0-9]+ +256 +- +/snaps/sv$'
	t_grep "shows /snaps/ro read-only" '^[0-9]+ +[0-9]+ +256 +ro +/snaps/ro$'
	t_a 0 "subvolume snapshot -r --format json (the btrfs name)" \
		subvolume snapshot -r --format json / /snaps/top
	t_json "snapshot --format json is JSON"
	t_jfield "it is read-only" readonly True
	t_jfield "a snapshot of the top level" source_id 256
	t_a 0 "ls the snapshot of the top level" ls /snaps/top
	t_equal "nested subvolumes are not part of it" "$(cat "$OUT")" "$(printf 'base\nsnaps')"
	t_a 0 "cat its file" cat /snaps/top/base
	t_same "it has the top level's bytes" "$OUT" "$T/base"
	t_check "snapshots into a directory"
}

test_readonly() {
	t_a 0 "cat from the read-only snapshot" cat /snaps/ro/f
	t_same "it has the source's bytes" "$OUT" "$T/b"
	t_a 1 "put into it fails" put "$T/c" /snaps/ro/new
	t_grep "read-only" 'Read-only file system' "$ERR"
	t_a 1 "put over its file fails" put "$T/c" /snaps/ro/f
	t_a 1 "rm in it fails" rm /snaps/ro/f
	t_grep "read-only" 'Read-only file system' "$ERR"
	t_a 1 "mkdir in it fails" mkdir /snaps/ro/d
	t_grep "read-only" 'Read-only file system' "$ERR"
	t_a 1 "a subvolume in it" subvolume create /snaps/ro/sub
	t_grep "is refused, saying why" "its parent directory is in a read-only subvolume" "$ERR"
	t_a 1 "a snapshot into it" snapshot create /sv /snaps/ro/x
	t_grep "is refused, saying why" "its parent directory is in a read-only subvolume" "$ERR"
	t_a 0 "cat after the refusals" cat /snaps/ro/f
	t_same "nothing changed" "$OUT" "$T/b"
	t_check "read-only refusals"
}

test_snapshot_errors() {
	t_a 1 "snapshot of a directory that is not a subvolume" snapshot create /snaps /x
	t_grep "says it is not a subvolume" "^error: '/snaps' is not a subvolume" "$ERR"
	t_a 1 "snapshot of a missing source" snapshot create /nope /x
	t_grep "says it does not exist" "^error: '/nope' does not exist" "$ERR"
	t_a 1 "snapshot over an existing file" snapshot create /snap /sv/f
	t_grep "says the name is taken" "cannot create '/sv/f': the name is taken" "$ERR"
	t_a 1 "snapshot of / into a directory" snapshot create / /snaps
	t_grep "asks for a name" "name the snapshot, as in /snaps/NAME" "$ERR"
	t_a 1 "snapshot into a missing directory" snapshot create /sv /nope/x
	t_grep "says the directory is missing" "the directory to hold it does not exist" "$ERR"
	t_a 2 "snapshot with one argument" snapshot create /sv
	t_a 2 "snapshot with a relative path" snapshot create sv /x
	t_a 2 "snapshot with an unknown option" snapshot create -x /sv /x
	t_check "snapshot errors"
}

# ---- the default subvolume ----------------------------------------------------------

test_default() {
	t_a 0 "set-default /snap" subvolume set-default /snap
	t_a 0 "get-default" subvolume get-default
	t_grep "is /snap" '^259 +[0-9]+ +256 +default +/snap$'
	t_a 0 "ls /" ls /
	t_equal "/ is now the snapshot's root" "$(cat "$OUT")" "$(printf 'f\ng')"
	t_a 0 "cat /f" cat /f
	t_same "with the snapshot's bytes" "$OUT" "$T/a"
	# offline the default subvolume's link is out of reach: / is its root
	t_a 1 "delete of / (the default subvolume)" subvolume delete /
	t_grep "is refused, saying what to do" \
		"it is the default subvolume; make another one the default first" "$ERR"
	t_a 1 "set-default of a missing id" subvolume set-default 999
	t_grep "says there is no such subvolume" "^error: no subvolume 999" "$ERR"
	t_a 1 "set-default of a directory that is not a subvolume" subvolume set-default /f
	t_grep "says it is not a subvolume" "is not a subvolume" "$ERR"
	t_a 2 "set-default of a relative path" subvolume set-default snap
	t_a 2 "set-default with two paths" subvolume set-default /a /b
	t_a 0 "set-default 256: back to the top level by id" subvolume set-default 256
	t_a 0 "get-default -j" subvolume get-default -j
	t_jfield "is the top level" id 256
	t_a 0 "ls /" ls /
	t_equal "/ is the top level again" "$(cat "$OUT")" "$(printf 'base\nsnap\nsnaps\nsv')"
	t_check "set-default"
}

# ---- delete and the space coming back ----------------------------------------------

test_delete() {
	t_a 0 "a subvolume inside /sv" subvolume create /sv/inner
	t_a 1 "delete of /sv with a subvolume inside" subvolume delete /sv
	t_grep "says to delete that first" "subvolumes are linked inside it; delete them first" "$ERR"
	t_a 1 "delete of a directory" subvolume delete /snaps
	t_grep "says it is not a subvolume" "^error: cannot delete '/snaps': it is not a subvolume" "$ERR"
	t_a 1 "delete of a missing path" subvolume delete /nope
	t_grep "says it does not exist" "^error: cannot delete '/nope': it does not exist" "$ERR"
	t_a 1 "delete of two when the second fails" subvolume delete /snaps/sv /nope
	t_a 0 "list" subvolume list
	t_grep "the first is still there (one transaction)" '/snaps/sv$'
	t_a 2 "delete without a path" subvolume delete
	t_a 2 "delete of a relative path" subvolume delete sv
	t_a 0 "delete everything" subvolume delete /sv/inner /sv /snap /snaps/sv /snaps/ro /snaps/top
	t_grep "says so, one line each" "^Delete subvolume '/snaps/top' \\(id [0-9]+\\)\$"
	t_equal "six lines" "$(wc -l <"$OUT")" 6
	t_a 0 "list" subvolume list
	t_equal "only the top level is left" "$(sed 1d "$OUT" | awk '{ print $1, $NF }')" "256 /"
	t_a 0 "rmdir /snaps" rmdir /snaps
	t_check "delete"
	t_rc 0 "commits to let the frees finish" settle
	t_equal "the used sectors are back to before the first snapshot" "$(used)" "$base_used"
	t_a 0 "cat /base" cat /base
	t_same "the top level is intact" "$OUT" "$T/base"
	t_check "the end"
}


# ---- diff, rollback, space (an image of their own) ---------------------------------

dimg=$T/diff.img

# t_d EXPECTED DESCRIPTION ARGS...: arbor on the diff image.
t_d() {
	local want=$1 desc=$2
	shift 2
	t_arbor "$want" "$desc" -i "$dimg" "$@"
}

# put_tree HOSTDIR PATH: copy a host tree into the diff image.
put_tree() {
	local p
	"$ARBOR" -i "$dimg" mkdir -p "$2" || return 1
	while IFS= read -r p; do
		if [ -d "$1$p" ]; then
			"$ARBOR" -i "$dimg" mkdir "$2$p"
		else
			"$ARBOR" -i "$dimg" put "$1$p" "$2$p"
		fi || return 1
	done < <(host_list "$1")
}

# t_diff DESCRIPTION A B OLD NEW: arbor diff A B prints exactly the brute
# force comparison of host trees OLD and NEW.
t_diff() {
	host_diff "$4" "$5" >"$T/want"
	t_d 0 "$1: diff $2 $3" diff "$2" "$3"
	cp -- "$OUT" "$T/got"
	t_rc 0 "$1: the lines are the brute-force comparison of the host copies" \
		diff -u "$T/want" "$T/got"
}

test_diff() {
	local n=$((60 * ARBOR_TEST_SCALE))
	n=${n%.*}
	t_rc 0 "mkfs.arbor an image for diff and rollback" "$MKFS" -q -s 128M "$dimg"
	host_tree "$T/h" 4 6
	t_d 0 "a subvolume /vol" subvolume create /vol
	t_rc 0 "copy a host tree into it" put_tree "$T/h" /vol
	t_d 0 "snapshot it read-only as /s1" snapshot create -r /vol /s1
	t_d 0 "diff of the snapshot and its source" diff /s1 /vol
	t_equal "is empty right after the snapshot" "$(cat "$OUT")" ""
	cp -a "$T/h" "$T/h0"
	t_rc 0 "$n random changes to the host tree" random_changes "$T/h" "$n" "$T/log"
	head -c 5000 /dev/urandom >"$T/new"
	printf 'write /stable/f %s\nrm /stable/g\nwrite /added %s\n' "$T/new" "$T/new" >>"$T/log"
	t_rc 0 "and one of each kind" replay_changes host "$T/h" < <(tail -n 3 "$T/log")
	t_rc 0 "the same changes to /vol" replay_changes "$dimg" /vol <"$T/log"
	host_diff "$T/h0" "$T/h" >"$T/kinds"
	t_equal "there are changes of every kind" "$(cut -c1 "$T/kinds" | sort -u | tr -d '\n')" ACD
	t_diff "after the changes" /s1 /vol "$T/h0" "$T/h"
	t_diff "the other way round" /vol /s1 "$T/h" "$T/h0"
	t_grep "D lines the other way round" '^D /' "$T/got"
	t_d 0 "diff --format json" diff --format json /s1 /vol
	t_json "diff --format json is JSON"
	if command -v python3 >/dev/null; then
		t_equal "with the same changes as the text" "$(json_diff_lines <"$OUT")" \
			"$(host_diff "$T/h0" "$T/h")"
	fi
	t_d 0 "diff -j of equal subvolumes" diff -j /s1 /s1
	t_equal "is an empty array" "$(cat "$OUT")" "[]"
	t_d 0 "diff --stats" diff --stats /s1 /vol
	t_grep "prints the changes and the nodes read on stderr" \
		"^$(wc -l <"$T/got") changes, [0-9]+ tree nodes read\$" "$ERR"
	t_d 1 "diff with a missing subvolume" diff /s1 /nope
	t_grep "says it does not exist" "^error: '/nope' does not exist" "$ERR"
	t_d 1 "diff with a plain directory" diff /s1/d0 /vol
	t_grep "says it is not a subvolume" "^error: '/s1/d0' is not a subvolume" "$ERR"
	t_d 2 "diff with one argument" diff /s1
	t_d 2 "diff of a relative path" diff s1 /vol
	t_d 0 "diff --help" diff --help
	t_grep "shows its synopsis" '^usage: arbor \[-i IMAGE\] diff'
	t_check_d "diff"
}

# t_check_d WHEN: engine check of the diff image is clean.
t_check_d() {
	t_d 0 "engine check after $1" engine check
	t_grep "the image is clean after $1" '^clean$'
}

test_rollback() {
	local kept
	t_d 0 "rollback /vol to /s1" rollback /vol /s1
	t_grep "says what it did" "^Roll back '/vol' to '/s1' \\(new id [0-9]+\\)\$"
	t_grep "and where the old content is" "^Keep its old content as '/vol\\.old-[0-9]{8}-[0-9]{6}' "
	kept=$(sed -n "s|^Keep its old content as '\\(.*\\)' (id [0-9]*)\$|\\1|p" "$OUT")
	t_d 0 "diff /s1 /vol after the rollback" diff /s1 /vol
	t_equal "/vol holds what the snapshot holds" "$(cat "$OUT")" ""
	t_d 0 "cat a file" cat /vol/top0
	t_same "with the snapshot's bytes" "$OUT" "$T/h0/top0"
	t_diff "the kept old content" /s1 "$kept" "$T/h0" "$T/h"
	t_d 0 "/vol is writable after a rollback to a read-only snapshot" put "$T/h0/top0" /vol/w
	t_d 0 "rollback --keep NAME -j" rollback --keep mine -j /vol /s1
	t_json "rollback -j is JSON"
	t_jfield "names the kept subvolume" kept mine
	t_jfield "and its path" kept_path /mine
	t_d 0 "/mine has the write" stat /mine/w
	t_d 1 "rollback --keep of a name that exists" rollback --keep mine /vol /s1
	t_grep "says the name is taken" "the name for its old content is taken; choose another with --keep NAME" "$ERR"
	t_d 0 "rollback --no-keep" rollback --no-keep -j /vol "$kept"
	t_jfield "keeps nothing" kept None
	t_d 0 "list" subvolume list
	t_nogrep "the old /vol is gone" "^$(json_field old_id) "
	t_diff "/vol now holds the old content" /s1 /vol "$T/h0" "$T/h"
	t_d 0 "a subvolume inside /vol" subvolume create /vol/inner
	t_d 1 "rollback --no-keep with a subvolume inside" rollback --no-keep /vol /s1
	t_grep "says what to do" "subvolumes are linked inside it; keep the old content" "$ERR"
	t_d 1 "rollback of a plain directory" rollback /mine/d0 /s1
	t_grep "says it is not a subvolume" "cannot roll back '/mine/d0': it is not a subvolume" "$ERR"
	t_d 1 "rollback of a missing subvolume" rollback /nope /s1
	t_grep "says it does not exist" "cannot roll back '/nope': it does not exist" "$ERR"
	t_d 1 "rollback to a missing snapshot" rollback /vol /nope
	t_grep "says the snapshot does not exist" "^error: '/nope' does not exist" "$ERR"
	t_d 1 "rollback to itself" rollback /mine /mine
	t_grep "is refused" "to itself" "$ERR"
	t_d 1 "rollback of /" rollback / /s1
	t_grep "says / is no name" "root of the image's default subvolume" "$ERR"
	t_d 2 "--keep and --no-keep" rollback --keep x --no-keep /vol /s1
	t_d 2 "--keep with a slash" rollback --keep a/b /vol /s1
	t_d 2 "rollback of a path ending in .." rollback /vol/.. /s1
	t_d 0 "rollback --help" rollback --help
	t_grep "shows --no-keep" '^ +--no-keep$'
	t_check_d "rollback"
}

# show_bytes FIELD PATH: referenced_bytes or exclusive_bytes from show -j.
show_bytes() {
	"$ARBOR" -i "$dimg" subvolume show -j "$2" |
		python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}

test_usage() {
	local ex0 ex1 ref
	if ! command -v python3 >/dev/null; then
		t_skip "space checks (python3 is missing)"
		return 0
	fi
	head -c 1048576 /dev/urandom >"$T/mb"
	head -c 1048576 /dev/urandom >"$T/mb2"
	t_d 0 "a subvolume with 1 MiB of data" subvolume create /u
	t_d 0 "put 1 MiB" put "$T/mb" /u/big
	t_d 0 "show" subvolume show /u
	t_grep "prints referenced space" '^referenced +1\.[0-9]{2} MiB$'
	t_grep "and exclusive space" '^exclusive +1\.[0-9]{2} MiB$'
	t_d 0 "snapshot it" snapshot create /u /us
	ex0=$(show_bytes exclusive_bytes /u)
	ref=$(show_bytes referenced_bytes /u)
	t_rc 0 "referenced counts the data ($ref bytes)" test "$ref" -ge 1048576
	t_rc 0 "exclusive of a fresh snapshot's source is small ($ex0 bytes)" test "$ex0" -lt 65536
	t_d 0 "overwrite the shared data in the source" put "$T/mb2" /u/big
	ex1=$(show_bytes exclusive_bytes /u)
	t_rc 0 "exclusive grows by the new data ($ex0 -> $ex1)" test "$ex1" -ge $((ex0 + 1048576))
	t_equal "the snapshot holds the old data alone now" "$(($(show_bytes exclusive_bytes /us) >= 1048576))" 1
	t_d 0 "show -j" subvolume show -j /u
	t_json "show -j with the space is JSON"
	t_check_d "space"
}

# A user tree made by engine create-tree has no root directory: it cannot
# be the default (nothing could use it), on an image of its own.
test_raw_tree() {
	local raw=$T/raw.img id
	t_rc 0 "mkfs.arbor another image" "$MKFS" -q -s 16M "$raw"
	t_arbor 0 "engine create-tree" -i "$raw" engine create-tree
	id=$(cat "$OUT")
	t_arbor 1 "set-default of a tree that is not a subvolume" -i "$raw" subvolume set-default "$id"
	t_grep "says there is no such subvolume" "^error: no subvolume $id" "$ERR"
	t_arbor 0 "the default is unchanged" -i "$raw" ls /
}

test_setup
test_raw_tree
test_help
test_top_level
test_create
test_isolation
test_snapshot_show
test_snapshot_into_dir
test_readonly
test_snapshot_errors
test_default
test_delete
test_diff
test_rollback
test_usage
t_done
