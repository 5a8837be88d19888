"""The read-write FUSE mount (pyfuse3 on trio): inodes over immutable nodes, committed as it goes."""
