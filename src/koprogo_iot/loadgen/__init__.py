"""The load generator: a fleet of simulated meters (`fleet`) and a cheap QoS 1 publisher (`publisher`)."""
