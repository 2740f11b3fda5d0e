#!/bin/bash
# tests/cli/test_subvol.sh - the subvolume and snapshot commands of the
# arbor tool, offline (-i) on an image made by mkfs.arbor: create, list,
# show, snapshot (writable and read-only), set-default, get-default and
# delete, their errors and exit statuses, the JSON output, snapshot
# isolation, read-only snapshots refusing changes, and the space of
# everything deleted coming back.  engine check runs after every step.
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
t_done
