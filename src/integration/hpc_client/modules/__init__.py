"""One module per processing job: pure functions from typed input to typed result (docs/hpc-*.md)."""
