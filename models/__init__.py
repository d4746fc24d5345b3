"""Architecture recipes of the registered model family (installed as ``edgecnn.recipes``)."""
