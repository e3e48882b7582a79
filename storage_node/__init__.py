"""cinderblock: storage_node."""
