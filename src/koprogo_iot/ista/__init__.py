"""ISTA readings: import the syndic's CSV files and cross-check them against the IoT meters (docs/ista-import.md)."""
