"""cinderblock: tui."""
