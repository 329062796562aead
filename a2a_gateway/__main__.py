"""python -m a2a_gateway runs the command line."""

from a2a_gateway.cli import main

main()
