"""Dataplanes: how endpoints of a VPC reach each other (``centaurus.dataplanes``)."""
