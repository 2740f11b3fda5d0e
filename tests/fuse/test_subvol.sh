#!/bin/bash
# tests/fuse/test_subvol.sh - subvolumes and snapshots on a real arborfs
# mount, driven through the ioctls of include/arbor/ioctl.h (python3's
# fcntl.ioctl with the exact structure layouts): create, snapshot
# (writable and read-only), delete with its refusals and permission
# checks, info and list, names and '..' of subvolume links, durability
# across kill -9, a remount, and mounting a subvolume by -o subvol=PATH
# and -o subvol=ID.  Then the arbor tool online: diff against a brute-force
# comparison of host copies (3,000 changes: many pages), its refusal to
# users who do not own the subvolumes, rollback (the kernel forgets the
# old names at once) and show's referenced and exclusive space.  Prints
# TAP; skips everything without root, /dev/fuse, fusermount3 or python3.

# ls is the point where it lists (through getdents); the sh -c scripts
# expand their own "$1".
# shellcheck disable=SC2012,SC2016
# shellcheck source=tests/fuse/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if ! have_python; then
	echo "1..0 # SKIP python3 is missing"
	exit 0
fi

# The ioctl helper: "OP PATH ARGS..."; prints ids or subvolume lines
# ("id parent_id dirid source_id flags name"), and on failure
# "error: ERRNO_NAME (message)" on stderr with exit status 1.
IOC='
import errno, fcntl, os, struct, sys

ARGS = "<QQII40s256s"  # struct arb_ioc_subvol_args
INFO = "<7QII16s16s32s256s"  # struct arb_ioc_subvol_info
assert struct.calcsize(ARGS) == 320 and struct.calcsize(INFO) == 384

def ioc(d, nr, size):  # _IOC(dir, 0xAB, nr, size); _IOC_WRITE 1, _IOC_READ 2
    return (d << 30) | (size << 16) | (0xAB << 8) | nr

AS, IS = struct.calcsize(ARGS), struct.calcsize(INFO)
CREATE, SNAPSHOT, DELETE = ioc(3, 1, AS), ioc(3, 2, AS), ioc(1, 3, AS)
INFO_CMD, NEXT, SET_DEFAULT, SYNC = ioc(3, 4, IS), ioc(3, 5, IS), ioc(1, 6, AS), ioc(0, 7, 0)

def args(name="", src=0, id=0, flags=0, mode=0):
    return bytearray(struct.pack(ARGS, src, id, flags, mode, b"", name.encode()))

def info(id):
    return bytearray(struct.pack(INFO, id, 0, 0, 0, 0, 0, 0, 0, 0, b"", b"", b"", b""))

def call(path, cmd, buf=None):
    fd = os.open(path, os.O_RDONLY)
    try:
        if buf is None:
            fcntl.ioctl(fd, cmd)
        else:
            fcntl.ioctl(fd, cmd, buf, True)
        return buf
    finally:
        os.close(fd)

def show(buf):
    f = struct.unpack(INFO, buf)
    print(f[0], f[1], f[2], f[3], f[8], f[12].rstrip(b"\0").decode())

def main(op, path, *a):
    if op == "create":
        b = call(path, CREATE, args(a[0], mode=int(a[1], 8) if len(a) > 1 else 0o755))
        print(struct.unpack(ARGS, b)[1])
    elif op == "snapshot":
        ro = len(a) > 2 and a[2] == "ro"
        b = call(path, SNAPSHOT, args(a[0], src=int(a[1]), flags=1 if ro else 0))
        print(struct.unpack(ARGS, b)[1])
    elif op == "delete":
        call(path, DELETE, args(a[0]))
    elif op == "info":
        show(call(path, INFO_CMD, info(int(a[0]))))
    elif op == "list":
        id = 0
        while True:
            try:
                b = call(path, NEXT, info(id))
            except OSError as e:
                if e.errno != errno.ENOENT:
                    raise
                break
            show(b)
            id = struct.unpack(INFO, b)[0] + 1
    elif op == "set-default":
        call(path, SET_DEFAULT, args(id=int(a[0])))
    elif op == "sync":
        call(path, SYNC)
    elif op == "bad-size":  # command 1 with a size that is not its own
        call(path, ioc(3, 1, 100), bytearray(100))
    elif op == "unknown":
        call(path, ioc(3, 99, AS), args())
    elif op == "subvol-of":  # arb_ioc_subvol_of(st_ino)
        print((os.stat(path).st_ino >> 40) + 255)
    elif op == "local":
        print(os.stat(path).st_ino & ((1 << 40) - 1))
    else:
        raise SystemExit("unknown op " + op)

try:
    main(*sys.argv[1:])
except OSError as e:
    print("error: %s (%s)" % (errno.errorcode[e.errno], e.strerror), file=sys.stderr)
    sys.exit(1)
'

ioc() {
	python3 -c "$IOC" "$@"
}

# ioc_id VARIABLE OP ARGS...: run the helper, keep the id it prints.
ioc_id() {
	local var=$1
	shift
	printf -v "$var" '%s' "$(ioc "$@" 2>>"$T/ioc.err")"
}

# The unprivileged caller: uid and gid 1234, no groups.  It needs a python
# outside root's home and a path to the mount point.
USER_PY=
ROOTVOL=
find_user_python() {
	local py
	command -v setpriv >/dev/null || return 0
	chmod o+x "$T"
	for py in "$(command -v python3)" /usr/bin/python3; do
		if [ -x "$py" ] &&
			setpriv --reuid 1234 --regid 1234 --clear-groups "$py" -c '' 2>/dev/null; then
			USER_PY=$py
			return 0
		fi
	done
}

as_user() {
	setpriv --reuid 1234 --regid 1234 --clear-groups "$USER_PY" -c "$IOC" "$@"
}

ro_setxattr() {
	if command -v setfattr >/dev/null; then
		setfattr -n user.x -v 1 "$1"
	else
		python3 -c 'import os, sys; os.setxattr(sys.argv[1], "user.x", b"1")' "$1"
	fi
}

# ---- create ------------------------------------------------------------------------

test_create() {
	local m=$MNT links
	t_rc 0 "mkfs.arbor a 256 MiB image" "$MKFS" -q -s 256M "$IMG"
	t_mount "mount it (allow_other, for the unprivileged checks)" -o allow_other || return 1
	links=$(stat -c %h "$m")
	ioc_id VOL create "$m" vol
	t_equal "SUBVOL_CREATE answers the new id" "$VOL" 257
	t_equal "the new subvolume appears at once" "$(ls "$m")" "vol"
	t_equal "the parent's link count counts it at once" "$(stat -c %h "$m")" $((links + 1))
	t_equal "it is a directory" "$(stat -c %F "$m/vol")" "directory"
	t_equal "with the mode asked for" "$(stat -c %a "$m/vol")" 755
	t_equal "its inode numbers carry its id" "$(ioc subvol-of "$m/vol")" "$VOL"
	t_equal "its root is local inode 256" "$(ioc local "$m/vol")" 256
	echo one >"$m/vol/a"
	mkdir "$m/vol/dir"
	echo two >"$m/vol/dir/b"
	t_equal "files written into it read back" "$(cat "$m/vol/a" "$m/vol/dir/b")" $'one\ntwo'
	t_equal "and are in it" "$(ioc subvol-of "$m/vol/dir/b")" "$VOL"
	ioc_id PRIV create "$m" private 0700
	t_equal "create with mode 0700" "$(stat -c %a "$m/private")" 700
	t_fails "an existing name: EEXIST" 'EEXIST' ioc create "$m" vol
	t_fails "a name with a slash: EINVAL" 'EINVAL' ioc create "$m" 'a/b'
	t_fails "the name '..': EINVAL" 'EINVAL' ioc create "$m" '..'
	t_fails "a 256-byte name: ENAMETOOLONG" 'ENAMETOOLONG' \
		ioc create "$m" "$(printf 'n%.0s' $(seq 256))"
	mkdir "$m/snaps"
	ioc_id INNER create "$m/vol" inner
	t_equal "a subvolume inside a subvolume" "$(ioc subvol-of "$m/vol/inner")" "$INNER"
	touch "$m/vol/inner/x"
}

# ---- snapshots -----------------------------------------------------------------------

test_snapshot() {
	local m=$MNT ro=$MNT/snap-ro
	ioc_id SNAP snapshot "$m" snap "$VOL"
	t_equal "SNAPSHOT answers the new id" "$SNAP" $((INNER + 1))
	t_equal "the snapshot appears at once" "$(ls "$m" | tr '\n' ' ')" "private snap snaps vol "
	t_equal "it holds the source's files" "$(cat "$m/snap/a" "$m/snap/dir/b")" $'one\ntwo'
	t_equal "but not the subvolumes nested in the source" "$(ls "$m/snap")" $'a\ndir'
	ioc_id SNAP_RO snapshot "$m" snap-ro "$VOL" ro
	t_equal "a read-only snapshot" "$(cat "$ro/a")" "one"
	ioc_id MONDAY snapshot "$m/snaps" monday "$VOL"
	t_equal "a snapshot into a plain directory" "$(cat "$m/snaps/monday/a")" "one"

	t_fails "read-only: touch of a file fails with EROFS" 'Read-only file system' \
		touch "$ro/a"
	t_fails "read-only: creating a file fails" 'Read-only file system' touch "$ro/new"
	t_fails "read-only: rm fails" 'Read-only file system' rm "$ro/a"
	t_fails "read-only: an appending write fails" 'Read-only file system' \
		sh -c 'echo more >>"$1"' sh "$ro/a"
	t_fails "read-only: a truncating write fails" 'Read-only file system' \
		sh -c 'echo more >"$1"' sh "$ro/a"
	t_fails "read-only: mkdir fails" 'Read-only file system' mkdir "$ro/d"
	t_fails "read-only: chmod fails" 'Read-only file system' chmod 600 "$ro/a"
	t_fails "read-only: setxattr fails" 'Read-only file system' ro_setxattr "$ro/a"
	t_fails "read-only: rename inside fails" 'Read-only file system' mv "$ro/a" "$ro/b"
	t_equal "the read-only snapshot is unchanged" "$(ls "$ro" | tr '\n' ' ')$(cat "$ro/a")" \
		"a dir one"

	echo src >>"$m/vol/a"
	echo snap >>"$m/snap/a"
	drop_caches
	t_equal "a write to the source stays there" "$(cat "$m/vol/a")" $'one\nsrc'
	t_equal "a write to the snapshot stays there" "$(cat "$m/snap/a")" $'one\nsnap'
	t_equal "the read-only snapshot still has the old content" "$(cat "$ro/a")" "one"
	t_ok "the filesystem still takes changes" touch "$m/vol/after-erofs"
	t_equal "source and snapshot files have different st_ino" \
		"$(($(stat -c %i "$m/vol/a") != $(stat -c %i "$m/snap/a")))" 1
	t_equal "with the same local number" "$(ioc local "$m/vol/a")" "$(ioc local "$m/snap/a")"
	t_equal "the snapshot's inode numbers carry its id" "$(ioc subvol-of "$m/snap/a")" "$SNAP"
	t_fails "a snapshot of a missing subvolume: ENOENT" 'ENOENT' \
		ioc snapshot "$m" nosuch 9999
	t_fails "a snapshot over an existing name: EEXIST" 'EEXIST' \
		ioc snapshot "$m" snap "$VOL"
	t_fails "a snapshot into the read-only snapshot: EROFS" 'EROFS' \
		ioc snapshot "$ro" s "$VOL"
}

# ---- names ---------------------------------------------------------------------------------

test_names() {
	local m=$MNT
	t_equal "'..' of a subvolume root is the parent directory" \
		"$(cd "$m/vol" && stat -c %i ..)" "$(stat -c %i "$m")"
	t_equal "also for one linked in a plain directory" \
		"$(cd "$m/snaps/monday" && stat -c %i ..)" "$(stat -c %i "$m/snaps")"
	t_equal "readdir's '..' agrees" "$(ls -ai "$m/snaps/monday" | awk '$2 == ".." { print $1 }')" \
		"$(stat -c %i "$m/snaps")"
	t_fails "rmdir of a subvolume: EPERM" 'Operation not permitted' rmdir "$m/private"
	t_fails "unlink of a subvolume fails" 'directory|not permitted' unlink "$m/private"
	t_ok "rename of a subvolume link to a free name" mv "$m/snap" "$m/snap2"
	t_equal "the old name is gone, the new one has the content" \
		"$(ls "$m/snap" 2>/dev/null)$(cat "$m/snap2/a")" $'one\nsnap'
	t_equal "the id is unchanged" "$(ioc subvol-of "$m/snap2")" "$SNAP"
	t_ok "and back" mv "$m/snap2" "$m/snap"
	t_fails "rename of a subvolume over an existing name fails" 'not permitted' \
		mv -T "$m/private" "$m/snaps"
}

# ---- delete ----------------------------------------------------------------------------

test_delete() {
	local m=$MNT
	t_fails "deleting a subvolume with a nested one: ENOTEMPTY" 'ENOTEMPTY' \
		ioc delete "$m" vol
	t_fails "deleting a plain directory: ENOTTY" 'ENOTTY' ioc delete "$m" snaps
	t_fails "deleting a missing name: ENOENT" 'ENOENT' ioc delete "$m" nosuch
	stat "$m/vol/inner/x" >/dev/null # the kernel caches the names
	t_ok "delete the nested subvolume" ioc delete "$m/vol" inner
	t_fails "it is gone at once" 'No such file' stat "$m/vol/inner"
	t_equal "and not listed" "$(ls "$m/vol" | tr '\n' ' ')" "a after-erofs dir "
	t_fails "its id is gone" 'ENOENT' ioc info "$m" "$INNER"
	ioc_id GONE create "$m" gone
	t_ok "a fresh subvolume can be deleted" ioc delete "$m" gone
	t_equal "its name is free again" "$(ioc create "$m" gone 2>&1)" $((MONDAY + 2))
	t_ok "and deleted again" ioc delete "$m" gone

	# the default subvolume (the top level here) is never linked; make a
	# linked one the default, then try to delete it
	t_ok "SET_DEFAULT to the private subvolume" ioc set-default "$m" "$PRIV"
	t_fails "deleting the default subvolume: EBUSY" 'EBUSY' ioc delete "$m" private
	t_ok "SET_DEFAULT back to the top level" ioc set-default "$m" 256
	t_fails "SET_DEFAULT to a missing subvolume: ENOENT" 'ENOENT' ioc set-default "$m" 9999
	t_ok "SYNC" ioc sync "$m"
	t_fails "an unknown command: ENOTTY" 'ENOTTY' ioc unknown "$m"
	t_fails "a known number with a wrong size: ENOTTY" 'ENOTTY' ioc bad-size "$m"
	t_fails "the commands on a regular file: ENOTTY" 'ENOTTY' ioc sync "$m/vol/a"
}

test_permissions() {
	local m=$MNT
	find_user_python
	if [ -z "$USER_PY" ]; then
		t_skip "no python3 that uid 1234 can run (or no setpriv)"
		return 0
	fi
	mkdir -m 1777 "$m/pub"
	ioc_id ROOTVOL create "$m/pub" rootvol
	t_fails "a non-owner without write permission: EACCES" 'EACCES' \
		as_user delete "$m" vol
	t_fails "a non-owner in a writable directory: EPERM" 'EPERM' \
		as_user delete "$m/pub" rootvol
	t_fails "create without write permission: EACCES" 'EACCES' as_user create "$m" mine
	t_ok "create in a writable directory" as_user create "$m/pub" mine
	t_equal "the caller owns its root" "$(stat -c %u:%g "$m/pub/mine")" 1234:1234
	t_fails "a snapshot of someone else's subvolume: EPERM" 'EPERM' \
		as_user snapshot "$m/pub" copy "$ROOTVOL"
	t_ok "a snapshot of its own" as_user snapshot "$m/pub" mine-snap \
		"$(ioc subvol-of "$m/pub/mine")"
	t_ok "the owner deletes its snapshot" as_user delete "$m/pub" mine-snap
	t_fails "SET_DEFAULT by a non-root caller: EPERM" 'EPERM' as_user set-default "$m" 256
	t_ok "INFO for anyone" as_user info "$m" "$VOL"
	t_ok "SYNC for anyone" as_user sync "$m"
	t_ok "root deletes anything" ioc delete "$m/pub" mine
}

# ---- info and list ----------------------------------------------------------------------

# list_check WHEN: NEXT walks every subvolume with the right fields.
list_check() {
	local when=$1 want
	want="256 0 0 0 6 
$VOL 256 256 0 0 vol
$PRIV 256 256 0 0 private
$SNAP 256 256 $VOL 0 snap
$SNAP_RO 256 256 $VOL 1 snap-ro
$MONDAY 256 $(ioc local "$MNT/snaps") $VOL 0 monday"
	if [ -n "$ROOTVOL" ]; then
		want+=$'\n'"$ROOTVOL 256 $(ioc local "$MNT/pub") 0 0 rootvol"
	fi
	t_run ioc list "$MNT"
	t_equal "$when: SUBVOL_NEXT lists every subvolume (id parent dirid source flags name)" \
		"$(cat "$OUT")" "$want"
}

test_list() {
	list_check "listing"
	t_equal "SUBVOL_INFO of one" "$(ioc info "$MNT" "$SNAP_RO")" "$SNAP_RO 256 256 $VOL 1 snap-ro"
	t_fails "SUBVOL_INFO of a missing id: ENOENT" 'ENOENT' ioc info "$MNT" 9999
	t_fails "SUBVOL_INFO of id 5 (not a subvolume): ENOENT" 'ENOENT' ioc info "$MNT" 5
}

# ---- durability, remount -------------------------------------------------------------------

test_durable() {
	t_umount "unmount" || return 1
	t_engine_check "after subvolume changes"
	t_mount "mount without a commit timer" -o commit=0,allow_other || return 1
	echo durable >"$MNT/vol/k"
	ioc_id KSNAP snapshot "$MNT" ksnap "$VOL"
	fuse_kill9
	t_engine_check "after kill -9 right after a snapshot"
	t_mount "remount" -o allow_other || return 1
	t_equal "the snapshot survived kill -9" "$(cat "$MNT/ksnap/k" 2>&1)" "durable"
	t_ok "delete it" ioc delete "$MNT" ksnap
	fuse_kill9
	t_mount "remount after kill -9 right after a delete" -o allow_other || return 1
	t_fails "the deletion survived kill -9" 'No such file' ls "$MNT/ksnap"
	t_equal "files persisted" "$(cat "$MNT/vol/a" "$MNT/snap/a" "$MNT/snap-ro/a")" \
		$'one\nsrc\none\nsnap\none'
	t_fails "the read-only snapshot is still read-only" 'Read-only file system' \
		touch "$MNT/snap-ro/a"
	list_check "after a remount"
	t_umount "unmount again"
	t_engine_check "after kill -9s and remounts"
}

# ---- -o subvol= ----------------------------------------------------------------------------

test_subvol_option() {
	t_mount "-o subvol=snaps/monday" -o subvol=snaps/monday || return 1
	t_equal "shows the snapshot's content" "$(cat "$MNT/a" "$MNT/dir/b")" $'one\ntwo'
	t_equal "its root has the snapshot's inode number" "$(ioc subvol-of "$MNT")" "$MONDAY"
	t_equal "the list marks it mounted" "$(ioc info "$MNT" "$MONDAY" | cut -d' ' -f5)" 4
	t_equal "the top level is no longer marked mounted" \
		"$(ioc info "$MNT" 256 | cut -d' ' -f5)" 2
	t_ok "it is writable" touch "$MNT/written-in-monday"
	t_umount "unmount it"
	t_mount "-o subvol=ID of the read-only snapshot" -o "subvol=$SNAP_RO" || return 1
	t_equal "shows its content" "$(cat "$MNT/a")" "one"
	t_fails "and refuses changes" 'Read-only file system' touch "$MNT/new"
	t_umount "unmount it"
	t_mount "-o subvol=/snaps//monday/ (slashes)" -o subvol=/snaps//monday/ || return 1
	t_equal "sees the earlier write" "$(ls "$MNT/written-in-monday")" "$MNT/written-in-monday"
	t_umount "unmount it"
	t_fails "-o subvol=a plain directory is refused" 'subvol=snaps: not a subvolume' \
		"$ARBORFS" "$IMG" "$MNT" -o subvol=snaps
	t_equal "with exit status 1" "$RC" 1
	t_fails "-o subvol=a file inside a subvolume is refused" 'not a subvolume' \
		"$ARBORFS" "$IMG" "$MNT" -o subvol=vol/a
	t_fails "-o subvol=a missing path is refused" "cannot find 'nope'" \
		"$ARBORFS" "$IMG" "$MNT" -o subvol=snaps/nope
	t_fails "-o subvol=.. is refused" "'\.\.' is not a name" \
		"$ARBORFS" "$IMG" "$MNT" -o subvol=..
	t_equal "no refusal left a mount" "$(mountpoint -q "$MNT" && echo mounted)" ""
	t_mount "-o ro" -o ro || return 1
	t_fails "a read-only mount refuses SUBVOL_CREATE: EROFS" 'EROFS' ioc create "$MNT" x
	t_fails "and SNAPSHOT" 'EROFS' ioc snapshot "$MNT" x "$VOL"
	t_fails "and SUBVOL_DELETE" 'EROFS' ioc delete "$MNT" vol
	t_fails "and SET_DEFAULT" 'EROFS' ioc set-default "$MNT" 256
	t_ok "but lists" ioc list "$MNT"
	t_umount "unmount the read-only mount"
	t_engine_check "at the end"
	t_nogrep "the daemon logged no errors or warnings" '^(error|warning):' "$DLOG"
}


# ---- the arbor tool online: diff, rollback, space -------------------------------------------

# as_user_arbor ARGS...: the arbor tool as uid 1234.
as_user_arbor() {
	setpriv --reuid 1234 --regid 1234 --clear-groups "$ARBOR" "$@"
}

# t_cli_diff DESCRIPTION A B OLD NEW: arbor diff A B (on the mount) prints
# exactly the brute-force comparison of host trees OLD and NEW.
t_cli_diff() {
	host_diff "$4" "$5" >"$T/want"
	t_arbor 0 "$1: arbor diff" diff "$2" "$3"
	cp -- "$OUT" "$T/got"
	t_rc 0 "$1: the lines are the brute-force comparison of the host copies" \
		diff -u "$T/want" "$T/got"
}

test_cli_setup() {
	local i
	rm -f "$IMG"
	t_rc 0 "mkfs.arbor a fresh image for the tool" "$MKFS" -q -s 256M "$IMG"
	t_mount "mount it" -o allow_other || return 1
	chmod o+x "$T"
	t_arbor 0 "arbor subvolume create (online)" subvolume create "$MNT/vol"
	host_tree "$T/h" 4 6
	t_ok "copy a host tree into it" cp -a "$T/h/." "$MNT/vol/"
	t_arbor 0 "arbor snapshot create -r" snapshot create -r "$MNT/vol" "$MNT/s1"
	cp -a "$T/h" "$T/h0"
	t_ok "random changes to the host tree" random_changes "$T/h" 60 "$T/log"
	t_ok "the same changes on the mount" replay_changes host "$MNT/vol" <"$T/log"
	mkdir "$T/h/many" "$MNT/vol/many"
	for ((i = 0; i < 3000; i++)); do
		echo "$i" >"$T/h/many/file-$i"
		echo "$i" >"$MNT/vol/many/file-$i"
	done
}

test_cli_diff() {
	t_cli_diff "3,000 and more changes" "$MNT/s1" "$MNT/vol" "$T/h0" "$T/h"
	t_rc 0 "more than one page of the listing" test "$(wc -c <"$T/got")" -gt 12000
	t_cli_diff "the other way round" "$MNT/vol" "$MNT/s1" "$T/h" "$T/h0"
	t_arbor 0 "diff -j" diff -j "$MNT/s1" "$MNT/vol"
	cp -- "$OUT" "$T/json"
	t_ok "is JSON" python3 -m json.tool "$T/json"
	t_equal "with the text's changes" "$(json_diff_lines <"$T/json")" "$(host_diff "$T/h0" "$T/h")"
	t_arbor 0 "diff --stats" diff --stats "$MNT/s1" "$MNT/vol"
	t_grep "counts the changes" "^$(wc -l <"$T/want") changes, [0-9]+ tree nodes read\$" "$ERR"
	echo more >>"$MNT/vol/stable/f"
	echo more >>"$T/h/stable/f"
	t_cli_diff "right after a change (not committed yet)" "$MNT/s1" "$MNT/vol" "$T/h0" "$T/h"
	t_fails "a path outside any arborfs" 'is not on a mounted arborfs; give -i IMAGE' \
		"$ARBOR" diff "$T" "$T"
	t_fails "two mounts" "is not on the arborfs mount of" "$ARBOR" diff "$MNT/s1" "$T"
	t_fails "a plain directory" "is not a subvolume" "$ARBOR" diff "$MNT/s1/d0" "$MNT/vol"
	if [ -z "$USER_PY" ]; then
		find_user_python
	fi
	if [ -z "$USER_PY" ]; then
		t_skip "no setpriv, or uid 1234 cannot run the tool"
		return 0
	fi
	t_fails "refused to a user who owns neither subvolume" \
		'only root or the owner of both subvolumes' as_user_arbor diff "$MNT/s1" "$MNT/vol"
	mkdir -m 1777 "$MNT/pub"
	t_ok "a user's subvolume" as_user_arbor subvolume create "$MNT/pub/mine"
	t_ok "the user's snapshot of it" as_user_arbor snapshot create "$MNT/pub/mine" "$MNT/pub/snap"
	setpriv --reuid 1234 --regid 1234 --clear-groups touch "$MNT/pub/mine/new"
	t_run as_user_arbor diff "$MNT/pub/snap" "$MNT/pub/mine"
	t_equal "the user diffs its own" "$RC:$(cat "$OUT")" "0:A /new"
	t_fails "but not with someone else's" 'only root or the owner' \
		as_user_arbor diff "$MNT/pub/snap" "$MNT/vol"
	t_fails "nor rolls back someone else's subvolume" 'only root or the owner' \
		as_user_arbor rollback "$MNT/pub/mine" "$MNT/s1"
	t_ok "rolls back its own" as_user_arbor rollback --no-keep "$MNT/pub/mine" "$MNT/pub/snap"
	t_fails "and the file is gone at once" 'No such file' stat "$MNT/pub/mine/new"
}

test_cli_rollback() {
	local kept
	ls "$MNT/vol/many" >/dev/null # the kernel knows the names
	t_arbor 0 "arbor rollback (online)" rollback "$MNT/vol" "$MNT/s1"
	kept=$(sed -n "s|^Keep its old content as '\\(.*\\)' (id [0-9]*)\$|\\1|p" "$OUT")
	t_rc 0 "keeps the old content next to it" test -d "$kept"
	t_fails "the kernel forgot the old names at once" 'No such file' ls "$MNT/vol/many"
	t_arbor 0 "diff after the rollback" diff "$MNT/s1" "$MNT/vol"
	t_equal "is empty" "$(cat "$OUT")" ""
	t_equal "a file has the snapshot's bytes" "$(cmp "$MNT/vol/top0" "$T/h0/top0" && echo same)" same
	t_cli_diff "the kept old content" "$MNT/s1" "$kept" "$T/h0" "$T/h"
	t_arbor 0 "rollback --keep NAME -j" rollback --keep named -j "$MNT/vol" "$kept"
	cp -- "$OUT" "$T/json"
	t_ok "is JSON" python3 -m json.tool "$T/json"
	t_equal "names the kept one" \
		"$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["kept"])' "$T/json")" named
	t_cli_diff "the rolled-back subvolume holds the kept content" "$MNT/s1" "$MNT/vol" "$T/h0" "$T/h"
	t_arbor 0 "rollback --no-keep" rollback --no-keep "$MNT/named" "$MNT/s1"
	t_grep "says the old content is deleted" '^Delete its old content \(id [0-9]+\)$'
	t_fails "a kept name that exists" 'the name for its old content is taken' \
		"$ARBOR" rollback --keep named "$MNT/vol" "$MNT/s1"
	t_fails "a missing snapshot" "'$MNT/nope' does not exist" \
		"$ARBOR" rollback "$MNT/vol" "$MNT/nope"
	t_fails "the mounted subvolume: EBUSY, saying what to do" \
		'it is the subvolume this mount shows at its root' "$ARBOR" rollback "$MNT" "$MNT/s1"
	t_fails "inside a read-only snapshot" 'is not a subvolume|read-only' \
		"$ARBOR" rollback "$MNT/s1/d0" "$MNT/vol"
}

# show_bytes FIELD PATH: a space field of arbor subvolume show -j.
show_bytes() {
	"$ARBOR" subvolume show -j "$2" |
		python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}

test_cli_usage() {
	local ex0 ex1
	t_arbor 0 "a subvolume for the space checks" subvolume create "$MNT/u"
	head -c 2097152 /dev/urandom >"$MNT/u/big"
	t_arbor 0 "arbor subvolume show (online)" subvolume show "$MNT/u"
	t_grep "shows referenced space" '^referenced +2\.[0-9]{2} MiB$'
	t_grep "and exclusive space" '^exclusive +2\.[0-9]{2} MiB$'
	t_arbor 0 "snapshot it" snapshot create "$MNT/u" "$MNT/us"
	ex0=$(show_bytes exclusive_bytes "$MNT/u")
	t_rc 0 "little is exclusive right after the snapshot ($ex0 bytes)" test "$ex0" -lt 65536
	head -c 2097152 /dev/urandom >"$MNT/u/big"
	ex1=$(show_bytes exclusive_bytes "$MNT/u")
	t_rc 0 "exclusive grows by the overwritten data ($ex0 -> $ex1)" \
		test "$ex1" -ge $((ex0 + 2097152))
	t_equal "referenced stays the size of what it holds" \
		"$(($(show_bytes referenced_bytes "$MNT/u") < 2 * 2097152))" 1
}

# tar sees each snapshot's copy of a file as a file of its own: st_ino
# differs between subvolumes, so nothing restores as a false hard link.
test_tar_snapshots() {
	local i
	t_arbor 0 "a subvolume for tar" subvolume create "$MNT/t"
	for i in 1 2 3; do
		echo "file $i" >"$MNT/t/f$i"
	done
	for i in 1 2 3; do
		t_arbor 0 "snapshot $i of it" snapshot create "$MNT/t" "$MNT/t-snap$i"
	done
	mkdir "$T/untar"
	t_ok "tar of the subvolume and its snapshots" \
		tar -C "$MNT" -cf "$T/snaps.tar" t t-snap1 t-snap2 t-snap3
	t_ok "extract it on the host" tar -C "$T/untar" -xf "$T/snaps.tar"
	t_equal "no false hard links" "$(find "$T/untar" -type f -links +1 | wc -l)" 0
	t_equal "every copy of every file (12) came back" \
		"$(cat "$T/untar"/t*/f* | sort | uniq -c | tr -s ' ' | tr '\n' ';')" \
		" 4 file 1; 4 file 2; 4 file 3;"
}

test_cli_end() {
	t_umount "unmount"
	t_mount "mount read-only" -o ro || return 1
	t_cli_diff "on a read-only mount" "$MNT/s1" "$MNT/vol" "$T/h0" "$T/h"
	t_fails "rollback on a read-only mount" 'the mount is read-only' \
		"$ARBOR" rollback "$MNT/vol" "$MNT/s1"
	t_umount "unmount the read-only mount"
	t_engine_check "after the tool's diffs and rollbacks"
	t_nogrep "the daemon logged no errors or warnings" '^(error|warning):' "$DLOG"
}

# ---- run -------------------------------------------------------------------------------------

if test_create; then
	test_snapshot
	test_names
	test_delete
	test_permissions
	test_list
	test_durable && test_subvol_option
fi
if test_cli_setup; then
	test_cli_diff
	test_cli_rollback
	test_cli_usage
	test_tar_snapshots
	test_cli_end
fi
t_diag_file "$T/ioc.err"
t_done
