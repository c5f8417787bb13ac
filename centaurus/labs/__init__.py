"""Lab backends that realise a topology spec (``centaurus.labs``)."""
