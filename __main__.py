"""`python -m contrasat`: the same as the `contrasat` command."""

import sys

from .cli import main

sys.exit(main())
