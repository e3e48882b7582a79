"""cinderblock.actors.scheduler."""
