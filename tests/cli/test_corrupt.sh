#!/bin/bash
# tests/cli/test_corrupt.sh - "arbor inspect corrupt": every sub-command
# does the damage it says (seen through inspect superblock, dump-tree,
# stat, cat and engine check), and refuses what it must (an image in use,
# bad keys and fields, missing trees and items).  Prints TAP.

# shellcheck source=tests/cli/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MKFS=$top_builddir/mkfs/mkfs.arbor
base=$T/base.img
img=$T/test.img

a() {
	"$ARBOR" -i "$img" "$@"
}

# ti EXPECTED DESCRIPTION ARGS...: t_arbor on the test image.
ti() {
	local want=$1 desc=$2
	shift 2
	t_arbor "$want" "$desc" -i "$img" "$@"
}

# A fresh copy of the base image.
fresh() {
	cp --sparse=always "$base" "$img"
}

info_generation() {
	a engine info | awk '$1 == "generation" { print $2; exit }'
}

# The address of a tree's root node.
root_node() {
	a inspect dump-tree "$1" | awk 'NR == 2 { print $2; exit }'
}

make_base() {
	t_rc 0 "mkfs a small image" "$MKFS" -q -n 4096 -s 8M "$base"
	printf 'hello\n' >"$T/readme"
	seq 1 4000 >"$T/numbers"
	img=$base
	t_arbor 0 "mkdir /docs" -i "$base" mkdir /docs
	t_arbor 0 "put a small file" -i "$base" put "$T/readme" /docs/readme
	t_arbor 0 "put a file of 5 sectors" -i "$base" put "$T/numbers" /docs/numbers
	img=$T/test.img
}

# ---- help ------------------------------------------------------------------------

test_help() {
	ti 0 "inspect corrupt --help" inspect corrupt --help
	t_grep "the group lists its commands" '^  arbor -i IMAGE inspect corrupt refcount'
	for c in slot node item refcount data; do
		ti 0 "inspect corrupt $c --help" inspect corrupt "$c" --help
		t_grep "$c --help shows its synopsis" "^usage: arbor -i IMAGE inspect corrupt $c"
	done
	ti 0 "inspect --help lists corrupt" inspect --help
	t_grep "inspect --help names corrupt" 'inspect corrupt COMMAND'
	t_arbor 2 "corrupt needs a command" -i "$base" inspect corrupt
	t_arbor 2 "corrupt slot needs an image" inspect corrupt slot --all
}

# ---- slot ------------------------------------------------------------------------

test_slot() {
	local g
	fresh
	g=$(info_generation)
	ti 0 "flip a byte of an old slot" inspect corrupt slot --generation $((g - 1))
	t_grep "it says what it did" "generation $((g - 1))\): flipped byte 4095; checksum now wrong"
	ti 0 "inspect superblock" inspect superblock
	t_grep "copy 0 of that slot is bad" "^copy 0 slot $(((g - 1) % 4)) .*bad checksum \[BAD\]"
	t_grep "copy 1 of it is not" "^copy 1 slot $(((g - 1) % 4)) .*: valid"
	t_grep "mount still uses the newest" "^mount: generation $g "

	ti 0 "set a field of the newest slot everywhere" inspect corrupt slot \
		--generation "$g" --all-copies --field sectors_used=12345
	t_grep "two copies changed" "^copy 1 slot $((g % 4)) .*sectors_used=12345; checksum recomputed"
	ti 0 "inspect superblock" inspect superblock
	t_grep "the slot verifies and holds the value" '^    sectors_used   12345$'
	t_nogrep "the newest slot is not bad" "^copy . slot $((g % 4)) .*\[BAD\]"
	ti 0 "an impossible field, checksum recomputed" inspect corrupt slot --copy 0 \
		--slot $(((g - 2) % 4)) --field nodesize=1000
	ti 0 "inspect superblock" inspect superblock
	t_grep "the slot verifies no more" "^copy 0 slot $(((g - 2) % 4)) .*impossible field \[BAD\]"

	ti 0 "flip a given byte of copy 1 slot 0" inspect corrupt slot --copy 1 --slot 0 --offset 200
	t_grep "the given byte" 'flipped byte 200'
	ti 0 "damage every slot" inspect corrupt slot --all --offset 100
	ti 0 "inspect superblock" inspect superblock
	t_grep "mount fails" '^mount: fails'

	ti 2 "--copy needs --slot" inspect corrupt slot --copy 0
	ti 2 "a slot selection is required" inspect corrupt slot --offset 3
	ti 2 "--all-copies needs --generation" inspect corrupt slot --all --all-copies
	ti 2 "an unknown field" inspect corrupt slot --all --field colour=3
	t_grep "the fields are listed" 'unknown field .colour. \(fields: magic, ' "$ERR"
	ti 2 "a malformed assignment" inspect corrupt slot --all --field generation
	ti 2 "a copy out of range" inspect corrupt slot --copy 4 --slot 0
	ti 2 "an offset out of the slot" inspect corrupt slot --all --offset 4096
	fresh
	ti 1 "no slot holds generation 999" inspect corrupt slot --generation 999
	t_grep "and it says so" 'no superblock slot matches' "$ERR"
}

# ---- node ------------------------------------------------------------------------

test_node() {
	local leaf g
	fresh
	g=$(info_generation)
	leaf=$(root_node 256)
	ti 0 "flip a byte of the subvolume leaf" inspect corrupt node --tree 256
	t_grep "it names the node" "^node $leaf \(tree 256, level 0, generation $g\): flipped byte 4095; checksum now wrong"
	ti 1 "engine check fails" engine check
	t_grep "on the checksum" "node $leaf: checksum mismatch" "$ERR"

	fresh
	ti 0 "swap two keys, checksums recomputed" inspect corrupt node --tree 256 --swap-keys 1 2
	t_grep "the pointers up to the superblock follow" \
		'swapped keys 1 and 2; checksum recomputed, 1 pointers and 2 superblock slots updated'
	ti 1 "engine check finds the structure wrong" engine check
	t_grep "keys out of order" "node $leaf: keys out of order" "$ERR"
	t_nogrep "and no checksum mismatch" 'checksum mismatch' "$ERR"

	fresh
	ti 0 "a node by address, a field" inspect corrupt node "$leaf" --field level=1
	ti 1 "engine check finds the level" engine check
	t_grep "level mismatch" "node $leaf: .*level 1, parent expects .* level 0" "$ERR"

	fresh
	ti 0 "flip a byte of the root tree, given offset, checksum fixed" \
		inspect corrupt node --tree root --offset 40 --fix-csum
	t_grep "root tree node" '\(tree 1, level 0, .*flipped byte 40; checksum recomputed'
	ti 0 "the fsid no longer matches: open falls back" engine check
	t_grep "to the previous commit" "generation $g does not verify; using generation $((g - 1))" "$ERR"

	fresh
	ti 0 "an older commit's leaf" inspect corrupt node --tree 256 --generation $((g - 1))
	t_grep "of that generation" "generation $((g - 1))\): flipped byte"
	ti 0 "the newest commit still checks clean" engine check

	ti 1 "no tree 999" inspect corrupt node --tree 999
	t_grep "says so" '^error: no tree 999' "$ERR"
	ti 1 "no second leaf" inspect corrupt node --tree 256 --nth 1
	t_grep "counts the leaves" 'tree 256 has 1 nodes at level 0' "$ERR"
	ti 1 "not a node" inspect corrupt node 4194304
	t_grep "no tree holds it" 'holds a node at 4194304' "$ERR"
	ti 2 "an unaligned address" inspect corrupt node 4097
	ti 2 "--swap-keys needs two numbers" inspect corrupt node --tree 256 --swap-keys 1
	ti 1 "--swap-keys past the items" inspect corrupt node --tree 256 --swap-keys 0 99
	ti 2 "an unknown node field" inspect corrupt node --tree 256 --field size=1
}

# ---- item ------------------------------------------------------------------------

test_item() {
	fresh
	ti 0 "set the link count through --path" inspect corrupt item --path /docs/readme inode --set nlink=5
	t_grep "the key is printed by name" '^tree 256 item \(258 INODE_ITEM 0\): set nlink=5$'
	ti 0 "stat" stat /docs/readme
	t_grep "stat shows 5 links" '^links +5$'
	ti 0 "engine check: checksums and counts stay right" engine check

	ti 0 "delete a directory entry (both halves)" inspect corrupt item --path /docs/readme dir-entry --delete
	t_grep "the DIR_ITEM" '^tree 256 item \(257 DIR_ITEM [0-9]+\): deleted$'
	t_grep "and the DIR_INDEX" '^tree 256 item \(257 DIR_INDEX 2\): deleted$'
	ti 1 "the name is gone" stat /docs/readme
	ti 0 "dump-tree" inspect dump-tree 256
	t_nogrep "no DIR_INDEX 2 left" 'key \(257 96 2\)'
	t_grep "the inode item stays" 'key \(258 1 0\)'

	ti 0 "insert an orphan item by key" inspect corrupt item --tree 256 2,ORPHAN,258 --insert
	ti 0 "move it" inspect corrupt item --tree 256 2,48,258 --rekey 2,ORPHAN,300
	ti 0 "dump-tree" inspect dump-tree 256
	t_grep "under its new key" 'key \(2 48 300\)'
	t_nogrep "not the old one" 'key \(2 48 258\)'
	ti 0 "overwrite bytes" inspect corrupt item --tree 256 2,ORPHAN,300 --delete
	ti 0 "set bytes of an inode item" inspect corrupt item --tree 256 259,INODE_ITEM,0 --set-bytes 24:07000000
	ti 0 "stat" stat /docs/numbers
	t_grep "the link count is those bytes" '^links +7$'
	ti 0 "an extent field by --path" inspect corrupt item --path /docs/numbers extent 8192 --set disk_bytenr=4096
	t_grep "the extent covering the offset" '^tree 256 item \(259 EXTENT_DATA 0\): set disk_bytenr=4096$'

	fresh
	ti 0 "a root item, in place" inspect corrupt item --tree root 256,ROOT_ITEM,0 --set ref_nodes=9
	t_grep "in place" 'set ref_nodes=9 in place \(checksums recomputed\)$'
	ti 1 "engine check sees the totals" engine check
	t_grep "tree totals" '^tree totals +1$'
	t_grep "and only them" '^bad nodes +0$'

	ti 2 "a bad key" inspect corrupt item --tree 256 1,BOGUS,0 --delete
	ti 2 "a key of two parts" inspect corrupt item --tree 256 1,1 --delete
	ti 2 "no action" inspect corrupt item --tree 256 1,1,0
	ti 2 "two actions" inspect corrupt item --tree 256 258,1,0 --delete --rekey 1,1,1
	ti 2 "--tree and --path" inspect corrupt item --tree 256 --path /docs inode --delete
	ti 2 "an unknown field of the type" inspect corrupt item --path /docs inode --set colour=1
	ti 2 "an unknown item kind" inspect corrupt item --path /docs socks --delete
	ti 2 "the space tree" inspect corrupt item --tree space 0,SM_CHUNK,0 --delete
	ti 2 "root-tree items only in place" inspect corrupt item --tree root 256,ROOT_ITEM,0 --delete
	ti 1 "a missing tree" inspect corrupt item --tree 999 1,1,0 --delete
	t_grep "no tree" '^error: no tree 999' "$ERR"
	ti 1 "a missing item" inspect corrupt item --tree 256 999,INODE_ITEM,0 --delete
	t_grep "no item" 'tree 256 has no item \(999 INODE_ITEM 0\)' "$ERR"
	ti 1 "a missing path" inspect corrupt item --path /nothing inode --delete
	ti 1 "an existing item is not inserted" inspect corrupt item --tree 256 259,INODE_ITEM,0 --insert
}

# ---- refcount and data ---------------------------------------------------------

test_refcount() {
	local leaf
	fresh
	leaf=$(root_node 256)
	ti 0 "count a node twice" inspect corrupt refcount "$leaf" +1
	t_grep "it says so" "^1 sectors at $leaf: count \+1 \(was 1\)$"
	ti 1 "engine check" engine check
	t_grep "the count is wrong" "sector $leaf: space map counts 2, references 1" "$ERR"
	ti 0 "back to one" inspect corrupt refcount "$leaf" -1
	ti 0 "engine check is clean again" engine check
	ti 0 "count it free" inspect corrupt refcount "$leaf" -1
	ti 1 "engine check" engine check
	t_grep "in use but free" '^missing +1$'
	ti 1 "a count does not go below zero" inspect corrupt refcount 4194304 -1
	fresh
	ti 0 "leak 3 sectors" inspect corrupt refcount --alloc 3
	ti 1 "engine check" engine check
	t_grep "3 leaked" '^leaked +3$'
	ti 2 "DELTA is needed" inspect corrupt refcount "$leaf"
	ti 2 "an unaligned sector" inspect corrupt refcount 100 +1
	ti 2 "an unknown option" inspect corrupt refcount --colour 1
}

test_data() {
	fresh
	ti 0 "cat before" cat /docs/numbers
	ti 0 "flip a data byte" inspect corrupt data /docs/numbers --offset 5000
	t_grep "the disk byte is named" '^/docs/numbers: flipped the byte at offset 5000 \(disk byte [0-9]+ '
	ti 1 "cat fails" cat /docs/numbers
	ti 0 "engine check does not read data" engine check
	ti 1 "inline data is refused" inspect corrupt data /docs/readme
	t_grep "and why" 'inline' "$ERR"
	ti 1 "past the end" inspect corrupt data /docs/numbers --offset 99999
	ti 1 "a directory" inspect corrupt data /docs
	ti 2 "a relative path" inspect corrupt data docs/numbers
}

# ---- an image in use --------------------------------------------------------------

test_in_use() {
	fresh
	exec 9<"$img"
	if ! flock -n -x 9 2>/dev/null; then
		exec 9<&-
		t_result 0 "# SKIP flock(1) is not available"
		return
	fi
	ti 1 "a locked image is refused (slot)" inspect corrupt slot --all
	t_grep "as in use" 'refusing to damage .*: it is in use' "$ERR"
	ti 1 "a locked image is refused (item)" inspect corrupt item --path /docs inode --delete
	t_grep "as in use" 'refusing to damage .*: it is in use' "$ERR"
	exec 9<&-
	ti 0 "nothing was changed" engine check
	ti 0 "stat /docs" stat /docs
}

make_base
test_help
test_slot
test_node
test_item
test_refcount
test_data
test_in_use
t_done
