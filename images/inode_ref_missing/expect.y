subvolume 256: inode 258: no back-reference to its name 'readme' (index 2) in directory 257
subvolume 256: inode 258: added the back-reference to 'readme'
image: errors fixed, 2 files, 3 directories in 1 subvolumes, 8/2024 sectors used, generation 9
exit 1
