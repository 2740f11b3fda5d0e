subvolume 256: inode 258: link count 3, but 1 name refers to it
subvolume 256: inode 258: set the link count to 1
image: errors fixed, 2 files, 3 directories in 1 subvolumes, 8/2024 sectors used, generation 9
exit 1
