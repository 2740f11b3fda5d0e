subvolume 256: inode 259: 4096 bytes of data counted, but its extents hold 20480
subvolume 256: inode 259: set the data byte count to 20480
image: errors fixed, 2 files, 3 directories in 1 subvolumes, 8/2024 sectors used, generation 9
exit 1
