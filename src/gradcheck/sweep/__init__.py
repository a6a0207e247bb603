"""A tool beside the pipeline: the h-sweep (error against step size) and its plot."""
