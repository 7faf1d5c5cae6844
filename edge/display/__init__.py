"""The box's local screens: the canteen hall screen and the stall screen (no CDN, no internet)."""
