"""``python -m agents_examples.demo``: see agents_examples.demo.cli."""

from agents_examples.demo.cli import main

main()
