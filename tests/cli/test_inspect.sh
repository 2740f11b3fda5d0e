#!/bin/bash
# tests/cli/test_inspect.sh - the arbor tool end to end on a small image:
# engine commands, inspect superblock / dump-tree, usage and error exits,
# a damaged superblock slot.  Prints TAP.

# shellcheck source=tests/cli/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

img=$T/test.img
missing=$T/missing.img
fill_count=$(awk -v s="$ARBOR_TEST_SCALE" 'BEGIN { n = int(3000 * s); print (n < 1 ? 1 : n) }')
echo "# seed $ARBOR_TEST_SEED, scale $ARBOR_TEST_SCALE"

a() {
	"$ARBOR" -i "$img" "$@"
}

# Field of "engine info" (the text after the name), e.g. info_field generation.
info_field() {
	a engine info | awk -v f="$1" '$1 == f { print $2; exit }'
}

# ---- format, put / get / del ------------------------------------------------

test_format() {
	t_arbor 0 "format a 16 MiB image" -i "$img" engine format -s 16M -n 4096 -L test
	t_grep "format reports the new filesystem" '^formatted .*nodesize 4096'
	t_equal "the image file is 16 MiB" "$(stat -c %s "$img")" 16777216
	t_arbor 0 "engine info" -i "$img" engine info
	t_grep "info shows generation 1" '^generation +1$'
	t_grep "info shows the label" '^label +"test"$'
}

test_put_get_del() {
	t_arbor 0 "create a tree" -i "$img" engine create-tree
	tree=$(cat "$OUT")
	t_equal "the first user tree is 256" "$tree" 256
	t_arbor 0 "put an item" -i "$img" engine put "$tree" 5 1 7 hello
	t_arbor 0 "get it back" -i "$img" engine get "$tree" 5 1 7
	t_equal "get returns the value" "$(cat "$OUT")" hello
	t_arbor 0 "put replaces the value" -i "$img" engine put "$tree" 5 1 7 world
	t_arbor 0 "get the new value as hex" -i "$img" engine get --hex "$tree" 5 1 7
	t_grep "hexdump shows the new value" '77 6f 72 6c 64'
	t_arbor 0 "delete the item" -i "$img" engine del "$tree" 5 1 7
	t_arbor 1 "get after delete fails" -i "$img" engine get "$tree" 5 1 7
	t_grep "and says why" '^error: no such item' "$ERR"
	t_arbor 1 "delete of a missing item fails" -i "$img" engine del "$tree" 5 1 7
}

# ---- fill, clone, drop, check --------------------------------------------------

test_fill() {
	t_arbor 0 "fill $fill_count random items" -i "$img" engine fill "$tree" "$fill_count" \
		--seed "$ARBOR_TEST_SEED"
	t_grep "fill reports the count" "^inserted $fill_count items"
	t_arbor 0 "put a marker item" -i "$img" engine put "$tree" 42 2 0 original
}

test_clone_drop() {
	t_arbor 0 "clone the tree" -i "$img" engine clone "$tree"
	clone=$(cat "$OUT")
	t_equal "the clone gets the next id" "$clone" 257
	t_arbor 0 "the clone holds the marker" -i "$img" engine get "$clone" 42 2 0
	t_equal "with the original value" "$(cat "$OUT")" original
	t_arbor 0 "modify the clone" -i "$img" engine put "$clone" 42 2 0 changed
	t_arbor 0 "read the source" -i "$img" engine get "$tree" 42 2 0
	t_equal "the source is unchanged" "$(cat "$OUT")" original
	t_arbor 0 "read the clone" -i "$img" engine get "$clone" 42 2 0
	t_equal "the clone has the change" "$(cat "$OUT")" changed
	t_arbor 0 "list the trees" -i "$img" engine list
	t_grep "list shows the clone with its parent" "^$clone +$tree "
	t_arbor 0 "check after clone" -i "$img" engine check
	t_grep "check is clean" '^clean$'
	t_arbor 0 "drop the clone" -i "$img" engine drop "$clone"
	t_arbor 0 "list after drop" -i "$img" engine list
	t_nogrep "the clone is gone" "^$clone "
	t_arbor 1 "the dropped tree cannot be read" -i "$img" engine get "$clone" 42 2 0
	t_arbor 0 "check after drop" -i "$img" engine check
	t_grep "check is still clean" '^clean$'
}

# ---- inspect --------------------------------------------------------------------

# The generation of the slot marked "<== mount" in $OUT.
mount_generation() {
	awk '/^copy /{m = /<== mount/} m && $1 == "generation" {print $2; exit}' "$OUT"
}

# The highest generation among valid slots in $OUT.
newest_valid_generation() {
	awk '/^copy /{v = / valid( |$)/ && !/\[BAD\]/}
		v && $1 == "generation" && $2 > max {max = $2}
		END {print max + 0}' "$OUT"
}

test_inspect_superblock() {
	local gen slots
	gen=$(info_field generation)
	t_arbor 0 "inspect superblock" -i "$img" inspect superblock
	slots=$(awk '/^copy [0-9]+ slot/ {n[$2]++} END {for (c in n) printf "%s ", n[c]}' "$OUT")
	t_grep "the image has two copies" '2 superblock copies'
	t_equal "every copy shows 4 slots" "$slots" "4 4 "
	t_equal "mount picks the newest generation" "$(mount_generation)" "$gen"
	t_equal "the newest valid slot holds it" "$(newest_valid_generation)" "$gen"
	t_grep "the summary names it" "^mount: generation $gen "
}

test_dump_tree() {
	t_arbor 0 "dump all trees" -i "$img" inspect dump-tree
	t_grep "the root tree is dumped" '^tree 1 \(root tree\)$'
	t_grep "the space tree is dumped" '^tree 2 \(space tree\)$'
	t_grep "the user tree is dumped" "^tree $tree$"
	t_grep "root items are decoded" "key \\($tree ROOT_ITEM 0\\)"
	t_grep "space map chunks are summarised" 'chunk [0-9]+: sectors [0-9]+\.\.[0-9]+, [0-9]+ used'
	t_grep "internal nodes are shown" '^node [0-9]+ level [1-9]'
	t_grep "leaves are indented under them" '^ +leaf [0-9]+ level 0'
	t_arbor 0 "dump the root tree" -i "$img" inspect dump-tree 1
	t_grep "root item fields are printed" 'root bytenr [0-9]+ gen [0-9]+ level'
	t_arbor 1 "dump of a missing tree fails" -i "$img" inspect dump-tree 999
	t_grep "with a message" '^error: no tree 999' "$ERR"
}

# ---- usage and errors --------------------------------------------------------------

test_usage() {
	t_arbor 2 "no command is a usage error" -i "$img"
	t_grep "which shows the synopsis" '^usage: arbor' "$ERR"
	t_arbor 2 "unknown command" -i "$img" frobnicate
	t_arbor 2 "unknown sub-command" -i "$img" engine frobnicate
	t_arbor 2 "unknown global option" --frobnicate
	t_arbor 2 "unknown command option" -i "$img" engine get --frobnicate 256 1 1 1
	t_arbor 2 "missing arguments" -i "$img" engine put 256 1
	t_arbor 2 "extra arguments" -i "$img" inspect superblock extra
	t_arbor 2 "invalid key type" -i "$img" engine get 256 1 NOT_A_TYPE 1
	t_arbor 2 "invalid node size" -i "$img" engine format -n 5000
	t_arbor 2 "no image given" engine info
	t_grep "usage errors start with error:" '^error: no image given' "$ERR"
	t_arbor 0 "--help" --help
	t_grep "help documents the exit status" 'Exit status: 0 .* 1 .* 2 '
	t_arbor 0 "command --help needs no image" engine format --help
	t_grep "command help lists the options" '^ +-n NODESIZE'
	t_arbor 0 "group --help" inspect --help
	t_grep "group help lists the commands" 'inspect dump-tree'
}

test_missing_image() {
	t_arbor 1 "a missing image is a runtime error" -i "$missing" engine info
	t_grep "with a message naming the file" "^error: cannot open $missing: No such file" "$ERR"
	t_arbor 1 "inspect of a missing image fails too" -i "$missing" inspect superblock
}

# ---- a damaged superblock slot ----------------------------------------------------

# garble OFFSET LENGTH: overwrite bytes of the image with 'x'.
garble() {
	head -c "$2" /dev/zero | tr '\0' x |
		dd of="$img" bs=1 seek="$1" conv=notrunc status=none
}

test_bad_slot() {
	local gen slot off
	gen=$(info_field generation)
	slot=$((gen % 4))
	off=$((65536 + 4096 * slot))
	# keep checksum and magic (bytes 0..39), damage the body
	garble $((off + 256)) 512
	t_arbor 0 "inspect superblock with a damaged slot" -i "$img" inspect superblock
	t_grep "the damaged slot is reported bad" "^copy 0 slot $slot offset $off .*\\[BAD\\]"
	t_arbor 0 "the image still opens" -i "$img" engine get "$tree" 42 2 0
	t_equal "and reads the data" "$(cat "$OUT")" original
	# now the whole slot, magic included
	garble "$off" 4096
	t_arbor 0 "inspect superblock with a garbage slot" -i "$img" inspect superblock
	t_nogrep "the garbage slot is not valid" "^copy 0 slot $slot offset $off .*: valid"
	t_arbor 0 "the image still opens" -i "$img" engine info
	t_arbor 0 "a new commit works" -i "$img" engine put "$tree" 43 2 0 after
	t_arbor 0 "check after the damage" -i "$img" engine check
	t_grep "check is clean" '^clean$'
}

test_format
test_put_get_del
test_fill
test_clone_drop
test_inspect_superblock
test_dump_tree
test_usage
test_missing_image
test_bad_slot
t_done
