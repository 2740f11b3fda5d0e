superblock copy 1 slot 0 (offset 8323072): bad checksum
superblock copy 1 slot 1 (offset 8327168): bad checksum
superblock copy 1 slot 2 (offset 8331264): bad checksum
superblock copy 1 slot 3: generation 7 was being written when the writer stopped (an interrupted commit: nothing it promised is lost)
rewrote every superblock slot
image: errors fixed, 2 files, 3 directories in 1 subvolumes, 8/2024 sectors used, generation 11
exit 1
