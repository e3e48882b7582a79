"""cinderblock.actors.runtime."""
