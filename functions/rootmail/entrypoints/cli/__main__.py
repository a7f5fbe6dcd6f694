"""`python -m rootmail.entrypoints.cli`: the `rootmail` command."""

import sys

from rootmail.entrypoints.cli import main

sys.exit(main())
