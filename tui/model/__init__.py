"""cinderblock.tui.model."""
