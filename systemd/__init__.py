"""systemd unit templates and the Mosquitto config: text files, no code.

Installed as the package ``shian_units`` (a top-level ``systemd`` package would shadow
python-systemd); the code finds them with ``shared.assets``.
"""
