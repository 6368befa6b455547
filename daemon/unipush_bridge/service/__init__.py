"""Running the daemon as a desktop service: the unit, agent and Startup entry
(``units``), installing them (``install``), the CLI commands (``commands``) and the
``doctor`` that says why notifications do not show."""
