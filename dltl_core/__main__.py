"""``python -m dltl_core`` entry point."""

import sys

from dltl_core.cli import main

if __name__ == "__main__":
    sys.exit(main())
