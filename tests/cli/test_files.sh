#!/bin/bash
# tests/cli/test_files.sh - the file commands of the arbor tool (ls, stat,
# cat, get, put, mkdir, rm, rmdir, ln, readlink, mv, truncate, mknod,
# xattr) end to end on an image made by mkfs.arbor: round trips of random
# files, the namespace, attributes, errors, and a clean check at the end.
# Every command is its own invocation, so each reads what the one before it
# committed.  Prints TAP.

# shellcheck source=tests/cli/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MKFS=$top_builddir/mkfs/mkfs.arbor
if [ ! -x "$MKFS" ]; then
	echo "Bail out! $MKFS is not built"
	exit 1
fi

img=$T/files.img
MIB=1048576
SIZES="0 1 4095 4096 4097 $((MIB + 3)) $((20 * MIB))"
# ls -l: mode, links, uid, gid, size, "YYYY-MM-DD HH:MM", then the name.
LONG='[0-9]+ +[0-9]+ +[0-9]+ +[0-9]+ [0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}'
umask 022

# t_a EXPECTED DESCRIPTION ARGS...: arbor on the test image.
t_a() {
	local want=$1 desc=$2
	shift 2
	t_arbor "$want" "$desc" -i "$img" "$@"
}

# t_same DESCRIPTION FILE COPY: the two files are equal (FILE may be $OUT).
t_same() {
	cp -- "$2" "$T/got"
	t_rc 0 "$1" cmp "$T/got" "$3"
}

# t_skip REASON: a visible skipped check.
t_skip() {
	t_count=$((t_count + 1))
	echo "ok $t_count # SKIP $1"
}

# host_file NAME SIZE: a file of SIZE random bytes in the scratch directory.
host_file() {
	head -c "$2" /dev/urandom >"$T/$1"
}

# stat_field FIELD PATH: the value of one line of "arbor stat".
stat_field() {
	"$ARBOR" -i "$img" stat "$2" | awk -v f="$1" '$1 == f { $1 = ""; sub(/^ +/, ""); print; exit }'
}

# ---- setup ------------------------------------------------------------------

test_mkfs() {
	t_rc 0 "mkfs.arbor makes a 64 MiB image" "$MKFS" -q -s 64M "$img"
	t_a 0 "ls of the empty root" ls
	t_equal "the root is empty" "$(cat "$OUT")" ""
	t_a 0 "ls -a of the root" ls -a /
	t_equal "ls -a lists . and .." "$(cat "$OUT")" "$(printf '.\n..')"
	t_a 0 "stat of the root" stat /
	t_grep "the root is a directory" '^type +directory$'
}

# ---- data ---------------------------------------------------------------------

test_round_trips() {
	local size
	t_a 0 "mkdir /rt" mkdir /rt
	for size in $SIZES; do
		host_file "in.$size" "$size"
		t_a 0 "put a file of $size bytes" put "$T/in.$size" "/rt/f$size"
		t_a 0 "get it back" get "/rt/f$size" "$T/out.$size"
		t_same "the $size bytes come back unchanged" "$T/in.$size" "$T/out.$size"
		t_equal "stat shows the size" "$(stat_field size "/rt/f$size")" "$size"
	done
	t_a 0 "cat a file" cat "/rt/f$((MIB + 3))"
	t_same "cat writes the content" "$OUT" "$T/in.$((MIB + 3))"
	t_a 0 "get to standard output" get /rt/f4097 -
	t_same "get - writes the content" "$OUT" "$T/in.4097"
	t_a 0 "put from standard input" put - /rt/stdin <"$T/in.$((MIB + 3))"
	t_a 0 "cat what came from standard input" cat /rt/stdin
	t_same "standard input was stored" "$OUT" "$T/in.$((MIB + 3))"
	t_a 0 "put overwrites a file" put "$T/in.4095" /rt/f1
	t_a 0 "cat the overwritten file" cat /rt/f1
	t_same "it holds the new content only" "$OUT" "$T/in.4095"
	t_a 0 "put into a directory uses the host name" put "$T/in.1" /rt
	t_a 0 "cat the file put into /rt" cat /rt/in.1
	t_same "under the host file's name" "$OUT" "$T/in.1"
	t_a 0 "paths with . and .." cat /rt/../rt/./f4096
	t_same "resolve by name" "$OUT" "$T/in.4096"
}

test_put_modes() {
	host_file mode.txt 100
	chmod 0640 "$T/mode.txt"
	t_a 0 "put a 0640 file" put "$T/mode.txt" /rt/mode
	t_equal "the new file gets the host mode" "$(stat_field mode /rt/mode)" "0640 (-rw-r-----)"
	t_equal "and belongs to the caller" "$(stat_field uid /rt/mode)" "$(id -u)"
	t_a 0 "get it" get /rt/mode "$T/mode.out"
	t_equal "get creates the host file with its mode" "$(stat -c %a "$T/mode.out")" 640
	touch -m -d '2001-02-03 04:05:06.123456789' "$T/mode.txt"
	chmod 0604 "$T/mode.txt"
	t_a 0 "put over it without -p" put "$T/mode.txt" /rt/mode
	t_equal "an overwritten file keeps its mode" "$(stat_field mode /rt/mode)" "0640 (-rw-r-----)"
	t_nogrep "and gets a new mtime" '2001-02-03' <(stat_field mtime /rt/mode)
	# reading the host file may change its atime: set it just before
	touch -a -d '2002-03-04 05:06:07.987654321' "$T/mode.txt"
	t_a 0 "put -p" put -p "$T/mode.txt" /rt/mode
	t_equal "-p keeps the mode" "$(stat_field mode /rt/mode)" "0604 (-rw----r--)"
	t_equal "-p keeps the mtime" "$(stat_field mtime /rt/mode)" "2001-02-03 04:05:06.123456789 +0000"
	t_equal "-p keeps the atime" "$(stat_field atime /rt/mode)" "2002-03-04 05:06:07.987654321 +0000"
	if [ "$(id -u)" -ne 0 ]; then
		t_skip "-p keeps uid and gid (needs root to chown)"
		return 0
	fi
	chown 1234:5678 "$T/mode.txt"
	t_a 0 "put -p of a file owned by 1234:5678" put -p "$T/mode.txt" /rt/owned
	t_equal "-p keeps uid and gid" "$(stat_field uid /rt/owned):$(stat_field gid /rt/owned)" 1234:5678
}

test_truncate() {
	host_file trunc 10000
	t_a 0 "put a 10000-byte file" put "$T/trunc" /rt/trunc
	t_a 0 "truncate it to 4097" truncate -s 4097 /rt/trunc
	head -c 4097 "$T/trunc" >"$T/trunc.4097"
	t_a 0 "cat the shrunk file" cat /rt/trunc
	t_same "the first 4097 bytes are left" "$OUT" "$T/trunc.4097"
	t_a 0 "extend it to 1M" truncate -s 1M /rt/trunc
	truncate -s 1M "$T/trunc.4097"
	t_a 0 "cat the extended file" cat /rt/trunc
	t_same "it is extended with zeros" "$OUT" "$T/trunc.4097"
	t_a 0 "truncate to 0" truncate -s 0 /rt/trunc
	t_equal "the file is empty" "$(stat_field size /rt/trunc)" 0
	t_a 1 "truncate of a directory fails" truncate -s 0 /rt
	t_grep "as it is a directory" '^error: /rt: Is a directory$' "$ERR"
	t_a 2 "truncate needs -s" truncate /rt/trunc
	t_a 2 "truncate checks the size" truncate -s 12Q /rt/trunc
}

# ---- namespace ----------------------------------------------------------------

test_mkdir() {
	t_a 0 "mkdir -p makes parents" mkdir -p /d/e/f
	t_a 0 "stat the deepest one" stat /d/e/f
	t_grep "it is a directory" '^type +directory$'
	t_grep "with mode 0755 (umask 022)" '^mode +0755 \(drwxr-xr-x\)$'
	t_a 0 "mkdir -p of existing directories" mkdir -p /d/e
	t_a 1 "mkdir of an existing name fails" mkdir /d
	t_grep "with File exists" '^error: /d: File exists$' "$ERR"
	t_a 1 "mkdir -p over a file fails" mkdir -p /rt/f1
	t_a 1 "mkdir in a missing directory fails" mkdir /nope/x
	t_grep "with No such file" '^error: /nope/x: No such file or directory$' "$ERR"
	t_a 0 "ls -l /d" ls -l /d
	t_grep "lists e as a directory" "^drwxr-xr-x +$LONG e\$"
	t_equal "the parent counts the subdirectory" "$(stat_field links /d/e)" 3
}

test_ls() {
	local name
	t_a 0 "mkdir /ls" mkdir /ls
	for name in c a b "with space"; do
		printf '%s\n' "$name" >"$T/ls.$name"
		t_a 0 "put /ls/$name" put "$T/ls.$name" "/ls/$name"
	done
	t_a 0 "mkdir /ls/sub" mkdir /ls/sub
	t_a 0 "symlink /ls/l" ln -s a /ls/l
	t_a 0 "mknod a fifo" mknod /ls/fifo p
	t_a 0 "mknod a character device" mknod /ls/tty c 4 64
	t_a 0 "ls /ls" ls /ls
	t_equal "ls lists the names sorted" "$(cat "$OUT")" \
		"$(printf '%s\n' a b c fifo l sub tty 'with space')"
	t_a 0 "ls -la /ls" ls -la /ls
	t_equal "-a adds . and .." "$(head -n 2 "$OUT" | awk '{print $NF}')" "$(printf '.\n..')"
	t_grep "a regular file" "^-rw-r--r-- +$LONG a\$"
	t_grep "a name with a space" "^-rw-r--r-- +$LONG with space\$"
	t_grep "a directory" "^drwxr-xr-x +$LONG sub\$"
	t_grep "a symlink and its target" "^lrwxrwxrwx +$LONG l -> a\$"
	t_grep "a fifo" "^prw-r--r-- +$LONG fifo\$"
	t_grep "a device with major, minor" '^crw-r--r-- +[0-9]+ +[0-9]+ +[0-9]+ +4, 64 .* tty$'
	t_a 0 "ls -l of a file" ls -l /ls/a
	t_grep "lists the file itself" "^-rw-r--r-- +1 +$(id -u) +$(id -g) +2 .* /ls/a\$"
	t_equal "and only it" "$(wc -l <"$OUT")" 1
	t_a 0 "ls of a symlink" ls -l /ls/l
	t_grep "does not follow it" "^lrwxrwxrwx .* /ls/l -> a\$"
}

test_stat() {
	t_a 0 "stat a file" stat /ls/b
	t_grep "path" '^path +/ls/b$'
	t_grep "inode number, subvolume and local number" \
		'^inode +[0-9]+ \(subvolume [0-9]+, local [0-9]+\)$'
	t_grep "type" '^type +regular file$'
	t_grep "octal mode and mode string" '^mode +0644 \(-rw-r--r--\)$'
	t_grep "links" '^links +1$'
	t_grep "uid" "^uid +$(id -u)\$"
	t_grep "gid" "^gid +$(id -g)\$"
	t_grep "size" '^size +2$'
	t_grep "blocks" '^blocks +[0-9]+$'
	t_grep "rdev" '^rdev +0 \(0:0\)$'
	t_grep "times with nanoseconds" \
		'^mtime +[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{9} \+0000$'
	t_grep "atime, ctime, btime" '^btime .*\.[0-9]{9} '
	t_grep "generation" '^generation +[0-9]+$'
	t_a 0 "stat a device" stat /ls/tty
	t_grep "its device number" '^rdev +[0-9]+ \(4:64\)$'
	t_grep "its type" '^type +character device$'
}

test_links() {
	t_a 0 "hard link" ln /ls/a /d/hard
	t_equal "the inode has two links" "$(stat_field links /ls/a)" 2
	t_equal "both names are one inode" "$(stat_field inode /d/hard)" "$(stat_field inode /ls/a)"
	t_a 0 "cat through the new name" cat /d/hard
	t_equal "shows the content" "$(cat "$OUT")" a
	t_a 0 "symlink into a directory" ln -s /ls/a /d
	t_a 0 "readlink" readlink /d/a
	t_equal "prints the target" "$(cat "$OUT")" /ls/a
	t_a 0 "symlink to a missing target" ln -s "../no where" /d/dangling
	t_a 0 "readlink of it" readlink /d/dangling
	t_equal "the target is kept as given" "$(cat "$OUT")" "../no where"
	t_a 1 "hard link to a directory fails" ln /ls/sub /d/sub
	t_grep "with Operation not permitted" '^error: /d/sub: Operation not permitted$' "$ERR"
	t_a 1 "link over an existing name fails" ln /ls/b /d/hard
	t_grep "with File exists" 'File exists' "$ERR"
	t_a 1 "readlink of a file fails" readlink /ls/a
	t_grep "not a symbolic link" '^error: /ls/a: not a symbolic link$' "$ERR"
	t_a 2 "an empty symlink target is a usage error" ln -s "" /d/empty
	t_a 0 "rm a hard link" rm /d/hard
	t_equal "the inode has one link left" "$(stat_field links /ls/a)" 1
}

test_mv() {
	t_a 0 "rename in a directory" mv /ls/b /ls/b2
	t_a 1 "the old name is gone" stat /ls/b
	t_a 0 "cat the new name" cat /ls/b2
	t_equal "the content moved" "$(cat "$OUT")" b
	t_a 0 "move across directories" mv /ls/b2 /d/e/moved
	t_a 0 "cat it there" cat /d/e/moved
	t_equal "with its content" "$(cat "$OUT")" b
	t_a 0 "move into a directory" mv /ls/c /d
	t_a 0 "cat /d/c" cat /d/c
	t_equal "it keeps its name" "$(cat "$OUT")" c
	t_a 0 "mv replaces a file" mv /d/c /d/e/moved
	t_a 0 "cat the replaced name" cat /d/e/moved
	t_equal "holds the moved file" "$(cat "$OUT")" c
	t_a 1 "the source is gone" stat /d/c
	t_a 0 "put a file in /ls/sub" put "$T/ls.a" /ls/sub/inner
	t_a 0 "move a directory" mv /ls/sub /d/e/sub
	t_a 0 "cat a file inside the moved directory" cat /d/e/sub/inner
	t_equal "it came along" "$(cat "$OUT")" a
	t_equal "the old parent lost a link" "$(stat_field links /ls)" 2
	t_equal "the new parent gained one" "$(stat_field links /d/e)" 4
	t_a 1 "a directory cannot move below itself" mv /d /d/e/f
	t_grep "Invalid argument" '^error: /d/e/f: Invalid argument$' "$ERR"
	t_a 1 "mv of a missing name fails" mv /nope /d
	t_grep "naming it" '^error: /nope: No such file or directory$' "$ERR"
	t_a 1 "mv of the root fails" mv / /d
}

test_rm() {
	t_a 0 "rm a file" rm /ls/a
	t_a 1 "it is gone" cat /ls/a
	t_a 0 "rm a symlink" rm /ls/l
	t_a 0 "rm a fifo" rm /ls/fifo
	t_a 0 "rm a device" rm /ls/tty
	t_a 0 "ls /ls" ls /ls
	t_equal "only one file is left" "$(cat "$OUT")" "with space"
	t_a 1 "rm of a directory needs -r" rm /d
	t_grep "Is a directory" '^error: /d: Is a directory$' "$ERR"
	t_a 1 "rmdir of a non-empty directory fails" rmdir /d
	t_grep "Directory not empty" '^error: /d: Directory not empty$' "$ERR"
	t_a 1 "rmdir of a file fails" rmdir "/ls/with space"
	t_grep "Not a directory" 'Not a directory$' "$ERR"
	t_a 0 "rmdir of an empty directory" rmdir /d/e/f
	t_a 0 "hard link from outside into the tree" ln "/ls/with space" /d/e/sub/outside
	t_a 0 "rm -r a tree" rm -r /d
	t_a 1 "the tree is gone" ls /d
	t_equal "the outside file lost a link" "$(stat_field links "/ls/with space")" 1
	t_a 0 "cat the outside file" cat "/ls/with space"
	t_equal "its content is intact" "$(cat "$OUT")" "with space"
	t_a 1 "rm of the root fails" rm -r /
}

test_xattr() {
	t_a 0 "set an xattr" xattr set /rt/f1 user.color blue
	t_a 0 "get it" xattr get /rt/f1 user.color
	t_equal "the value" "$(cat "$OUT")" blue
	t_a 0 "set a second one" xattr set /rt/f1 user.shape round
	t_a 0 "replace the first" xattr set /rt/f1 user.color green
	t_a 0 "list" xattr list /rt/f1
	t_equal "list shows both names" "$(sort "$OUT")" "$(printf 'user.color\nuser.shape')"
	t_a 0 "get as hex" xattr get -x /rt/f1 user.color
	t_grep "the hexdump" '67 72 65 65 6e +\|green\|'
	t_a 0 "remove one" xattr rm /rt/f1 user.color
	t_a 1 "get of a removed xattr fails" xattr get /rt/f1 user.color
	t_grep "with No data" '^error: /rt/f1: user.color: No data available$' "$ERR"
	t_a 1 "an unknown namespace is refused" xattr set /rt/f1 foo.bar x
	t_a 0 "an xattr on a directory" xattr set /rt user.dir yes
	t_a 0 "a symlink to a file" ln -s f1 /rt/sl
	t_a 0 "an xattr on the symlink itself" xattr set /rt/sl trusted.x 1
	t_a 0 "list the file's" xattr list /rt/f1
	t_equal "the file did not get it" "$(cat "$OUT")" user.shape
	t_a 0 "list a directory" xattr list /rt
	t_equal "shows its name" "$(cat "$OUT")" user.dir
	t_a 2 "xattr set needs a value" xattr set /rt user.x
}

# ---- errors -----------------------------------------------------------------------

test_errors() {
	t_a 1 "a missing path fails" ls /nope/x
	t_grep "with a message" '^error: /nope/x: No such file or directory$' "$ERR"
	t_a 1 "a path through a file fails" cat /rt/f1/x
	t_grep "with Not a directory" '^error: /rt/f1/x: Not a directory$' "$ERR"
	t_a 1 "a long name fails" stat "/$(printf 'x%.0s' {1..300})"
	t_grep "with File name too long" 'File name too long$' "$ERR"
	t_a 1 "cat of a directory fails" cat /rt
	t_a 1 "get of a missing file fails" get /nope "$T/never"
	t_rc 1 "and creates no host file" test -e "$T/never"
	t_a 1 "put of a missing host file fails" put "$T/never" /rt/never
	t_grep "naming the host file" "^error: cannot open $T/never: " "$ERR"
	t_a 1 "put into a missing directory fails" put "$T/in.1" /nope/x
	t_a 2 "relative paths are usage errors" ls rt
	t_grep "saying so" "^error: 'rt': paths in the filesystem start with '/'" "$ERR"
	t_a 2 "too many arguments" ls / /rt
	t_a 2 "an unknown option" rm -z /rt
	t_a 2 "put -p needs a host file" put -p - /rt/x
	t_a 2 "mknod of a device needs numbers" mknod /x c
	t_arbor 2 "no image given" ls /
	t_arbor 0 "help of a file command" put --help
	t_grep "shows the synopsis" '^usage: arbor -i IMAGE put \[-p\] HOSTFILE PATH$'
	t_arbor 0 "help lists the file commands" --help
	t_grep "among the others" 'arbor -i IMAGE mkdir \[-p\] PATH'
	t_rc 0 "engine format makes a raw image" "$ARBOR" -i "$T/raw.img" engine format -s 16M
	t_arbor 1 "file commands need a root directory" -i "$T/raw.img" ls /
	t_grep "which mkfs.arbor makes" 'has no root directory' "$ERR"
}

# ---- at the end ------------------------------------------------------------------

test_survives() {
	local size
	for size in $SIZES; do
		[ "$size" = 1 ] && continue # overwritten by test_round_trips
		t_a 0 "get /rt/f$size again" get "/rt/f$size" "$T/again.$size"
		t_same "it is still intact" "$T/in.$size" "$T/again.$size"
	done
	t_a 0 "engine check" engine check
	t_grep "the image is clean" '^clean$'
}

test_mkfs
test_round_trips
test_put_modes
test_truncate
test_mkdir
test_ls
test_stat
test_links
test_mv
test_rm
test_xattr
test_errors
test_survives
t_done
