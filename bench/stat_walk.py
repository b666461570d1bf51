"""stat-walk: os.walk over a tree and os.stat of every file in it."""

import os
import sys


def main(top):
    count = 0
    for root, _dirs, files in os.walk(top):
        for name in files:
            os.stat(os.path.join(root, name))
            count += 1
    if count == 0:
        sys.exit(f"stat_walk.py: no file found under {top}")


if __name__ == "__main__":
    main(sys.argv[1])
