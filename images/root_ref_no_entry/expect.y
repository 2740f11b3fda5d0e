subvolume 256: the ROOT_REF of subvolume 257 names no link of this subvolume
subvolume 256: removed the ROOT_REF and ROOT_BACKREF of subvolume 257
subvolume 256: inode 256: directory link count 4, but it has 1 subdirectories
subvolume 256: inode 256: set the link count to 3
subvolume 256: inode 256: directory size 7, but its entries' names add up to 4
subvolume 256: inode 256: set the size to 4
image: errors fixed, 2 files, 4 directories in 2 subvolumes, 9/2024 sectors used, generation 10
exit 1
