#!/bin/bash
# tests/fuse/test_mount.sh - arborfs end to end: a real FUSE mount of a
# fresh image, POSIX operations through the kernel, unmount and "engine
# check", a remount that still sees everything, refusals (a second mount,
# a damaged image), read-only mounts, SIGTERM, the commit timer, and a
# kill -9 in the middle of writes after which every fsync'ed file is
# intact.  Prints TAP; skips everything without root, /dev/fuse or
# fusermount3.

# shellcheck source=tests/fuse/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MIB=1048576
GIB=$((1024 * MIB))

# ---- setup and refusals -------------------------------------------------------

test_refusals() {
	t_rc 0 "mkfs.arbor a 256 MiB image" "$MKFS" -q -s 256M "$IMG"
	t_fails "a missing image is refused" '^error: cannot open .*nope\.img: No such file' \
		"$ARBORFS" "$T/nope.img" "$MNT"
	t_fails "a missing mount point is refused" '^error: mount point .*: No such file' \
		"$ARBORFS" "$IMG" "$T/nodir"
	touch "$T/file"
	t_fails "a mount point that is a file is refused" 'is not a directory' \
		"$ARBORFS" "$IMG" "$T/file"
	truncate -s 16M "$T/zero.img"
	t_fails "an image without a superblock is refused" 'not an Arbor filesystem' \
		"$ARBORFS" "$T/zero.img" "$MNT"
	t_rc 1 "a subvol= path that does not exist is refused" "$ARBORFS" "$IMG" "$MNT" -o subvol=home
	t_grep "and says which name is missing" "subvol=home: cannot find 'home'" "$ERR"
	t_rc 1 "a subvolume that does not exist is refused" "$ARBORFS" "$IMG" "$MNT" -o subvol=9999
	t_rc 2 "an unknown option is refused" "$ARBORFS" "$IMG" "$MNT" -o bogus
	t_rc 2 "a third argument is a usage error" "$ARBORFS" "$IMG" "$MNT" extra
	t_ok "--help exits 0" "$ARBORFS" --help
	t_grep "--help shows the synopsis" '^usage: arborfs IMAGE MOUNTPOINT'
	t_ok "-V exits 0" "$ARBORFS" -V
	t_grep "-V names the program" '^arborfs '
	t_equal "no refusal left a mount" "$(mountpoint -q "$MNT" && echo mounted)" ""
	t_engine_check "after the refusals"
}

test_mounted() {
	local line
	t_mount "mount the image" || return 1
	line=$(awk -v m="$MNT" '$2 == m' /proc/mounts)
	echo "# $line"
	t_grep "the mount is fuse.arborfs with default_permissions" \
		' fuse\.arborfs .*default_permissions' <(echo "$line")
	t_equal "fsname is the absolute image path" "${line%% *}" "$(realpath "$IMG")"
	mkdir -p "$T/mnt2"
	t_fails "a second mount of the same image is refused" 'is in use' \
		"$ARBORFS" "$IMG" "$T/mnt2"
	t_fails "mkfs.arbor refuses the mounted image" '' "$MKFS" -q -f "$IMG"
}

# ---- files and names ------------------------------------------------------------

test_files() {
	local m=$MNT
	printf 'hello\n' >"$m/f"
	t_equal "create, write, read" "$(cat "$m/f")" "hello"
	printf 'world\n' >>"$m/f"
	t_equal "append" "$(cat "$m/f")" $'hello\nworld'
	printf 'HE' | dd of="$m/f" bs=1 seek=0 conv=notrunc status=none
	t_equal "overwrite in place" "$(head -c 5 "$m/f")" "HEllo"
	: >"$m/f"
	t_equal "O_TRUNC empties the file" "$(stat -c %s "$m/f")" 0
	printf 'hello\nworld\n' >"$m/f"
	t_ok "mkdir" mkdir "$m/d"
	t_ok "mkdir -p a tree" mkdir -p "$m/d/e/f/g"
	t_fails "rmdir of a non-empty directory fails" 'not empty' rmdir "$m/d/e/f"
	t_ok "rmdir" rmdir "$m/d/e/f/g"
	t_equal "the directory is gone" "$(ls -A "$m/d/e/f")" ""
	t_equal "a new directory has 2 links" "$(stat -c %h "$m/d/e/f")" 2
	t_equal "its parent counts its .." "$(stat -c %h "$m/d/e")" 3
}

test_names() {
	local m=$MNT long255 long256
	long255=$(printf 'n%.0s' $(seq 255))
	long256=${long255}x
	t_ok "a 255-byte name" touch "$m/$long255"
	t_fails "a 256-byte name: ENAMETOOLONG" 'File name too long' touch "$m/$long256"
	t_fails "mkdir with a 256-byte name" 'File name too long' mkdir "$m/$long256"
	t_fails "rename to a 256-byte name" 'File name too long' mv "$m/$long255" "$m/$long256"
	rm -f "$m/$long255"
	t_fails "a missing name: ENOENT" 'No such file' cat "$m/missing"
}

test_rename() {
	local m=$MNT
	echo one >"$m/r1"
	echo two >"$m/r2"
	t_ok "rename" mv "$m/r1" "$m/r3"
	t_equal "the old name is gone" "$(ls "$m/r1" 2>/dev/null)" ""
	t_ok "rename over an existing file" mv "$m/r3" "$m/r2"
	t_equal "the target has the new content" "$(cat "$m/r2")" "one"
	mkdir "$m/rd1" "$m/rd2"
	touch "$m/rd1/inside"
	t_ok "rename a directory over an empty one" mv -T "$m/rd1" "$m/rd2"
	t_equal "its content moved" "$(ls "$m/rd2")" "inside"
	mkdir "$m/rd3"
	touch "$m/rd3/x"
	t_fails "rename over a non-empty directory fails" 'not empty|exists' mv -T "$m/rd2" "$m/rd3"
	echo keep >"$m/n1"
	echo other >"$m/n2"
	mv -n "$m/n2" "$m/n1" 2>/dev/null
	t_equal "mv -n (no replace) keeps the target" "$(cat "$m/n1")" "keep"
	t_fails "a directory into itself: EINVAL" 'Invalid argument|subdirectory of itself' \
		mv "$m/rd2" "$m/rd2/sub"
}

test_links() {
	local m=$MNT
	echo shared >"$m/l1"
	t_ok "hard link" ln "$m/l1" "$m/d/l2"
	t_equal "both names have one inode" "$(stat -c %i "$m/l1")" "$(stat -c %i "$m/d/l2")"
	t_equal "link count 2" "$(stat -c %h "$m/l1")" 2
	echo more >>"$m/d/l2"
	t_equal "a write through one name reads through the other" "$(cat "$m/l1")" \
		$'shared\nmore'
	drop_caches
	t_equal "also with the cache dropped" "$(cat "$m/l1")" $'shared\nmore'
	t_fails "a hard link to a directory fails" 'not allowed|Operation not permitted' \
		ln "$m/d" "$m/dlink"
	t_ok "symlink" ln -s "../l1" "$m/d/s"
	t_equal "readlink" "$(readlink "$m/d/s")" "../l1"
	t_equal "read through the symlink" "$(head -n 1 "$m/d/s")" "shared"
	local target
	target=$(printf 'p/%.0s' $(seq 1000))
	ln -s "$target" "$m/longlink"
	t_equal "a 2000-byte symlink target" "$(readlink "$m/longlink")" "$target"
}

test_attrs() {
	local m=$MNT
	echo x >"$m/a"
	t_ok "chmod" chmod 0640 "$m/a"
	t_equal "the mode changed" "$(stat -c %a "$m/a")" 640
	t_ok "chown" chown 1234:5678 "$m/a"
	t_equal "the owner changed" "$(stat -c %u:%g "$m/a")" 1234:5678
	chmod 6755 "$m/a"
	chown 1235 "$m/a"
	t_equal "chown clears setuid and setgid" "$(stat -c %a "$m/a")" 755
	t_ok "utimensat with given times" touch -d '2001-02-03 04:05:06.123456789' "$m/a"
	t_equal "mtime with nanoseconds" "$(stat -c %y "$m/a")" \
		"2001-02-03 04:05:06.123456789 +0000"
	t_equal "atime too" "$(stat -c %x "$m/a")" "2001-02-03 04:05:06.123456789 +0000"
	touch "$m/a"
	t_equal "utimensat(UTIME_NOW)" "$(($(date +%s) - $(stat -c %Y "$m/a") < 5))" 1
	t_ok "truncate up" truncate -s 100 "$m/a"
	t_equal "size 100" "$(stat -c %s "$m/a")" 100
	t_equal "the new bytes are zeros" "$(tail -c 98 "$m/a" | tr -d '\0' | wc -c)" 0
	t_ok "truncate down" truncate -s 1 "$m/a"
	t_equal "size 1, content kept" "$(cat "$m/a")" "x"
	t_ok "mknod a FIFO" mkfifo "$m/fifo"
	t_equal "it is a FIFO" "$(stat -c %F "$m/fifo")" "fifo"
	t_ok "mknod a character device" mknod "$m/null" c 1 3
	t_equal "with its device number" "$(stat -c %t:%T "$m/null")" "1:3"
}

test_sparse() {
	local m=$MNT off=$((4 * GIB + GIB / 2))
	t_ok "truncate -s 5G" truncate -s 5G "$m/sparse"
	printf 'marker' | dd of="$m/sparse" bs=1 seek="$off" conv=notrunc status=none
	t_equal "the size is 5 GiB" "$(stat -c %s "$m/sparse")" $((5 * GIB))
	drop_caches
	t_equal "the marker at 4.5 GiB reads back" \
		"$(dd if="$m/sparse" bs=1 skip="$off" count=6 status=none)" "marker"
	t_equal "a hole reads as zeros" \
		"$(dd if="$m/sparse" bs=4096 skip=1000 count=1 status=none | tr -d '\0' | wc -c)" 0
	t_equal "du stays small" "$(($(du -k "$m/sparse" | cut -f1) < 1024))" 1
	if have_python; then
		t_equal "SEEK_DATA finds the marker's block" "$(python3 -c '
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
print(os.lseek(fd, 0, os.SEEK_DATA), os.lseek(fd, 0, os.SEEK_HOLE))' "$m/sparse")" \
			"$((off / 4096 * 4096)) 0"
		# the data of this write is still in the kernel's writeback cache
		t_equal "SEEK_DATA/SEEK_HOLE see data not yet written back" "$(python3 -c '
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
os.pwrite(fd, b"x" * 8192, 1 << 20)
other = os.open(sys.argv[1], os.O_RDONLY)
print(os.lseek(fd, 0, os.SEEK_DATA), os.lseek(fd, 1 << 20, os.SEEK_HOLE),
      os.lseek(other, 0, os.SEEK_DATA), os.lseek(other, 1 << 20, os.SEEK_HOLE))' "$m/unflushed")" \
			"1048576 1056768 1048576 1056768"
	else
		t_skip "python3 not installed"
	fi
	t_fails "truncate past the maximum file size: EFBIG" 'too large' \
		truncate -s $((1 << 53)) "$m/sparse"
	t_fails "fallocate past the maximum file size: EFBIG" 'too large' \
		fallocate -o $((1 << 53)) -l 4096 "$m/sparse"
	t_fails "an O_DIRECT write past the maximum file size: EFBIG" 'too large' \
		dd if=/dev/zero of="$m/sparse" bs=4096 count=1 seek=$((1 << 41)) oflag=direct \
		conv=notrunc status=none
	# a buffered write sits in the kernel's writeback cache: the error comes
	# when it is written back (fsync: EFBIG; close: EIO)
	t_fails "a buffered write past the maximum file size fails at fsync" 'too large' \
		dd if=/dev/zero of="$m/sparse" bs=1 count=1 seek=$((1 << 53)) conv=notrunc,fsync \
		status=none
	rm -f "$m/sparse"
}

test_xattrs() {
	local m=$MNT
	echo x >"$m/x"
	if ! have_python; then
		t_skip "python3 not installed"
		return 0
	fi
	t_run python3 -c '
import os, sys, errno
p = sys.argv[1]
os.setxattr(p, "user.one", b"1")
os.setxattr(p, "user.big", b"v" * 3000)
assert os.getxattr(p, "user.one") == b"1"
assert os.getxattr(p, "user.big") == b"v" * 3000
assert sorted(os.listxattr(p)) == ["user.big", "user.one"], os.listxattr(p)
try:
    os.setxattr(p, "user.one", b"2", os.XATTR_CREATE)
    raise SystemExit("XATTR_CREATE replaced")
except OSError as e:
    assert e.errno == errno.EEXIST
try:
    os.setxattr(p, "user.none", b"2", os.XATTR_REPLACE)
    raise SystemExit("XATTR_REPLACE created")
except OSError as e:
    assert e.errno == errno.ENODATA
os.removexattr(p, "user.big")
assert os.listxattr(p) == ["user.one"]
try:
    os.getxattr(p, "user.big")
    raise SystemExit("removed xattr still there")
except OSError as e:
    assert e.errno == errno.ENODATA
' "$m/x"
	t_equal "set, get, list, create/replace flags, remove" "$RC" 0
	t_diag_file "$ERR"
}

test_open_unlinked() {
	if ! have_python; then
		t_skip "python3 not installed"
		return 0
	fi
	t_run python3 -c '
import os, sys
p = sys.argv[1]
fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
os.write(fd, b"still here" * 1000)
os.unlink(p)
assert not os.path.exists(p)
os.lseek(fd, 0, 0)
assert os.read(fd, 10) == b"still here"
os.write(fd, b"and more")
os.fsync(fd)
assert os.fstat(fd).st_nlink == 0
os.close(fd)
' "$MNT/unlinked"
	t_equal "an unlinked open file stays readable and writable" "$RC" 0
	t_diag_file "$ERR"
}

test_statfs() {
	local line
	line=$(df -B1 --output=size,avail "$MNT" | tail -n 1)
	echo "# df: $line"
	t_equal "df: the size is close to 256 MiB" \
		"$(awk '{ print ($1 > 250 * 1048576 && $1 <= 256 * 1048576) }' <<<"$line")" 1
	t_equal "df: space is available" "$(awk '{ print ($2 > 100 * 1048576) }' <<<"$line")" 1
	t_equal "statfs: names up to 255 bytes" "$(stat -f -c %l "$MNT")" 255
}

test_fallocate() {
	local m=$MNT
	t_ok "fallocate -l 1M" fallocate -l 1M "$m/fa"
	t_equal "the size is 1 MiB" "$(stat -c %s "$m/fa")" "$MIB"
	t_equal "the blocks are allocated" "$(($(stat -c %b "$m/fa") * 512 >= MIB))" 1
	t_equal "it reads as zeros" "$(tr -d '\0' <"$m/fa" | wc -c)" 0
	head -c 65536 /dev/urandom >"$T/pattern"
	cp "$T/pattern" "$m/punch"
	t_ok "fallocate -p (punch a hole)" fallocate -p -o 4096 -l 8192 "$m/punch"
	t_equal "the size is unchanged" "$(stat -c %s "$m/punch")" 65536
	drop_caches
	t_equal "the hole reads as zeros" \
		"$(dd if="$m/punch" bs=4096 skip=1 count=2 status=none | tr -d '\0' | wc -c)" 0
	t_equal "the rest is intact" "$(dd if="$m/punch" bs=4096 skip=3 status=none | md5sum)" \
		"$(dd if="$T/pattern" bs=4096 skip=3 status=none | md5sum)"
	t_ok "fallocate -z (zero a range)" fallocate -z -o 32768 -l 4096 "$m/punch"
	t_equal "the range reads as zeros" \
		"$(dd if="$m/punch" bs=4096 skip=8 count=1 status=none | tr -d '\0' | wc -c)" 0
	t_ok "fallocate -n (keep size) past the end" fallocate -n -o 65536 -l 65536 "$m/punch"
	t_equal "keep size keeps the size" "$(stat -c %s "$m/punch")" 65536
	t_fails "collapse range is not supported" 'not supported' \
		fallocate -c -o 0 -l 4096 "$m/punch"
}

# ls is the point here: it lists through getdents.
# shellcheck disable=SC2012
test_readdir() {
	local m=$MNT/many
	mkdir "$m"
	(cd "$m" && seq -f 'file%04g' 0 1999 | xargs touch)
	t_equal "2000 entries listed" "$(ls "$m" | wc -l)" 2000
	t_equal "each exactly once, all of them" "$(ls "$m" | sort | md5sum)" \
		"$(seq -f 'file%04g' 0 1999 | sort | md5sum)"
	t_equal "with . and .. (ls -f)" "$(ls -f "$m" | wc -l)" 2002
	t_equal "find sees them too" "$(find "$m" -type f | wc -l)" 2000
	t_equal "inode numbers from readdir match stat" \
		"$(ls -i "$m" | awk '$2 == "file0042" { print $1 }')" "$(stat -c %i "$m/file0042")"
	drop_caches
	t_equal "again with the cache dropped" "$(ls "$m" | wc -l)" 2000
	(cd "$m" && seq -f 'file%04g' 0 2 1999 | xargs rm)
	t_equal "after removing half" "$(ls "$m" | wc -l)" 1000
}

test_bigfile() {
	head -c $((50 * MIB)) /dev/urandom >"$T/rand"
	t_ok "cp a 50 MiB random file" cp "$T/rand" "$MNT/rand"
	t_ok "cmp through the page cache" cmp "$T/rand" "$MNT/rand"
	drop_caches
	t_ok "cmp with the cache dropped" cmp "$T/rand" "$MNT/rand"
	t_run dd if="$MNT/rand" bs=1M iflag=direct status=none of="$T/rand.direct"
	t_ok "cmp of an O_DIRECT read" cmp "$T/rand" "$T/rand.direct"
	rm -f "$T/rand.direct"
	t_run dd if="$T/rand" of="$MNT/rand.direct" bs=1M oflag=direct status=none
	t_ok "cmp of an O_DIRECT write" cmp "$T/rand" "$MNT/rand.direct"
	rm -f "$MNT/rand.direct"
}

test_fsync() {
	if ! have_python; then
		t_skip "python3 not installed"
		return 0
	fi
	t_run python3 -c '
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o644)
os.write(fd, b"durable\n")
os.fsync(fd)
os.fdatasync(fd)
os.close(fd)
d = os.open(os.path.dirname(sys.argv[1]), os.O_RDONLY)
os.fsync(d)
os.close(d)
' "$MNT/synced"
	t_equal "fsync, fdatasync and a directory fsync succeed" "$RC" 0
	t_diag_file "$ERR"
}

# ---- persistence ------------------------------------------------------------------

test_remount() {
	t_umount "unmount: the daemon exits 0 after its final commit" || return 1
	t_engine_check "after unmount"
	t_mount "remount" || return 1
	t_ok "the 50 MiB file persisted" cmp "$T/rand" "$MNT/rand"
	t_equal "small files persisted" "$(cat "$MNT/f")" $'hello\nworld'
	t_equal "hard links persisted" "$(stat -c %i "$MNT/l1")" "$(stat -c %i "$MNT/d/l2")"
	t_equal "symlinks persisted" "$(readlink "$MNT/d/s")" "../l1"
	t_equal "directories persisted" "$(find "$MNT/many" -type f | wc -l)" 1000
	t_equal "fsync'ed data persisted" "$(cat "$MNT/synced")" "durable"
	t_equal "the unlinked file is gone" "$(ls "$MNT/unlinked" 2>/dev/null)" ""
	if have_python; then
		t_equal "xattrs persisted" \
			"$(python3 -c 'import os,sys; print(os.getxattr(sys.argv[1], "user.one").decode())' \
				"$MNT/x")" "1"
	fi
	t_equal "modes and owners persisted" "$(stat -c %a:%u "$MNT/a")" "755:1235"
	t_umount "unmount again"
}

test_readonly() {
	local before
	before=$(md5sum <"$IMG")
	t_mount "mount -o ro" -o ro || return 1
	t_equal "reads work" "$(cat "$MNT/f")" $'hello\nworld'
	t_fails "writes fail with EROFS" 'Read-only file system' touch "$MNT/new"
	t_umount "unmount the read-only mount"
	t_equal "a read-only mount leaves the image untouched" "$(md5sum <"$IMG")" "$before"
}

test_sigterm() {
	t_mount "mount for SIGTERM" || return 1
	echo term >"$MNT/term"
	kill -TERM "$AFS_PID"
	fuse_wait_gone "$AFS_PID" 30
	wait "$AFS_PID"
	t_equal "SIGTERM: the daemon exits 0" "$?" 0
	AFS_PID=
	t_equal "and unmounts" "$(mountpoint -q "$MNT" && echo mounted)" ""
	t_engine_check "after SIGTERM"
	t_mount "remount after SIGTERM" || return 1
	t_equal "SIGTERM committed the last write" "$(cat "$MNT/term")" "term"
	t_ok "clean up" fuse_stop
}

test_commit_timer() {
	t_mount "mount with commit=1" -o commit=1 || return 1
	# the kernel writes the data back on close; the timer commits it
	echo timer >"$MNT/timer"
	sleep 3
	fuse_kill9
	t_engine_check "after kill -9 with commit=1"
	t_mount "remount after the commit timer" || return 1
	t_equal "the timer committed the write" "$(cat "$MNT/timer" 2>&1)" "timer"
	t_ok "clean up" fuse_stop
}

# Writers fsync each file, then log its name and checksum outside the mount.
# At most 96 MiB (then they wait for the kill): a fast machine would fill
# the 256 MiB image in the 3 seconds, and the tests after this one with it.
WRITER='
import hashlib, os, random, sys, time
mnt, log = sys.argv[1], sys.argv[2]
rnd = random.Random(int(sys.argv[3]))
os.makedirs(os.path.join(mnt, "crash"), exist_ok=True)
with open(log, "a") as lf:
    i = total = 0
    while True:
        if total > 96 << 20:
            time.sleep(60)
            continue
        data = rnd.randbytes(rnd.randint(1, 300 * 1024))
        name = os.path.join(mnt, "crash", "c%06d" % i)
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, data)
        total += len(data)
        if i % 3 == 0:
            os.fsync(fd)
        os.close(fd)
        if i % 3 == 0:
            lf.write("%s %s\n" % (name, hashlib.sha256(data).hexdigest()))
            lf.flush()
            os.fsync(lf.fileno())
        i += 1
'

test_kill9() {
	local wpid bad=0 n=0 name sum
	if ! have_python; then
		t_skip "python3 not installed"
		return 0
	fi
	t_mount "mount for kill -9" -o commit=0 || return 1
	: >"$T/synced.log"
	python3 -c "$WRITER" "$MNT" "$T/synced.log" "$ARBOR_TEST_SEED" 2>/dev/null &
	wpid=$!
	sleep 3
	fuse_kill9
	kill "$wpid" 2>/dev/null # it may be waiting, past its 96 MiB
	wait "$wpid" 2>/dev/null
	echo "# $(wc -l <"$T/synced.log") files were fsync'ed before the kill"
	t_equal "some files were fsync'ed before the kill" "$(($(wc -l <"$T/synced.log") > 0))" 1
	t_engine_check "after kill -9 during writes"
	t_mount "remount after kill -9" || return 1
	while read -r name sum; do
		n=$((n + 1))
		if [ "$(sha256sum <"$name" 2>/dev/null | cut -d' ' -f1)" != "$sum" ]; then
			bad=$((bad + 1))
			echo "#   $name: lost or wrong"
		fi
	done <"$T/synced.log"
	t_equal "every fsync'ed file ($n) is intact" "$bad" 0
	t_ok "unmount after the crash test" fuse_stop
	t_engine_check "at the end"
}

# The fsync log: overwrites of a committed file, each fsync'ed, then kill -9
# before any commit: the replay at the next mount brings back every byte.
FSYNC_LOG_WRITER='
import hashlib, os, random, sys
path, log, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
rnd = random.Random(seed)
fd = os.open(path, os.O_RDWR)
size = os.fstat(fd).st_size
for i in range(200):
    off = rnd.randrange(0, size + 65536)
    os.pwrite(fd, rnd.randbytes(rnd.randint(1, 70000)), off)
    if i % 7 == 6:
        os.fsync(fd)
os.fsync(fd)
os.lseek(fd, 0, 0)
h = hashlib.sha256()
while True:
    b = os.read(fd, 1 << 20)
    if not b:
        break
    h.update(b)
with open(log, "w") as lf:
    lf.write(h.hexdigest() + "\n")
    lf.flush()
    os.fsync(lf.fileno())
os.close(fd)
'

test_fsync_log() {
	if ! have_python; then
		t_skip "python3 not installed"
		return 0
	fi
	t_mount "mount for the fsync log" -o commit=0 || return 1
	head -c $((8 * MIB)) /dev/urandom >"$MNT/db"
	t_ok "unmount commits the file" fuse_stop
	t_mount "mount again without a commit timer" -o commit=0 || return 1
	t_run python3 -c "$FSYNC_LOG_WRITER" "$MNT/db" "$T/db.sum" "$ARBOR_TEST_SEED"
	t_equal "200 overwrites with fsyncs succeed" "$RC" 0
	fuse_kill9
	t_engine_check "after kill -9 with only the fsync log"
	t_mount "remount replays the log" || return 1
	t_grep "the daemon says it replayed the log" 'replayed [0-9]* fsyncs' "$DLOG"
	t_equal "every fsync'ed byte is back" "$(sha256sum <"$MNT/db" | cut -d' ' -f1)" \
		"$(cat "$T/db.sum")"
	t_ok "unmount after the replay" fuse_stop
	t_engine_check "after the replay"
}

# mount(8) finds arborfs through mount.fuse3 (type fuse.arborfs) in the
# standard PATH it gives helpers, so this needs "make install" of this very
# build (CI does it); umount(8) makes the daemon commit and exit.  The fstab
# line is tried through mount --fstab FILE.
STD_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

test_mount_t() {
	local installed
	installed=$(PATH=$STD_PATH command -v arborfs)
	if [ ! -x /sbin/mount.fuse3 ] && [ ! -x /usr/sbin/mount.fuse3 ]; then
		t_skip "mount -t fuse.arborfs: mount.fuse3 is missing (package fuse3)"
		return 0
	fi
	if [ -z "$installed" ] || ! cmp -s "$installed" "$ARBORFS"; then
		t_skip "mount -t fuse.arborfs: this build's arborfs is not installed (make install)"
		return 0
	fi
	t_run mount -t fuse.arborfs "$IMG" "$MNT"
	t_equal "mount -t fuse.arborfs IMAGE DIR" "$RC" 0
	t_diag_file "$ERR"
	t_equal "the mount is there" "$(mountpoint -q "$MNT" && echo mounted)" mounted
	echo through-mount >"$MNT/mount-t"
	t_ok "umount DIR" umount "$MNT"
	# the daemon commits after the kernel lets go, then drops its lock
	t_ok "the daemon lets go of the image" flock -w 60 "$IMG" true
	t_arbor 0 "the write is in the image" -i "$IMG" cat /mount-t
	t_grep "with its content" '^through-mount$'
	echo "$IMG $MNT fuse.arborfs defaults 0 0" >"$T/fstab"
	t_ok "mount DIR through an fstab line" mount --fstab "$T/fstab" "$MNT"
	t_equal "the fstab mount is there" "$(mountpoint -q "$MNT" && echo mounted)" mounted
	t_equal "and reads" "$(cat "$MNT/mount-t" 2>&1)" through-mount
	t_ok "fusermount3 -u DIR" fusermount3 -u "$MNT"
	t_ok "the daemon lets go of the image again" flock -w 60 "$IMG" true
	t_engine_check "after mount -t and umount"
}

# Fill a small image: ENOSPC, and the space of a removed file is usable at
# once (the daemon commits until the superblock ring lets it go).
test_enospc() {
	local IMG=$T/small.img
	"$MKFS" -q -s 64M "$IMG"
	t_mount "mount a 64 MiB image" || return 1
	head -c $((40 * MIB)) /dev/urandom >"$T/rand40"
	t_fails "filling it ends with ENOSPC" 'No space left' \
		dd if=/dev/zero of="$MNT/fill" bs=1M count=100 conv=fsync status=none
	rm -f "$MNT/fill"
	t_ok "after rm, 40 MiB fit again at once" \
		dd if="$T/rand40" of="$MNT/again" bs=1M conv=fsync status=none
	t_ok "and read back" cmp "$T/rand40" "$MNT/again"
	rm -f "$MNT/again"
	t_ok "and once more" dd if="$T/rand40" of="$MNT/again" bs=1M conv=fsync status=none
	t_umount "unmount the full image"
	t_engine_check "after ENOSPC"
	rm -f "$IMG" "$T/rand40"
}

# Damage the leaves of a big directory under a mounted filesystem: the
# first change that meets the damage fails the filesystem, which says so
# once and answers EROFS from then on, while intact data stays readable.
test_failed() {
	local IMG=$T/damaged.img leaves b
	"$MKFS" -q -s 64M "$IMG"
	t_mount "mount an image to damage" || return 1
	echo intact >"$MNT/intact" # first: its items share the first leaf with the root
	mkdir "$MNT/d"
	(cd "$MNT/d" && seq 1 3000 | xargs touch)
	fuse_stop
	leaves=$("$ARBOR" -i "$IMG" inspect dump-tree 256 | awk '$1 == "leaf" { if (n++) print $2 }')
	if [ -z "$leaves" ]; then
		t_skip "inspect dump-tree lists no leaves"
		return 0
	fi
	t_mount "remount it" || return 1
	for b in $leaves; do
		printf 'garbage' | dd of="$IMG" bs=1 seek=$((b + 100)) conv=notrunc status=none
	done
	(cd "$MNT/d" && seq 3001 3100 | xargs touch) 2>/dev/null
	mkdir "$MNT/x" 2>/dev/null
	t_fails "after the failure, changes get EROFS" 'Read-only file system' mkdir "$MNT/y"
	t_equal "intact data is still readable" "$(cat "$MNT/intact")" "intact"
	t_equal "the failure is logged once" "$(grep -c 'the filesystem failed' "$DLOG")" 1
	t_rc 1 "the daemon exits 1 after a failure" fuse_stop
	t_arbor 0 "the image still opens" -i "$IMG" inspect superblock
	rm -f "$IMG"
}

# used_kib: what df says is used on the mount.
used_kib() {
	df -k --output=used "$MNT" | tail -1 | tr -d ' '
}

# wait_used_below KIB SECONDS: 0 once df shows at most KIB used.
used_at_most() {
	[ "$(used_kib)" -le "$1" ]
}

wait_used_below() {
	fuse_poll "$2" used_at_most "$1"
}

# A deleted subvolume is freed by the cleaner thread after the delete has
# returned; kill -9 while it may still be at work, and the next mount
# finishes the job.
test_background_delete() {
	local base both sv
	t_mount "mount for background deletion" || return 1
	sync -f "$MNT"
	base=$(used_kib)
	for sv in bg1 bg2; do
		t_arbor 0 "create subvolume $sv" subvolume create "$MNT/$sv"
		mkdir -p "$MNT/$sv/d"
		seq 1 2000 | sed "s|^|$MNT/$sv/d/f|" | xargs touch
		head -c $((32 * MIB)) /dev/urandom >"$MNT/$sv/big"
	done
	sync -f "$MNT"
	both=$(used_kib)
	echo "# used: $base KiB before, $both KiB with two subvolumes"
	t_equal "the subvolumes take space" "$((both > base + 65536))" 1
	t_arbor 0 "delete bg1" subvolume delete "$MNT/bg1"
	t_equal "bg1 is gone at once" "$(test -e "$MNT/bg1" && echo there)" ""
	t_ok "df shows its space back within 30 s" \
		wait_used_below $((base + (both - base) / 2 + 512)) 30
	t_arbor 0 "delete bg2" subvolume delete "$MNT/bg2"
	fuse_kill9
	t_engine_check "after kill -9 right after a delete"
	t_mount "remount after kill -9" || return 1
	t_ok "the next mount frees the rest" wait_used_below $((base + 2048)) 30
	base=$(used_kib)
	t_arbor 0 "create subvolume bg3" subvolume create "$MNT/bg3"
	head -c $((16 * MIB)) /dev/urandom >"$MNT/bg3/big"
	sync -f "$MNT"
	t_arbor 0 "delete --wait" subvolume delete --wait "$MNT/bg3"
	t_equal "after delete --wait the space is free at once" \
		"$(($(used_kib) <= base + 512))" 1
	t_ok "unmount after background deletion" fuse_stop
	t_engine_check "after background deletion"
}

# ---- run ---------------------------------------------------------------------------

test_refusals
if test_mounted; then
	test_files
	test_names
	test_rename
	test_links
	test_attrs
	test_sparse
	test_xattrs
	test_open_unlinked
	test_statfs
	test_fallocate
	test_readdir
	test_bigfile
	test_fsync
	test_remount
	test_readonly
	test_sigterm
	test_commit_timer
	test_kill9
	test_fsync_log
	test_background_delete
	test_mount_t
	test_enospc
	test_failed
fi
t_done
