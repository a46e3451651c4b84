"""Infrastructure adapters: the sealed event store, configuration, keys, file formats and text output."""
