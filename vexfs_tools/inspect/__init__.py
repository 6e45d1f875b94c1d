"""Read-only views of a volume for dump.vexfs and `vexfs ls|stat|cat`: plain data, no printing."""
