"""Pure data of the API: kinds, validation, defaulting, patches, Table conversion and the
Kubernetes protobuf codec. Nothing in this package does I/O, so the API server, controllers and
tests share one definition of what an object is."""
