"""Image label folders → dataset folders: discovery, plan, check, encode, write (see `convert`)."""
