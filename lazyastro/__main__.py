import sys

from lazyastro.cli.main import main

sys.exit(main())
