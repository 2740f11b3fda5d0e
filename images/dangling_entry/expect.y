subvolume 256: inode 258: 2 items, but no valid inode item
subvolume 256: inode 258: removed the items
subvolume 256: inode 257: entry 'readme' (index 2) names inode 258, which does not exist
subvolume 256: inode 257: removed the entry 'readme'
subvolume 256: inode 257: directory size 16, but its entries' names add up to 10
subvolume 256: inode 257: set the size to 10
subvolume 256: the subvolume counts 5 inodes, but holds 4
subvolume 256: set the inode count to 4
image: errors fixed, 1 files, 3 directories in 1 subvolumes, 8/2024 sectors used, generation 9
exit 1
