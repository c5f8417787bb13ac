"""Bring-up of the builtin control plane: process supervision of the stores, the API server and
(as later issues add them) controllers and the scheduler; credentials for tenant users."""
