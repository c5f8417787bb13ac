"""Pod network hooks (``centaurus.netplugs``): how a pod gets its interface and address."""
