"""`python -m contrasat`: the same as the `contrasat` command."""

from .cli import exit_process, main

exit_process(main())
