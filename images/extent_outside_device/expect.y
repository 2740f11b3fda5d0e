node 184320: extent item (259 108 0) names sectors outside allocatable space
sector 131072: space map counts 1, references 0
sector 135168: space map counts 1, references 0
sector 139264: space map counts 1, references 0
sector 143360: space map counts 1, references 0
sector 147456: space map counts 1, references 0
space map: 5 sectors counted wrong (5 leaked, 0 in use but counted free)
space map set to what the trees reference
subvolume 256: inode 259: extent at offset 0 lies outside the device's allocatable space (byte 1073741824)
subvolume 256: inode 259: removed the extent at offset 0
subvolume 256: inode 259: 20480 bytes of data counted, but its extents hold 0
subvolume 256: inode 259: set the data byte count to 0
image: errors fixed, 2 files, 3 directories in 1 subvolumes, 3/2024 sectors used, generation 9
exit 1
