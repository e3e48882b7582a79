"""cinderblock tests: unit."""
