"""`koprogo-iot bacnet`: the Siemens BMS integration, polling BACnet/IP controllers and publishing native readings."""
