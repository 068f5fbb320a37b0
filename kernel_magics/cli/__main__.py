"""`python -m kernel_magics.cli`: the `ship` command line."""

from . import main

main()
