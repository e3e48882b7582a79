"""cinderblock.protocol.messages."""
