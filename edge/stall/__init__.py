"""The market stall: scale, catalog, tickets, printer."""
