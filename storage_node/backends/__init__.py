"""cinderblock: storage_node/backends."""
