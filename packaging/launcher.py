"""Entry script of the frozen build: run ``app.__main__.main`` as a module of the ``app`` package.

PyInstaller executes its entry script as a top-level ``__main__`` with no parent package, so the script
itself must not be a package module; importing ``app.__main__`` from here keeps the app's imports (absolute
or relative) working exactly as under ``python -m app``.
"""

import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()  # must run first in a frozen child process started by multiprocessing
    from app.__main__ import main

    sys.exit(main())
