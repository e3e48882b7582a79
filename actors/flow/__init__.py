"""cinderblock.actors.flow."""
