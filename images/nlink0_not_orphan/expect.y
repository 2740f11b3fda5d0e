subvolume 256: inode 258: has no name and link count 0, but is not on the orphan list
subvolume 256: inode 258: freed the inode
subvolume 256: inode 257: directory size 16, but its entries' names add up to 10
subvolume 256: inode 257: set the size to 10
image: errors fixed, 2 files, 3 directories in 1 subvolumes, 8/2024 sectors used, generation 11
exit 1
