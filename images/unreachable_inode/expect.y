subvolume 256: inode 258: link count 1, but no name refers to it
subvolume 256: inode 258: reattached as /lost+found/#258
subvolume 256: inode 257: directory size 16, but its entries' names add up to 10
subvolume 256: inode 257: set the size to 10
subvolume 256: created /lost+found (inode 261)
image: errors fixed, 2 files, 3 directories in 1 subvolumes, 8/2024 sectors used, generation 10
exit 1
