"""Store: content-addressed blobs and the catalog that describes them."""
