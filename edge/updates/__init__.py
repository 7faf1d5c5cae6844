"""Over-the-air updates on the box: taken (``receive``), applied and rolled back at start
(``launch``), committed once the agent is healthy (``trial``). See docs/fleet.md."""
