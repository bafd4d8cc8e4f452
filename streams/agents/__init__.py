"""Faust agents: thin loops that call the pure logic and produce its results."""
