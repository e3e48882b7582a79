"""cinderblock: actors."""
