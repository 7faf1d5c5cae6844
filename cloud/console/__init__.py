"""The supervisors' console (``/console``): their district's alerts, worked from a page."""
