"""Entry points: the command line (and next, the web service). Only these and the bootstrap wire projections and consumers in."""
