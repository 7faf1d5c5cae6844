"""Device profiles as data (scales, printers, models, boxes, cameras): TOML files, no code.

Installed as the package ``shian_profiles``; the code finds them with ``shared.assets``.
"""
