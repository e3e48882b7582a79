"""cinderblock.actors.cli."""
