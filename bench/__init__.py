"""Load scenarios for pushgw (`pushgw bench`)."""
