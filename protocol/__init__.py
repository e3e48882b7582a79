"""cinderblock: protocol."""
