"""cinderblock.protocol.wire."""
