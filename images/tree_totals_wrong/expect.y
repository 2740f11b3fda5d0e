tree 256: holds 1 nodes and 5 data sectors, counts 9 and 5
1 trees count their referenced space wrong
referenced space of the trees recounted
image: errors fixed, 2 files, 3 directories in 1 subvolumes, 8/2024 sectors used, generation 8
exit 1
