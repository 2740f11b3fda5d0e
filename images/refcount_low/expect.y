sector 172032: space map counts 0, references 1
space map: 1 sectors counted wrong (0 leaked, 1 in use but counted free)
space map set to what the trees reference
image: errors fixed, 2 files, 3 directories in 1 subvolumes, 8/2024 sectors used, generation 9
exit 1
