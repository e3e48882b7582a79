"""cinderblock tests: tui."""
