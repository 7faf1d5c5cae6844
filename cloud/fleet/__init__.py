"""Over-the-air updates from the cloud: the fleet key, the files boxes fetch, rollouts.
See docs/fleet.md."""
