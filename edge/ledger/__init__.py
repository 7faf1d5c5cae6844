"""The kitchen's purchase ledger (进货查验记录): deliveries typed in, or filled from a market
stall's ticket scanned at the door; each becomes a ``purchase`` event."""
