"""The hosts app's views, one module per area: fleet.py (hosts and containers),
vsphere.py (vCenters and VMs), changes.py (configuration changes)."""
