"""`python -m nmt` is the `nmt` command."""

import sys

from nmt.cli import main

if __name__ == "__main__":  # not when a worker process of `nmt prepare` imports it
    sys.exit(main())
