"""cinderblock.tui.widgets."""
