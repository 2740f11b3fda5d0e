no superblock slot verifies: not an Arbor filesystem, or every copy of the superblock is damaged
exit 8
