subvolume 256: inode 257: directory size 999, but its entries' names add up to 16
subvolume 256: inode 257: set the size to 16
image: errors fixed, 2 files, 3 directories in 1 subvolumes, 8/2024 sectors used, generation 9
exit 1
