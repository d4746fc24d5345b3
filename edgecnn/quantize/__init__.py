"""Making int8 work: where it goes wrong (layer_error), and the repairs that fix it."""
