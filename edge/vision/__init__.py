"""The kitchen: cameras, motion gate, detector, rules, camera health, evidence."""
