"""cinderblock: bench."""
