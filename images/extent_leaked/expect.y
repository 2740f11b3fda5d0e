sector 184320: space map counts 1, references 0
sector 188416: space map counts 1, references 0
sector 192512: space map counts 1, references 0
space map: 3 sectors counted wrong (3 leaked, 0 in use but counted free)
space map set to what the trees reference
image: errors fixed, 2 files, 3 directories in 1 subvolumes, 8/2024 sectors used, generation 9
exit 1
