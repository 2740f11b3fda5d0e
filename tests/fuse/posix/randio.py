#!/usr/bin/env python3
"""tests/fuse/posix/randio.py MNTFILE HOSTFILE SEED [OPS]

Random pwrite, pread and ftruncate on a file in the mount and on a host
copy, in step; every pread must agree.  Exit 0, or a message naming the
first operation that differs."""
import os
import random
import sys


def main():
    mnt, host, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
    ops = int(sys.argv[4]) if len(sys.argv) > 4 else 600
    rnd = random.Random(seed)
    fm = os.open(mnt, os.O_RDWR | os.O_CREAT, 0o644)
    fh = os.open(host, os.O_RDWR | os.O_CREAT, 0o644)
    for i in range(ops):
        span = rnd.choice([4096, 65536, 8 << 20])
        off = rnd.randrange(span)
        if rnd.random() < 0.6:
            data = rnd.randbytes(rnd.randint(1, 70000))
            if os.pwrite(fm, data, off) != len(data):
                sys.exit("op %d: short pwrite(%d, %d)" % (i, len(data), off))
            os.pwrite(fh, data, off)
        else:
            n = rnd.randint(1, 70000)
            if os.pread(fm, n, off) != os.pread(fh, n, off):
                sys.exit("op %d: pread(%d, %d) differs" % (i, n, off))
        if rnd.random() < 0.02:
            n = rnd.randrange(8 << 20)
            os.ftruncate(fm, n)
            os.ftruncate(fh, n)
    os.close(fm)
    os.close(fh)


main()
