"""small-writes: many small creations and deletions in directories of the lower layer.

In each of DIRS directories wNN (which hold 50 lower files lNNN), create 100
new files nNNN, then delete 50 names: 25 of the new files and 25 lower files
(so an overlay must write whiteouts). With 50 directories: 5,000 files created,
2,500 deleted, half of them names that exist in the lower layer.
"""

import os
import sys

NEW_PER_DIR = 100
DELETED_PER_DIR = 25  # of the new files, and as many of the lower ones


def main(view, dirs):
    for d in range(dirs):
        base = os.path.join(view, f"w{d:02}")
        for i in range(NEW_PER_DIR):
            with open(os.path.join(base, f"n{i:03}"), "w") as fh:
                fh.write("x")
    for d in range(dirs):
        base = os.path.join(view, f"w{d:02}")
        for i in range(DELETED_PER_DIR):
            os.unlink(os.path.join(base, f"n{2 * i:03}"))
            os.unlink(os.path.join(base, f"l{2 * i:03}"))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
