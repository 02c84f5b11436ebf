"""``python -m lazyastro``: the ``lazyastro`` command."""

import sys

from lazyastro.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
