"""cinderblock tests: unit/ (cores called directly), e2e/ (real processes), tui/ (the dashboard)."""
