"""cinderblock tests: e2e."""
