"""Peers the shop is measured against in ``make bench``: the same saga on other durable-execution
tools, on the same machine, database server and number of worker processes."""
