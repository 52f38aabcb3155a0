"""The demo (`make demo`): generated data, the whole pipeline, and its HTML report."""
