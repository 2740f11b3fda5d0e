superblock copy 0 slot 1 (offset 69632): bad checksum
rewrote every superblock slot
image: errors fixed, 2 files, 3 directories in 1 subvolumes, 8/2024 sectors used, generation 11
exit 1
