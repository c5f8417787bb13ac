"""The node agent: one per node (thousands per process in hollow mode). See agent.py."""
