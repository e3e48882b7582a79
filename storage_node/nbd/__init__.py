"""cinderblock.storage_node.nbd."""
