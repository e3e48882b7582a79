"""cinderblock.actors.exporter: Prometheus metrics from the event stream and statistics."""
