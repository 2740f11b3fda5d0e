subvolume 256: inode 257: extent at offset 1044480 overlaps the extent before it (which ends at 1048576)
subvolume 256: inode 257: removed the extent at offset 1044480
subvolume 256: inode 257: 1150976 bytes of data counted, but its extents hold 1048576
subvolume 256: inode 257: set the data byte count to 1048576
image: errors fixed, 1 files, 1 directories in 1 subvolumes, 259/2024 sectors used, generation 5
exit 1
