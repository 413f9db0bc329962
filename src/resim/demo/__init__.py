"""The demo: fictional brands, generated data, the seed, what its help shows."""
