node 172032: checksum mismatch (stored 06cfa6e1, computed abb2f5b0)
generation 7: 1 tree nodes do not read back
node 159744: checksum mismatch (stored 62d8e7b9, computed cfa5b4e8)
generation 6: 1 tree nodes do not read back
node 126976: checksum mismatch (stored 966cac10, computed 3b11ff41)
generation 5: 1 tree nodes do not read back
node 114688: checksum mismatch (stored 8688a258, computed 2bf5f109)
generation 4: 1 tree nodes do not read back
no commit in the superblock ring has intact trees: the damaged subtrees cannot be repaired
image: errors left, 0 files, 0 directories in 0 subvolumes, 0/0 sectors used, generation 0
image: 1 problems left uncorrected
exit 4
