superblock copy 0 slot 2 (offset 73728): impossible field
superblock copy 1 slot 2 (offset 8331264): impossible field
rewrote every superblock slot
image: errors fixed, 2 files, 3 directories in 1 subvolumes, 8/2024 sectors used, generation 11
exit 1
