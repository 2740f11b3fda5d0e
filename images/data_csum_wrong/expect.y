subvolume 256: inode 259: extent at offset 0: 1 of its 5 sectors do not match their checksums (the first at byte 135168 of the device)
image: errors left, 2 files, 3 directories in 1 subvolumes, 8/2024 sectors used, generation 8
image: 1 problems left uncorrected
exit 4
