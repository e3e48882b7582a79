"""cinderblock.actors.quota."""
