"""`python -m segment_sync.cli`: the same as the `segment-sync` command."""

from segment_sync.cli.main import main

main()
