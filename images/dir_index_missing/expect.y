subvolume 256: inode 257: entry 'readme' (index 2) has no DIR_INDEX item
subvolume 256: inode 257: recreated the DIR_INDEX item of 'readme'
image: errors fixed, 2 files, 3 directories in 1 subvolumes, 8/2024 sectors used, generation 9
exit 1
