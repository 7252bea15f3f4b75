"""The roles of Deal Scout (run, leader, worker, api) and the command line: the one package that wires every layer."""
