#!/bin/bash
# tests/fuse/test_posix.sh - POSIX behaviour of arborfs through a real
# FUSE mount: permissions for an unprivileged user, ownership and setgid
# rules, setuid/setgid clearing, timestamps, files above 4 GiB, O_APPEND,
# O_DIRECT, random pread/pwrite against a host copy, rename (RENAME_NOREPLACE,
# RENAME_EXCHANGE), hard links, the errnos of every call that takes a name,
# a directory of 10^5 entries, and a clean "engine check" after unmount.
# Each call runs through tests/fuse/posix/posixop.c (built here with cc),
# which prints OK or the exact errno's name.  Prints TAP; skips everything
# without root, /dev/fuse, fusermount3, setpriv or cc.

for prog in setpriv cc; do
	if ! command -v "$prog" >/dev/null; then
		echo "1..0 # SKIP $prog is missing"
		exit 0
	fi
done

# shellcheck source=tests/fuse/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SRCDIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
GIB=1073741824
NOBODY=1234
GROUP=4321
BIGDIR_N=${BIGDIR_N:-100000}
POSIXOP=$T/posixop
AS_USER=(setpriv --reuid="$NOBODY" --regid="$NOBODY" --clear-groups)
M=$MNT

# the unprivileged user must reach the mount point and the helper
chmod 0755 "$T"

if ! cc -O2 -o "$POSIXOP" "$SRCDIR/posix/posixop.c" 2>"$ERR"; then
	echo "Bail out! cannot compile posix/posixop.c"
	t_diag_file "$ERR"
	exit 1
fi

# ---- helpers ----------------------------------------------------------------------

# _t_out DESCRIPTION EXPECTED: the first line of the last output is EXPECTED.
_t_out() {
	local got
	got=$(head -n 1 "$OUT")
	if [ "$got" = "$2" ]; then
		t_result 0 "$1"
		return 0
	fi
	t_result 1 "$1"
	echo "#   got '$got', expected '$2'"
	t_diag_file "$OUT"
	t_diag_file "$ERR"
	return 1
}

# t_op DESCRIPTION EXPECTED OP ARGS...: posixop as root prints EXPECTED
# (OK, or an errno's name).
t_op() {
	local desc=$1 want=$2
	shift 2
	t_run "$POSIXOP" "$@"
	_t_out "$desc" "$want"
}

# t_uop DESCRIPTION EXPECTED OP ARGS...: the same as uid/gid 1234.
t_uop() {
	local desc=$1 want=$2
	shift 2
	t_run "${AS_USER[@]}" "$POSIXOP" "$@"
	_t_out "$desc" "$want"
}

# st PATH FIELD: one field of lstat (mode uid gid nlink ino size atime
# mtime ctime; mode in octal, times in nanoseconds), or the errno's name.
st() {
	local i=0 f
	for f in mode uid gid nlink ino size atime mtime ctime; do
		i=$((i + 1))
		[ "$f" = "$2" ] && break
	done
	"$POSIXOP" stat "$1" | awk -v n=$((i + 1)) '$1 == "OK" { print $n; next } { print }'
}

# t_gt DESCRIPTION A B: A > B (numbers).
t_gt() {
	if [ -n "$2" ] && [ -n "$3" ] && [ "$2" -gt "$3" ] 2>/dev/null; then
		t_result 0 "$1"
		return 0
	fi
	t_result 1 "$1"
	echo "#   got '$2', expected more than '$3'"
	return 1
}

# the kernel's clock for file times is coarse: let it tick
tick() {
	sleep 0.05
}

# ---- permissions ------------------------------------------------------------------

test_permissions() {
	mkdir -m 0755 "$M/perm"
	echo root >"$M/perm/rootfile"
	chmod 0644 "$M/perm/rootfile"
	t_uop "user: read a 0644 root file" "OK root" read "$M/perm/rootfile" 0 4
	t_uop "user: write a 0644 root file: EACCES" EACCES write "$M/perm/rootfile" w 0 x
	t_uop "user: O_TRUNC a 0644 root file: EACCES" EACCES open "$M/perm/rootfile" rt
	t_uop "user: truncate a 0644 root file: EACCES" EACCES truncate "$M/perm/rootfile" 0
	t_equal "the root file is unchanged" "$(cat "$M/perm/rootfile")" root
	t_uop "user: create in a 0755 root dir: EACCES" EACCES open "$M/perm/new" wc
	t_uop "user: mkdir in a 0755 root dir: EACCES" EACCES mkdir "$M/perm/newd" 755
	t_uop "user: symlink in a 0755 root dir: EACCES" EACCES symlink x "$M/perm/sl"
	t_uop "user: unlink in a 0755 root dir: EACCES" EACCES unlink "$M/perm/rootfile"
	t_uop "user: rename in a 0755 root dir: EACCES" EACCES \
		rename "$M/perm/rootfile" "$M/perm/moved"
	t_uop "user: chmod a root file: EPERM" EPERM chmod "$M/perm/rootfile" 777
	t_uop "user: chown a root file: EPERM" EPERM chown "$M/perm/rootfile" "$NOBODY" "$NOBODY"
	t_uop "user: explicit times on a root file: EPERM" EPERM \
		utimens "$M/perm/rootfile" 5 0 5 0
	t_uop "user: UTIME_NOW without write permission: EACCES" EACCES \
		utimens "$M/perm/rootfile" 0 now 0 now
	echo open >"$M/perm/shared"
	chmod 0666 "$M/perm/shared"
	t_uop "user: write a 0666 root file" OK write "$M/perm/shared" w 0 OPEN
	t_uop "user: UTIME_NOW with write permission" OK utimens "$M/perm/shared" 0 now 0 now
	t_uop "user: explicit times with write permission: EPERM" EPERM \
		utimens "$M/perm/shared" 5 0 5 0

	mkdir -m 1777 "$M/tmp"
	t_uop "user: create in a 1777 dir" OK open "$M/tmp/mine" wc 0644
	t_equal "the new file belongs to the user" \
		"$(st "$M/tmp/mine" uid):$(st "$M/tmp/mine" gid)" "$NOBODY:$NOBODY"
	t_uop "user: mkdir in a 1777 dir" OK mkdir "$M/tmp/mydir" 755
	t_uop "user: chmod its own file" OK chmod "$M/tmp/mine" 600
	t_equal "the mode changed" "$(st "$M/tmp/mine" mode)" 100600
	t_uop "user: chown its own file to another user: EPERM" EPERM \
		chown "$M/tmp/mine" 0 -1
	t_uop "user: chgrp its own file to a foreign group: EPERM" EPERM \
		chown "$M/tmp/mine" -1 "$GROUP"
	t_uop "user: chown its own file to itself" OK chown "$M/tmp/mine" "$NOBODY" "$NOBODY"
	t_uop "user: write its own file" OK write "$M/tmp/mine" w 0 0123456789
	t_uop "user: ftruncate an open file after fchmod 0444" OK ftruncate "$M/tmp/mine" 3
	t_equal "the size is 3, the mode 0444" "$(st "$M/tmp/mine" size):$(st "$M/tmp/mine" mode)" \
		3:100444
	echo root >"$M/tmp/rootf"
	chmod 0666 "$M/tmp/rootf"
	t_uop "sticky: user cannot unlink root's file: EPERM" EPERM unlink "$M/tmp/rootf"
	t_uop "sticky: nor rename it away: EPERM" EPERM rename "$M/tmp/rootf" "$M/tmp/gone"
	t_uop "sticky: nor replace it by rename: EPERM" EPERM rename "$M/tmp/mine" "$M/tmp/rootf"
	t_equal "root's file is still there" "$(cat "$M/tmp/rootf")" root
	t_uop "sticky: user can unlink its own file" OK unlink "$M/tmp/mine"
	t_op "sticky: root can unlink the user's directory" OK rmdir "$M/tmp/mydir"

	mkdir -m 0700 "$M/nox"
	echo secret >"$M/nox/f"
	chmod 0644 "$M/nox/f"
	t_uop "traverse: stat below a 0700 dir: EACCES" EACCES stat "$M/nox/f"
	t_uop "traverse: open below a 0700 dir: EACCES" EACCES open "$M/nox/f" r
	chmod 0744 "$M/nox"
	t_uop "traverse: r without x is not enough: EACCES" EACCES read "$M/nox/f" 0 6
	chmod 0711 "$M/nox"
	t_uop "traverse: x without r is enough to reach a known name" "OK secret" \
		read "$M/nox/f" 0 6
	t_uop "traverse: but not to list it: EACCES" EACCES open "$M/nox" rd
}

# ---- ownership, setgid, setuid clearing ------------------------------------------

test_ownership() {
	local mode
	mkdir "$M/sg"
	chown 0:"$GROUP" "$M/sg"
	chmod 2777 "$M/sg"
	t_equal "chmod 2777 keeps the setgid bit of a directory" "$(st "$M/sg" mode)" 42777
	t_uop "user: create in a setgid dir" OK open "$M/sg/f" wc 0644
	t_equal "the file gets the directory's group" \
		"$(st "$M/sg/f" uid):$(st "$M/sg/f" gid)" "$NOBODY:$GROUP"
	t_uop "user: mkdir in a setgid dir" OK mkdir "$M/sg/sub" 0755
	t_equal "the subdir gets the group and inherits setgid" \
		"$(st "$M/sg/sub" mode):$(st "$M/sg/sub" gid)" "42755:$GROUP"
	t_uop "user: mkdir below the subdir" OK mkdir "$M/sg/sub/deeper" 0700
	t_equal "setgid inherited again" \
		"$(st "$M/sg/sub/deeper" mode):$(st "$M/sg/sub/deeper" gid)" "42700:$GROUP"
	t_uop "user: create a 2755 file in a group it is not in" OK open "$M/sg/g" wc 2755
	t_equal "its setgid bit is dropped" "$(st "$M/sg/g" mode)" 100755
	t_uop "user: symlink in a setgid dir" OK symlink target "$M/sg/sym"
	t_equal "the symlink gets the group too" "$(st "$M/sg/sym" gid)" "$GROUP"
	drop_caches
	t_equal "after the cache is dropped" \
		"$(st "$M/sg/f" gid):$(st "$M/sg/sub" mode)" "$GROUP:42755"

	echo x >"$M/suid"
	chmod 6755 "$M/suid"
	t_op "root: chown a 6755 file" OK chown "$M/suid" 1235 1235
	t_equal "chown clears setuid and setgid" "$(st "$M/suid" mode)" 100755
	chmod 2644 "$M/suid"
	t_op "root: chown a 2644 file (setgid without group x)" OK chown "$M/suid" 1236 -1
	t_equal "keeps that setgid bit (it is not a setgid program)" "$(st "$M/suid" mode)" 102644
	mkdir -m 6755 "$M/suiddir"
	t_op "root: chown a 6755 directory" OK chown "$M/suiddir" 1235 1235
	mode=$(st "$M/suiddir" mode)
	t_equal "a directory keeps its setgid bit" "$(((8#$mode & 8#2000) != 0))" 1

	echo x >"$M/kp"
	chmod 6777 "$M/kp"
	t_uop "user: write a 6777 root file" OK write "$M/kp" w 0 y
	t_equal "a write by a non-owner clears setuid and setgid" "$(st "$M/kp" mode)" 100777
	drop_caches
	t_equal "also in the daemon (cache dropped)" "$(st "$M/kp" mode)" 100777
	chmod 4777 "$M/kp"
	t_uop "user: truncate a 4777 root file" OK truncate "$M/kp" 0
	t_equal "a truncate by a non-owner clears setuid" "$(st "$M/kp" mode)" 100777
	chmod 4777 "$M/kp"
	t_op "root: write a 4777 root file" OK write "$M/kp" w 0 z
	t_equal "root's write (CAP_FSETID) keeps setuid" "$(st "$M/kp" mode)" 104777
}

# ---- timestamps -------------------------------------------------------------------

test_times() {
	local f=$M/times/f pm pc m c a
	mkdir "$M/times" "$M/times/d2"
	pm=$(st "$M/times" mtime)
	pc=$(st "$M/times" ctime)
	tick
	t_op "create" OK open "$f" wc
	t_gt "create: the parent's mtime moves" "$(st "$M/times" mtime)" "$pm"
	t_gt "create: the parent's ctime moves" "$(st "$M/times" ctime)" "$pc"

	m=$(st "$f" mtime) c=$(st "$f" ctime) a=$(st "$f" atime)
	tick
	t_op "write" OK write "$f" w -1 data
	t_gt "write: mtime moves" "$(st "$f" mtime)" "$m"
	t_gt "write: ctime moves" "$(st "$f" ctime)" "$c"
	t_equal "write: atime stays" "$(st "$f" atime)" "$a"
	m=$(st "$f" mtime)
	drop_caches
	t_equal "write: the mtime persists (cache dropped)" "$(st "$f" mtime)" "$m"

	m=$(st "$f" mtime) c=$(st "$f" ctime)
	tick
	t_op "chmod" OK chmod "$f" 600
	t_gt "chmod: ctime moves" "$(st "$f" ctime)" "$c"
	t_equal "chmod: mtime stays" "$(st "$f" mtime)" "$m"

	c=$(st "$f" ctime)
	tick
	t_op "truncate" OK truncate "$f" 2
	t_gt "truncate: mtime moves" "$(st "$f" mtime)" "$m"
	t_gt "truncate: ctime moves" "$(st "$f" ctime)" "$c"

	c=$(st "$f" ctime)
	tick
	t_op "utimensat with explicit times" OK utimens "$f" 1000000000 5 1234567890 123456789
	t_equal "atime is set to the nanosecond" "$(st "$f" atime)" 1000000000000000005
	t_equal "mtime is set to the nanosecond" "$(st "$f" mtime)" 1234567890123456789
	t_gt "and ctime moves" "$(st "$f" ctime)" "$c"
	drop_caches
	t_equal "explicit times persist (cache dropped)" \
		"$(st "$f" atime) $(st "$f" mtime)" "1000000000000000005 1234567890123456789"
	t_op "utimensat(UTIME_NOW, UTIME_OMIT)" OK utimens "$f" 0 now 0 omit
	t_equal "UTIME_OMIT keeps mtime" "$(st "$f" mtime)" 1234567890123456789
	t_equal "UTIME_NOW sets atime to now" \
		"$(($(date +%s) - $(st "$f" atime) / 1000000000 < 5))" 1
	t_op "utimensat(UTIME_NOW, UTIME_NOW)" OK utimens "$f" 0 now 0 now
	t_equal "UTIME_NOW sets mtime to now" \
		"$(($(date +%s) - $(st "$f" mtime) / 1000000000 < 5))" 1

	pm=$(st "$M/times" mtime)
	local qm qc
	qm=$(st "$M/times/d2" mtime)
	qc=$(st "$M/times/d2" ctime)
	tick
	t_op "rename across directories" OK rename "$f" "$M/times/d2/f"
	t_gt "rename: the source parent's mtime moves" "$(st "$M/times" mtime)" "$pm"
	t_gt "rename: the target parent's mtime moves" "$(st "$M/times/d2" mtime)" "$qm"
	t_gt "rename: the target parent's ctime moves" "$(st "$M/times/d2" ctime)" "$qc"

	qm=$(st "$M/times/d2" mtime)
	tick
	t_op "unlink" OK unlink "$M/times/d2/f"
	t_gt "unlink: the parent's mtime moves" "$(st "$M/times/d2" mtime)" "$qm"
	pm=$(st "$M/times" mtime)
	tick
	t_op "rmdir" OK rmdir "$M/times/d2"
	t_gt "rmdir: the parent's mtime moves" "$(st "$M/times" mtime)" "$pm"
}

# ---- data -------------------------------------------------------------------------

test_data() {
	local big=$M/big off
	t_op "pwrite at 5 GiB + 12345 into an empty file" OK \
		write "$big" wc $((5 * GIB + 12345)) above4g
	t_op "pwrite across the 4 GiB boundary" OK write "$big" w $((4 * GIB - 3)) ACROSS
	t_op "pwrite just below 4 GiB wraps nowhere" OK write "$big" w $((GIB - 2)) low
	t_equal "the size is 5 GiB + 12352" "$(st "$big" size)" $((5 * GIB + 12352))
	drop_caches
	t_op "read back at 5 GiB + 12345" "OK above4g" read "$big" $((5 * GIB + 12345)) 7
	t_op "read back across 4 GiB" "OK ACROSS" read "$big" $((4 * GIB - 3)) 6
	t_op "read back at 1 GiB - 2 (no 32-bit aliasing)" "OK low" read "$big" $((GIB - 2)) 3
	t_equal "a hole at 4 GiB + 1 MiB reads as zeros" \
		"$(dd if="$big" bs=4096 skip=$(((4 * GIB + 1048576) / 4096)) count=1 status=none |
			tr -d '\0' | wc -c)" 0
	t_equal "the file stays sparse" "$(($(st "$big" size) > 0 && $(du -k "$big" | cut -f1) < 4096))" 1
	rm -f "$big"

	t_op "O_APPEND write" OK write "$M/app" wca -1 one
	t_op "O_APPEND write again" OK write "$M/app" wa -1 two
	t_op "O_APPEND pwrite at offset 0 still appends" OK write "$M/app" wa 0 six
	t_equal "the writes are appended" "$(cat "$M/app")" onetwosix
	drop_caches
	t_equal "also with the cache dropped" "$(cat "$M/app")" onetwosix

	head -c 1048576 /dev/urandom >"$T/rand1m"
	t_ok "O_DIRECT write of 1 MiB" dd if="$T/rand1m" of="$M/direct" bs=64k oflag=direct status=none
	drop_caches
	t_ok "O_DIRECT read back" dd if="$M/direct" of="$T/direct.back" bs=64k iflag=direct status=none
	t_ok "the O_DIRECT round trip is exact" cmp "$T/rand1m" "$T/direct.back"
	cp "$T/rand1m" "$T/direct.host"
	off=$((3 * 4096))
	t_op "an aligned O_DIRECT pwrite" OK write "$M/direct" wD "$off" ABCDEFG
	python3 -c '
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(int(sys.argv[2]))
    f.write((b"ABCDEFG" * 600)[:4096])' "$T/direct.host" "$off"
	t_run dd if="$T/rand1m" of="$M/direct" bs=1000 seek=7 count=5 skip=3 conv=notrunc \
		oflag=direct status=none
	dd if="$T/rand1m" of="$T/direct.host" bs=1000 seek=7 count=5 skip=3 conv=notrunc status=none
	t_equal "an unaligned O_DIRECT write (bs=1000)" "$RC" 0
	drop_caches
	t_ok "both O_DIRECT overwrites read back (cache dropped)" cmp "$T/direct.host" "$M/direct"
	rm -f "$M/direct" "$T/direct.back" "$T/direct.host"

	t_run python3 "$SRCDIR/posix/randio.py" "$M/random" "$T/random.host" "$ARBOR_TEST_SEED"
	t_equal "600 random pread/pwrite/ftruncate agree with a host copy" "$RC" 0 ||
		t_diag_file "$ERR"
	t_equal "the sizes agree" "$(st "$M/random" size)" "$(stat -c %s "$T/random.host")"
	drop_caches
	t_ok "the contents agree (cache dropped)" cmp "$M/random" "$T/random.host"
	rm -f "$M/random" "$T/random.host"
}

# ---- rename and links --------------------------------------------------------------

test_rename() {
	local r=$M/ren ino
	mkdir "$r" "$r/a" "$r/b"
	echo src >"$r/f1"
	echo dst >"$r/f2"
	ino=$(st "$r/f1" ino)
	t_op "rename over an existing file" OK rename "$r/f1" "$r/f2"
	t_equal "the target is the moved inode" "$(st "$r/f2" ino):$(cat "$r/f2")" "$ino:src"
	t_equal "the old name is gone" "$(st "$r/f1" ino)" ENOENT
	mkdir "$r/d1" "$r/d2" "$r/full"
	touch "$r/d1/inside" "$r/full/x"
	t_op "rename a directory over an empty one" OK rename "$r/d1" "$r/d2"
	t_equal "its content moved" "$(ls "$r/d2")" inside
	t_op "rename a directory over a non-empty one: ENOTEMPTY" ENOTEMPTY rename "$r/d2" "$r/full"
	t_op "rename a file over a directory: EISDIR" EISDIR rename "$r/f2" "$r/d2"
	t_op "rename a directory over a file: ENOTDIR" ENOTDIR rename "$r/d2" "$r/f2"
	t_op "rename a directory into itself: EINVAL" EINVAL rename "$r/d2" "$r/d2/sub"
	t_op "rename a missing name: ENOENT" ENOENT rename "$r/nope" "$r/nope2"
	t_op "rename into a missing directory: ENOENT" ENOENT rename "$r/f2" "$r/nodir/f"
	t_op "rename below a file: ENOTDIR" ENOTDIR rename "$r/f2" "$r/f2/x"

	echo keep >"$r/n1"
	echo other >"$r/n2"
	t_op "RENAME_NOREPLACE over an existing name: EEXIST" EEXIST \
		renameat2 "$r/n2" "$r/n1" noreplace
	t_equal "both names are intact" "$(cat "$r/n1") $(cat "$r/n2")" "keep other"
	t_op "RENAME_NOREPLACE to a new name" OK renameat2 "$r/n2" "$r/n3" noreplace
	t_equal "moved" "$(cat "$r/n3"):$(st "$r/n2" ino)" other:ENOENT
	t_op "RENAME_EXCHANGE of two files" OK renameat2 "$r/n1" "$r/n3" exchange
	t_equal "their contents swapped" "$(cat "$r/n1") $(cat "$r/n3")" "other keep"
	t_op "RENAME_EXCHANGE of a file and a directory across directories" OK \
		renameat2 "$r/n1" "$r/a/../d2" exchange
	t_equal "the types swapped" "$(stat -c %F "$r/n1"):$(stat -c %F "$r/d2")" \
		"directory:regular file"
	t_equal "the directory's content came along" "$(ls "$r/n1")" inside
	t_equal "its .. is still right" "$(st "$r/n1/.." ino)" "$(st "$r" ino)"
	t_op "RENAME_EXCHANGE with a missing name: ENOENT" ENOENT \
		renameat2 "$r/n3" "$r/nope" exchange

	local an bn
	an=$(st "$r/a" nlink)
	bn=$(st "$r/b" nlink)
	mkdir "$r/a/sub"
	touch "$r/a/sub/file"
	t_op "rename a directory across directories" OK rename "$r/a/sub" "$r/b/sub"
	t_equal "the old parent's link count is back" "$(st "$r/a" nlink)" "$an"
	t_equal "the new parent counts the new .." "$(st "$r/b" nlink)" $((bn + 1))
	t_equal "its .. names the new parent" "$(st "$r/b/sub/.." ino)" "$(st "$r/b" ino)"
	drop_caches
	t_equal "after the cache is dropped too" \
		"$(st "$r/b/sub/.." ino):$(ls "$r/b/sub")" "$(st "$r/b" ino):file"
	t_op "rename a file across directories" OK rename "$r/f2" "$r/a/f2"
	t_equal "it is there" "$(cat "$r/a/f2")" src
}

test_links() {
	local l=$M/links ino
	mkdir "$l" "$l/x" "$l/y"
	echo linked >"$l/x/f"
	ino=$(st "$l/x/f" ino)
	t_op "link across directories" OK link "$l/x/f" "$l/y/g"
	t_op "and a third name" OK link "$l/y/g" "$l/h"
	t_equal "all three names share one inode" \
		"$(st "$l/y/g" ino) $(st "$l/h" ino)" "$ino $ino"
	t_equal "nlink is 3" "$(st "$l/x/f" nlink)" 3
	echo more >>"$l/h"
	drop_caches
	t_equal "a write through one name reads through another" "$(cat "$l/x/f")" $'linked\nmore'
	t_op "unlink one name" OK unlink "$l/x/f"
	t_equal "nlink is 2" "$(st "$l/h" nlink)" 2
	echo new >"$l/other"
	t_op "rename another file over a linked name" OK rename "$l/other" "$l/y/g"
	t_equal "nlink is 1" "$(st "$l/h" nlink)" 1
	t_op "a second name for the same inode" OK link "$l/h" "$l/h2"
	t_op "rename one link over the other" OK rename "$l/h" "$l/h2"
	t_equal "both names remain (POSIX)" "$(st "$l/h" nlink):$(st "$l/h2" nlink)" 2:2
	t_op "link to an existing name: EEXIST" EEXIST link "$l/h" "$l/y/g"
	t_op "link of a missing file: ENOENT" ENOENT link "$l/nope" "$l/n"
	t_op "link of a directory: EPERM" EPERM link "$l/x" "$l/xx"
	t_op "link into a missing directory: ENOENT" ENOENT link "$l/h" "$l/nodir/n"
}

# ---- names and errnos --------------------------------------------------------------

test_names() {
	local n=$M/names l255 l256
	mkdir "$n"
	l255=$(printf 'n%.0s' $(seq 255))
	l256=${l255}x
	echo f >"$n/f"
	mkdir "$n/d"
	t_op "create a 255-byte name" OK open "$n/$l255" wc
	t_op "create a 256-byte name: ENAMETOOLONG" ENAMETOOLONG open "$n/$l256" wc
	t_op "lookup of a 256-byte name: ENAMETOOLONG" ENAMETOOLONG stat "$n/$l256"
	t_op "mkdir a 256-byte name: ENAMETOOLONG" ENAMETOOLONG mkdir "$n/$l256" 755
	t_op "symlink to a 256-byte name: ENAMETOOLONG" ENAMETOOLONG symlink f "$n/$l256"
	t_op "link to a 256-byte name: ENAMETOOLONG" ENAMETOOLONG link "$n/f" "$n/$l256"
	t_op "rename to a 256-byte name: ENAMETOOLONG" ENAMETOOLONG rename "$n/f" "$n/$l256"
	t_op "rename from a 256-byte name: ENAMETOOLONG" ENAMETOOLONG rename "$n/$l256" "$n/g"
	t_op "unlink a 256-byte name: ENAMETOOLONG" ENAMETOOLONG unlink "$n/$l256"
	t_op "a 256-byte directory component: ENAMETOOLONG" ENAMETOOLONG stat "$n/$l256/f"
	t_equal "no 256-byte name exists" "$(find "$n" -name "$l256*" | wc -l)" 0
	t_op "a symlink to a 256-byte target name is fine" OK symlink "$l256" "$n/lt"
	t_op "following it: ENAMETOOLONG" ENAMETOOLONG open "$n/lt" r

	t_op "O_CREAT|O_EXCL on an existing file: EEXIST" EEXIST open "$n/f" wcx
	t_op "mkdir over a file: EEXIST" EEXIST mkdir "$n/f" 755
	t_op "mkdir over a directory: EEXIST" EEXIST mkdir "$n/d" 755
	t_op "symlink over a file: EEXIST" EEXIST symlink x "$n/f"
	t_op "open a missing file: ENOENT" ENOENT open "$n/missing" r
	t_op "create in a missing directory: ENOENT" ENOENT open "$n/missing/f" wc
	t_op "mkdir in a missing directory: ENOENT" ENOENT mkdir "$n/missing/d" 755
	t_op "unlink a missing file: ENOENT" ENOENT unlink "$n/missing"
	t_op "rmdir a missing directory: ENOENT" ENOENT rmdir "$n/missing"
	t_op "a dangling symlink: ENOENT" OK symlink missing "$n/dangling"
	t_op "opening it: ENOENT" ENOENT open "$n/dangling" r
	t_op "a file as a directory: ENOTDIR" ENOTDIR open "$n/f/x" r
	t_op "create below a file: ENOTDIR" ENOTDIR open "$n/f/x" wc
	t_op "mkdir below a file: ENOTDIR" ENOTDIR mkdir "$n/f/x" 755
	t_op "rmdir of a file: ENOTDIR" ENOTDIR rmdir "$n/f"
	t_op "O_DIRECTORY on a file: ENOTDIR" ENOTDIR open "$n/f" rd
	t_op "open a directory for writing: EISDIR" EISDIR open "$n/d" w
	t_op "unlink a directory: EISDIR" EISDIR unlink "$n/d"
	touch "$n/d/x"
	t_op "rmdir a non-empty directory: ENOTEMPTY" ENOTEMPTY rmdir "$n/d"
	t_op "rmdir of .: EINVAL" EINVAL rmdir "$n/d/."
}

# ---- a big directory ---------------------------------------------------------------

# ls is the point here: it lists through getdents.
# shellcheck disable=SC2012
test_bigdir() {
	local d=$M/bigdir t0 t1 t2 t3
	mkdir "$d"
	t0=$(date +%s%N)
	t_op "create $BIGDIR_N files in one directory" OK mkmany "$d" "$BIGDIR_N"
	t1=$(date +%s%N)
	t_equal "ls lists $BIGDIR_N entries" "$(ls "$d" | wc -l)" "$BIGDIR_N"
	drop_caches
	t_equal "each name exactly once (cache dropped)" "$(ls -f "$d" | sort -u | wc -l)" \
		$((BIGDIR_N + 2))
	t_op "a name in the middle is found" OK open "$d/f$((BIGDIR_N / 2))" r
	t2=$(date +%s%N)
	t_ok "rm -r of the directory" rm -r "$d"
	t3=$(date +%s%N)
	t_equal "it is gone" "$(st "$d" ino)" ENOENT
	echo "# $BIGDIR_N entries: create $(((t1 - t0) / 1000000)) ms," \
		"list $(((t2 - t1) / 1000000)) ms, rm -r $(((t3 - t2) / 1000000)) ms"
}

# ---- persistence -----------------------------------------------------------------

test_remount() {
	t_mount "remount" -o allow_other || return 1
	t_equal "setgid directories persisted" \
		"$(st "$M/sg/sub" mode):$(st "$M/sg/sub" gid):$(st "$M/sg/f" gid)" "42755:$GROUP:$GROUP"
	t_equal "the user's files persisted" "$(st "$M/sg/f" uid)" "$NOBODY"
	t_equal "cleared setuid persisted" "$(st "$M/suid" mode)" 102644
	t_equal "the moved directory persisted" "$(ls "$M/ren/b/sub")" file
	t_equal "its .. persisted" "$(st "$M/ren/b/sub/.." ino)" "$(st "$M/ren/b" ino)"
	t_equal "link counts persisted" "$(st "$M/links/h" nlink):$(st "$M/ren/b" nlink)" 2:3
	t_equal "a rename across directories persisted" "$(cat "$M/ren/a/f2")" src
	t_equal "appends persisted" "$(cat "$M/app")" onetwosix
	t_equal "the sticky directory persisted" "$(st "$M/tmp" mode)" 41777
	t_uop "user: the sticky bit still protects root's file" EPERM unlink "$M/tmp/rootf"
	t_umount "unmount again"
	t_engine_check "after the remount"
}

# ---- run ---------------------------------------------------------------------------

"$MKFS" -q -s 1G "$IMG" >"$OUT" 2>"$ERR" || {
	echo "Bail out! mkfs.arbor failed"
	t_diag_file "$ERR"
	exit 1
}
if t_mount "mount with allow_other" -o allow_other; then
	chmod 0755 "$M"
	test_permissions
	test_ownership
	test_times
	test_data
	test_rename
	test_links
	test_names
	test_bigdir
	t_umount "unmount: the daemon exits 0"
	t_engine_check "after the POSIX suite"
	test_remount
fi
t_done
