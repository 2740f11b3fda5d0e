subvolume 256: inode 258: is on the orphan list, but has link count 1
subvolume 256: inode 258: removed it from the orphan list
image: errors fixed, 2 files, 3 directories in 1 subvolumes, 8/2024 sectors used, generation 9
exit 1
