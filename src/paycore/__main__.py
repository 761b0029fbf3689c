"""``python -m paycore``: the ``paycore`` command, for an environment whose scripts folder is not on ``PATH``."""

from __future__ import annotations

import sys

from paycore.cli import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m paycore"))
