superblock copy 0 slot 3: generation 7 was being written when the writer stopped (an interrupted commit: nothing it promised is lost)
superblock copy 1 slot 3: generation 7 was being written when the writer stopped (an interrupted commit: nothing it promised is lost)
image: clean, 2 files, 3 directories in 1 subvolumes, 8/2024 sectors used, generation 10
exit 0
