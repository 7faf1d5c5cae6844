"""Alerts: raised from stored events, moved along by supervisors and businesses, forwarded."""
