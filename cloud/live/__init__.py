"""Live views of public kitchen cameras, on demand, through a media server (docs/live.md)."""
