"""cinderblock.actors.gateway."""
