"""Sensors on RS-485 Modbus RTU: fridges, freezers, cold rooms and disinfection cabinets,
read through register maps kept as data (``firmware_profiles/sensors``)."""
