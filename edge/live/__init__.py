"""Live views on demand: a camera's stream leaves the box only while somebody watches."""
