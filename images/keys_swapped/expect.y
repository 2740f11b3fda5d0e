node 172032: keys out of order
generation 7: 1 tree nodes do not read back
commit 7 of 2023-11-14 22:13:20 UTC is damaged: going back to commit 6 of 2023-11-14 22:13:20 UTC loses what it changed
went back to commit 6 of 2023-11-14 22:13:20 UTC
image: errors fixed, 2 files, 3 directories in 1 subvolumes, 8/2024 sectors used, generation 11
exit 1
