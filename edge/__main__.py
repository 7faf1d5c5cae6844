"""``python -m edge``: the same as ``shian-edge`` (how a release is started)."""

from edge.cli import main

main()
