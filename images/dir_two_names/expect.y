subvolume 256: inode 260: directory has a second name 'sub' (index 4) in directory 257
subvolume 256: inode 257: removed the entry 'sub'
subvolume 256: inode 256: directory link count 3, but it has 2 subdirectories
subvolume 256: inode 256: set the link count to 4
subvolume 256: inode 257: directory link count 3, but it has 0 subdirectories
subvolume 256: inode 257: set the link count to 2
subvolume 256: inode 257: directory size 16, but its entries' names add up to 13
subvolume 256: inode 257: set the size to 13
subvolume 256: the subvolume counts 6 inodes, but holds 5
subvolume 256: set the inode count to 5
image: errors fixed, 2 files, 3 directories in 1 subvolumes, 8/2024 sectors used, generation 12
exit 1
