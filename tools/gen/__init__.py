"""Code generators: firmware tables derived from official schemas."""
