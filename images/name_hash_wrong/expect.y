subvolume 256: inode 257: entry 'readme' is filed under the wrong hash
subvolume 256: inode 257: removed the entry 'readme'
subvolume 256: inode 257: entry 'readme' (index 2) has no DIR_ITEM
subvolume 256: inode 257: recreated the DIR_ITEM of 'readme'
image: errors fixed, 2 files, 3 directories in 1 subvolumes, 8/2024 sectors used, generation 9
exit 1
