"""Patrols (巡查): tasks given to inspectors or service firms, checklists as data, results
item by item, and the hazards (隐患) a failed item raises into the alerts' rectification loop."""
